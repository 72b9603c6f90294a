//! The scenario suite: real software in real images, built with
//! `vminit-image` and booted from their root disks.
//!
//! - an OCI image made by Debian's umoci from a busybox root, with a
//!   second layer that deletes a file; its modules come from the kernel's
//!   tree without depmod's tables (as `dpkg -x` leaves it), planned from
//!   the modules' `.modinfo`, and the plan must be depmod's;
//! - nginx from Debian (`mmdebstrap`), made an OCI image by umoci with a
//!   layer that replaces its page and deletes its default one: the host
//!   fetches the page through a published port, Ctrl-Alt-Del stops nginx
//!   gracefully, the VM ends with 0;
//! - sqlite on an ext4 volume: boot 1 inserts rows until Ctrl-Alt-Del
//!   stops it mid-write, `e2fsck -fn` finds the volume clean, boot 2 reads
//!   every row boot 1 committed;
//! - sqlite again, the power cut (SIGKILL to QEMU) while it writes: boot 2
//!   reads every row acknowledged before the cut.
//!
//! The Debian root is made once and kept in `~/.cache/vminit/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vminit_image::build::{Built, Format, Options};
use vminit_image::source::Source;

use crate::cmd;
use crate::vm::kit::Kit;
use crate::vm::qemu::{self, Boot, Console};
use crate::vm::{disk, kernel};

/// A hang guard per boot of a real image under TCG.
const GUARD: Duration = Duration::from_secs(300);

/// The scenarios by name, for the filter.
pub const NAMES: &[&str] = &[
    "an_oci_image_made_by_umoci_boots_from_its_root_disk",
    "the_same_image_boots_from_an_erofs_root_disk",
    "nginx_serves_through_a_published_port_and_stops_on_ctrl_alt_del",
    "sqlite_rows_survive_ctrl_alt_del_mid_write_on_a_clean_volume",
    "sqlite_acknowledged_rows_survive_a_power_cut",
    "postgresql_from_its_image_initialised_stopped_cleanly_its_rows_kept",
];

/// Runs the scenarios whose name contains `filter`; one result each.
pub fn run(kit: &Kit, filter: Option<&str>) -> Vec<(&'static str, Result<(), String>)> {
    let chosen: Vec<&'static str> = NAMES
        .iter()
        .copied()
        .filter(|name| filter.is_none_or(|f| name.contains(f)))
        .collect();
    let mut results = Vec::new();
    for name in chosen {
        let outcome = match name {
            "an_oci_image_made_by_umoci_boots_from_its_root_disk" => {
                busybox_image(kit, Format::Ext4)
            }
            "the_same_image_boots_from_an_erofs_root_disk" => busybox_image(kit, Format::Erofs),
            "nginx_serves_through_a_published_port_and_stops_on_ctrl_alt_del" => nginx(kit),
            "postgresql_from_its_image_initialised_stopped_cleanly_its_rows_kept" => {
                super::postgres::scenario(kit)
            }
            "sqlite_acknowledged_rows_survive_a_power_cut" => sqlite_power_cut(kit),
            _ => sqlite(kit),
        };
        match &outcome {
            Ok(()) => println!("test scenario::{name} ... ok"),
            Err(e) => println!("test scenario::{name} ... FAILED\n{e}"),
        }
        results.push((name, outcome));
    }
    results
}

/// A busybox root in two umoci layers (the second deletes a file and adds
/// a script), with Cmd, Env and WorkingDir.
const UMOCI_BUSYBOX: &str = r#"set -e
rm -rf "$1" && mkdir -p "$1" && cd "$1"
umoci init --layout layout
umoci new --image layout:test
umoci unpack --image layout:test bundle
R=bundle/rootfs
mkdir -p $R/bin $R/etc $R/srv
cp "$2" $R/bin/busybox
for a in $("$2" --list); do [ "$a" = busybox ] || ln -sf busybox $R/bin/$a; done
echo old > $R/etc/remove-me
echo keep > $R/etc/keep
umoci repack --image layout:test bundle
rm $R/etc/remove-me
printf '#!/bin/sh\necho "hello from $(cat /etc/keep) in $(pwd) GREETING=$GREETING"\n[ -e /etc/remove-me ] && echo remove-me-present || echo remove-me-gone\n' > $R/hello.sh
chmod 755 $R/hello.sh
umoci repack --image layout:test bundle
umoci config --image layout:test --config.cmd /hello.sh --config.env GREETING=hi --config.workingdir /srv
"#;

fn busybox_image(kit: &Kit, format: Format) -> Result<(), String> {
    crate::setup::packages(&[("umoci", "umoci"), ("mkfs.erofs", "erofs-utils")])?;
    let work = cmd::root().join("target/vm/umoci");
    if format == Format::Ext4 || !work.join("layout/index.json").exists() {
        cmd::run(
            Command::new("bash")
                .args(["-c", UMOCI_BUSYBOX, "umoci-busybox"])
                .arg(&work)
                .arg(&kit.busybox),
        )?;
    }
    // The ext4 boot takes its modules from a kernel tree without depmod's
    // tables, as `dpkg -x` leaves one.
    let modules = match format {
        Format::Ext4 => modules_without_depmod(kit)?,
        Format::Erofs => kernel::modules_dir(&kit.kernel)?,
    };
    let built = build_from(kit, &work, &[], format, Vec::new(), modules.clone())?;
    if format == Format::Ext4 {
        same_plan_as_depmod(kit, &modules, &built.cmdline)?;
    }
    let console = boot(kit, &built, Plan::default())?;
    let root = format!(
        "vminit: mounted the root /dev/vda ({}, read-only)",
        format.name()
    );
    check(
        &console,
        0,
        &[
            "hello from keep in /srv GREETING=hi",
            "remove-me-gone",
            &root,
        ],
    )
}

/// The kernel's module tree as its package ships it, without what depmod
/// makes (`modules.dep`, `.softdep`, `.alias`): links to its modules, and
/// its `modules.builtin`, `modules.builtin.modinfo` and `modules.order`.
fn modules_without_depmod(kit: &Kit) -> Result<PathBuf, String> {
    let real = kernel::modules_dir(&kit.kernel)?;
    let release = real.file_name().ok_or("no kernel release")?;
    let farm = cmd::root()
        .join("target/vm/modules-without-depmod")
        .join(release);
    let _ = std::fs::remove_dir_all(&farm);
    std::fs::create_dir_all(&farm).map_err(|e| format!("{}: {e}", farm.display()))?;
    cmd::run(
        Command::new("cp")
            .arg("-as")
            .arg(real.join("kernel"))
            .arg(&farm),
    )?;
    for shipped in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        std::fs::copy(real.join(shipped), farm.join(shipped))
            .map_err(|e| format!("{shipped}: {e}"))?;
    }
    Ok(farm)
}

/// The modules planned from `farm`'s `.modinfo` for the image's
/// `vminit.modules=` are depmod's plan from the real tree, file for file
/// and in order.
fn same_plan_as_depmod(kit: &Kit, farm: &Path, cmdline: &str) -> Result<(), String> {
    use vminit::machine::modules::Index;
    let real = kernel::modules_dir(&kit.kernel)?;
    let read = |name: &str| std::fs::read_to_string(real.join(name)).unwrap_or_default();
    let wanted: Vec<String> = cmdline
        .split_whitespace()
        .find_map(|word| word.strip_prefix("vminit.modules="))
        .ok_or("no vminit.modules= on the built command line")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let (dep, builtin, softdep, alias) = (
        read("modules.dep"),
        read("modules.builtin"),
        read("modules.softdep"),
        read("modules.alias"),
    );
    let depmod = Index::parse(&dep, &builtin)
        .with_soft(&softdep, &alias)
        .plan(&wanted)
        .map_err(|e| e.to_string())?;
    let tables =
        vminit_image::depmod::from_modinfo(farm, &builtin, &wanted).map_err(|e| e.to_string())?;
    let ours = Index::parse(&tables.dep, &builtin)
        .with_soft(&tables.softdep, &tables.alias)
        .plan(&wanted)
        .map_err(|e| e.to_string())?;
    if ours == depmod {
        println!(
            "modules from .modinfo: the same {} files as depmod's plan",
            ours.len()
        );
        Ok(())
    } else {
        Err(format!(
            "modules from .modinfo differ from depmod's plan:\nours:   {ours:?}\ndepmod: {depmod:?}"
        ))
    }
}

/// Debian with nginx and sqlite3, made once.
fn debian_root() -> Result<PathBuf, String> {
    cached_debian_root("debian-nginx-sqlite", "nginx-light,sqlite3")
}

/// Debian bookworm with `packages` (comma-separated), made once by
/// `mmdebstrap` into the cache as `name`.
pub(crate) fn cached_debian_root(name: &str, packages: &str) -> Result<PathBuf, String> {
    let root = kernel::cache_dir().join(name);
    let stamp = root.join(".vminit-complete");
    if stamp.exists() {
        return Ok(root);
    }
    crate::setup::packages(&[("mmdebstrap", "mmdebstrap")])?;
    let _ = std::fs::remove_dir_all(&root);
    let include = format!("--include={packages}");
    cmd::run(
        Command::new("mmdebstrap")
            .args(["--variant=apt", &include, "--mode=root", "bookworm"])
            .arg(&root),
    )?;
    std::fs::write(&stamp, "").map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(root)
}

/// The Debian root as an OCI image by umoci: the root as it is, then a
/// layer that replaces nginx's page and deletes its default one.
const UMOCI_DEBIAN: &str = r#"set -e
rm -rf "$1" && mkdir -p "$1" && cd "$1"
umoci init --layout layout
umoci new --image layout:web
umoci unpack --image layout:web bundle
cp -a "$2"/. bundle/rootfs/
rm -f bundle/rootfs/.vminit-complete
umoci repack --image layout:web bundle
rm bundle/rootfs/var/www/html/index.nginx-debian.html
echo "served by nginx under vminit" > bundle/rootfs/var/www/html/index.html
umoci repack --image layout:web bundle
umoci config --image layout:web --config.cmd=nginx --config.cmd=-g '--config.cmd=daemon off;'
"#;

/// The nginx image, made once per run.
fn debian_image() -> Result<PathBuf, String> {
    crate::setup::packages(&[("umoci", "umoci")])?;
    let root = debian_root()?;
    let work = cmd::root().join("target/vm/umoci-debian");
    if !work.join("layout/index.json").exists() {
        cmd::run(
            Command::new("bash")
                .args(["-c", UMOCI_DEBIAN, "umoci-debian"])
                .arg(&work)
                .arg(&root),
        )?;
    }
    Ok(work)
}

fn nginx(kit: &Kit) -> Result<(), String> {
    let work = debian_image()?;
    let built = build(kit, &work, &["virtio_net"], Format::Ext4)?;
    // The overlay on a tmpfs (the built default), then on a second disk.
    nginx_boot(kit, &built, None)?;
    let upper = cmd::root().join("target/vm/nginx-upper.ext4");
    disk::empty(&upper, 64)?;
    nginx_boot(kit, &built, Some(&upper))?;
    // nginx's writes went to that disk: its access log, in upper/.
    disk::check(&upper)?;
    let log = disk::read(&upper, "/upper/var/log/nginx/access.log")?;
    if log.contains("GET / HTTP/1.0") {
        Ok(())
    } else {
        Err(format!("the overlay disk's access log: {log:?}"))
    }
}

/// One boot of the nginx image: the page, the deleted page, Ctrl-Alt-Del,
/// status 0.
fn nginx_boot(kit: &Kit, built: &Built, overlay: Option<&Path>) -> Result<(), String> {
    let port = free_port()?;
    let plan = Plan {
        overlay,
        ports: vec![(port, 80)],
        beside: Some(Box::new(move |qmp: &Path| {
            // The page, then the deleted default page, then a graceful stop.
            let page = http_get(port, "/", Duration::from_secs(120))?;
            let deleted = http_get(port, "/index.nginx-debian.html", Duration::from_secs(10))?;
            qemu::send_ctrl_alt_del(qmp)?;
            Ok(format!("page={page:?} deleted={deleted:?}"))
        })),
        cue: "vminit: mounted the root",
        ..Plan::default()
    };
    let console = boot(kit, built, plan)?;
    check(
        &console,
        0,
        &["vminit: mounted the root /dev/vda (ext4, read-only)"],
    )?;
    let seen = console
        .lines
        .iter()
        .find(|l| l.starts_with("host saw: "))
        .cloned()
        .unwrap_or_default();
    if seen.contains("served by nginx under vminit") && seen.contains("404 Not Found") {
        Ok(())
    } else {
        Err(format!(
            "the host saw {seen:?}\n--- console ---\n{}",
            console.text()
        ))
    }
}

/// Inserts numbered rows one transaction each; says so after 20. No `"`
/// inside: it goes on the kernel command line in one.
const SQLITE_WRITER: &str = "sqlite3 /data/db 'create table if not exists t(n integer)'; \
    i=0; while :; do sqlite3 /data/db 'insert into t values('$i')' || exit 9; \
    i=$((i+1)); [ $i = 20 ] && echo writing; done";

fn sqlite(kit: &Kit) -> Result<(), String> {
    let work = debian_image()?;
    let built = build(kit, &work, &[], Format::Ext4)?;
    let volume = cmd::root().join("target/vm/sqlite-volume.ext4");
    disk::empty(&volume, 64)?;
    let plan = Plan {
        volumes: vec![volume.clone()],
        extra: format!("-- sh -c \"{SQLITE_WRITER}\""),
        // Ctrl-Alt-Del once the writer has committed 20 rows.
        beside: Some(Box::new(|qmp: &Path| {
            qemu::send_ctrl_alt_del(qmp).map(|()| String::new())
        })),
        cue: "writing",
        ..Plan::default()
    };
    let console = boot(kit, &built, plan)?;
    // SIGINT ends sqlite3 or the shell: 130.
    check(&console, 130, &["writing"])?;
    disk::check(&volume)?;
    let (count, max) = rows(kit, &built, &volume)?;
    // Every committed row is there, none lost in the middle.
    if count >= 20 && count == max + 1 {
        disk::check(&volume)
    } else {
        Err(format!("rows {count}, the last {max}"))
    }
}

/// Inserts numbered rows one transaction each, saying `acked N` once row
/// N is committed: sqlite3 has returned, after its fsyncs. `synchronous =
/// extra`: in its default rollback-journal mode sqlite commits by deleting
/// the journal, and only `extra` syncs that deletion; under `full` (the
/// default) the first run here lost the last acknowledged row, rolled back
/// from the journal the power cut had kept, as sqlite's documentation says.
const SQLITE_ACKING_WRITER: &str = "sqlite3 /data/db 'create table if not exists t(n integer)'; \
    i=0; while :; do sqlite3 /data/db 'pragma synchronous = extra; insert into t values('$i')' \
    || exit 9; echo acked $i; i=$((i+1)); done";

/// The power is cut (SIGKILL to QEMU) once the host has read `acked 30`:
/// the next boot must find every row acknowledged by then, and no hole.
fn sqlite_power_cut(kit: &Kit) -> Result<(), String> {
    let work = debian_image()?;
    let built = build(kit, &work, &[], Format::Ext4)?;
    let volume = cmd::root().join("target/vm/sqlite-power-cut.ext4");
    disk::empty(&volume, 64)?;
    let plan = Plan {
        volumes: vec![volume.clone()],
        extra: format!("-- sh -c \"{SQLITE_ACKING_WRITER}\""),
        power_cut_on: Some("acked 30"),
        ..Plan::default()
    };
    let console = boot(kit, &built, plan)?;
    let acked = console
        .lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("acked ")?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    if acked < 30 || console.exit_lines() != 0 {
        return Err(format!(
            "no power cut after 30 rows\n--- console ---\n{}",
            console.text()
        ));
    }
    let (count, max) = rows(kit, &built, &volume)?;
    if max >= acked && count == max + 1 {
        disk::check(&volume)
    } else {
        Err(format!(
            "{acked} rows acknowledged before the cut; after it, rows {count}, the last {max}"
        ))
    }
}

/// Boots `built` with `volume` to count the rows of sqlite's table: their
/// number and the highest.
fn rows(kit: &Kit, built: &Built, volume: &Path) -> Result<(u64, u64), String> {
    let plan = Plan {
        volumes: vec![volume.to_path_buf()],
        extra: "-- sh -c \"sqlite3 /data/db 'select count(*), max(n) from t'\"".into(),
        ..Plan::default()
    };
    let console = boot(kit, built, plan)?;
    check(&console, 0, &[])?;
    console
        .lines
        .iter()
        .find_map(|l| {
            let (count, max) = l.trim().split_once('|')?;
            Some((count.parse::<u64>().ok()?, max.parse::<u64>().ok()?))
        })
        .ok_or_else(|| format!("no row count\n--- console ---\n{}", console.text()))
}

/// Builds the OCI layout in `work/layout` with `vminit-image`.
pub(crate) fn build(
    kit: &Kit,
    work: &Path,
    extra_modules: &[&str],
    format: Format,
) -> Result<Built, String> {
    build_with(kit, work, extra_modules, format, Vec::new())
}

/// [`build`] with set-up steps for the metadata.
pub(crate) fn build_with(
    kit: &Kit,
    work: &Path,
    extra_modules: &[&str],
    format: Format,
    setup: Vec<serde_json::Value>,
) -> Result<Built, String> {
    build_from(
        kit,
        work,
        extra_modules,
        format,
        setup,
        kernel::modules_dir(&kit.kernel)?,
    )
}

/// [`build_with`] with the kernel modules from `modules`.
fn build_from(
    kit: &Kit,
    work: &Path,
    extra_modules: &[&str],
    format: Format,
    setup: Vec<serde_json::Value>,
    modules: PathBuf,
) -> Result<Built, String> {
    let options = Options {
        source: Source::parse(&format!("oci:{}", work.join("layout").display()))
            .map_err(|e| e.to_string())?,
        output: work.join(format!("built-{}", format.name())),
        kernel_modules: Some(modules),
        format,
        size_mib: None,
        max_size_mib: None,
        vminit: kit.vminit.clone(),
        kernel: Some(kit.kernel.clone()),
        arch: std::env::consts::ARCH.to_owned(),
        command: Vec::new(),
        setup,
        extra_modules: extra_modules.iter().map(|m| (*m).to_owned()).collect(),
        reuse: false,
    };
    vminit_image::build::build(&options).map_err(|e| vminit::log::chain(&e))
}

/// What runs beside a boot once the guest is up: given the QMP socket,
/// returns what it saw (logged as a `host saw:` line).
pub(crate) type Beside = Box<dyn FnOnce(&Path) -> Result<String, String> + Send>;

/// How a built image boots besides its own configuration.
#[derive(Default)]
pub(crate) struct Plan<'a> {
    /// ext4 volumes, at `/data`, `/data2`, …
    pub volumes: Vec<PathBuf>,
    /// The overlay on this disk, else the built tmpfs.
    pub overlay: Option<&'a Path>,
    /// Host ports forwarded to guest ports.
    pub ports: Vec<(u16, u16)>,
    /// Added to the command line.
    pub extra: String,
    /// Run in a thread from the first console line that contains `cue`.
    pub beside: Option<Beside>,
    pub cue: &'a str,
    /// SIGKILL to QEMU once a console line contains this: a power cut.
    pub power_cut_on: Option<&'static str>,
}

/// Boots a built image as `plan` says.
pub(crate) fn boot(kit: &Kit, built: &Built, plan: Plan<'_>) -> Result<Console, String> {
    let Plan {
        volumes,
        overlay,
        ports,
        extra,
        beside,
        cue,
        power_cut_on,
    } = plan;
    let mut devices = qemu::disk(&built.rootfs, "root", true);
    let mut cmdline = built.cmdline.clone();
    let mut next = b'b';
    if let Some(disk) = overlay {
        devices.extend(qemu::disk(disk, "upper", false));
        // Later on the line than the built tmpfs: it wins.
        cmdline.push_str(" vminit.root.overlay=/dev/vdb");
        next += 1;
    }
    for (index, volume) in volumes.iter().enumerate() {
        devices.extend(qemu::disk(volume, &format!("v{index}"), false));
        let letter = char::from(next + u8::try_from(index).unwrap_or(0));
        let target = if index == 0 {
            "/data".to_owned()
        } else {
            format!("/data{}", index + 1)
        };
        cmdline.push_str(&format!(
            " vminit.mount.v{index}=/dev/vd{letter},{target},ext4"
        ));
    }
    if !ports.is_empty() {
        devices.extend(qemu::user_net_forwarding(&ports));
        cmdline.push_str(" vminit.net.address=10.0.2.15/24 vminit.net.gateway=10.0.2.2");
    }
    if !extra.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(&extra);
    }
    let qmp = std::env::temp_dir().join(format!("vminit-scenario-{}.sock", std::process::id()));
    let boot = Boot {
        memory_mb: 512,
        devices,
        qmp: beside.as_ref().map(|_| qmp.clone()),
        faults: qemu::HostFaults {
            power_cut_on,
            ..qemu::HostFaults::default()
        },
        ..kit.boot(&built.initramfs, cmdline)
    };
    let (send, receive) = std::sync::mpsc::channel();
    let mut beside = beside;
    let mut started = false;
    let mut console = qemu::run(&boot, GUARD, false, |line| {
        if !started && line.contains(cue) {
            started = true;
            if let Some(task) = beside.take() {
                let qmp = qmp.clone();
                let send = send.clone();
                std::thread::spawn(move || {
                    let _ = send.send(wait_for_socket(&qmp).and_then(|()| task(&qmp)));
                });
            }
        }
    })?;
    let _ = std::fs::remove_file(&qmp);
    drop(send);
    if let Ok(seen) = receive.recv_timeout(Duration::from_secs(5)) {
        match seen {
            Ok(text) => console.lines.push(format!("host saw: {text}")),
            Err(e) => return Err(format!("{e}\n--- console ---\n{}", console.text())),
        }
    }
    Ok(console)
}

fn wait_for_socket(path: &Path) -> Result<(), String> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("no QMP socket {}", path.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The exit status, no panic, and each of `needles` on the console.
pub(crate) fn check(console: &Console, code: i32, needles: &[&str]) -> Result<(), String> {
    let fail = |what: String| Err(format!("{what}\n--- console ---\n{}", console.text()));
    if console.kernel_panicked() {
        return fail("the kernel panicked".into());
    }
    // An optional variant the CPU lacks (crc32c_intel under TCG) is no
    // warning; every module an image needs loads.
    if console.has("cannot load module") {
        return fail("a module warning".into());
    }
    if console.exit_code() != Some(code) {
        return fail(format!(
            "exit code {:?}, expected {code}",
            console.exit_code()
        ));
    }
    match needles.iter().find(|n| !console.has(n)) {
        Some(missing) => fail(format!("no line contains {missing:?}")),
        None => Ok(()),
    }
}

/// A TCP port free on the host's loopback.
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// `GET path` on the loopback port, retried until `patience` runs out;
/// returns the status line and the body.
fn http_get(port: u16, path: &str, patience: Duration) -> Result<String, String> {
    let start = Instant::now();
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: vm\r\n\r\n").as_bytes())?;
            let mut reader = BufReader::new(stream);
            let mut status = String::new();
            reader.read_line(&mut status)?;
            let mut rest = String::new();
            reader.read_to_string(&mut rest)?;
            let body = rest.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
            Ok(format!("{} {body}", status.trim()))
        })();
        match attempt {
            Ok(text) if text.starts_with("HTTP/") => return Ok(text),
            _ if start.elapsed() > patience => {
                return Err(format!(
                    "no answer on port {port} for {path} within {patience:?}"
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}
