//! File status flags with fcntl(2): `O_NONBLOCK`, and `O_ASYNC` with
//! `F_SETOWN` and `F_SETSIG`, which make the kernel raise a signal when a
//! file has input. PID 1 waits for signals only (sigtimedwait), so a file
//! it watches (a power button, the API's channel) must raise one.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// fcntl(2)'s `F_SETSIG` (`asm-generic/fcntl.h`, the same on x86-64 and
/// arm64), which the libc crate does not define.
const F_SETSIG: libc::c_int = 10;

fn fcntl(fd: libc::c_int, command: libc::c_int, argument: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: fcntl on a descriptor the caller borrows, with an integer
    // argument only.
    let rc = unsafe { libc::fcntl(fd, command, argument) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Adds `flags` to the file's status flags.
fn add_flags(fd: libc::c_int, flags: libc::c_int) -> io::Result<()> {
    let now = fcntl(fd, libc::F_GETFL, 0)?;
    fcntl(fd, libc::F_SETFL, now | flags).map(drop)
}

/// Makes reads and writes on `file` return `WouldBlock` rather than wait.
pub fn set_nonblocking(file: impl AsFd) -> io::Result<()> {
    add_flags(file.as_fd().as_raw_fd(), libc::O_NONBLOCK)
}

/// Makes the kernel send SIGIO to this process when `file` has input, with
/// `si_code` set (`F_SETSIG`) so that a SIGIO from kill(2) is told apart;
/// reads no longer block.
pub fn signal_when_ready(file: impl AsFd) -> io::Result<()> {
    let fd = file.as_fd().as_raw_fd();
    // SAFETY: getpid has no preconditions.
    fcntl(fd, libc::F_SETOWN, unsafe { libc::getpid() })?;
    fcntl(fd, F_SETSIG, libc::SIGIO)?;
    add_flags(fd, libc::O_ASYNC | libc::O_NONBLOCK)
}

/// What [`poll`] waits for on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Input, or the end of it.
    Read,
    /// Room to write.
    Write,
}

/// Waits until one of `files` is ready for what it is watched for (an
/// error or a hang-up counts), at most `timeout` (without one, until
/// then); returns which are, in order (none on a timeout or an
/// interruption).
pub fn poll(
    files: &[(std::os::fd::BorrowedFd<'_>, Interest)],
    timeout: Option<std::time::Duration>,
) -> io::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let mut polled: Vec<PollFd<'_>> = files
        .iter()
        .map(|(fd, interest)| {
            let events = match interest {
                Interest::Read => PollFlags::POLLIN,
                Interest::Write => PollFlags::POLLOUT,
            };
            PollFd::new(*fd, events)
        })
        .collect();
    // Longer than poll(2) takes (24 days) waits in more than one call.
    let timeout = timeout.map_or(PollTimeout::NONE, |t| {
        PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX)
    });
    match nix::poll::poll(&mut polled, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(polled
        .iter()
        .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

/// Waits until one of `files` has input or a hang-up, at most `timeout`
/// (without one, until then); returns which have, in order.
pub fn wait_readable(
    files: &[std::os::fd::BorrowedFd<'_>],
    timeout: Option<std::time::Duration>,
) -> io::Result<Vec<bool>> {
    let watched: Vec<_> = files.iter().map(|fd| (*fd, Interest::Read)).collect();
    poll(&watched, timeout)
}

/// A pipe: its read end, then its write end, both closed on exec.
pub fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// Sets how much the pipe `file` holds (`F_SETPIPE_SZ`; at most
/// `/proc/sys/fs/pipe-max-size` without `CAP_SYS_RESOURCE`).
pub fn set_pipe_size(file: impl AsFd, bytes: usize) -> io::Result<()> {
    let bytes = libc::c_int::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
    fcntl(file.as_fd().as_raw_fd(), libc::F_SETPIPE_SZ, bytes).map(drop)
}
