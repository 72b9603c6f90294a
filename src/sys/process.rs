//! Starting the application and reaping processes: clone(2) with
//! `CLONE_VM | CLONE_VFORK` and execve(2), as posix_spawn(3) does, setpgid(2), waitpid(2), prctl(2)'s
//! `PR_SET_CHILD_SUBREAPER`, and the `/proc` views of the process tree
//! (proc(5): `/proc/PID/task/TID/children`, `/proc/PID/stat`).

use std::cell::Cell;
use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, Ordering};

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
    /// Descriptors to become its standard input, output and error (each
    /// closed on exec in vminit); `None` keeps vminit's.
    pub stdio: Option<[RawFd; 3]>,
    /// A session of its own (setsid) rather than a process group, with
    /// its standard input, a terminal, as its controlling terminal.
    pub new_session: bool,
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
    /// Taking `Spawn::stdio`, and the session's terminal.
    Stdio,
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
            Step::Stdio => 7,
        }
    }

    fn decode(byte: u8) -> Step {
        match byte {
            1 => Step::ProcessGroup,
            2 => Step::User,
            3 => Step::Workdir,
            4 => Step::NoNewPrivs,
            5 => Step::Signals,
            7 => Step::Stdio,
            16.. => Step::Limit(usize::from(byte - 16)),
            // 6: exec itself.
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

/// How far below `spawn`'s frame the child's stack starts: past the frames
/// of `clone` and libc's wrapper, with room to spare. (The main thread's
/// stack grows on demand, up to its limit, for the child as for vminit.
/// The API's server spawns from threads of a fixed 256 KiB stack, called
/// a few frames deep: the gap and the child's raw syscalls fit far within.)
const CHILD_STACK_GAP: usize = 8 * 1024;

/// musl's `execvp` search path when the environment has no `PATH`, which
/// std's `Command` used before this module called execve itself.
const EXECVP_DEFAULT_PATH: &[u8] = b"/usr/local/bin:/bin:/usr/bin";

/// The longest path the kernel takes, with its NUL.
const PATH_MAX: usize = 4096;

/// The files to try for `program`, in order, as execvp(3) tries them:
/// the name itself when it has a slash, else each `PATH` entry joined
/// with it (an empty entry is the current directory).
fn exec_candidates(program: &[u8], path: Option<&[u8]>) -> Option<CStrings> {
    if program.contains(&b'/') {
        return CStrings::new([[program]].into_iter());
    }
    if program.is_empty() {
        return CStrings::new(std::iter::empty::<[&[u8]; 1]>());
    }
    CStrings::new(
        path.unwrap_or(EXECVP_DEFAULT_PATH)
            .split(|&b| b == b':')
            // As musl: an entry too long for a path is passed over.
            .filter(|dir| dir.len() < PATH_MAX)
            .map(|dir| {
                let slash: &[u8] = if dir.is_empty() { b"" } else { b"/" };
                [dir, slash, program]
            }),
    )
}

/// Everything the child needs, made before it starts: it allocates nothing.
struct ChildPlan<'a> {
    candidates: &'a [*const libc::c_char],
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    limits: &'a [RawLimit],
    user: Option<(u32, u32, &'a [u32])>,
    workdir: Option<&'a CStr>,
    take_terminal: bool,
    no_new_privs: bool,
    stdio: Option<[RawFd; 3]>,
    new_session: bool,
    /// Signals to set back to their default disposition.
    ignored: u64,
    /// Written by the child before it exits on a failure: the step and
    /// errno. Shared memory (`CLONE_VM`): the parent reads it once the
    /// child has exec'd or exited.
    failed_step: Cell<u8>,
    failed_errno: Cell<i32>,
}

impl ChildPlan<'_> {
    /// The child's set-up, then execve: returns only on a failure, with
    /// the step that failed.
    fn run(&self) -> (Step, io::Error) {
        let at = |step: Step| move |error: io::Error| (step, error);
        let set_up = || -> Result<(), (Step, io::Error)> {
            for (index, limit) in self.limits.iter().enumerate() {
                credentials::set_limit(limit).map_err(at(Step::Limit(index)))?;
            }
            if self.new_session {
                nix::unistd::setsid().map_err(|e| (Step::ProcessGroup, io::Error::from(e)))?;
            } else {
                setpgid(Pid::from_raw(0), Pid::from_raw(0))
                    .map_err(|e| (Step::ProcessGroup, io::Error::from(e)))?;
            }
            if let Some(fds) = self.stdio {
                take_stdio(fds, self.new_session).map_err(at(Step::Stdio))?;
            }
            if self.take_terminal {
                // SIGTTOU, which tcsetpgrp from a background group raises,
                // is blocked: the child starts with vminit's full mask. No
                // terminal, or a hang-up meanwhile: run without one.
                let _ = tty::set_foreground(getpid().as_raw());
            }
            if let Some((uid, gid, groups)) = self.user {
                credentials::become_user(uid, gid, groups).map_err(at(Step::User))?;
            }
            // As the user, so that a directory only root may enter fails
            // here, and told from exec's failure.
            if let Some(dir) = self.workdir {
                credentials::change_dir(dir).map_err(at(Step::Workdir))?;
            }
            if self.no_new_privs {
                credentials::no_new_privs().map_err(at(Step::NoNewPrivs))?;
            }
            signal::reset_for_exec(self.ignored).map_err(at(Step::Signals))
        };
        if let Err(failed) = set_up() {
            return failed;
        }
        (Step::Exec, self.exec())
    }

    /// execve on each candidate in turn, as musl's execvp: on to the next
    /// after ENOENT, ENOTDIR or EACCES; then EACCES if any had it, else the
    /// last error (a single candidate's, a path with a slash, as it is).
    fn exec(&self) -> io::Error {
        let mut denied = false;
        let mut last = io::Error::from_raw_os_error(libc::ENOENT);
        for &file in self.candidates {
            // SAFETY: `file`, `argv` and `envp` are NUL-terminated strings
            // and NULL-terminated arrays that outlive the call.
            unsafe {
                libc::syscall(
                    libc::SYS_execve,
                    file,
                    self.argv.as_ptr(),
                    self.envp.as_ptr(),
                )
            };
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EACCES) => denied = true,
                Some(libc::ENOENT | libc::ENOTDIR) => {}
                _ => return error,
            }
            last = error;
        }
        if denied {
            io::Error::from_raw_os_error(libc::EACCES)
        } else {
            last
        }
    }
}

/// Makes `fds` the child's 0, 1 and 2 (dup2 leaves close-on-exec off),
/// and with `terminal` its standard input its controlling terminal. Raw
/// calls only: it runs between clone and exec.
fn take_stdio(fds: [RawFd; 3], terminal: bool) -> io::Result<()> {
    for (target, fd) in (0..).zip(fds) {
        // SAFETY: dup2 and fcntl act on descriptors only.
        let rc = unsafe {
            if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            }
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal).
    if terminal && unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The child's entry: runs the plan; on a failure records it and exits.
extern "C" fn child_main(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `spawn` passes a ChildPlan that lives until the child has
    // exec'd or exited (the parent is suspended until then).
    let plan = unsafe { &*plan.cast::<ChildPlan<'_>>() };
    let (step, error) = plan.run();
    let errno = error.raw_os_error().unwrap_or(libc::EINVAL);
    plan.failed_step.set(step.encode());
    plan.failed_errno.set(errno);
    // The status says it too, as a shell's would: where clone's shared
    // memory is not (qemu-user runs CLONE_VFORK as a plain fork), vminit
    // then sees this child as the app, ending 127 or 126, unexplained.
    let status = if step == Step::Exec && errno == libc::ENOENT {
        127
    } else {
        126
    };
    // SAFETY: ends this child alone (it is its own thread group), without
    // running anything of the parent's.
    unsafe { libc::syscall(libc::SYS_exit, status) };
    status
}

/// Runs `child_main` for `plan` in a child that shares vminit's memory,
/// vminit suspended until it has exec'd or exited (CLONE_VFORK); returns
/// its pid, or -1 with errno set.
///
/// The child's stack is vminit's own, from CHILD_STACK_GAP below this
/// frame, as a vfork(2) child uses its parent's: nothing else runs on it
/// meanwhile, and a buffer reserved for it would be touched page by page
/// by the stack probes. Never inlined, so that all that lies below `here`
/// is this small frame and those of libc's `clone`, far within the gap.
#[inline(never)]
fn clone_vfork(plan: &ChildPlan<'_>) -> libc::c_int {
    let here = 0u8;
    let top = (std::ptr::from_ref(std::hint::black_box(&here)) as usize - CHILD_STACK_GAP) & !15;
    // SAFETY: `child_main` runs below the calling thread's live stack, in
    // its memory, while that thread waits (CLONE_VFORK): it only reads
    // `plan`, makes raw syscalls and writes `plan`'s two cells, all of
    // which outlive it. Other threads (the API's server has some) never
    // touch this thread's stack or `plan`. Every signal is blocked in the
    // caller and so in the child until just before execve.
    unsafe {
        libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(plan).cast_mut().cast(),
        )
    }
}

/// NUL-terminated strings in one buffer, and a NULL-terminated array of
/// pointers to them: two allocations for an environment, not two a
/// variable (each a page of its own at first, in musl's malloc).
struct CStrings {
    buffer: Vec<u8>,
    /// Where each string starts in `buffer`.
    starts: Vec<usize>,
}

impl CStrings {
    /// The strings, each made of `parts` joined; `None` when one holds NUL.
    /// Sized first, so that neither vector grows by copies.
    fn new<'a, I, P>(items: I) -> Option<CStrings>
    where
        I: Iterator<Item = P> + Clone,
        P: IntoIterator<Item = &'a [u8]>,
    {
        let (count, bytes) = items.clone().fold((0, 0), |(count, bytes), parts| {
            let length: usize = parts.into_iter().map(<[u8]>::len).sum();
            (count + 1, bytes + length + 1)
        });
        let mut strings = CStrings {
            buffer: Vec::with_capacity(bytes),
            starts: Vec::with_capacity(count),
        };
        for parts in items {
            strings.starts.push(strings.buffer.len());
            for part in parts {
                if part.contains(&0) {
                    return None;
                }
                strings.buffer.extend_from_slice(part);
            }
            strings.buffer.push(0);
        }
        Some(strings)
    }

    #[cfg(test)]
    fn strings(&self) -> Vec<&[u8]> {
        self.starts
            .iter()
            .map(|&start| {
                let rest = &self.buffer[start..];
                &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
            })
            .collect()
    }

    /// The pointers, NULL-terminated: valid while `self` lives unchanged.
    fn pointers(&self) -> Vec<*const libc::c_char> {
        let mut pointers = Vec::with_capacity(self.starts.len() + 1);
        pointers.extend(
            self.starts
                .iter()
                .map(|&start| self.buffer[start..].as_ptr().cast::<libc::c_char>()),
        );
        pointers.push(std::ptr::null());
        pointers
    }
}

/// Starts the application in a new process group (its pid is the group id)
/// with an empty signal mask and default dispositions.
///
/// One `clone(CLONE_VM | CLONE_VFORK)`, as posix_spawn does: no copy of
/// vminit's memory, and no pipe to learn how exec went, since the child
/// writes a failure into the plan it shares with vminit, which resumes
/// only once the child has exec'd or exited. By then the group exists, so
/// signals sent to it cannot miss; signals that arrived meanwhile are
/// still pending in vminit, which blocks them all.
pub fn spawn(request: &Spawn<'_>) -> Result<i32, SpawnError> {
    let invalid = |step| SpawnError {
        step,
        error: io::Error::from(io::ErrorKind::InvalidInput),
    };
    let program = request.argv.first().ok_or(invalid(Step::Exec))?;
    // As musl's execvp: a name to search for must fit a directory entry.
    const NAME_MAX: usize = 255;
    if !program.contains('/') && program.len() > NAME_MAX {
        return Err(SpawnError {
            step: Step::Exec,
            error: io::Error::from_raw_os_error(libc::ENAMETOOLONG),
        });
    }
    let path = request
        .env
        .iter()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value.as_bytes());
    let files = exec_candidates(program.as_bytes(), path).ok_or(invalid(Step::Exec))?;
    let args = CStrings::new(request.argv.iter().map(|arg| [arg.as_bytes()]))
        .ok_or(invalid(Step::Exec))?;
    let env = CStrings::new(
        request
            .env
            .iter()
            .map(|(key, value)| [key.as_bytes(), b"=", value.as_bytes()]),
    )
    .ok_or(invalid(Step::Exec))?;
    let (candidates, argv, envp) = (files.pointers(), args.pointers(), env.pointers());
    let workdir = match request.workdir {
        Some(dir) => Some(CString::new(dir).map_err(|_| invalid(Step::Workdir))?),
        None => None,
    };
    let plan = ChildPlan {
        // The trailing NULL is for argv and envp only.
        candidates: &candidates[..candidates.len() - 1],
        argv: &argv,
        envp: &envp,
        limits: request.limits,
        user: request.user,
        workdir: workdir.as_deref(),
        take_terminal: request.take_terminal,
        no_new_privs: request.no_new_privs,
        stdio: request.stdio,
        new_session: request.new_session,
        // Only these need resetting (all of them when /proc cannot tell).
        ignored: signal::ignored().unwrap_or(u64::MAX),
        failed_step: Cell::new(0),
        failed_errno: Cell::new(0),
    };
    let pid = clone_vfork(&plan);
    if pid == -1 {
        return Err(SpawnError {
            step: Step::Exec,
            error: io::Error::last_os_error(),
        });
    }
    match plan.failed_errno.get() {
        0 => Ok(pid),
        errno => {
            // It has exited: reap it here, so no one mistakes it for the app.
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer for the call.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            Err(SpawnError {
                step: Step::decode(plan.failed_step.get()),
                error: io::Error::from_raw_os_error(errno),
            })
        }
    }
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
    wait_for(-1, flags)
}

/// waitpid(2) on `pid` with `flags`, again after EINTR.
fn wait_for(pid: i32, flags: libc::c_int) -> io::Result<Reaped> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call's duration.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        return match rc {
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

/// Collects the child `pid`'s status: waiting for it with `block`, else
/// `Reaped::Nothing` while it runs.
pub fn reap_child(pid: i32, block: bool) -> io::Result<Reaped> {
    wait_for(pid, if block { 0 } else { libc::WNOHANG })
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
            // Not vminit's pid any more.
            OWN_PID.store(0, Ordering::Relaxed);
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

/// vminit's pid, once asked for (0: not yet). Every signal sent with
/// kill(2) is checked against it: a syscall saved on each one.
static OWN_PID: AtomicI32 = AtomicI32::new(0);

/// vminit's own pid.
pub fn own_pid() -> i32 {
    match OWN_PID.load(Ordering::Relaxed) {
        0 => {
            let pid = getpid().as_raw();
            OWN_PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
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

/// Those of `pids` with a thread in uninterruptible sleep (state `D` in
/// `/proc/PID/task/TID/stat`: Node, Go or the JVM do their file I/O in
/// threads of their own): blocked in the kernel, on a disk or a network
/// filesystem most often, where no signal reaches them until the call
/// returns.
pub fn in_uninterruptible_sleep(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|pid| {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return false;
            };
            tasks.flatten().any(|task| {
                let stat = std::fs::read(task.path().join("stat")).unwrap_or_default();
                state_from_stat(&stat) == Some(b'D')
            })
        })
        .collect()
}

/// The state letter from a `/proc/PID/stat` line: after the command
/// name's last `)` and a space.
fn state_from_stat(stat: &[u8]) -> Option<u8> {
    let end = stat.iter().rposition(|&b| b == b')')?;
    stat.get(end + 2).copied()
}

/// `pids` for the log, each as `PID (NAME)` with its command name
/// (`/proc/PID/comm`, which the process sets itself) cut at the first
/// character that is not printable ASCII, so that it cannot forge lines.
pub fn describe(pids: &[i32]) -> String {
    let mut text = String::new();
    for pid in pids {
        let name = std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
        let printable = name
            .iter()
            .take_while(|b| (b' '..=b'~').contains(b))
            .count();
        let name = String::from_utf8_lossy(&name[..printable]);
        text.push_str(&format!(
            "{}{pid} ({name})",
            if text.is_empty() { "" } else { ", " }
        ));
    }
    text
}

/// The parent pid from a `/proc/PID/stat` line; the command name may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parent_from_stat(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn the_state_is_read_after_the_last_parenthesis() {
        assert_eq!(state_from_stat(b"42 (a) b (D) c) D 1 42"), Some(b'D'));
        assert_eq!(state_from_stat(b"7 (sh) S 1"), Some(b'S'));
        assert_eq!(state_from_stat(b"7 sh S 1"), None);
        // A child asleep in nanosleep is in S, not D.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let stuck = in_uninterruptible_sleep(&[pid]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(stuck.is_empty(), "{stuck:?}");
        let own = std::process::id() as i32;
        assert!(
            describe(&[own, own]).starts_with(&format!("{own} (")),
            "{}",
            describe(&[own])
        );
    }

    #[test]
    fn the_command_is_searched_as_execvp_searches() {
        let found = |program: &[u8], path: Option<&[u8]>| -> Vec<String> {
            let strings = exec_candidates(program, path).expect("no NUL");
            strings
                .strings()
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        };
        assert_eq!(found(b"./run", Some(b"/bin")), ["./run"]);
        assert_eq!(
            found(b"sh", Some(b"/usr/bin::/bin")),
            ["/usr/bin/sh", "sh", "/bin/sh"]
        );
        assert_eq!(
            found(b"sh", None),
            ["/usr/local/bin/sh", "/bin/sh", "/usr/bin/sh"]
        );
        assert!(found(b"", Some(b"/bin")).is_empty());
        assert!(exec_candidates(b"s\0h", None).is_none());
    }

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
