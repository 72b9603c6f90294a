//! Making sure fds 0, 1 and 2 are open: fcntl(2), open(2), dup2(2).
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
        // It now serves as one of 0-2: keep it open.
        let _ = file.into_raw_fd();
    }
    Ok(())
}
