//! `cargo xtask bench-boot [--boots N]`: one real image, nginx from
//! Debian, booted to serving under four inits on one kernel and one root
//! disk, boots interleaved:
//!
//! - **vminit**, as `vminit-image` builds the image (`dir:` the root, the
//!   command `nginx -g 'daemon off;'`, the stop signal SIGQUIT as in the
//!   nginx image): its initramfs, the root read-only under a tmpfs overlay;
//! - **systemd** as init (Debian's `systemd-sysv`; nginx enabled as the
//!   package enables it);
//! - **busybox init**, with an inittab that mounts `/run` and `/tmp` and
//!   keeps nginx running;
//! - **a shell script** as init that mounts `/run` and `/tmp` and execs
//!   nginx.
//!
//! The three others start from one busybox initramfs that does what a
//! distribution's does: load the modules (the same as vminit's), bring
//! the network up (as vminit's `net.*` does), mount the same root
//! read-only under a tmpfs overlay, move `/dev`, `/proc` and `/sys` into
//! it, and `switch_root` to the init (`realinit=` on the kernel line).
//!
//! Each boot measures, from QEMU's start on the host's clock:
//! - the first HTTP 200 through the published port (a request started
//!   every 20 ms, each waiting up to 5 s: before the guest's network is up
//!   QEMU's user networking holds a request open);
//! - the guest's memory in use once serving, `MemTotal - MemAvailable`,
//!   read the same way for all four: QEMU's virtio-balloon statistics
//!   (the guest's `virtio_balloon` reports `si_mem_available`), the first
//!   report made after serving began;
//! - a graceful stop to QEMU's exit: the ACPI power button for vminit;
//!   Ctrl-Alt-Del for the others (systemd's minimal root has no logind to
//!   take the button: Ctrl-Alt-Del reaches `ctrl-alt-del.target`; busybox
//!   init runs its `ctrlaltdel` entry, `poweroff`; the shell script turns
//!   Ctrl-Alt-Del into SIGINT for nginx, PID 1, whose exit ends the machine
//!   by the kernel's panic, `panic=-1`, as an exec'd app's would);
//! - which signal nginx got, from its own notice on the console
//!   (`error_log /dev/console notice`).
//!
//! Writes `target/bench/boot.md`, `boot.csv` and `boot.svg`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vminit_image::build::{Built, Format, Options};
use vminit_image::source::Source;

use super::stats;
use crate::cmd;
use crate::suites::scenarios;
use crate::vm::initramfs::Console as ConsoleNodes;
use crate::vm::kernel;
use crate::vm::kit::Kit;
use crate::vm::qemu::{self, Boot, Console};

/// A hang guard per boot: systemd under TCG takes 15 s to serve.
const GUARD: Duration = Duration::from_secs(300);
/// How long a stop may take before QEMU is told to quit and the stop is
/// counted as hung (and left out of the stop row's figures).
const STOP_BOUND: Duration = Duration::from_secs(60);

/// The modules every boot loads, vminit's and the initramfs's alike.
const MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
    "overlay",
    "virtio_net",
    "virtio_balloon",
];

/// The others' initramfs: what a distribution's does before its init.
const SWITCH_INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_mmio virtio_blk crc32c_generic ext4 overlay virtio_net virtio_balloon; do
  modprobe $m || echo "initramfs: cannot load $m"
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
while [ ! -b /dev/vda ]; do sleep 0.01; done
mkdir -p /lower /upper /newroot
mount -t ext4 -o ro /dev/vda /lower
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/upper /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/upper,workdir=/upper/work /newroot
for d in dev proc sys; do mount --move /$d /newroot/$d; done
exec switch_root /newroot "$realinit"
"#;

/// busybox init's table: mounts, nginx kept running, Ctrl-Alt-Del powers off.
const INITTAB: &str =
    "::sysinit:/opt/bb/busybox sh -c 'mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp'
::respawn:/usr/sbin/nginx -g 'daemon off;'
::ctrlaltdel:/opt/bb/busybox poweroff
";

/// The shell script as init: mounts what nginx needs, then execs it.
const SHELL_INIT: &str = "#!/opt/bb/busybox sh
/opt/bb/busybox mount -t tmpfs tmpfs /run
/opt/bb/busybox mount -t tmpfs tmpfs /tmp
echo 0 > /proc/sys/kernel/ctrl-alt-del
exec /usr/sbin/nginx -g 'daemon off;'
";

/// How a row reads a sample.
type Metric = fn(&Sample) -> f64;

/// The rows: name, value, decimals shown.
const METRICS: [(&str, Metric, usize); 3] = [
    ("QEMU start → first HTTP 200, ms", |s| s.serving_ms, 0),
    ("memory in use once serving, MiB", |s| s.used_mib, 1),
    // A hung stop's figure is the bound, not a stop: left out.
    (
        "stop → QEMU exit, ms",
        |s| if s.hung { f64::NAN } else { s.stop_ms },
        0,
    ),
];

/// The inits, in the table's order.
const INITS: [&str; 4] = ["vminit", "systemd", "busybox init", "shell script"];

/// One boot's measurements.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// QEMU's start to the first HTTP 200, ms.
    serving_ms: f64,
    /// MemTotal - MemAvailable once serving, MiB.
    used_mib: f64,
    /// The stop request to QEMU's exit, ms.
    stop_ms: f64,
    /// The signal nginx said it got (`SIGQUIT`), or `?`.
    signal: String,
    /// The stop did not end the machine within [`STOP_BOUND`].
    hung: bool,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let boots = super::boots_option(args, "bench-boot")?;
    let kit = Kit::prepare(None)?;
    let root =
        scenarios::cached_debian_root("debian-nginx-systemd", "nginx-light,systemd-sysv,udev")?;
    let work = cmd::root().join("target/bench/boot");
    let tree = work.join("tree");
    prepare_tree(&root, &tree, &kit.busybox)?;
    let built = build_vminit_image(&kit, &tree, &work)?;
    let files = kernel::module_files(&kit.kernel, MODULES)?;
    let initramfs = kit.image_with_init(
        "bench-boot-switch",
        Some(SWITCH_INIT),
        ConsoleNodes::Nodes,
        files,
    )?;
    let realinit = ["/lib/systemd/systemd", "/opt/bb/init", "/init.sh"];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); INITS.len()];
    for round in 0..boots {
        eprintln!("round {}/{boots}", round + 1);
        // Interleaved, so that drift in the machine's load hits all alike.
        for (index, name) in INITS.iter().enumerate() {
            let (initrd, cmdline) = match index {
                0 => (
                    built.initramfs.clone(),
                    format!(
                        "{} vminit.net.address=10.0.2.15/24 vminit.net.gateway=10.0.2.2 \
                         vminit.stop_signal=SIGQUIT",
                        built.cmdline
                    ),
                ),
                n => (initramfs.clone(), format!("realinit={}", realinit[n - 1])),
            };
            let sample = measure(&kit, &built.rootfs, &initrd, cmdline, index == 0)
                .map_err(|e| format!("{name}: {e}"))?;
            eprintln!(
                "  {name}: serving {:.0} ms, {:.1} MiB, stop {:.0} ms, nginx got {}",
                sample.serving_ms, sample.used_mib, sample.stop_ms, sample.signal
            );
            samples[index].push(sample);
        }
    }
    let accel = kit.boot(&initramfs, String::new()).accel;
    let table = render(&samples, &kit, accel);
    print!("{table}");
    let dir = cmd::root().join("target/bench");
    std::fs::write(dir.join("boot.md"), &table).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("boot.csv"), csv(&samples)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("boot.svg"), svg(&samples)).map_err(|e| e.to_string())?;
    eprintln!("wrote target/bench/boot.md, boot.csv, boot.svg");
    Ok(())
}

/// The root all four boot: the cached Debian root, nginx logging its
/// notices (the signal it got) to the console, a page, busybox for the
/// busybox and shell inits, their inittab and script.
fn prepare_tree(root: &Path, tree: &Path, busybox: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(tree);
    std::fs::create_dir_all(tree).map_err(|e| e.to_string())?;
    cmd::run(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(tree),
    )?;
    let write = |path: &str, text: &str, mode: u32| -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let path = tree.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())
    };
    let conf = tree.join("etc/nginx/nginx.conf");
    let text = std::fs::read_to_string(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
    let text = text.replace(
        "error_log /var/log/nginx/error.log;",
        "error_log /dev/console notice;",
    );
    if !text.contains("error_log /dev/console notice;") {
        return Err(format!("{}: no error_log line to replace", conf.display()));
    }
    write("etc/nginx/nginx.conf", &text, 0o644)?;
    write("var/www/html/index.html", "served\n", 0o644)?;
    write("etc/inittab", INITTAB, 0o644)?;
    write("init.sh", SHELL_INIT, 0o755)?;
    let bb = tree.join("opt/bb");
    std::fs::create_dir_all(&bb).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, bb.join("busybox")).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("busybox", bb.join("init")).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(tree.join(".vminit-complete"));
    Ok(())
}

fn build_vminit_image(kit: &Kit, tree: &Path, work: &Path) -> Result<Built, String> {
    let options = Options {
        source: Source::parse(&format!("dir:{}", tree.display())).map_err(|e| e.to_string())?,
        output: work.join("vminit"),
        kernel_modules: Some(kernel::modules_dir(&kit.kernel)?),
        format: Format::Ext4,
        size_mib: None,
        max_size_mib: None,
        vminit: kit.vminit.clone(),
        kernel: Some(kit.kernel.clone()),
        arch: std::env::consts::ARCH.to_owned(),
        command: ["nginx", "-g", "daemon off;"].map(str::to_owned).to_vec(),
        setup: Vec::new(),
        extra_modules: ["crc32c_generic", "virtio_net", "virtio_balloon"]
            .map(str::to_owned)
            .to_vec(),
        reuse: false,
    };
    vminit_image::build::build(&options).map_err(|e| vminit::log::chain(&e))
}

/// One boot: serving, memory, stop.
fn measure(
    kit: &Kit,
    rootfs: &Path,
    initrd: &Path,
    cmdline: String,
    is_vminit: bool,
) -> Result<Sample, String> {
    let port = scenarios::free_port()?;
    let qmp = std::env::temp_dir().join(format!("vminit-bench-boot-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&qmp);
    let mut devices = qemu::disk(rootfs, "root", true);
    devices.extend(qemu::user_net_forwarding(&[(port, 80)]));
    devices.extend([
        "-device".to_owned(),
        "virtio-balloon-device,id=balloon0".to_owned(),
    ]);
    let boot = Boot {
        memory_mb: 512,
        devices,
        qmp: Some(qmp.clone()),
        ..kit.boot(initrd, cmdline)
    };
    let start = Instant::now();
    let (send, receive) = mpsc::channel();
    let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (qmp, ended) = (qmp.clone(), ended.clone());
        std::thread::spawn(move || {
            let outcome = serve_then_stop(port, &qmp, start, is_vminit);
            let stopping = outcome.is_ok();
            let _ = send.send(outcome);
            // A stop that hangs: QEMU is told to quit, so the run goes on.
            let asked = Instant::now();
            while stopping && !ended.load(std::sync::atomic::Ordering::Relaxed) {
                if asked.elapsed() > STOP_BOUND {
                    let _ = qemu::qmp(&qmp, r#"{"execute": "quit"}"#);
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let console = qemu::run(&boot, GUARD, false, |_| {})?;
    let exited = start.elapsed();
    ended.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = std::fs::remove_file(&qmp);
    let _ = watcher.join();
    let (serving, used_mib, stop_sent) = receive
        .recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e}\n--- console ---\n{}", console.text()))?;
    let stop = exited.saturating_sub(stop_sent);
    let hung = stop >= STOP_BOUND;
    if hung {
        let path = cmd::root().join(format!("target/bench/boot/hung-{port}.console"));
        let _ = std::fs::write(&path, console.text());
        eprintln!("  the stop hung; console in {}", path.display());
    }
    Ok(Sample {
        serving_ms: serving.as_secs_f64() * 1000.0,
        used_mib,
        stop_ms: stop.as_secs_f64() * 1000.0,
        signal: nginx_signal(&console),
        hung,
    })
}

/// From the host, while the guest boots: the first HTTP 200, the memory
/// in use, then the stop request. Returns (serving, MiB used, stop sent),
/// times since `start`.
fn serve_then_stop(
    port: u16,
    qmp: &Path,
    start: Instant,
    is_vminit: bool,
) -> Result<(Duration, f64, Duration), String> {
    let serving = first_ok(port, start)?;
    let used_mib = memory_in_use(qmp)?;
    let request = if is_vminit {
        qemu::POWER_BUTTON
    } else {
        qemu::CTRL_ALT_DEL
    };
    let stop_sent = start.elapsed();
    qemu::qmp(qmp, request)?;
    Ok((serving, used_mib, stop_sent))
}

/// When the first HTTP 200 arrived. A request made before the guest's
/// network is up hangs (QEMU's user networking accepts on the host and
/// waits for the guest) until its timeout, so one is started every 20 ms,
/// each in a thread of its own, and the first answer counts.
fn first_ok(port: u16, start: Instant) -> Result<Duration, String> {
    let (send, receive) = mpsc::channel();
    loop {
        if let Ok(at) = receive.try_recv() {
            return Ok(at);
        }
        if start.elapsed() > GUARD {
            return Err(format!("no HTTP 200 on port {port} within {GUARD:?}"));
        }
        let send = send.clone();
        std::thread::spawn(move || {
            if http_ok(port) {
                let _ = send.send(start.elapsed());
            }
        });
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let attempt = || -> std::io::Result<bool> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: vm\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    attempt().unwrap_or(false)
}

/// `MemTotal - MemAvailable` in MiB, from the balloon's statistics, as
/// the guest reports them after this is asked: the driver reported once
/// already, when it loaded, before the app ran; that report is passed over.
fn memory_in_use(qmp: &Path) -> Result<f64, String> {
    let path = "/machine/peripheral/balloon0";
    let wait = Instant::now();
    while !qmp.exists() {
        if wait.elapsed() > Duration::from_secs(30) {
            return Err("no QMP socket".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    qemu::qmp(
        qmp,
        &format!(
            r#"{{"execute": "qom-set", "arguments": {{"path": "{path}", "property": "guest-stats-polling-interval", "value": 1}}}}"#
        ),
    )?;
    let read = || -> Result<serde_json::Value, String> {
        let reply = qemu::qmp_reply(
            qmp,
            &format!(
                r#"{{"execute": "qom-get", "arguments": {{"path": "{path}", "property": "guest-stats"}}}}"#
            ),
        )?;
        serde_json::from_str(&reply).map_err(|e| format!("{e}: {reply}"))
    };
    // Seconds since the epoch; a report after this one is after the ask.
    let before = read()?["return"]["last-update"].as_u64().unwrap_or(0);
    let asked = Instant::now();
    loop {
        let value = read()?;
        let stats = &value["return"]["stats"];
        let total = stats["stat-total-memory"].as_f64().unwrap_or(-1.0);
        let available = stats["stat-available-memory"].as_f64().unwrap_or(-1.0);
        if value["return"]["last-update"].as_u64().unwrap_or(0) > before
            && total > 0.0
            && available > 0.0
        {
            return Ok((total - available) / (1024.0 * 1024.0));
        }
        if asked.elapsed() > Duration::from_secs(30) {
            return Err(format!("no balloon statistics from the guest: {value}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The signal nginx's master said it got: `signal 3 (SIGQUIT) received`.
fn nginx_signal(console: &Console) -> String {
    console
        .lines
        .iter()
        .find_map(|line| {
            let after = line.split("signal ").nth(1)?;
            let name = after.split_once('(')?.1.split_once(')')?.0;
            after.contains("received").then(|| name.to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn render(samples: &[Vec<Sample>], kit: &Kit, accel: qemu::Accel) -> String {
    let column = |index: usize, f: Metric| -> Vec<f64> {
        samples[index]
            .iter()
            .map(f)
            .filter(|v| !v.is_nan())
            .collect()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Boot to a serving nginx, {} boots of each, interleaved; QEMU microvm ({:?}), 512 MiB, 1 vCPU, kernel {}; one root disk (Debian bookworm: nginx-light, systemd-sysv, udev)\n",
        samples[0].len(),
        accel,
        kit.kernel
            .file_name()
            .map_or("?".into(), |n| n.to_string_lossy())
    );
    let _ = writeln!(out, "| median (min–max) | {} |", INITS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(INITS.len()));
    for (name, f, decimals) in METRICS {
        let cells: Vec<String> = (0..INITS.len())
            .map(|i| stats::summary(&column(i, f), decimals))
            .collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let hung: Vec<String> = samples
        .iter()
        .map(|boots| {
            let count = boots.iter().filter(|s| s.hung).count();
            format!("{count} of {}", boots.len())
        })
        .collect();
    let _ = writeln!(
        out,
        "| stops that hung (QEMU told to quit after {} s; left out above) | {} |",
        STOP_BOUND.as_secs(),
        hung.join(" | ")
    );
    let signals: Vec<String> = samples
        .iter()
        .map(|boots| {
            let mut seen: Vec<&str> = boots.iter().map(|s| s.signal.as_str()).collect();
            seen.sort_unstable();
            seen.dedup();
            seen.join(", ")
        })
        .collect();
    let _ = writeln!(out, "| signal nginx got | {} |", signals.join(" | "));
    let _ = writeln!(
        out,
        "\nvminit ÷ each, ratio of medians [95% bootstrap interval]:\n"
    );
    let _ = writeln!(out, "| | {} |", INITS[1..].join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(INITS.len() - 1));
    for (name, f, _) in METRICS {
        let ours = column(0, f);
        let cells: Vec<String> = (1..INITS.len())
            .map(|i| {
                let theirs = column(i, f);
                let (low, high) = stats::ratio_interval(&ours, &theirs);
                format!(
                    "{:.2} [{low:.2}–{high:.2}]",
                    stats::median(&ours) / stats::median(&theirs)
                )
            })
            .collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let ratio =
        |f: Metric, other: usize| stats::median(&column(0, f)) / stats::median(&column(other, f));
    let _ = writeln!(out, "\nTargets:\n");
    for (met, text) in [
        (
            ratio(|s| s.serving_ms, 1) <= 0.5,
            "vminit at most 0.5× systemd to serving",
        ),
        (
            ratio(|s| s.serving_ms, 3) <= 1.0,
            "vminit at most 1.0× the shell script to serving",
        ),
        (
            ratio(|s| s.used_mib, 1) <= 0.5,
            "memory at most 0.5× systemd's",
        ),
    ] {
        let _ = writeln!(out, "- {}: {text}", if met { "MET" } else { "MISSED" });
    }
    out
}

fn csv(samples: &[Vec<Sample>]) -> String {
    let mut out = String::from("init,boot,serving_ms,used_mib,stop_ms,stop_hung,nginx_signal\n");
    for (name, boots) in INITS.iter().zip(samples) {
        for (i, s) in boots.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name},{i},{},{},{},{},{}",
                s.serving_ms,
                s.used_mib,
                s.stop_ms,
                u8::from(s.hung),
                s.signal
            );
        }
    }
    out
}

/// Bars per metric, one per init, scaled to the largest (shorter is better).
fn svg(samples: &[Vec<Sample>]) -> String {
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"];
    let (label_w, bar_w, bar_h) = (130.0, 420.0, 16.0);
    let group_h = bar_h * INITS.len() as f64 + 40.0;
    let height = 40.0 + group_h * METRICS.len() as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">nginx from one image under four inits (medians; shorter is better)</text>\n",
        label_w + bar_w + 100.0
    );
    for (g, (name, f, _)) in METRICS.iter().enumerate() {
        let top = 40.0 + group_h * g as f64;
        let values: Vec<f64> = samples
            .iter()
            .map(|boots| {
                let values: Vec<f64> = boots.iter().map(f).filter(|v| !v.is_nan()).collect();
                stats::median(&values)
            })
            .collect();
        let max = values.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\" font-weight=\"bold\">{name}</text>",
            top + 12.0
        );
        for (i, value) in values.iter().enumerate() {
            let y = top + 18.0 + bar_h * i as f64;
            let w = (value / max * bar_w).max(1.0);
            let _ = writeln!(
                out,
                "<text x=\"10\" y=\"{}\">{}</text>\n<rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/>\n<text x=\"{:.1}\" y=\"{}\">{value:.0}</text>",
                y + 12.0,
                INITS[i],
                bar_h - 3.0,
                colours[i],
                label_w + w + 5.0,
                y + 12.0
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_says_which_signal_it_got() {
        let console = Console {
            lines: vec![
                "2026/12/04 21:40:01 [notice] 1#1: using the \"epoll\" event method".into(),
                "2026/12/04 21:40:09 [notice] 88#88: signal 3 (SIGQUIT) received from 1, shutting down".into(),
            ],
            ..Console::default()
        };
        assert_eq!(nginx_signal(&console), "SIGQUIT");
        assert_eq!(nginx_signal(&Console::default()), "?");
    }

    #[test]
    fn the_tables_compare_with_vminit() {
        let sample = |serving_ms, used_mib| Sample {
            serving_ms,
            used_mib,
            stop_ms: 100.0,
            signal: "SIGQUIT".into(),
            hung: false,
        };
        let samples = vec![
            vec![sample(5000.0, 20.0); 3],
            vec![sample(14000.0, 60.0); 3],
            vec![sample(6000.0, 25.0); 3],
            vec![sample(4800.0, 19.0); 3],
        ];
        let text = csv(&samples);
        assert!(text.starts_with("init,boot,serving_ms"));
        assert_eq!(text.lines().count(), 13);
        assert!(svg(&samples).contains("shell script"));
    }
}
