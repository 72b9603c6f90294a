//! `cargo xtask run`: boots a microVM with vminit as `/init` and one command,
//! streams its console, and exits with the command's exit status.
//!
//! ```text
//! cargo xtask run [--env K=V]... [--workdir DIR] [--metadata FILE] [--add HOST:GUEST]...
//!                 [--kernel PATH] [--cmdline EXTRA] [--net] [--arch aarch64] -- COMMAND [ARGS...]
//! cargo xtask run --image SOURCE [--volume FILE:/TARGET[:TYPE]]... [--publish HOST:GUEST]...
//!                 [--env K=V]... [--workdir DIR] [--kernel PATH] [--cmdline EXTRA] [-- COMMAND [ARGS...]]
//! both:           [--memory MB] [--cpus N] [--print-qemu]
//! ```
//!
//! The first Ctrl-C presses the guest's power button (the app gets its
//! stop signal, then the grace period: a clean stop, not a power cut); a
//! second one quits QEMU. QEMU runs in a process group of its own with no
//! terminal input, so the terminal's Ctrl-C reaches xtask alone. The QMP
//! socket's path is printed, for other tools (`system_powerdown`,
//! `send-key`).
//!
//! `--image` builds the image with `vminit-image` (into `target/vm/image/`;
//! the root disk is kept while the image's digest is the same), boots its root disk read-only under a tmpfs overlay, attaches each
//! volume as the next virtio disk and mounts it, and with `--publish`
//! forwards host ports to the guest over user networking.
//!
//! `--net` gives the guest QEMU's user networking on virtio-net: the image
//! gets the stock kernel's modules for it, and vminit configures the
//! addresses QEMU's built-in DHCP would hand out (10.0.2.15/24, gateway
//! 10.0.2.2, which reaches the host's loopback, and nameserver 10.0.2.3).

use std::path::PathBuf;
use std::time::Duration;

use super::arch::Arch;
use super::initramfs::Console;
use super::kernel;
use super::kit::{self, Kit};
use super::qemu::{self, Boot};

/// Longest a `run` may take before QEMU is stopped: a guard, not a limit
/// anyone should meet.
const GUARD: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default)]
struct Request {
    env: Vec<(String, String)>,
    workdir: Option<String>,
    metadata: Option<PathBuf>,
    add: Vec<(PathBuf, String)>,
    kernel: Option<PathBuf>,
    cmdline: Vec<String>,
    net: bool,
    argv: Vec<String>,
    image: Option<String>,
    /// (host file, guest target, filesystem type).
    volumes: Vec<(PathBuf, String, String)>,
    /// (host port, guest port).
    publish: Vec<(u16, u16)>,
    arch: Option<Arch>,
    memory_mb: Option<u32>,
    cpus: Option<u32>,
    print_qemu: bool,
}

/// What `--net` adds to the kernel command line (its modules join the
/// power button's in one `vminit.modules`).
const NET_CMDLINE: &str =
    "vminit.net.address=10.0.2.15/24 vminit.net.gateway=10.0.2.2 vminit.net.nameservers=10.0.2.3";

fn parse(args: &[String]) -> Result<Request, String> {
    let mut request = Request::default();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let mut value = |name: &str| words.next().cloned().ok_or(format!("{name} needs a value"));
        match word.as_str() {
            "--env" | "-e" => {
                let pair = value("--env")?;
                let (key, val) = pair.split_once('=').ok_or("--env takes KEY=VALUE")?;
                request.env.push((key.to_owned(), val.to_owned()));
            }
            "--workdir" | "-w" => request.workdir = Some(value("--workdir")?),
            "--metadata" => request.metadata = Some(value("--metadata")?.into()),
            "--add" => {
                let pair = value("--add")?;
                let (host, guest) = pair.split_once(':').ok_or("--add takes HOST:GUEST")?;
                if !guest.starts_with('/') {
                    return Err(format!("--add {pair}: the guest path must be absolute"));
                }
                request.add.push((host.into(), guest.to_owned()));
            }
            "--kernel" => request.kernel = Some(value("--kernel")?.into()),
            "--cmdline" => request.cmdline.push(value("--cmdline")?),
            "--net" => request.net = true,
            "--arch" => request.arch = Some(Arch::parse(&value("--arch")?)?),
            "--image" => request.image = Some(value("--image")?),
            "--memory" => {
                let text = value("--memory")?;
                let mb = text.parse().ok().filter(|mb| (64..=65536).contains(mb));
                request.memory_mb =
                    Some(mb.ok_or(format!("--memory {text}: give MiB, from 64 to 65536"))?);
            }
            "--cpus" => {
                let text = value("--cpus")?;
                let cpus = text.parse().ok().filter(|n| (1..=64).contains(n));
                request.cpus = Some(cpus.ok_or(format!("--cpus {text}: give 1 to 64"))?);
            }
            "--print-qemu" => request.print_qemu = true,
            "--volume" => {
                let spec = value("--volume")?;
                let mut parts = spec.splitn(3, ':');
                let (Some(file), Some(target)) = (parts.next(), parts.next()) else {
                    return Err(format!("--volume {spec}: give FILE:/TARGET[:TYPE]"));
                };
                let fstype = parts.next().unwrap_or("ext4").to_owned();
                request
                    .volumes
                    .push((file.into(), target.to_owned(), fstype));
            }
            "--publish" => {
                let spec = value("--publish")?;
                let ports = spec
                    .split_once(':')
                    .and_then(|(h, g)| Some((h.parse().ok()?, g.parse().ok()?)))
                    .ok_or(format!("--publish {spec}: give HOSTPORT:GUESTPORT"))?;
                request.publish.push(ports);
            }
            "--" => {
                request.argv = words.cloned().collect();
                break;
            }
            other => {
                return Err(format!(
                    "unknown option {other:?} for run (the command goes after --)"
                ));
            }
        }
    }
    if request.image.is_some() {
        // Said, not ignored: the image's own metadata is built from its config.
        if request.metadata.is_some() {
            return Err("--metadata with --image: the image's config is its metadata; use --env, --workdir, --cmdline vminit.* or -- COMMAND".into());
        }
        if !request.add.is_empty() {
            return Err("--add with --image: the files belong in the image (a layer)".into());
        }
    }
    if request.argv.is_empty() && request.metadata.is_none() && request.image.is_none() {
        return Err("give a command after --, e.g. cargo xtask run -- sh -c 'echo hello from a microVM; uname -a'".into());
    }
    Ok(request)
}

pub fn run(args: &[String]) -> Result<i32, String> {
    let request = parse(args)?;
    let kit = Kit::prepare_for(
        request.kernel.as_deref(),
        request.arch.unwrap_or_else(Arch::host),
    )?;
    if let Some(source) = &request.image {
        return run_image(&request, &kit, source);
    }

    let mut files = Vec::new();
    for (host, guest) in &request.add {
        let data = std::fs::read(host).map_err(|e| format!("--add {}: {e}", host.display()))?;
        files.push((guest.clone(), data, 0o755));
    }
    let mut devices = Vec::new();
    let mut cmdline_words = request.cmdline.clone();
    // The power button's modules, so that Ctrl-C can press it.
    let mut modules: Vec<&str> = kit.arch.power_button_modules().to_vec();
    if request.net {
        modules.extend(["virtio_mmio", "virtio_net"]);
        devices.extend(qemu::user_net());
        cmdline_words.insert(0, NET_CMDLINE.to_owned());
    }
    files.extend(kernel::module_files(&kit.kernel, &modules)?);
    cmdline_words.insert(0, format!("vminit.modules={}", modules.join(",")));
    let mut cmdline = cmdline_words.join(" ");
    let mut push = |words: &str| {
        if !cmdline.is_empty() {
            cmdline.push(' ');
        }
        cmdline.push_str(words);
    };
    if let Some(dir) = &request.workdir {
        push(&format!("workdir={dir}"));
    }
    let fits = kit::cmdline_for(&request.env, &request.argv);
    if request.metadata.is_some() || fits.is_none() {
        // The user's file, with what did not fit on the command line merged in.
        let mut metadata = match &request.metadata {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--metadata {}: {e}", path.display()))?;
                MetadataText(text)
            }
            None => MetadataText("{}".into()),
        };
        let mut tail = String::new();
        match &fits {
            Some(words) => tail.push_str(words),
            None => metadata.merge(&request.env, &request.argv)?,
        }
        files.push((kit::GUEST_METADATA.into(), metadata.0.into_bytes(), 0o644));
        push(&format!("metadata={}", kit::GUEST_METADATA));
        if !tail.is_empty() {
            push(&tail);
        }
    } else if let Some(words) = fits {
        push(&words);
    }

    let initrd = kit.image("run", Console::Nodes, files)?;
    boot_and_wait(&request, kit.boot(&initrd, cmdline), devices)
}

/// Boots with the request's memory and CPUs and a QMP socket, Ctrl-C
/// pressing the power button; returns the app's status.
fn boot_and_wait(request: &Request, boot: Boot, devices: Vec<String>) -> Result<i32, String> {
    let socket = crate::cmd::root().join(format!("target/vm/run-{}.qmp", std::process::id()));
    let boot = Boot {
        memory_mb: request.memory_mb.unwrap_or(512),
        cpus: request.cpus.unwrap_or(1),
        devices,
        qmp: Some(socket.clone()),
        own_group: true,
        ..boot
    };
    if request.print_qemu {
        println!("{}", boot.shell_line());
    }
    eprintln!("booting {} ({:?})", boot.kernel.display(), boot.accel);
    eprintln!(
        "QMP socket: {} (Ctrl-C presses the power button, twice quits QEMU)",
        socket.display()
    );
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = ctrl_c::watch(socket.clone(), done.clone());
    let console = qemu::run(&boot, GUARD, true, |_| {});
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watcher.join();
    let _ = std::fs::remove_file(&socket);
    exit_status(&console?)
}

/// The terminal's Ctrl-C while QEMU runs: counted by a signal handler,
/// acted on by a thread (QMP is no work for a handler).
mod ctrl_c {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    static PRESSES: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_sigint(_: libc::c_int) {
        PRESSES.fetch_add(1, Ordering::SeqCst);
    }

    /// Installs the handler and starts the thread; it ends with `done`.
    pub fn watch(socket: PathBuf, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let handler = on_sigint as extern "C" fn(libc::c_int);
        // SAFETY: the handler only increments an atomic, which is
        // async-signal-safe; it stays installed for the process's life.
        unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
        std::thread::spawn(move || {
            let mut acted = 0;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let presses = PRESSES.load(Ordering::SeqCst);
                if presses >= 1 && acted == 0 {
                    acted = 1;
                    eprintln!(
                        "\nxtask: Ctrl-C: pressing the guest's power button (the app gets its stop signal); Ctrl-C again quits QEMU"
                    );
                    if let Err(e) = crate::vm::qemu::qmp(&socket, crate::vm::qemu::POWER_BUTTON) {
                        eprintln!("xtask: {e}");
                    }
                }
                if presses >= 2 && acted == 1 {
                    acted = 2;
                    eprintln!("\nxtask: Ctrl-C again: quitting QEMU (a power cut for the guest)");
                    let _ = crate::vm::qemu::qmp(&socket, r#"{"execute": "quit"}"#);
                }
            }
        })
    }
}

/// `--image`: builds the image, then boots its root disk and volumes.
fn run_image(request: &Request, kit: &Kit, source: &str) -> Result<i32, String> {
    let modules = kernel::modules_dir(&kit.kernel)?;
    let net = request.net || !request.publish.is_empty();
    let options = vminit_image::build::Options {
        source: vminit_image::source::Source::parse(source).map_err(|e| e.to_string())?,
        output: crate::cmd::root().join("target/vm/image"),
        kernel_modules: Some(modules),
        format: vminit_image::build::Format::Ext4,
        size_mib: None,
        max_size_mib: None,
        vminit: kit.vminit.clone(),
        kernel: Some(kit.kernel.clone()),
        arch: kit.arch.name().to_owned(),
        command: Vec::new(),
        setup: Vec::new(),
        extra_modules: if net {
            vec!["virtio_net".to_owned()]
        } else {
            Vec::new()
        },
        // The disk is booted read-only under an overlay, so it stays as
        // built; `.rootfs-key` notices when `--cmdline vminit.root.rw=1` wrote to it.
        reuse: true,
    };
    eprintln!("building {source} with vminit-image");
    let built = vminit_image::build::build(&options).map_err(|e| vminit::log::chain(&e))?;
    if built.reused {
        eprintln!("kept the root disk built from {}", built.id);
    }
    let mut devices = qemu::disk(&built.rootfs, "root", true);
    let mut cmdline = built.cmdline.clone();
    if let Some(dir) = &request.workdir {
        cmdline.push_str(&format!(" workdir={dir}"));
    }
    for (index, (file, target, fstype)) in request.volumes.iter().enumerate() {
        let letter = char::from(b'b' + u8::try_from(index).map_err(|_| "too many volumes")?);
        devices.extend(qemu::disk(file, &format!("v{index}"), false));
        cmdline.push_str(&format!(
            " vminit.mount.v{index}=/dev/vd{letter},{target},{fstype}"
        ));
    }
    if net {
        devices.extend(qemu::user_net_forwarding(&request.publish));
        // The modules come with the image; the addresses QEMU's DHCP gives.
        cmdline.push_str(
            " vminit.net.address=10.0.2.15/24 vminit.net.gateway=10.0.2.2 vminit.net.nameservers=10.0.2.3",
        );
    }
    for word in &request.cmdline {
        cmdline.push(' ');
        cmdline.push_str(word);
    }
    // --env and a command go on the kernel line, above the image's metadata.
    let words = kit::cmdline_for(&request.env, &request.argv).ok_or(
        "with --image, --env and the command go on the kernel command line, which cannot carry \
         them (a double quote, a newline, or too long): give the image a command or an Env",
    )?;
    if !words.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(&words);
    }
    boot_and_wait(request, kit.boot(&built.initramfs, cmdline), devices)
}

/// The app's status, from vminit's exit line.
fn exit_status(console: &qemu::Console) -> Result<i32, String> {
    match console.exit_code() {
        Some(code) => Ok(code),
        None if console.kernel_panicked() => Err("the kernel panicked (see above)".into()),
        None => Err("the VM ended without vminit's exit line".into()),
    }
}

/// A metadata file's text, edited without a JSON library: xtask stays
/// dependency-free, and only `env` and `argv` are added, as JSON strings.
struct MetadataText(String);

impl MetadataText {
    fn merge(&mut self, env: &[(String, String)], argv: &[String]) -> Result<(), String> {
        let text = self.0.trim();
        let body = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or("--metadata: expected a JSON object")?
            .trim();
        let mut fields = Vec::new();
        if !body.is_empty() {
            fields.push(body.to_owned());
        }
        if !env.is_empty() {
            if body.contains("\"env\"") {
                return Err("--env does not fit on the kernel command line and --metadata has env too: put it all in the file".into());
            }
            let pairs: Vec<String> = env
                .iter()
                .map(|(k, v)| format!("{}: {}", json_string(k), json_string(v)))
                .collect();
            fields.push(format!("\"env\": {{{}}}", pairs.join(", ")));
        }
        if !argv.is_empty() {
            if body.contains("\"argv\"") {
                return Err("the command does not fit on the kernel command line and --metadata has argv too".into());
            }
            let words: Vec<String> = argv.iter().map(|w| json_string(w)).collect();
            fields.push(format!("\"argv\": [{}]", words.join(", ")));
        }
        self.0 = format!("{{{}}}", fields.join(", "));
        Ok(())
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_gets_what_did_not_fit() {
        let mut text = MetadataText(r#"{"working_dir": "/app"}"#.into());
        text.merge(
            &[("K".into(), "say \"hi\"".into())],
            &["sh".into(), "-c".into(), "echo \"x\"\n".into()],
        )
        .unwrap();
        assert_eq!(
            text.0,
            r#"{"working_dir": "/app", "env": {"K": "say \"hi\""}, "argv": ["sh", "-c", "echo \"x\"\u000a"]}"#
        );
    }

    #[test]
    fn options() {
        let args: Vec<String> = ["--env", "A=1", "-w", "/tmp", "--", "ls", "-l"]
            .map(String::from)
            .to_vec();
        let request = parse(&args).unwrap();
        assert_eq!(request.argv, ["ls", "-l"]);
        assert_eq!(request.workdir.as_deref(), Some("/tmp"));
        assert!(parse(&["--bogus".to_owned()]).is_err());
        assert!(parse(&[]).is_err());
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let request = parse(&words(&[
            "--memory",
            "1024",
            "--cpus",
            "2",
            "--print-qemu",
            "--",
            "true",
        ]))
        .unwrap();
        assert_eq!(
            (request.memory_mb, request.cpus, request.print_qemu),
            (Some(1024), Some(2), true)
        );
        assert!(parse(&words(&["--cpus", "0", "--", "true"])).is_err());
        // Under --image, what cannot apply is refused, not ignored.
        let error = parse(&words(&["--image", "oci:x", "--add", "a:/a"])).unwrap_err();
        assert!(error.contains("--add with --image"), "{error}");
        assert!(parse(&words(&["--image", "oci:x", "--metadata", "m.json"])).is_err());
    }
}
