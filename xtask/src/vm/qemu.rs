//! Booting a kernel and initramfs in QEMU's `microvm` machine, reading its
//! serial console, and talking to its QMP monitor.
//!
//! Facts from these machines that shape the command line: under TCG the TSC
//! calibration hangs some boots unless `tsc_early_khz` is given, and
//! `-M microvm` also needs `pit=on,pic=on,rtc=on`; `-no-reboot` turns both
//! power-off and restart into QEMU's exit; `panic=-1` turns a kernel panic
//! into a restart, hence an exit, instead of a hang.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::arch::Arch;
use crate::cmd;

/// Kernel parameters every boot gets, before the caller's: the serial
/// console, a panic that ends QEMU, and on x86 the TSC frequency (which
/// another architecture's kernel would hand init as a variable).
pub fn base_cmdline(arch: Arch) -> String {
    match arch {
        // pci=off: microvm has no PCI, so the kernel need not probe it
        // (as Firecracker passes it). Linux 6.1 still prints "PCI: Fatal:
        // No config space access function found" when no access method
        // is set up, which pci=off leaves so.
        Arch::X86_64 => format!(
            "console=ttyS0 tsc_early_khz={} pci=off panic=-1 quiet",
            guest_tsc_khz()
        ),
        // earlycon: the PL011 from the device tree, so that a panic before
        // the console driver starts (too many init arguments) is seen.
        Arch::Aarch64 => format!("console={} earlycon panic=-1 quiet", arch.console()),
    }
}

/// The TSC frequency to tell an x86-64 guest. Under TCG its `rdtsc` reads
/// the host's own TSC, so the host's frequency keeps the guest's clock
/// true; the 1 GHz this once assumed ran it 2.6 times fast on a 2.6 GHz
/// host (guest timers, grace periods and every time measured inside).
/// Measured once over 100 ms; 1 GHz where the host has no TSC to read.
pub fn guest_tsc_khz() -> u64 {
    static KHZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *KHZ.get_or_init(|| host_tsc_khz().unwrap_or(1_000_000))
}

#[cfg(target_arch = "x86_64")]
fn host_tsc_khz() -> Option<u64> {
    let start = Instant::now();
    // SAFETY: rdtsc reads a counter; it has no preconditions (every x86-64
    // CPU has it, and it touches no memory).
    let first = unsafe { core::arch::x86_64::_rdtsc() };
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: as above.
    let last = unsafe { core::arch::x86_64::_rdtsc() };
    let micros = u64::try_from(start.elapsed().as_micros()).ok()?;
    Some(last.checked_sub(first)? * 1000 / micros.max(1))
}

#[cfg(not(target_arch = "x86_64"))]
fn host_tsc_khz() -> Option<u64> {
    None
}

/// A virtio-net device on QEMU's user networking (slirp): the guest sees
/// the host's loopback as 10.0.2.2 and a DNS forwarder at 10.0.2.3.
pub fn user_net() -> Vec<String> {
    user_net_forwarding(&[])
}

/// [`user_net`] with TCP ports of the host's loopback forwarded to the
/// guest's: (host port, guest port).
pub fn user_net_forwarding(ports: &[(u16, u16)]) -> Vec<String> {
    let forwards: String = ports
        .iter()
        .map(|(host, guest)| format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"))
        .collect();
    vec![
        "-netdev".into(),
        format!("user,id=n0{forwards}"),
        "-device".into(),
        "virtio-net-device,netdev=n0".into(),
    ]
}

/// A raw disk image as the next virtio-blk device (`/dev/vda`, `vdb`, …
/// in the order given).
pub fn disk(image: &Path, id: &str, read_only: bool) -> Vec<String> {
    let read_only = if read_only { ",readonly=on" } else { "" };
    vec![
        "-drive".into(),
        format!(
            "file={},if=none,id={id},format=raw{read_only}",
            image.display()
        ),
        "-device".into(),
        format!("virtio-blk-device,drive={id}"),
    ]
}

/// How long QEMU may take to exit after vminit's exit line.
const AFTER_EXIT_LINE: Duration = Duration::from_secs(5);

/// How QEMU runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// One boot's settings.
#[derive(Debug, Clone)]
pub struct Boot {
    pub arch: Arch,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Appended after [`base_cmdline`].
    pub cmdline: String,
    pub accel: Accel,
    /// A QMP socket to create, for sending keys.
    pub qmp: Option<PathBuf>,
    pub memory_mb: u32,
    pub cpus: u32,
    /// Extra QEMU arguments: devices and their back-ends.
    pub devices: Vec<String>,
    /// QEMU in a process group of its own, its standard input none: a
    /// Ctrl-C on the terminal reaches xtask alone, which presses the power
    /// button (`cargo xtask run`), instead of killing QEMU mid-write.
    pub own_group: bool,
    /// Faults the host side makes: a console that stops reading, a power
    /// cut.
    pub faults: HostFaults,
}

/// Faults of the machine around the guest, made from the host side.
#[derive(Debug, Clone, Default)]
pub struct HostFaults {
    /// The serial console through a Unix socket (QEMU connects to the
    /// host's listener) instead of QEMU's standard output, so that the host
    /// can stop reading without stopping QEMU: its socket back-end then
    /// waits, and the guest's serial port with it.
    pub console_stall: Option<ConsoleStall>,
    /// SIGKILL to QEMU once a console line contains this: a power cut.
    pub power_cut_on: Option<&'static str>,
}

/// The host stops reading the console for `pause` after the line that
/// contains `after`.
#[derive(Debug, Clone)]
pub struct ConsoleStall {
    pub socket: PathBuf,
    pub after: &'static str,
    pub pause: Duration,
}

impl Boot {
    pub fn command(&self) -> Command {
        let mut command = Command::new(self.arch.qemu().0);
        // A vhost-user device's back-end, another process, reads and
        // writes the guest's memory: it must be shared.
        let shared = self.devices.iter().any(|arg| arg.starts_with("vhost-user"));
        let machine = match (self.arch, shared) {
            (Arch::X86_64, false) => "microvm,pit=on,pic=on,rtc=on",
            (Arch::X86_64, true) => "microvm,pit=on,pic=on,rtc=on,memory-backend=mem",
            // PSCI powers it off; gpio-keys carries the power button.
            (Arch::Aarch64, false) => "virt",
            (Arch::Aarch64, true) => "virt,memory-backend=mem",
        };
        command.args(["-M", machine]);
        if self.arch == Arch::Aarch64 {
            command.args(["-cpu", "max"]);
        }
        if shared {
            command.args([
                "-object",
                &format!(
                    "memory-backend-memfd,id=mem,size={}M,share=on",
                    self.memory_mb
                ),
            ]);
        }
        command
            .args([
                "-accel",
                if self.accel == Accel::Kvm {
                    "kvm"
                } else {
                    "tcg"
                },
            ])
            .args(["-m", &format!("{}M", self.memory_mb)])
            .args(["-smp", &self.cpus.to_string()])
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ])
            .args(self.serial())
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .arg("-append")
            .arg(format!("{} {}", base_cmdline(self.arch), self.cmdline));
        command.args(self.devices_in_probe_order());
        if let Some(socket) = &self.qmp {
            if self.arch == Arch::X86_64 {
                // i8042: the keyboard controller that carries Ctrl-Alt-Del.
                command.args(["-device", "i8042"]);
            }
            command
                .arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", socket.display()));
        }
        command
    }
}

impl Boot {
    /// The serial console's back-end: standard output, or a socket.
    fn serial(&self) -> Vec<String> {
        match &self.faults.console_stall {
            None => vec!["-serial".into(), "stdio".into()],
            Some(stall) => vec![
                "-chardev".into(),
                format!("socket,id=console,path={}", stall.socket.display()),
                "-serial".into(),
                "chardev:console".into(),
            ],
        }
    }

    /// The device arguments, ordered so that the guest names devices in
    /// the order given (the first disk `/dev/vda`). `virt` hands its
    /// virtio-mmio transports out from the top of its window down and the
    /// kernel probes them from the bottom up, so there the virtio devices
    /// go in reverse.
    fn devices_in_probe_order(&self) -> Vec<String> {
        if self.arch == Arch::X86_64 {
            return self.devices.clone();
        }
        // Back-ends first, then the virtio devices reversed, then devices
        // that plug into those (a `virtserialport` into its bus).
        let mut virtio = Vec::new();
        let mut plugged = Vec::new();
        let mut rest = Vec::new();
        let mut args = self.devices.iter();
        while let Some(arg) = args.next() {
            match args.as_slice().first() {
                Some(device) if arg == "-device" => {
                    let pair = [arg.clone(), device.clone()];
                    if device.starts_with("virtio-") || device.starts_with("vhost-user-") {
                        virtio.push(pair);
                    } else {
                        plugged.push(pair);
                    }
                    args.next();
                }
                _ => rest.push(arg.clone()),
            }
        }
        rest.extend(virtio.into_iter().rev().flatten());
        rest.extend(plugged.into_iter().flatten());
        rest
    }
}

/// What a finished boot printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct Console {
    pub lines: Vec<String>,
    /// When each line arrived, since QEMU started.
    pub arrived: Vec<Duration>,
    pub wall: Duration,
    pub timed_out: bool,
    /// QEMU did not exit by itself after vminit's exit line and was stopped:
    /// the guest's power-off did not end the machine.
    pub stopped_after_exit_line: bool,
    /// When QEMU exited, since it started (seen within a quarter second),
    /// also while the console was not being read.
    pub exited: Option<Duration>,
}

impl Console {
    /// The status from vminit's `vminit: exit_code=N` line.
    pub fn exit_code(&self) -> Option<i32> {
        self.lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("vminit: exit_code="))
            .and_then(|n| n.trim().parse().ok())
    }

    pub fn exit_lines(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.starts_with("vminit: exit_code="))
            .count()
    }

    pub fn has(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    pub fn kernel_panicked(&self) -> bool {
        self.has("Kernel panic")
    }
}

/// Boots and collects the console until QEMU exits or `timeout` passes
/// (then QEMU is killed). `on_line` sees each line as it arrives, and may
/// act on the running guest (e.g. send keys over QMP).
pub fn run(
    boot: &Boot,
    timeout: Duration,
    echo: bool,
    mut on_line: impl FnMut(&str),
) -> Result<Console, String> {
    let start = Instant::now();
    let listener = console_listener(boot)?;
    let mut child = spawn(boot, echo)?;
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let input: Box<dyn Read + Send> = match listener {
        Some(listener) => Box::new(accept_console(&listener, &mut child)?),
        None => Box::new(stdout),
    };
    let receive = read_lines(input, start, boot.faults.console_stall.clone());
    let mut console = Console::default();
    // After vminit's exit line the guest only powers off or restarts; a
    // restart under microvm has been seen to boot again despite
    // -no-reboot, so QEMU gets a few seconds to exit, then is stopped.
    let mut ended_at: Option<Instant> = None;
    // How often QEMU's own exit is looked for while no line comes.
    let look = Duration::from_millis(250);
    loop {
        let mut left = timeout.saturating_sub(start.elapsed());
        if let Some(ended) = ended_at {
            left = left.min(AFTER_EXIT_LINE.saturating_sub(ended.elapsed()));
        }
        match receive.recv_timeout(left.min(look)) {
            Ok((at, line)) => {
                if echo {
                    println!("{line}");
                }
                on_line(&line);
                if ended_at.is_none() && line.starts_with("vminit: exit_code=") {
                    ended_at = Some(Instant::now());
                }
                if boot
                    .faults
                    .power_cut_on
                    .is_some_and(|cue| line.contains(cue))
                {
                    let _ = child.kill();
                }
                console.lines.push(line);
                console.arrived.push(at);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if left > look => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                console.timed_out = ended_at.is_none();
                console.stopped_after_exit_line = ended_at.is_some();
                let _ = child.kill();
                break;
            }
        }
        if console.exited.is_none() && child.try_wait().is_ok_and(|s| s.is_some()) {
            console.exited = Some(start.elapsed());
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    console.wall = start.elapsed();
    console.exited.get_or_insert(console.wall);
    let errors = errors.join().unwrap_or_default();
    if !status.success() && !console.timed_out && console.lines.is_empty() {
        return Err(format!(
            "{} failed ({status}): {errors}",
            boot.arch.qemu().0
        ));
    }
    Ok(console)
}

/// Starts QEMU, its output piped.
fn spawn(boot: &Boot, echo: bool) -> Result<std::process::Child, String> {
    let mut command = boot.command();
    if boot.own_group {
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    command
        .stdin(if echo && !boot.own_group {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", boot.arch.qemu().0))
}

/// The listener QEMU's console connects to, when the host may stall it.
fn console_listener(boot: &Boot) -> Result<Option<std::os::unix::net::UnixListener>, String> {
    let Some(stall) = &boot.faults.console_stall else {
        return Ok(None);
    };
    let _ = std::fs::remove_file(&stall.socket);
    let listener = std::os::unix::net::UnixListener::bind(&stall.socket)
        .map_err(|e| format!("{}: {e}", stall.socket.display()))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(Some(listener))
}

/// QEMU's connection to the console's listener, taken as soon as it comes
/// (QEMU connects while it starts), or an error if QEMU exits first.
fn accept_console(
    listener: &std::os::unix::net::UnixListener,
    child: &mut std::process::Child,
) -> Result<UnixStream, String> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("the console's socket: {e}")),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "QEMU exited ({status}) before its console connected"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `input` line by line in a thread, each with when it arrived;
/// with a `stall`, stops reading for its pause after its line.
fn read_lines(
    input: Box<dyn Read + Send>,
    start: Instant,
    mut stall: Option<ConsoleStall>,
) -> mpsc::Receiver<(Duration, String)> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            let pause = stall
                .take_if(|stall| text.contains(stall.after))
                .map(|stall| stall.pause);
            if send.send((start.elapsed(), text)).is_err() {
                break;
            }
            if let Some(pause) = pause {
                std::thread::sleep(pause);
            }
            line.clear();
        }
    });
    receive
}

impl Boot {
    /// The QEMU command line, quoted so that it can be pasted into a shell.
    pub fn shell_line(&self) -> String {
        let command = self.command();
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|word| shell_quote(&word.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `word` as a POSIX shell reads it back: bare when it is safe, else in
/// single quotes.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Ctrl-Alt-Del on the guest's keyboard (on x86, the i8042's; the kernel
/// turns it into SIGINT for PID 1 once Ctrl-Alt-Del is "soft").
pub const CTRL_ALT_DEL: &str = r#"{"execute": "send-key", "arguments": {"keys": [
    {"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"},
    {"type": "qcode", "data": "delete"}]}}"#;

/// The ACPI (x86) or GPIO (arm `virt`) power button, as `system_powerdown`.
pub const POWER_BUTTON: &str = r#"{"execute": "system_powerdown"}"#;

/// Presses Ctrl-Alt-Del through QMP.
pub fn send_ctrl_alt_del(socket: &Path) -> Result<(), String> {
    qmp(socket, CTRL_ALT_DEL)
}

/// Sends one QMP command (after the capabilities handshake) and waits for
/// its `return`.
pub fn qmp(socket: &Path, command: &str) -> Result<(), String> {
    qmp_reply(socket, command).map(|_| ())
}

/// [`qmp`], returning the command's `return` line.
pub fn qmp_reply(socket: &Path, command: &str) -> Result<String, String> {
    let stream =
        UnixStream::connect(socket).map_err(|e| format!("QMP {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("QMP greeting: {e}"))?;
    for request in [r#"{"execute": "qmp_capabilities"}"#, command] {
        writer
            .write_all(format!("{}\n", request.replace('\n', " ")).as_bytes())
            .map_err(|e| e.to_string())?;
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("QMP reply: {e}"))?;
            if line.contains("\"return\"") {
                break;
            }
            if line.contains("\"error\"") {
                return Err(format!("QMP refused {request}: {line}"));
            }
        }
    }
    Ok(line)
}

/// KVM when it really runs guests here, else TCG. `/dev/kvm` can exist
/// while nested guests spin forever (as on these machines), so KVM is
/// only used when the CPU shows vmx/svm and a probe boot of `probe` ends.
pub fn accel(probe: impl FnOnce() -> Option<Boot>) -> Accel {
    static CHOSEN: OnceLock<Accel> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let virtualisation = flags.lines().any(|l| {
            l.starts_with("flags") && l.split_whitespace().any(|f| f == "vmx" || f == "svm")
        });
        let device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        if !(virtualisation && device) {
            return Accel::Tcg;
        }
        let Some(mut boot) = probe() else {
            return Accel::Tcg;
        };
        boot.accel = Accel::Kvm;
        match run(&boot, Duration::from_secs(20), false, |_| {}) {
            Ok(console) if console.exit_code().is_some() => Accel::Kvm,
            _ => {
                eprintln!("KVM is present but a probe boot did not finish: using TCG");
                Accel::Tcg
            }
        }
    })
}

/// Installs `arch`'s QEMU when missing (as root on Debian), else says how.
pub fn ensure_installed(arch: Arch) -> Result<(), String> {
    let (program, package) = arch.qemu();
    crate::setup::packages(&[(program, package)])?;
    if cmd::exists(program) {
        Ok(())
    } else {
        Err(format!("{program} is missing: apt-get install {package}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_to_paste() {
        assert_eq!(shell_quote("-append"), "-append");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn virt_gets_its_virtio_devices_reversed() {
        let mut boot = Boot {
            arch: Arch::Aarch64,
            kernel: PathBuf::new(),
            initrd: PathBuf::new(),
            cmdline: String::new(),
            accel: Accel::Tcg,
            qmp: None,
            memory_mb: 256,
            cpus: 1,
            devices: disk(Path::new("a"), "a", true),
            own_group: false,
            faults: HostFaults::default(),
        };
        boot.devices.extend(disk(Path::new("b"), "b", false));
        let order = boot.devices_in_probe_order();
        assert_eq!(order[0], "-drive");
        assert_eq!(order[2], "-drive");
        // Given a then b: b is probed last on virt, so it becomes vdb.
        assert_eq!(order[5], "virtio-blk-device,drive=b");
        assert_eq!(order[7], "virtio-blk-device,drive=a");
        boot.arch = Arch::X86_64;
        assert_eq!(boot.devices_in_probe_order(), boot.devices);
    }

    #[test]
    fn exit_code_is_read_from_the_last_exit_line() {
        let console = Console {
            lines: vec![
                "vminit: exit_code=3".into(),
                "noise".into(),
                "vminit: exit_code=7\r".into(),
            ],
            ..Console::default()
        };
        assert_eq!(console.exit_code(), Some(7));
        assert_eq!(console.exit_lines(), 2);
        assert_eq!(Console::default().exit_code(), None);
    }
}
