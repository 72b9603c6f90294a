//! The controlling terminal's foreground process group: tcgetpgrp(3),
//! tcsetpgrp(3), isatty(3), on standard input. See credentials(7) and the
//! "job control" section of termios(3). And new pseudo-terminals (pty(7),
//! ioctl_tty(2)) for the API's interactive execs.

use std::io;
use std::os::fd::BorrowedFd;

use nix::unistd::{Pid, getpgrp, isatty, tcgetpgrp, tcsetpgrp};

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    isatty(stdin()).unwrap_or(false)
}

/// The foreground process group of standard input's terminal, if any.
pub fn foreground_group() -> Option<i32> {
    tcgetpgrp(stdin()).ok().map(Pid::as_raw)
}

/// Whether standard input is a terminal whose foreground group is vminit's:
/// only then may vminit hand the terminal to the application.
pub fn we_are_foreground() -> bool {
    stdin_is_terminal() && foreground_group() == Some(getpgrp().as_raw())
}

/// Makes `group` the foreground group of standard input's terminal. The
/// caller blocks SIGTTOU when it is not in the foreground itself.
pub fn set_foreground(group: i32) -> io::Result<()> {
    tcsetpgrp(stdin(), Pid::from_raw(group)).map_err(io::Error::from)
}

/// Standard input, borrowed without `std::io::stdin()`, which allocates
/// and so may not run between fork and exec.
fn stdin() -> BorrowedFd<'static> {
    // SAFETY: a BorrowedFd is only a number here; vminit never closes fd 0
    // (`machine::open_console_if_closed` and `stdio::fill_from` fill 0-2
    // when they start closed). Were it still closed, the calls on it fail
    // with EBADF, which every caller handles.
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// Whether vminit's parent is a job-control shell that can resume it after
/// a stop: in the same session, in another process group (then a stopped
/// vminit shows as a stopped job, and `fg`/`bg` send SIGCONT).
pub fn parent_can_resume_us() -> bool {
    let parent = nix::unistd::getppid();
    let parent_group = nix::unistd::getpgid(Some(parent)).ok();
    let same_session = nix::unistd::getsid(Some(parent)).ok() == nix::unistd::getsid(None).ok();
    same_session && parent_group.is_some() && parent_group != Some(getpgrp())
}

/// Waits until everything written to standard error has been sent, when
/// it is a terminal, while `stall` allows (see `stdio::drain_within`);
/// false if output was still queued when it gave up. tcdrain(3) would wait
/// forever for a terminal whose output is stopped (XOFF, with IXON on by
/// default), so the output queue's length (`TIOCOUTQ`, tty_ioctl(4)) is
/// polled instead, and tcdrain called only once it is empty.
pub fn drain_stderr(stall: &mut super::stdio::Stall) -> bool {
    // SAFETY: as for `stdin()`: fd 2 is only borrowed for this call.
    let stderr = unsafe { BorrowedFd::borrow_raw(2) };
    if !isatty(stderr).unwrap_or(false) {
        return true;
    }
    if !super::stdio::drain_within(2, stall) {
        return false;
    }
    // What is left sits in the device itself (a UART's FIFO), which the
    // kernel's own wait bounds.
    let _ = nix::sys::termios::tcdrain(stderr);
    true
}

/// vminit's own process group.
pub fn own_group() -> i32 {
    getpgrp().as_raw()
}
/// `TIOCGPTPEER` (`_IO('T', 0x41)`): opens a master's peer by descriptor
/// (Linux 4.13), without a path through `/dev/pts`. libc lacks it.
const TIOCGPTPEER: libc::Ioctl = 0x5441;

/// A new pseudo-terminal: its master, then its peer (the terminal a
/// program gets), both closed on exec, the peer never made the caller's
/// controlling terminal. Needs devpts on `/dev/pts` (vminit mounts it).
pub fn open_pty() -> io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::OpenOptionsExt;
    let master = std::fs::File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/ptmx")?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int, which outlives the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &raw const unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open(2) flags and returns a new descriptor.
    let peer = unsafe { libc::ioctl(master.as_raw_fd(), TIOCGPTPEER, flags) };
    if peer < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `peer` is a fresh descriptor that nothing else owns.
    Ok((master, unsafe { std::fs::File::from_raw_fd(peer) }))
}

/// Sets a terminal's size, as a resized window does (the foreground
/// group gets SIGWINCH).
pub fn set_window_size(terminal: &std::fs::File, rows: u16, cols: u16) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize, which outlives the call.
    if unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSWINSZ, &raw const size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
