//! A message channel between PID 1 and a helper it forks (the host API's
//! server): a `SOCK_SEQPACKET` socket pair (unix(7)), which keeps each
//! message whole and in order, so neither side parses a stream.
//! Sends never block and never raise SIGPIPE: PID 1 must not wait on a
//! helper, and a helper that is gone is an error, not a signal.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The most one message may carry: an exit record, a request.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// Two connected ends, each closed on exec.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `message` whole, or fails at once (`WouldBlock` when the peer
/// has not read what was sent before).
pub fn send(end: &OwnedFd, message: &[u8]) -> io::Result<()> {
    // SAFETY: `message` is valid for reads of its length.
    let rc = unsafe {
        libc::send(
            end.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The next message, waiting for one only when `wait`; `None` when none
/// is queued (without `wait`); `UnexpectedEof` once the peer has closed
/// its end.
pub fn receive(end: &OwnedFd, wait: bool) -> io::Result<Option<Vec<u8>>> {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
    loop {
        // SAFETY: `buffer` is valid for writes of its length.
        let rc = unsafe {
            libc::recv(
                end.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                flags,
            )
        };
        if rc > 0 {
            buffer.truncate(rc.unsigned_abs());
            return Ok(Some(buffer));
        }
        if rc == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(error),
        }
    }
}
