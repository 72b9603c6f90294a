//! Standard fds: making sure 0, 1 and 2 are open (poll(2), fcntl(2),
//! open(2), dup2(2)), and writing to one while it makes progress (poll(2),
//! the `TIOCOUTQ` and `FIONREAD` ioctls).
//!
//! A kernel whose root has no `/dev/console` starts init with all three
//! closed. Rust's own start-up would then open `/dev/null` or abort (vminit
//! skips it, see `main.rs`), and any file vminit opened would land on fd 0-2
//! and become the application's stdio. So this runs before anything else.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::time::{Duration, Instant};

/// Whether `fd` is open.
fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Which of fds 0-2 are closed: one poll(2) for the three (a closed fd
/// answers POLLNVAL), else one fcntl(2) each.
pub fn closed() -> Vec<i32> {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: three initialised pollfd structs, their count; no waiting.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return (0..=2).filter(|&fd| !is_open(fd)).collect();
    }
    fds.iter()
        .filter(|p| p.revents & libc::POLLNVAL != 0)
        .map(|p| p.fd)
        .collect()
}

/// Points each closed fd of 0-2 at `path` (opened read-write).
pub fn fill_from(path: &str) -> io::Result<()> {
    let missing = closed();
    if missing.is_empty() {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let opened = file.as_raw_fd();
    for fd in missing {
        if fd != opened {
            // SAFETY: both descriptors are valid; dup2 onto a closed slot.
            if unsafe { libc::dup2(opened, fd) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    if opened <= 2 {
        // It now serves as one of 0-2: keep it open, and inheritable. std
        // opens with O_CLOEXEC, and dup2 clears the flag only on the
        // copies: left set, the app would start with this fd closed.
        let fd = file.into_raw_fd();
        // SAFETY: F_SETFD on a descriptor we own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Points each of fds 0-2 that is the device `path` names at `path`
/// opened anew (`O_NOCTTY`: the controlling terminal is the device's, and
/// stays): after the root switch, the console the kernel opened from the
/// initramfs's `/dev` is a deleted node, and `tty` says "not a tty".
pub fn reopen_same_device(path: &str) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)?;
    let device = file.metadata()?.rdev();
    for fd in 0..=2 {
        let same = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .is_ok_and(|m| m.rdev() == device && (m.mode() & libc::S_IFMT) == libc::S_IFCHR);
        // SAFETY: both descriptors are valid; dup2 replaces fd atomically.
        if same && unsafe { libc::dup2(file.as_raw_fd(), fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A second, non-blocking open file for what fd 2 is, when it is a
/// terminal or a pipe (reopened through `/proc/self/fd/2`, `O_NOCTTY`):
/// its `O_NONBLOCK` is its own, so writing through it never blocks vminit
/// and changes nothing for the app that shares fd 2 (and may have made it
/// non-blocking itself, as Node does). `None` for anything else (a
/// regular file never blocks) or without `/proc`.
pub fn nonblocking_twin_of_stderr() -> Option<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let kind = std::fs::metadata("/proc/self/fd/2").ok()?.file_type();
    if !(kind.is_char_device() || kind.is_fifo()) {
        return None;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open("/proc/self/fd/2")
        .ok()
}

/// How long a writer to a device that may stall keeps waiting: while the
/// device makes progress (takes bytes, or sends what it holds), until it
/// has waited `bound` without any, and `total` in all. Only time spent
/// waiting counts: a quiet spell between two writes is no stall. Once
/// given up, a later write or drain still looks for a tenth of a second
/// whether the device moves again, for half a second in all.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    bound: Duration,
    /// Waited since the last progress.
    stalled: Duration,
    /// Waiting left in all.
    left: Duration,
    /// What is left of this call's look after a give-up.
    look: Duration,
}

impl Stall {
    /// Waits up to `bound` without progress, `total` in all.
    pub fn new(bound: Duration, total: Duration) -> Stall {
        Stall {
            bound,
            stalled: Duration::ZERO,
            left: total,
            look: Duration::ZERO,
        }
    }

    /// Waits until `deadline`, progress or not.
    pub fn until(deadline: Instant) -> Stall {
        Stall::new(
            Duration::MAX,
            deadline.saturating_duration_since(Instant::now()),
        )
    }

    /// The device made progress: the bound starts again.
    pub fn progressed(&mut self) {
        self.stalled = Duration::ZERO;
    }

    /// A write or drain begins: after a give-up it may look, while the
    /// looks have not added up to [`LOOKS_IN_ALL`].
    fn begin(&mut self) {
        let over = self.stalled.saturating_sub(self.bound);
        self.look = if self.stalled >= self.bound && over < LOOKS_IN_ALL {
            PROGRESS_LOOK
        } else {
            Duration::ZERO
        };
    }

    /// Waits, with `wait` (poll or sleep, given the most it may take, at
    /// most [`PROGRESS_LOOK`]); false when waiting is over.
    fn wait(&mut self, wait: impl FnOnce(Duration)) -> bool {
        let allowed = if self.look.is_zero() {
            self.bound.saturating_sub(self.stalled)
        } else {
            self.look
        };
        let most = allowed.min(self.left).min(PROGRESS_LOOK);
        if most.is_zero() {
            return false;
        }
        let start = Instant::now();
        wait(most);
        let waited = start.elapsed();
        self.stalled = self.stalled.saturating_add(waited);
        self.left = self.left.saturating_sub(waited);
        self.look = self.look.saturating_sub(waited);
        true
    }
}

/// Bytes written to `fd` that its device has not sent yet: a terminal's
/// output queue (`TIOCOUTQ`), what a pipe holds (`FIONREAD`, which a pipe
/// answers on either end); `None` for anything else.
pub fn queued_output(fd: i32) -> Option<i32> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ and FIONREAD each write one int to the pointer.
    let answered = unsafe {
        libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) == 0
            || libc::ioctl(fd, libc::FIONREAD, &mut queued) == 0
    };
    answered.then_some(queued)
}

/// Notes progress in `stall` when the queue went down from `before` to
/// `now`.
fn note_queue(stall: &mut Stall, before: Option<i32>, now: Option<i32>) {
    if matches!((before, now), (Some(before), Some(now)) if now < before) {
        stall.progressed();
    }
}

/// Writes `bytes` to the non-blocking `fd`, waiting for room with poll(2)
/// while `stall` allows: each byte taken, and each drop in what the device
/// holds (see [`queued_output`]), is progress. Returns how many bytes went
/// out.
pub fn write_within(fd: i32, bytes: &[u8], stall: &mut Stall) -> io::Result<usize> {
    let mut written = 0;
    let mut queued = queued_output(fd);
    stall.begin();
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => {
                written += n;
                stall.progressed();
                continue;
            }
            // Nothing taken: wait for room as for EAGAIN.
            Ok(_) => {}
            Err(_) => {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EINTR | libc::EAGAIN) => {}
                    _ => return Err(error),
                }
            }
        }
        // A device that sends slowly frees room in steps too small to wake
        // poll (a terminal waits for 256 bytes free): each wait is short.
        let waited = stall.wait(|most| {
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let millis = libc::c_int::try_from(most.as_millis().max(1)).unwrap_or(100);
            // SAFETY: one valid pollfd for the call's duration.
            unsafe { libc::poll(&mut poll, 1, millis) };
        });
        if !waited {
            break;
        }
        let now = queued_output(fd);
        note_queue(stall, queued, now);
        queued = now;
    }
    Ok(written)
}

/// Waits, while `stall` allows, until the terminal `fd` has sent what it
/// holds (see [`queued_output`]: the queue shrinking is progress); true
/// when it has, or when nothing tells.
pub fn drain_within(fd: i32, stall: &mut Stall) -> bool {
    let mut queued = queued_output(fd);
    stall.begin();
    while queued.is_some_and(|q| q > 0) {
        if !stall.wait(|most| std::thread::sleep(most.min(Duration::from_millis(5)))) {
            return false;
        }
        let now = queued_output(fd);
        note_queue(stall, queued, now);
        queued = now;
    }
    true
}

/// How long one wait of a stalled writer lasts at most: how often it looks
/// for progress.
const PROGRESS_LOOK: Duration = Duration::from_millis(100);
/// How long the looks after a give-up may last in all.
const LOOKS_IN_ALL: Duration = Duration::from_millis(500);

/// Copies what the pipe `pipe` holds, without waiting for more, to
/// standard error through its non-blocking twin, all written by
/// `deadline` (a console that stalls keeps only what it took by then).
pub fn drain_to_stderr(pipe: impl std::os::fd::AsFd, deadline: Instant) {
    use std::io::Read as _;
    use std::os::fd::AsRawFd as _;
    let Some(console) = nonblocking_twin_of_stderr() else {
        return;
    };
    let Ok(pipe) = pipe.as_fd().try_clone_to_owned() else {
        return;
    };
    if super::fd::set_nonblocking(&pipe).is_err() {
        return;
    }
    let mut pipe = std::fs::File::from(pipe);
    let mut chunk = [0u8; 4096];
    let mut stall = Stall::until(deadline);
    while Instant::now() < deadline {
        let Ok(n) = pipe.read(&mut chunk) else {
            return;
        };
        if n == 0 || write_within(console.as_raw_fd(), &chunk[..n], &mut stall).is_err() {
            return;
        }
    }
}
