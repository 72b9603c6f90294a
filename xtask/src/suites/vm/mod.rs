//! The VM test suite: each case boots the stock kernel in QEMU with vminit
//! as `/init` and checks the console and the exit status. Checks that need
//! no separate boot share one, where that hides no failure.
//!
//! Prints one line per case and a closing `N passed, N failed` line.
//!
//! The cases are in one file per concern, each with its table: [`boot`],
//! [`signals`], [`power`], [`network`], [`report`], [`hostile`], [`disks`],
//! [`api`] and, on x86-64, [`faults`], which the runner here takes in
//! that order; [`checks`]
//! holds what the cases check of a boot, [`image`] the test images'
//! contents.

mod api;
mod api_host;
mod boot;
mod checks;
mod disks;
mod faults;
mod hostile;
mod image;
mod network;
mod power;
mod report;
mod signals;

use std::sync::Mutex;
use std::time::Duration;

use crate::cmd;
use crate::vm::arch::Arch;
use crate::vm::faulty::{self, DiskServer};
use crate::vm::initramfs::Console as ConsoleNodes;
use crate::vm::kernel;
use crate::vm::kit::Kit;
use crate::vm::qemu::{self, Boot, Console};
use crate::vm::vsock::VsockHost;

/// A hang guard per boot (a TCG boot takes 5-10 s here).
const GUARD: Duration = Duration::from_secs(180);

/// One boot and what must hold of it.
struct Case {
    name: &'static str,
    image: Image,
    /// Appended to [`qemu::base_cmdline`]; also checked with `--check`
    /// on the host, whose verdict the case sees in [`Outside`].
    cmdline: &'static str,
    /// In turn: once a console line contains the first, do the second.
    after: &'static [(&'static str, Act)],
    /// Virtual devices the case needs besides the serial console.
    devices: &'static [Device],
    check: fn(&Console, &Outside) -> Result<(), String>,
}

/// What the host does once a console line shows a cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Send QMP this command: Ctrl-Alt-Del, the power button.
    Qmp(&'static str),
    /// Stop the case's NBD disk servers: their disks hang.
    HangDisks,
    /// Resume them.
    ResumeDisks,
}

/// Which test image a case boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Image {
    Normal,
    /// `/dev/console` missing: the kernel starts init with fds 0-2 closed.
    NoConsole,
    /// A read-only root: `/init` is a script that makes `/etc/resolv.conf`
    /// a symlink into `/run` (as systemd-resolved's images have it) and
    /// `/etc/hosts` one to `/etc/static/hosts` (as NixOS has it), remounts
    /// `/` read-only and execs vminit (`/sbin/vminit`) as PID 1.
    ReadOnlyRoot,
}

/// A device and its host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    /// virtio-net with QEMU's user networking, and an HTTP server on the
    /// host's loopback (10.0.2.2 in the guest); `{http_port}` in the
    /// command line is replaced by its port.
    Net,
    /// A virtio-serial port named `org.vminit.exit`, written to a file.
    ExitPort,
    /// vsock with its host side as Firecracker's (`vhost-device-vsock`),
    /// the guest's CID 3, and a host listener on CID 2, `port`, that reads
    /// one line, then closes, or with `hold` keeps the connection open.
    Vsock { port: u32, hold: bool },
    /// vsock as above, and a host client of the API on `port` that runs
    /// `script` once the API answers.
    Api { port: u32, script: api_host::Script },
    /// `/dev/vda`: a fresh copy of the root disk (ext4 with busybox, see
    /// [`disks::ROOT_FILES`]).
    RootDisk,
    /// The next `/dev/vd*`: a fresh, empty ext4 disk of 32 MiB.
    DataDisk,
    /// [`Device::DataDisk`] whose writes to its last 1 KiB block fail with
    /// EIO (QEMU's `blkdebug`): a file that fills most of the disk meets it.
    FailingDataDisk,
    /// [`Device::RootDisk`] served over NBD by `qemu-storage-daemon`, which
    /// [`Act::HangDisks`] stops.
    NbdRootDisk,
    /// [`Device::DataDisk`] served so.
    NbdDataDisk,
    /// The serial console through a socket that the host stops reading
    /// for `seconds` after the line that contains `after`.
    StalledConsole { after: &'static str, seconds: u64 },
}

/// What the host side of the devices saw.
#[derive(Debug, Default)]
struct Outside {
    /// Request lines the HTTP server received.
    http_requests: Vec<String>,
    /// What the guest wrote to the `org.vminit.exit` port.
    port_record: String,
    /// The line the host's vsock listener read.
    vsock_record: String,
    /// What the API's script passed, or where it failed.
    api: Option<Result<Vec<String>, String>>,
    /// `vminit --check --cmdline` on the host, of the boot's whole line:
    /// its exit status and standard error.
    check: (i32, String),
    /// The disks after the VM stopped.
    root_disk: Option<std::path::PathBuf>,
    data_disk: Option<std::path::PathBuf>,
}

impl Outside {
    /// Checks that each disk the case had is a clean ext4 (`e2fsck -fn`).
    fn disks_clean(&self) -> Result<(), String> {
        for disk in self.root_disk.iter().chain(&self.data_disk) {
            crate::vm::disk::check(disk)?;
        }
        Ok(())
    }

    /// A file on the data disk, or on the root disk.
    fn read(&self, data: bool, path: &str) -> Result<String, String> {
        let disk = if data {
            &self.data_disk
        } else {
            &self.root_disk
        };
        match disk {
            Some(disk) => crate::vm::disk::read(disk, path),
            None => Err("the case has no such disk".into()),
        }
    }
}

/// Cases that need x86's keyboard controller (Ctrl-Alt-Del is an i8042
/// key press; arm64 `virt` has no keyboard to press it on).
const X86_ONLY: &[&str] = &[
    "ctrl_alt_del_from_the_host_reaches_the_app_as_sigint",
    "ctrl_alt_del_during_writes_leaves_the_volume_clean",
];

/// Every case for `arch`: the tables of each concern, one after another.
fn cases(arch: Arch) -> Vec<Case> {
    let mut cases: Vec<Case> = [
        boot::cases(),
        signals::cases(),
        power::cases(arch),
        network::cases(),
        report::cases(),
        hostile::cases(),
        disks::cases(),
        api::cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if arch == Arch::X86_64 {
        // QEMU's fault injection is the same on every architecture.
        cases.extend(faults::cases());
    } else {
        cases.retain(|case| !X86_ONLY.contains(&case.name));
    }
    cases
}

/// Runs every case for `arch` (or those whose name contains `filter`), two
/// boots at a time (a TCG boot keeps one core busy); the scenarios (Debian
/// amd64 images) on x86-64 only.
pub fn run(filter: Option<&str>, arch: Arch) -> Result<(), String> {
    if arch != Arch::host() {
        // `--check` on the host runs the guest's own binary.
        crate::setup::binfmt(arch)?;
    }
    let kit = Kit::prepare_for(None, arch)?;
    VsockHost::install()?;
    api_host::build_ctl()?;
    let mut files: Vec<(String, Vec<u8>, u32)> = image::FILES
        .iter()
        .map(|(path, text)| ((*path).to_owned(), text.as_bytes().to_vec(), 0o755))
        .collect();
    files.extend(kernel::module_files(&kit.kernel, image::MODULES)?);
    files.extend(kernel::module_files(
        &kit.kernel,
        arch.power_button_modules(),
    )?);
    let normal = kit.image("tests", ConsoleNodes::Nodes, files.clone())?;
    let no_console = kit.image("tests-no-console", ConsoleNodes::Missing, files.clone())?;
    let mut read_only_files = files;
    let vminit =
        std::fs::read(&kit.vminit).map_err(|e| format!("{}: {e}", kit.vminit.display()))?;
    read_only_files.push(("/sbin/vminit".into(), vminit, 0o755));
    let read_only = kit.image_with_init(
        "tests-read-only",
        Some(image::READ_ONLY_INIT),
        ConsoleNodes::Nodes,
        read_only_files,
    )?;
    crate::setup::packages(crate::vm::disk::TOOLS)?;
    crate::setup::packages(crate::vm::faulty::TOOLS)?;
    let root_image = cmd::root().join("target/vm/root.ext4");
    crate::vm::disk::root_image(
        &root_image,
        &kit.busybox,
        disks::ROOT_FILES,
        64,
        disks::image_run,
    )?;
    eprintln!(
        "VM tests: {} with {:?}",
        kit.kernel.display(),
        kit.accel(&normal)
    );

    let chosen = cases(arch)
        .into_iter()
        .filter(|case| filter.is_none_or(|f| case.name.contains(f)))
        .enumerate()
        .collect::<Vec<_>>();
    let scenarios = arch == Arch::X86_64
        && super::scenarios::NAMES
            .iter()
            .any(|name| filter.is_none_or(|f| name.contains(f)));
    if chosen.is_empty() && !scenarios {
        return Err(format!("no VM test case matches {filter:?}"));
    }
    let queue = Mutex::new(chosen);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some((index, case)) = queue.lock().unwrap().pop() {
                    let initrd = match case.image {
                        Image::Normal => &normal,
                        Image::NoConsole => &no_console,
                        Image::ReadOnlyRoot => &read_only,
                    };
                    let outcome = run_case(&case, &kit, initrd, &root_image, index);
                    results.lock().unwrap().push((case.name, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    // Real software, one boot at a time: these images are large.
    if arch == Arch::X86_64 {
        results.extend(super::scenarios::run(&kit, filter));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    println!(
        "{}: {} passed, {failed} failed",
        arch.name(),
        results.len() - failed
    );
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} VM test(s) failed"))
    }
}

/// A case's devices, attached: QEMU's arguments and their host sides.
#[derive(Default)]
struct Attached {
    devices: Vec<String>,
    faults: qemu::HostFaults,
    http: Option<network::HttpServer>,
    port_file: Option<std::path::PathBuf>,
    vsock: Option<(VsockHost, crate::vm::vsock::LineListener)>,
    api: Option<ApiClient>,
    disk_servers: Vec<DiskServer>,
    root_disk: Option<std::path::PathBuf>,
    data_disk: Option<std::path::PathBuf>,
    /// Files to remove after the boot.
    scratch: Vec<std::path::PathBuf>,
}

/// The API's host side: kept until QEMU has ended (QEMU needs its
/// back-end), and the client's thread.
type ApiClient = (
    std::sync::Arc<VsockHost>,
    std::thread::JoinHandle<Result<Vec<String>, String>>,
);

/// Where the case's files go: a name of its own in the temporary directory.
fn scratch(index: usize, what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vminit-{}-{index}-{what}", std::process::id()))
}

/// Attaches the case's devices, replacing `{http_port}` in `cmdline`.
fn attach(
    case: &Case,
    root_image: &std::path::Path,
    index: usize,
    cmdline: &mut String,
) -> Result<Attached, String> {
    let mut attached = Attached::default();
    let disk_path = |what: &str| cmd::root().join(format!("target/vm/{}-{what}.ext4", case.name));
    for device in case.devices {
        match device {
            Device::RootDisk | Device::NbdRootDisk => {
                let path = disk_path("root");
                std::fs::copy(root_image, &path).map_err(|e| format!("{}: {e}", path.display()))?;
                attached.attach_disk(&path, "root", *device == Device::NbdRootDisk, index)?;
                attached.root_disk = Some(path);
            }
            Device::DataDisk | Device::NbdDataDisk | Device::FailingDataDisk => {
                let path = disk_path("data");
                crate::vm::disk::empty(&path, 32)?;
                if *device == Device::FailingDataDisk {
                    let rules = scratch(index, "blkdebug.conf");
                    // 32 MiB: the last block's last sector.
                    let last = 32 * 2048 - 1;
                    let drive = faulty::failing_disk(&path, "data", last, &rules)?;
                    attached.devices.extend(drive);
                    attached.scratch.push(rules);
                } else {
                    attached.attach_disk(&path, "data", *device == Device::NbdDataDisk, index)?;
                }
                attached.data_disk = Some(path);
            }
            Device::Net => {
                let server = network::HttpServer::start()?;
                *cmdline = cmdline.replace("{http_port}", &server.port.to_string());
                attached.http = Some(server);
                attached.devices.extend(qemu::user_net());
            }
            Device::Vsock { port, hold } => {
                let dir = std::env::temp_dir();
                let host =
                    VsockHost::start(&dir, &format!("vminit-{}-{index}", std::process::id()))?;
                let listener = host.listen(*port, *hold)?;
                attached.devices.extend(host.devices());
                attached.vsock = Some((host, listener));
            }
            Device::Api { port, script } => {
                let dir = std::env::temp_dir();
                let name = format!("vminit-api-{}-{index}", std::process::id());
                let host = std::sync::Arc::new(VsockHost::start(&dir, &name)?);
                attached.devices.extend(host.devices());
                let (port, script) = (*port, *script);
                let client = std::sync::Arc::clone(&host);
                let thread = std::thread::spawn(move || api_host::run(script, client, port));
                attached.api = Some((host, thread));
            }
            Device::ExitPort => {
                let file = scratch(index, "exit-port.json");
                attached.devices.extend([
                    "-device".into(),
                    "virtio-serial-device".into(),
                    "-chardev".into(),
                    format!("file,id=exitrec,path={}", file.display()),
                    "-device".into(),
                    "virtserialport,chardev=exitrec,name=org.vminit.exit".into(),
                ]);
                attached.port_file = Some(file);
            }
            Device::StalledConsole { after, seconds } => {
                let socket = scratch(index, "console.sock");
                attached.faults.console_stall = Some(qemu::ConsoleStall {
                    socket: socket.clone(),
                    after,
                    pause: Duration::from_secs(*seconds),
                });
                attached.scratch.push(socket);
            }
        }
    }
    Ok(attached)
}

impl Attached {
    /// The disk image at `path` as the next virtio disk, served over NBD
    /// when `nbd`.
    fn attach_disk(
        &mut self,
        path: &std::path::Path,
        id: &str,
        nbd: bool,
        index: usize,
    ) -> Result<(), String> {
        if !nbd {
            self.devices.extend(qemu::disk(path, id, false));
            return Ok(());
        }
        let server = DiskServer::start(path, &scratch(index, &format!("{id}.nbd")))?;
        self.devices.extend(server.disk(id));
        self.disk_servers.push(server);
        Ok(())
    }

    /// Does `act` on the running guest, through QMP at `qmp`.
    fn act(&self, act: Act, qmp: Option<&std::path::Path>) -> Result<(), String> {
        match act {
            Act::Qmp(command) => match qmp {
                Some(socket) => qemu::qmp(socket, command),
                None => Err("no QMP socket".into()),
            },
            Act::HangDisks => self.disk_servers.iter().try_for_each(DiskServer::hang),
            Act::ResumeDisks => self.disk_servers.iter().try_for_each(DiskServer::resume),
        }
    }

    /// What the host sides saw, once QEMU has ended; the servers stop.
    fn outside(self, check: (i32, String)) -> Outside {
        for file in &self.scratch {
            let _ = std::fs::remove_file(file);
        }
        drop(self.disk_servers);
        let port_record = self
            .port_file
            .map(|file| {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                let _ = std::fs::remove_file(&file);
                text
            })
            .unwrap_or_default();
        Outside {
            http_requests: self.http.map(network::HttpServer::stop).unwrap_or_default(),
            port_record,
            vsock_record: self
                .vsock
                .map(|(_host, listener)| listener.stop())
                .unwrap_or_default(),
            api: self.api.map(|(_host, client)| {
                client
                    .join()
                    .unwrap_or_else(|_| Err("the API's script panicked".into()))
            }),
            check,
            root_disk: self.root_disk,
            data_disk: self.data_disk,
        }
    }
}

fn run_case(
    case: &Case,
    kit: &Kit,
    initrd: &std::path::Path,
    root_image: &std::path::Path,
    index: usize,
) -> Result<(), String> {
    let needs_qmp = case.after.iter().any(|(_, act)| matches!(act, Act::Qmp(_)));
    let qmp = needs_qmp.then(|| scratch(index, "qmp.sock"));
    let mut cmdline = case
        .cmdline
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let attached = attach(case, root_image, index, &mut cmdline)?;
    let boot = Boot {
        qmp: qmp.clone(),
        devices: attached.devices.clone(),
        faults: attached.faults.clone(),
        ..kit.boot(initrd, cmdline)
    };
    let mut done: Result<(), String> = Ok(());
    let mut next = case.after.iter();
    let mut waiting_for = next.next();
    let result = qemu::run(&boot, GUARD, false, |line| {
        if let Some((cue, act)) = waiting_for
            && line.contains(cue)
        {
            waiting_for = next.next();
            if done.is_ok() {
                done = attached.act(*act, qmp.as_deref());
            }
        }
    });
    if let Some(socket) = &qmp {
        let _ = std::fs::remove_file(socket);
    }
    let outside = attached.outside(check_on_host(kit, &boot.cmdline)?);
    let outcome = result.and_then(|console| {
        done.clone()?;
        (case.check)(&console, &outside)
            .map_err(|e| format!("{e}\n--- console ---\n{}", console.text()))?;
        Ok(console.wall)
    });
    for disk in outside.root_disk.iter().chain(&outside.data_disk) {
        let _ = std::fs::remove_file(disk);
    }
    match &outcome {
        Ok(wall) => println!(
            "test vm::{} ... ok ({:.1} s)",
            case.name,
            wall.as_secs_f64()
        ),
        Err(e) => println!("test vm::{} ... FAILED\n{e}", case.name),
    }
    outcome.map(|_| ())
}

/// The token the test image's `/tests/api.json` gives the API.
pub(super) const API_TOKEN: &str = "test-t0ken-9f3";

/// `vminit --check --cmdline` on the host with the boot's whole line.
fn check_on_host(kit: &Kit, cmdline: &str) -> Result<(i32, String), String> {
    let line = format!("{} {cmdline}", qemu::base_cmdline(kit.arch));
    let output = std::process::Command::new(&kit.vminit)
        .args(["--check", "--cmdline", &line])
        .output()
        .map_err(|e| format!("{}: {e}", kit.vminit.display()))?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_has_a_name_of_its_own() {
        let names: Vec<&str> = cases(Arch::X86_64).iter().map(|c| c.name).collect();
        let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in X86_ONLY {
            assert!(names.contains(name), "{name}");
        }
        let arm = cases(Arch::Aarch64).len();
        assert_eq!(arm, names.len() - X86_ONLY.len() - faults::cases().len());
    }
}
