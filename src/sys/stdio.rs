//! Standard fds: making sure 0, 1 and 2 are open (fcntl(2), open(2),
//! dup2(2)), and writing to one within a deadline (poll(2)).
//!
//! A kernel whose root has no `/dev/console` starts init with all three
//! closed. Rust's own start-up would then open `/dev/null` or abort (vminit
//! skips it, see `main.rs`), and any file vminit opened would land on fd 0-2
//! and become the application's stdio. So this runs before anything else.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};

/// Whether `fd` is open.
fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Which of fds 0-2 are closed.
pub fn closed() -> Vec<i32> {
    (0..=2).filter(|&fd| !is_open(fd)).collect()
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

/// Writes all of `bytes` to `fd` by `deadline`, whether the fd is blocking
/// or not, and returns how many bytes went out. The open file is shared
/// with processes that may have made it non-blocking (Node does) or whose
/// terminal stopped output (XOFF): so O_NONBLOCK is set for the write, and
/// the fd's flags restored after. Call it only when no other process uses
/// the fd any more: they would see the flag meanwhile.
pub fn write_by(fd: i32, bytes: &[u8], deadline: std::time::Instant) -> io::Result<usize> {
    // SAFETY: F_GETFL reads the open file's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL with the flags just read plus O_NONBLOCK.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    let mut written = 0;
    let result = loop {
        if written == bytes.len() {
            break Ok(written);
        }
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if let Ok(n) = usize::try_from(n) {
            written += n;
            continue;
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break Ok(written);
                }
                let mut poll = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let millis = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(1000);
                // SAFETY: one valid pollfd for the call's duration.
                unsafe { libc::poll(&mut poll, 1, millis) };
            }
            _ => break Err(error),
        }
    };
    // SAFETY: F_SETFL restoring the flags read above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    result
}
