//! The microVM around the application: what PID 1 sets up before starting
//! it (filesystems, console, loopback, Ctrl-Alt-Del) and how it ends the
//! machine afterwards (sync, unmount, status file, exit line, power-off).

use std::io::{Read, Write};
use std::path::Path;

pub mod files;
pub mod modules;
pub mod network;
pub mod power_button;
pub mod root;
pub mod setup;
pub mod volumes;
use std::time::{Duration, Instant};

use nix::mount::MsFlags;

use crate::config::Config;
use crate::config::settings::Shutdown;
use crate::record::{Report, steps};
use crate::sys::mount::{self, Mount};
use crate::sys::{clock, fd, net, power, process, signal, stdio};
use crate::{debug, error, info, log, warn};

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

/// Mounts `/proc` if needed and reads the kernel command line.
pub fn read_kernel_cmdline() -> Option<Vec<u8>> {
    if let Err(message) = mount_proc() {
        warn!("{message}");
    }
    match kernel_cmdline() {
        Ok(line) => Some(line),
        Err(e) => {
            warn!("cannot read /proc/cmdline: {e}");
            None
        }
    }
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
/// vminit never renames the host it runs on. True when it was set.
pub fn set_hostname(name: &str, vm: bool, real_machine: bool) -> bool {
    if !vm {
        warn!("hostname is only set in VM mode (a container runtime sets its own)");
        return false;
    }
    if !real_machine && process::in_initial_uts_namespace() != Some(false) {
        warn!("hostname not set: no UTS namespace of its own");
        return false;
    }
    match nix::unistd::sethostname(name) {
        Ok(()) => {
            debug!("hostname set to {name}");
            true
        }
        Err(e) => {
            warn!("cannot set the hostname: {e}");
            false
        }
    }
}

/// A VM's name when none is configured: the first 12 hex digits of this
/// boot's id, as Docker names a container by the first 12 of its id.
pub fn default_hostname() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let hex: String = id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    (hex.len() == 12).then_some(hex)
}

/// The machine's name: the configured one, else (Docker names a container
/// by its id) the boot's; `None` when none was set.
pub fn name_machine(config: &Config, vm: bool, real_machine: bool) -> Option<String> {
    config
        .hostname
        .clone()
        .or_else(|| real_machine.then(default_hostname).flatten())
        .filter(|name| set_hostname(name, vm, real_machine))
}

/// Creates a working directory the image names but lacks, as Docker does
/// (root's, 0755); true when it is there now. In VM mode only: a container
/// engine has made its own.
pub fn create_workdir(dir: &str) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    if Path::new(dir).symlink_metadata().is_ok() {
        return false;
    }
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
    {
        Ok(()) => {
            info!("created the working directory {dir}, which the image lacks");
            true
        }
        Err(e) => {
            warn!("cannot create the working directory {dir}: {e}");
            false
        }
    }
}

/// The open-file limit a VM's app gets when the configuration sets none,
/// as systemd and Docker 25+ give services: soft 1024 (`select(2)` stays
/// safe), hard 524288 (an app that wants more raises its soft limit, as
/// Redis and PostgreSQL do). The kernel's own, 1024:4096, is too low.
pub const DEFAULT_NOFILE: (u64, u64) = (1024, 524_288);

/// Gives vminit, and so the app, [`DEFAULT_NOFILE`] (a VM, no
/// `rlimit.nofile` configured). Failing only warns: it is a default.
pub fn set_default_nofile() {
    use crate::sys::credentials::{RawLimit, resource_number};
    let Some(resource) = resource_number("nofile") else {
        return;
    };
    let limit = RawLimit {
        resource,
        soft: DEFAULT_NOFILE.0,
        hard: DEFAULT_NOFILE.1,
    };
    match crate::sys::credentials::set_limit(&limit) {
        Ok(()) => debug!("nofile limit {}:{}", DEFAULT_NOFILE.0, DEFAULT_NOFILE.1),
        Err(e) => warn!("cannot raise the nofile limit to its default: {e}"),
    }
}

/// How long the disks may go without writing anything back before the
/// machine is powered off anyway: a hung disk would block sync(2) and
/// umount(2) forever, while a slow one keeps making progress.
const FLUSH_STALL: Duration = Duration::from_secs(10);

/// Ends the VM: sync and unmount disks, write the status file, print the one
/// `vminit: exit_code=N` line, and power off (or restart). Never returns:
/// PID 1 exiting is a kernel panic, so if the kernel refuses, vminit waits.
/// Every step is bounded, and the log says which one gave up.
pub fn shutdown(
    mut report: Report,
    action: Shutdown,
    real_machine: bool,
    watched: WatchedMounts,
) -> ! {
    // Inside a PID namespace (`--mode vm` in tests) the disks are the
    // host's, not this "machine's": nothing to flush or unmount.
    if real_machine {
        steps::time("end:flush", || flush_disks(watched));
    }
    report.timings.poweroff = Some(clock::since_boot());
    debug!("timings: {}", report.timings_line());
    debug!("all steps: {}", steps::line());
    if let Err(e) = std::fs::write(STATUS_FILE, report.to_line()) {
        debug!("cannot write {STATUS_FILE}: {e}");
    }
    end_console(report.exit_code, real_machine);
    let error = power::end_machine(action == Shutdown::Reboot);
    error!("cannot {}: {error}; waiting instead", action.name());
    loop {
        let _ = signal::wait(None);
    }
}

/// Prints the exit line and waits for the console to send it: without
/// that wait a restart (which ends QEMU at once) can cut the line short.
/// Both while the console makes progress, within the end's console bounds
/// (`log::CONSOLE_STALL` without progress), whatever the app left the
/// console in (non-blocking, or output stopped by XOFF) and however long
/// the host stops reading. A machine's init then says so in the kernel
/// log, which a host may read too.
pub fn end_console(exit_code: i32, real_machine: bool) {
    if !log::exit_line(exit_code) && real_machine {
        log::kmsg_fallback(format_args!(
            "exit_code={exit_code} (the console stalled: the line was not sent)"
        ));
    }
}

/// How long the flush may take before its progress is watched.
const FIRST_LOOK: Duration = Duration::from_millis(50);

/// Whether the child `pid` ends within `wait` (woken by its SIGCHLD).
fn ended_within(pid: i32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if !process::running(pid) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = signal::wait(Some(left));
    }
}

/// The mounts that may hold data, each opened before the app starts: the
/// end learns from them which filesystems lost writes while the app ran
/// (see `mount::watch_errors`).
pub type WatchedMounts = Vec<(String, std::fs::File)>;

/// Opens every mount that may hold data (see [`WatchedMounts`]); one that
/// cannot be opened is not watched.
pub fn watch_mounts() -> WatchedMounts {
    mount::data_mounts()
        .into_iter()
        .filter_map(|target| {
            let file = mount::watch_errors(&target).ok()?;
            Some((target, file))
        })
        .collect()
}

/// Syncs each watched filesystem, saying which lost writes, then the rest;
/// unmounts (or remounts read-only) the disks, and syncs again. Writes the
/// warnings it has to `out`, a line each. (A mount left read-only, as the
/// root always is, needs no word.)
fn flush(watched: WatchedMounts, out: &mut dyn Write) {
    for (target, file) in watched {
        if let Err(e) = mount::sync_filesystem(&file) {
            let _ = writeln!(
                out,
                "{target}: its disk failed writes ({e}): what was written there may be lost"
            );
        }
    }
    mount::sync();
    let (_read_only, writable) = mount::unmount_data();
    for target in writable {
        let _ = writeln!(
            out,
            "{target} could be neither unmounted nor remounted read-only"
        );
    }
    mount::sync();
}

/// Logs the warnings [`flush`] wrote.
fn log_flush(findings: &[u8]) {
    for line in String::from_utf8_lossy(findings).lines() {
        warn!("{line}");
    }
}

/// Flushes the disks ([`flush`]) in a child process watched from here:
/// when neither the kernel's dirty and writeback pages go down nor the
/// disks' written sectors go up for [`FLUSH_STALL`], a disk is taken as
/// hung, the log says so, and the machine ends without it. (A process
/// rather than a thread: every other process is gone by now, and a thread
/// stuck in the kernel would keep the disks' files open.) The child's
/// findings come back through a pipe and are logged here, so that no
/// console line holds the child up while its disks are watched.
fn flush_disks(watched: WatchedMounts) {
    let mut findings = Vec::new();
    let Ok((reader, writer)) = fd::pipe() else {
        flush(watched, &mut findings);
        return log_flush(&findings);
    };
    let mut writer = std::fs::File::from(writer);
    // The closure, and with it this process's copies of the watched files
    // and of the pipe's write end, is dropped here as soon as the child is
    // started: the files would keep the mounts busy.
    let work = move || flush(watched, &mut writer);
    // SAFETY: vminit is single-threaded.
    let hung = match unsafe { process::fork_and_run(work) } {
        Ok(child) => watch_flush(child),
        Err(e) => {
            warn!("cannot fork to flush the disks ({e}): flushing without a bound");
            flush(Vec::new(), &mut findings);
            None
        }
    };
    // What the child found, also when it hangs: read without waiting, at
    // most what a pipe holds.
    let reader = std::fs::File::from(reader);
    if fd::set_nonblocking(&reader).is_ok() {
        let _ = reader.take(64 << 10).read_to_end(&mut findings);
    }
    log_flush(&findings);
    if let Some(unwritten) = hung {
        warn!(
            "sync and unmount made no progress for {FLUSH_STALL:?} ({unwritten} KiB unwritten): \
             a disk hangs, ending the machine without them"
        );
    }
}

/// Waits for the flush child `child` while the disks make progress;
/// `Some` of the KiB left unwritten when they made none for
/// [`FLUSH_STALL`].
fn watch_flush(child: i32) -> Option<u64> {
    // Most flushes end at once: then no progress needs measuring, and the
    // reads of /proc that measure it (milliseconds under emulation) are
    // saved.
    if ended_within(child, FIRST_LOOK) {
        return None;
    }
    // Progress: pages leaving the page cache, or sectors reaching a disk
    // (a filesystem's own journal writes bypass the page cache).
    let mut pending = mount::unwritten_kib();
    let mut written = mount::sectors_written();
    let mut stall_ends = Instant::now() + FLUSH_STALL;
    while process::running(child) {
        let _ = signal::wait(Some(Duration::from_millis(50)));
        let (now_pending, now_written) = (mount::unwritten_kib(), mount::sectors_written());
        if now_pending < pending || now_written > written {
            (pending, written) = (now_pending.min(pending), now_written);
            stall_ends = Instant::now() + FLUSH_STALL;
        } else if Instant::now() >= stall_ends {
            return Some(pending.unwrap_or(0));
        }
    }
    None
}
