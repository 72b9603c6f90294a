//! Signal masks, synchronous waiting, and sending: sigprocmask(2),
//! sigtimedwait(2), kill(2), sigaction(2).
//!
//! vminit never installs a handler: it blocks every signal before anything
//! else and takes them one by one with `sigtimedwait`, so a signal that
//! arrives at any moment (before the app exists, between fork and exec) stays
//! pending until the supervisor loop reads it. Real-time signals are plain
//! numbers here, as `nix::sys::signal::Signal` has no variants for them.
//!
//! Masks are the kernel's 64-bit sets, passed with raw `rt_sig*` syscalls:
//! libc's `sigfillset` leaves out the signals libc keeps for itself (musl:
//! 32-34, glibc: 32-33), and one of those arriving unblocked would kill PID 1
//! with its default action. A program's SIGRTMIN under glibc is 34.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use nix::sys::signal::SigSet;
pub use nix::sys::signal::Signal;
use nix::sys::time::TimeSpec;

/// The highest signal number on Linux (`_NSIG - 1`).
pub const MAX_SIGNAL: i32 = 64;

/// Every signal, 1 to 64, in the kernel's representation.
const ALL_SIGNALS: u64 = u64::MAX;

/// The size of the kernel's signal set, as the `rt_sig*` calls want it.
const KERNEL_SIGSET_BYTES: usize = 8;

/// Sets the signal mask to `set` (the kernel ignores SIGKILL and SIGSTOP).
fn set_mask(set: u64) -> io::Result<()> {
    // SAFETY: `set` is a valid kernel sigset of the size passed; the old
    // mask is not asked for.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &set,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_BYTES,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Blocks every signal that can be blocked, libc's reserved ones included.
pub fn block_all() -> io::Result<()> {
    set_mask(ALL_SIGNALS)
}

/// Blocks `signal` in addition to those already blocked.
pub fn block(signal: Signal) -> io::Result<()> {
    let mut set = SigSet::empty();
    set.add(signal);
    set.thread_block().map_err(io::Error::from)
}

/// The signals this process ignores, as a kernel set (bit N-1 for signal
/// N), from `SigIgn` in `/proc/self/status`; `None` without `/proc`.
///
/// Read on every start, so with as few syscalls as can be: one openat, one
/// read into the stack (the file is under 2 KiB, and `/proc` gives it
/// whole to one read), one close; std's `read_to_string` takes 14 and
/// two allocations.
pub fn ignored() -> Option<u64> {
    let mut buffer = [0u8; 4096];
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/proc/self/status".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `buffer` is writable for its whole length.
    let length = unsafe { libc::syscall(libc::SYS_read, fd, buffer.as_mut_ptr(), buffer.len()) };
    // SAFETY: closing the fd opened above, used nowhere else.
    unsafe { libc::syscall(libc::SYS_close, fd) };
    let status = buffer.get(..usize::try_from(length).ok()?)?;
    sig_ign(status)
}

/// The `SigIgn:` mask of a `/proc/PID/status` text, when its line is
/// whole (a text cut short by the buffer, after a very long `Groups:`
/// line, gives `None`, not a cut mask).
fn sig_ign(status: &[u8]) -> Option<u64> {
    let start = status.windows(8).position(|w| w == b"\nSigIgn:")? + 8;
    let length = status[start..].iter().position(|&b| b == b'\n')?;
    let mask = std::str::from_utf8(&status[start..start + length]).ok()?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

/// Sets the dispositions of the signals in `set` (bit N-1 for signal N)
/// back to the default, with no flags. Async-signal-safe.
fn set_default(set: u64) {
    // The kernel's own `struct sigaction` all zeroes: SIG_DFL, no flags, no
    // mask. The raw syscall also reaches the signals libc keeps for itself
    // (32-34), which an ignoring ancestor may have left ignored.
    let default_action = [0u64; 4];
    for signal in 1..=MAX_SIGNAL {
        if set & (1 << (signal - 1)) == 0 || signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the action is a valid, fully initialised kernel sigaction
        // of the size passed; no old action is asked for.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET_BYTES,
            )
        };
    }
}

/// Sets SIGCHLD's disposition back to the default, with no flags. vminit
/// relies on it: inherited as ignored (`trap '' CHLD`, `signal(SIGCHLD,
/// SIG_IGN)` in the parent), or with `SA_NOCLDWAIT`, it lets the kernel
/// reap the app itself, and the app's status is lost. Other ignored
/// signals stay ignored, as the parent meant (`nohup vminit` is not
/// stopped by SIGHUP), as with tini; the app gets them at their default
/// ([`reset_for_exec`]).
pub fn reset_sigchld() {
    set_default(1 << (libc::SIGCHLD - 1));
}

/// Gives a freshly forked child the state a new program expects: every
/// disposition in `ignored` back to default and an empty mask. (vminit
/// installs no handler, and exec resets handled signals by itself: only
/// ignored ones survive it.) Only async-signal-safe calls, so it may run
/// between fork and exec.
pub fn reset_for_exec(ignored: u64) -> io::Result<()> {
    set_default(ignored);
    set_mask(0)
}

/// One signal taken by [`wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub signal: i32,
    /// Raised by vminit itself, as the kernel raises SIGPIPE for a write
    /// to a closed pipe (`SI_USER` from our own pid): not for the app.
    pub from_self: bool,
    /// SIGIO raised by the kernel for a file set to signal (`O_ASYNC` with
    /// `F_SETSIG`, `si_code` one of `POLL_*`), not sent by a process.
    pub io_ready: bool,
}

/// Waits for any blocked signal, at most `timeout` (forever with `None`).
/// Returns it, or `None` on timeout or interruption.
pub fn wait(timeout: Option<Duration>) -> io::Result<Option<Received>> {
    let set = ALL_SIGNALS;
    let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
    let spec = timeout.map(TimeSpec::from_duration);
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s.as_ref() as *const libc::timespec);
    // SAFETY: the set, the siginfo buffer and the timespec (or NULL, to wait
    // forever) are valid for the call's duration.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set,
            info.as_mut_ptr(),
            spec_ptr,
            KERNEL_SIGSET_BYTES,
        )
    };
    if rc > 0 {
        // SAFETY: a successful rt_sigtimedwait filled in the siginfo.
        let info = unsafe { info.assume_init() };
        // SAFETY: si_pid is valid to read for SI_USER, checked first.
        let from_self =
            info.si_code == libc::SI_USER && unsafe { info.si_pid() } == super::process::own_pid();
        let io_ready = rc == libc::c_long::from(libc::SIGIO) && info.si_code > 0;
        return Ok(i32::try_from(rc).ok().map(|signal| Received {
            signal,
            from_self,
            io_ready,
        }));
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) => Ok(None),
        _ => Err(error),
    }
}

/// Sends `signal` to `pid` (a process), `-pid` (a process group), or `-1`
/// (every process the caller may signal but itself), as kill(2) does.
pub fn send(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A file that has input when SIGTERM is pending (signalfd(2)), for a
/// helper that waits in poll(2) with every signal blocked, as it inherits
/// them from PID 1.
pub fn termination_file() -> io::Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_signals_are_read_from_proc() {
        // The test runner may ignore some signals, but never SIGKILL.
        let mask = ignored().expect("/proc is mounted");
        assert_eq!(mask & (1 << (libc::SIGKILL - 1)), 0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(Some(mask), sig_ign(status.as_bytes()));
        assert_eq!(
            sig_ign(b"SigBlk:\t0\nSigIgn:\t0000000000001001\n"),
            Some(0x1001)
        );
        assert_eq!(sig_ign(b"SigBlk:\t0\n"), None);
        // Cut short: the line has no end, and its digits are not the mask.
        assert_eq!(sig_ign(b"SigBlk:\t0\nSigIgn:\t00000000000"), None);
    }
}
