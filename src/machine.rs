//! The microVM around the application: what PID 1 sets up before starting
//! it (filesystems, console, loopback, Ctrl-Alt-Del) and how it ends the
//! machine afterwards (sync, unmount, status file, exit line, power-off).

use std::path::Path;

use nix::mount::MsFlags;

use crate::report::Report;
use crate::settings::Shutdown;
use crate::sys::mount::{self, Mount};
use crate::sys::{clock, net, power, process, signal, stdio, tty};
use crate::{debug, error, log, warn};

/// Where the status record is written.
pub const STATUS_FILE: &str = "/run/vminit/status.json";

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

const PROC: Mount = Mount {
    source: "proc",
    target: "/proc",
    fstype: "proc",
    flags: NOSUID_NODEV_NOEXEC,
    data: "",
};

const DEV: Mount = Mount {
    source: "devtmpfs",
    target: "/dev",
    fstype: "devtmpfs",
    flags: MsFlags::MS_NOSUID,
    data: "mode=0755",
};

/// What the application finds mounted, in order (parents first).
const MOUNTS: &[Mount] = &[
    PROC,
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
    },
    DEV,
    Mount {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: "gid=5,mode=0620,ptmxmode=0666",
    },
    Mount {
        source: "tmpfs",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: "mode=1777",
    },
    Mount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: "mode=0755",
    },
];

/// The `/dev` entries devtmpfs lacks and programs expect.
const DEV_LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
];

/// Mounts `m` unless something is mounted there already (`table`: the
/// mount points from `/proc/self/mountinfo`, when `/proc` is there).
fn mount_if_missing(m: &Mount, table: Option<&[String]>) -> Result<(), String> {
    match mount::is_mountpoint(Path::new(m.target), table) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        // Missing directory: mount_fs creates it.
        Err(_) => {}
    }
    mount::mount_fs(m).map_err(|e| format!("cannot mount {} on {}: {e}", m.fstype, m.target))?;
    debug!("mounted {} on {}", m.fstype, m.target);
    Ok(())
}

/// Gives fds 0-2 a home when the kernel started init with them closed (no
/// `/dev/console` in the root): the console, mounting devtmpfs for it if
/// needed, else `/dev/null`. Runs before anything can open a file.
pub fn open_console_if_closed() {
    if stdio::closed().is_empty() {
        return;
    }
    if stdio::fill_from("/dev/console").is_ok() {
        return;
    }
    let table = mount::mount_points();
    if mount_if_missing(&DEV, table.as_deref()).is_ok() && stdio::fill_from("/dev/console").is_ok()
    {
        return;
    }
    let _ = stdio::fill_from("/dev/null");
}

/// Mounts `/proc`, which reading the kernel command line needs.
pub fn mount_proc() -> Result<(), String> {
    mount_if_missing(&PROC, mount::mount_points().as_deref())
}

/// Reads the kernel command line.
pub fn kernel_cmdline() -> std::io::Result<Vec<u8>> {
    std::fs::read("/proc/cmdline")
}

/// Prepares the machine for the application. Failures are logged and
/// skipped: an app that needs none of the missing pieces still runs.
/// `real_machine` is false when forced into VM mode inside a PID namespace,
/// where the kernel refuses (or would misapply) machine-wide settings.
pub fn prepare(real_machine: bool) {
    // Read once: nothing mounted below was a mount point before.
    let table = mount::mount_points();
    for m in MOUNTS {
        if let Err(message) = mount_if_missing(m, table.as_deref()) {
            warn!("{message}");
        }
    }
    for (target, link) in DEV_LINKS {
        if let Err(e) = mount::symlink_if_missing(target, link) {
            debug!("cannot create {link}: {e}");
        }
    }
    if let Err(e) = mount::create_dir("/run/vminit", 0o755) {
        warn!("cannot create /run/vminit: {e}");
    }
    if let Err(e) = net::interface_up("lo") {
        warn!("cannot bring up the loopback interface: {e}");
    }
    if real_machine {
        if let Err(e) = power::ctrl_alt_del_sends_sigint() {
            warn!("cannot turn Ctrl-Alt-Del into SIGINT: {e}");
        }
    }
}

/// Sets the host name: in VM mode only, and inside a PID namespace
/// (`--mode vm` in tests) only with a UTS namespace of its own, so that
/// vminit never renames the host it runs on.
pub fn set_hostname(name: &str, vm: bool, real_machine: bool) {
    if !vm {
        warn!("hostname is only set in VM mode (a container runtime sets its own)");
        return;
    }
    if !real_machine && process::in_initial_uts_namespace() != Some(false) {
        warn!("hostname not set: no UTS namespace of its own");
        return;
    }
    match nix::unistd::sethostname(name) {
        Ok(()) => debug!("hostname set to {name}"),
        Err(e) => warn!("cannot set the hostname: {e}"),
    }
}

/// Ends the VM: sync and unmount disks, write the status file, print the one
/// `vminit: exit_code=N` line, and power off (or restart). Never returns:
/// PID 1 exiting is a kernel panic, so if the kernel refuses, vminit waits.
pub fn shutdown(mut report: Report, action: Shutdown, real_machine: bool) -> ! {
    // Inside a PID namespace (`--mode vm` in tests) the disks are the
    // host's, not this "machine's": nothing to flush or unmount.
    if real_machine {
        mount::sync();
        for target in mount::unmount_disks() {
            warn!("{target} stays mounted read-write");
        }
        mount::sync();
    }
    report.timings.poweroff = Some(clock::since_boot());
    debug!("timings: {}", report.timings_line());
    if let Err(e) = std::fs::write(STATUS_FILE, report.to_line()) {
        debug!("cannot write {STATUS_FILE}: {e}");
    }
    log::always(format_args!("exit_code={}", report.exit_code));
    // A serial console sends from a buffer, by interrupts: without waiting
    // for it to empty, a restart (which ends QEMU at once) can cut the line.
    tty::drain_stderr();
    let error = power::end_machine(action);
    error!("cannot {}: {error}; waiting instead", action.name());
    loop {
        let _ = signal::wait(None);
    }
}
