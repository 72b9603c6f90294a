//! Starting the application and reaping processes: fork(2)/execve(2) via
//! `std::process::Command`, setpgid(2), waitpid(2), prctl(2)'s
//! `PR_SET_CHILD_SUBREAPER`, and the `/proc` views of the process tree
//! (proc(5): `/proc/PID/task/TID/children`, `/proc/PID/stat`).

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::unistd::{Pid, getpid, setpgid};

use super::credentials::{self, RawLimit};
use super::{signal, tty};

/// What starting the application needs.
#[derive(Debug)]
pub struct Spawn<'a> {
    pub argv: &'a [String],
    /// The application's whole environment.
    pub env: &'a [(OsString, OsString)],
    pub workdir: Option<&'a str>,
    /// Make the application's group the terminal's foreground group.
    pub take_terminal: bool,
    /// Resource limits to set, before dropping privileges.
    pub limits: &'a [RawLimit],
    /// (uid, gid, supplementary groups) to become.
    pub user: Option<(u32, u32, &'a [u32])>,
    pub no_new_privs: bool,
}

/// The step of the child's set-up between fork and exec, so that a
/// failure is reported as what it was, not as an exec error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Setting `Spawn::limits[N]`.
    Limit(usize),
    ProcessGroup,
    /// Dropping to `Spawn::user`.
    User,
    /// Entering `Spawn::workdir` (as the user, when one is given).
    Workdir,
    NoNewPrivs,
    Signals,
    /// exec itself: the command was not found or could not be run.
    Exec,
}

impl Step {
    /// One byte, for the page the child writes it to.
    fn encode(self) -> u8 {
        match self {
            // At most 16 limits, one per resource.
            Step::Limit(index) => 16 + u8::try_from(index).unwrap_or(0),
            Step::ProcessGroup => 1,
            Step::User => 2,
            Step::Workdir => 3,
            Step::NoNewPrivs => 4,
            Step::Signals => 5,
            Step::Exec => 6,
        }
    }

    fn decode(byte: u8) -> Step {
        match byte {
            1 => Step::ProcessGroup,
            2 => Step::User,
            3 => Step::Workdir,
            4 => Step::NoNewPrivs,
            5 => Step::Signals,
            16.. => Step::Limit(usize::from(byte - 16)),
            // 6, or nothing written: std's own set-up or exec.
            _ => Step::Exec,
        }
    }
}

/// Starting the application failed at `step`.
#[derive(Debug)]
pub struct SpawnError {
    pub step: Step,
    pub error: io::Error,
}

/// One shared anonymous page: what the child writes there between fork
/// and exec stays visible to the parent (fork copies private memory).
#[derive(Debug)]
struct StepPage(std::ptr::NonNull<u8>);

impl StepPage {
    fn new() -> io::Result<StepPage> {
        // SAFETY: an anonymous shared mapping of one page, no fd; the result
        // is checked before use.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        std::ptr::NonNull::new(page.cast::<u8>())
            .map(StepPage)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
    }

    /// The slot the child writes its steps to.
    fn slot(&self) -> StepSlot {
        StepSlot(self.0.as_ptr() as usize)
    }

    fn read(&self) -> Step {
        // SAFETY: the page is mapped, readable, and outlives `self`; the
        // child that wrote it has exec'd or exited by now.
        Step::decode(unsafe { std::ptr::read_volatile(self.0.as_ptr()) })
    }
}

impl Drop for StepPage {
    fn drop(&mut self) {
        // SAFETY: unmapping the page `new` mapped; nothing uses it after.
        unsafe { libc::munmap(self.0.as_ptr().cast(), 4096) };
    }
}

/// Where the child records its step: a [`StepPage`]'s address. Only
/// `StepPage::slot` makes one, and `spawn` keeps the page mapped until the
/// child has exec'd or exited, so writing through it is sound. (An address
/// rather than a pointer: the child's closure must be Send and Sync.)
#[derive(Debug, Clone, Copy)]
struct StepSlot(usize);

impl StepSlot {
    /// Records `step` (in the child).
    fn mark(self, step: Step) {
        // SAFETY: see the type: the page at this address is mapped and
        // writable for as long as the child runs its set-up.
        unsafe { std::ptr::write_volatile(self.0 as *mut u8, step.encode()) };
    }
}

/// Starts the application in a new process group (its pid is the group id)
/// with an empty signal mask and default dispositions.
///
/// Returns once the child has exec'd (std waits on a close-on-exec pipe), so
/// the group exists by then and signals sent to it cannot miss; signals that
/// arrived meanwhile are still pending in vminit, which blocks them all.
pub fn spawn(request: &Spawn<'_>) -> Result<i32, SpawnError> {
    let exec_error = |error| SpawnError {
        step: Step::Exec,
        error,
    };
    let (program, args) = request
        .argv
        .split_first()
        .ok_or_else(|| exec_error(io::Error::from(io::ErrorKind::InvalidInput)))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(request.env.iter().map(|(k, v)| (k, v)));
    let take_terminal = request.take_terminal;
    // Read before fork: only these need resetting in the child (all of them
    // when /proc cannot tell).
    let ignored = signal::ignored().unwrap_or(u64::MAX);
    let limits = request.limits.to_vec();
    let user = request
        .user
        .map(|(uid, gid, groups)| (uid, gid, groups.to_vec()));
    let workdir = match request.workdir {
        Some(dir) => Some(std::ffi::CString::new(dir).map_err(|_| SpawnError {
            step: Step::Workdir,
            error: io::Error::from(io::ErrorKind::InvalidInput),
        })?),
        None => None,
    };
    let no_new_privs = request.no_new_privs;
    let page = StepPage::new().map_err(exec_error)?;
    let slot = page.slot();
    // SAFETY: the closure runs in the child between fork and exec, and calls
    // only async-signal-safe functions and raw syscalls (setpgid,
    // sigprocmask, tcsetpgrp, rt_sigaction, prlimit64, set*id, chdir, prctl) and volatile
    // writes to the shared page; it allocates nothing (what it needs was
    // copied before the fork) and touches no lock.
    unsafe {
        command.pre_exec(move || {
            for (index, limit) in limits.iter().enumerate() {
                slot.mark(Step::Limit(index));
                credentials::set_limit(limit)?;
            }
            slot.mark(Step::ProcessGroup);
            setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            if take_terminal {
                // tcsetpgrp from a background group raises SIGTTOU unless it
                // is blocked: keep it blocked whatever std did to the mask.
                signal::block(signal::Signal::SIGTTOU)?;
                // No terminal, or a hang-up meanwhile: run without one.
                let _ = tty::set_foreground(getpid().as_raw());
            }
            if let Some((uid, gid, groups)) = &user {
                slot.mark(Step::User);
                credentials::become_user(*uid, *gid, groups)?;
            }
            // Here rather than std's `current_dir`, so that a failure is
            // told from exec's, and as the user, so that a directory only
            // root may enter fails here.
            if let Some(dir) = &workdir {
                slot.mark(Step::Workdir);
                credentials::change_dir(dir)?;
            }
            if no_new_privs {
                slot.mark(Step::NoNewPrivs);
                credentials::no_new_privs()?;
            }
            slot.mark(Step::Signals);
            signal::reset_for_exec(ignored)?;
            slot.mark(Step::Exec);
            Ok(())
        });
    }
    let child = command.spawn().map_err(|error| SpawnError {
        step: page.read(),
        error,
    })?;
    // `Child` would only wait(); vminit reaps everything itself, by pid.
    i32::try_from(child.id()).map_err(|_| exec_error(io::Error::from(io::ErrorKind::InvalidData)))
}

/// One result of [`reap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// A child exited with a code.
    Exited(i32, i32),
    /// A child was killed by a signal.
    Killed(i32, i32),
    /// A child was stopped by a signal.
    Stopped(i32, i32),
    /// Children remain, none has news.
    Nothing,
    /// No child is left.
    NoChildren,
}

/// Collects one child's status without blocking: `waitpid(-1, WNOHANG)`,
/// with `WUNTRACED` when `stops` asks for stopped children too.
///
/// libc's waitpid directly, with the status decoded here: nix's wrapper
/// turns a death by a real-time signal (32-64, which its `Signal` cannot
/// hold) into an error after the zombie is already reaped, losing the status.
pub fn reap(stops: bool) -> io::Result<Reaped> {
    let flags = if stops {
        libc::WNOHANG | libc::WUNTRACED
    } else {
        libc::WNOHANG
    };
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call's duration.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        return match pid {
            0 => Ok(Reaped::Nothing),
            -1 => match io::Error::last_os_error().raw_os_error() {
                Some(libc::ECHILD) => Ok(Reaped::NoChildren),
                Some(libc::EINTR) => continue,
                _ => Err(io::Error::last_os_error()),
            },
            pid => Ok(decode(pid, status)),
        };
    }
}

/// A wait status as wait(2) describes it.
fn decode(pid: i32, status: i32) -> Reaped {
    if libc::WIFEXITED(status) {
        Reaped::Exited(pid, libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Reaped::Killed(pid, libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        Reaped::Stopped(pid, libc::WSTOPSIG(status))
    } else {
        // Continued: not asked for; nothing was collected.
        Reaped::Nothing
    }
}

/// Forks a child that runs `work` and exits; returns its pid. For work
/// that may block forever (sync(2) on a hung disk), so that the parent can
/// give up on it. A panic in the child ends the child alone (status 1),
/// never running the parent's panic hook (which would end the machine).
///
/// # Safety
///
/// The process must be single-threaded (vminit is): only then are the
/// child's copies of the heap's and libc's locks in a consistent state
/// for what `work` does after fork.
pub unsafe fn fork_and_run(work: impl FnOnce()) -> io::Result<i32> {
    // SAFETY: single-threaded, by the caller's promise; the child runs
    // `work` and leaves with _exit, never returning into the parent's code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            std::panic::set_hook(Box::new(|_| {
                // SAFETY: _exit ends this child at once.
                unsafe { libc::_exit(1) }
            }));
            work();
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or flushing its buffers.
            unsafe { libc::_exit(0) }
        }
        child => Ok(child),
    }
}

/// Whether the child `pid` is still running; reaps it once it ended.
pub fn running(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer for the call's duration.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rc == 0 || (rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR))
}

/// vminit's own pid.
pub fn own_pid() -> i32 {
    getpid().as_raw()
}

/// Makes orphans of vminit's descendants its children, so it can reap
/// them when it is not PID 1.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Whether this process is in the initial PID namespace; `None` when
/// `/proc` is not mounted and so cannot tell.
pub fn in_initial_pid_namespace() -> Option<bool> {
    // The kernel's fixed inode number for the initial PID namespace
    // (PROC_PID_INIT_INO in include/linux/proc_ns.h).
    const INITIAL_PID_NS_INODE: u64 = 0xEFFF_FFFC;
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata("/proc/self/ns/pid").ok()?;
    Some(metadata.ino() == INITIAL_PID_NS_INODE)
}

/// Whether this process is in the initial UTS (host name) namespace;
/// `None` without `/proc`.
pub fn in_initial_uts_namespace() -> Option<bool> {
    // PROC_UTS_INIT_INO in include/linux/proc_ns.h.
    const INITIAL_UTS_NS_INODE: u64 = 0xEFFF_FFFE;
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata("/proc/self/ns/uts").ok()?;
    Some(metadata.ino() == INITIAL_UTS_NS_INODE)
}

/// Every living descendant of `root` (not `root` itself), found through
/// `/proc`: the per-task `children` lists when the kernel has them
/// (CONFIG_PROC_CHILDREN), else every `/proc/PID/stat`. `None` when `/proc`
/// is missing or belongs to another PID namespace (its `self` is not us),
/// where its pids would name other processes.
pub fn descendants(root: i32) -> Option<Vec<i32>> {
    let own = std::fs::read_link("/proc/self").ok()?;
    if own.as_os_str().as_encoded_bytes() != own_pid().to_string().as_bytes() {
        return None;
    }
    Some(match children_lists(root) {
        Some(found) => found,
        None => scan_by_parent(root),
    })
}

fn children_lists(root: i32) -> Option<Vec<i32>> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let tasks = match std::fs::read_dir(format!("/proc/{pid}/task")) {
            Ok(tasks) => tasks,
            // The process is gone meanwhile; `/proc` itself missing is fatal.
            Err(_) if pid != root => continue,
            Err(_) => return None,
        };
        for task in tasks.flatten() {
            let path = task.path().join("children");
            let list = match std::fs::read_to_string(&path) {
                Ok(list) => list,
                Err(error) if error.kind() == io::ErrorKind::NotFound && pid == root => {
                    return None;
                }
                Err(_) => continue,
            };
            for child in list.split_whitespace().filter_map(|p| p.parse().ok()) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    Some(found)
}

fn scan_by_parent(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parents = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // Bytes, not a String: the command name may be cut mid-character.
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(ppid) = parent_from_stat(&String::from_utf8_lossy(&stat)) {
            parents.push((pid, ppid));
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        for &(pid, _) in parents.iter().filter(|(_, ppid)| *ppid == parent) {
            found.push(pid);
            queue.push(pid);
        }
    }
    found
}

/// The parent pid from a `/proc/PID/stat` line; the command name may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parent_from_stat(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_survive_their_byte() {
        for step in [
            Step::Limit(0),
            Step::Limit(15),
            Step::ProcessGroup,
            Step::User,
            Step::Workdir,
            Step::NoNewPrivs,
            Step::Signals,
            Step::Exec,
        ] {
            assert_eq!(Step::decode(step.encode()), step);
        }
        assert_eq!(Step::decode(0), Step::Exec);
    }

    #[test]
    fn wait_statuses_decode() {
        assert_eq!(decode(7, 3 << 8), Reaped::Exited(7, 3));
        assert_eq!(decode(7, 9), Reaped::Killed(7, 9));
        // Real-time signals too: nix's decoder loses these.
        assert_eq!(decode(7, 40), Reaped::Killed(7, 40));
        assert_eq!(decode(7, (20 << 8) | 0x7f), Reaped::Stopped(7, 20));
    }

    #[test]
    fn parent_pid_from_stat_lines() {
        assert_eq!(parent_from_stat("42 (sh) S 7 42 42 0"), Some(7));
        assert_eq!(parent_from_stat("42 (a) b) c) R 1 2 3"), Some(1));
        assert_eq!(parent_from_stat("garbage"), None);
    }

    #[test]
    fn descendants_sees_a_grandchild() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        let me = own_pid();
        let mut found = Vec::new();
        for _ in 0..100 {
            found = descendants(me).expect("/proc is ours");
            if found.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let child_pid = child.id() as i32;
        assert!(found.contains(&child_pid), "{found:?}");
        assert!(found.iter().any(|&p| p != child_pid), "{found:?}");
        assert_eq!(scan_by_parent(me).len(), found.len());
        for pid in found {
            let _ = signal::send(pid, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}
