//! vminit's log: one `vminit:` prefix, three levels, to the console
//! (standard error) or the kernel log (`/dev/kmsg`, see dev-kmsg in the
//! kernel docs). Never given an env value: callers log keys and redacted
//! configuration only.
//!
//! Lines are cut to a size both targets keep: the kernel refuses a record
//! over 1 KiB with EINVAL, and a megabyte-long argv quoted whole would
//! flood a serial console. The kernel also rate-limits writers of
//! `/dev/kmsg` (10 lines per 5 s, dropped silently): a machine's init
//! lifts that for itself, and a line the kernel refuses goes to the
//! console instead.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use crate::config::settings::{LogTarget, Verbosity};
use crate::sys::stdio::Stall;

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Info as u8);
static KMSG: OnceLock<File> = OnceLock::new();
/// Errors and warnings also go to the console: the kernel may drop kmsg
/// lines (its rate limit could not be lifted).
static KMSG_MAY_DROP: AtomicBool = AtomicBool::new(true);

/// The longest record written to `/dev/kmsg`: the kernel refuses more
/// than 1024 bytes (`PRINTKRB_RECORD_MAX`, and 992 before 5.10).
const KMSG_MAX: usize = 976;
/// The longest line written to the console.
const CONSOLE_MAX: usize = 4096;
/// The file whose "on" turns the `/dev/kmsg` rate limit off.
const KMSG_RATE_LIMIT: &str = "/proc/sys/kernel/printk_devkmsg";

/// The importance of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// Sets how much is logged and where. A kmsg that cannot be opened leaves
/// the console in use (and says so).
pub fn configure(verbosity: Verbosity, target: LogTarget) {
    VERBOSITY.store(verbosity as u8, Ordering::Relaxed);
    if target == LogTarget::Kmsg && KMSG.get().is_none() {
        match std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
            Ok(file) => {
                let _ = KMSG.set(file);
            }
            Err(error) => write(
                Level::Warn,
                format_args!("cannot log to /dev/kmsg: {error}"),
            ),
        }
    }
}

/// Whether lines of `level` are shown.
pub fn enabled(level: Level) -> bool {
    let verbosity = VERBOSITY.load(Ordering::Relaxed);
    match level {
        Level::Error => true,
        Level::Warn | Level::Info => verbosity >= Verbosity::Info as u8,
        Level::Debug => verbosity >= Verbosity::Debug as u8,
    }
}

/// Turns off the kernel's rate limit on `/dev/kmsg` writers, so no line
/// of vminit's is dropped: for a machine's init only (the setting is the
/// kernel's). A kernel line `printk.devkmsg=ratelimit` locks it; then
/// errors and warnings also go to the console.
pub fn lift_kmsg_rate_limit() -> std::io::Result<()> {
    std::fs::write(KMSG_RATE_LIMIT, "on\n")?;
    KMSG_MAY_DROP.store(false, Ordering::Relaxed);
    Ok(())
}

/// Time spent writing log lines, in microseconds: a debug line on an
/// emulated serial console costs a millisecond, and the boot's step
/// timings ([`crate::record::steps`]) leave it out.
static WRITING_MICROS: AtomicU64 = AtomicU64::new(0);

/// How long writing log lines has taken so far.
pub fn time_spent() -> Duration {
    Duration::from_micros(WRITING_MICROS.load(Ordering::Relaxed))
}

/// Writes one line; the macros call it only when its level is enabled,
/// so that a hidden line costs neither formatting nor its arguments
/// (`signal::name` allocates, `Config::redacted` builds JSON).
pub fn write(level: Level, message: fmt::Arguments<'_>) {
    let start = Instant::now();
    write_line(level, message);
    let took = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    WRITING_MICROS.fetch_add(took, Ordering::Relaxed);
}

fn write_line(level: Level, message: fmt::Arguments<'_>) {
    let tag = match level {
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        Level::Info | Level::Debug => "",
    };
    let Some(mut kmsg) = KMSG.get() else {
        return always(format_args!("{tag}{message}"));
    };
    // kmsg priorities: 3 err, 4 warning, 6 info, 7 debug.
    let priority = match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug => 7,
    };
    let mut line = format!("<{priority}>vminit: {tag}{message}");
    cut(&mut line, KMSG_MAX - 1);
    line.push('\n');
    let important = matches!(level, Level::Error | Level::Warn);
    let refused = kmsg.write_all(line.as_bytes()).is_err();
    if refused || (important && KMSG_MAY_DROP.load(Ordering::Relaxed)) {
        always(format_args!("{tag}{message}"));
    }
}

/// Writes one `vminit:` line to standard error whatever the settings: for
/// usage output, and the log on the console.
pub fn always(message: fmt::Arguments<'_>) {
    let mut line = format!("vminit: {message}");
    cut(&mut line, CONSOLE_MAX - 1);
    line.push('\n');
    match END_CONSOLE.get() {
        Some(end) => {
            end.write(line.as_bytes());
        }
        // One write per line, so lines from vminit and the app never
        // interleave mid-line.
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// How long the console may make no progress at all, once the app has
/// ended, before its lines are given up, in a VM: as long as the flush's
/// bound. A host's log collector that pauses for a few seconds loses
/// nothing, and the exit line is what the host reads the status from.
pub const CONSOLE_STALL: Duration = Duration::from_secs(10);
/// The same in a container, whose status is its exit, not a line: short,
/// so that a stderr nobody reads cannot hold the end past an engine's stop
/// timeout.
pub const CONTAINER_CONSOLE_STALL: Duration = Duration::from_secs(1);
/// How long the console's lines may wait in all once the app has ended,
/// progress or not: a console that trickles cannot hold the end either.
pub const CONSOLE_TOTAL: Duration = Duration::from_secs(60);

/// The console from the app's end on, when no line may block PID 1.
static END_CONSOLE: OnceLock<EndConsole> = OnceLock::new();

/// Standard error as the end of the run writes it.
#[derive(Debug)]
struct EndConsole {
    /// A non-blocking twin of fd 2 (see `stdio::nonblocking_twin_of_stderr`);
    /// `None` when fd 2 cannot block (a regular file) or cannot be reopened.
    twin: Option<File>,
    /// One stall for every line: once the console has waited
    /// [`CONSOLE_STALL`] without progress, later lines only look whether
    /// it moves again.
    stall: Mutex<Stall>,
}

impl EndConsole {
    /// Writes `bytes` while the console makes progress; true when all went
    /// out. A write from within another (the panic hook's) does not wait.
    fn write(&self, bytes: &[u8]) -> bool {
        let Some(twin) = &self.twin else {
            return std::io::stderr().write_all(bytes).is_ok();
        };
        self.with_stall(&mut |stall| {
            crate::sys::stdio::write_within(twin.as_raw_fd(), bytes, stall)
                .is_ok_and(|n| n == bytes.len())
        })
    }

    /// Runs `work` with the shared stall; from within another such call
    /// (the panic hook's), with one that does not wait.
    fn with_stall(&self, work: &mut dyn FnMut(&mut Stall) -> bool) -> bool {
        let mut held = self.stall.try_lock();
        match &mut held {
            Ok(stall) => work(stall),
            Err(TryLockError::Poisoned(poisoned)) => work(poisoned.get_mut()),
            Err(TryLockError::WouldBlock) => work(&mut Stall::new(Duration::ZERO, Duration::ZERO)),
        }
    }
}

/// From here on, console lines never block vminit for long: they wait
/// while the console makes progress, [`CONSOLE_STALL`] without any in a VM
/// (`vm`), [`CONTAINER_CONSOLE_STALL`] in a container, and
/// [`CONSOLE_TOTAL`] in all, shared by every line (output stopped by XOFF,
/// a pipe nobody reads, a host that stopped reading the serial port). For
/// the end of the run, between the app's exit and vminit's.
pub fn bound_console(vm: bool) {
    let bound = if vm {
        CONSOLE_STALL
    } else {
        CONTAINER_CONSOLE_STALL
    };
    let _ = END_CONSOLE.get_or_init(|| EndConsole {
        twin: crate::sys::stdio::nonblocking_twin_of_stderr(),
        stall: Mutex::new(Stall::new(bound, CONSOLE_TOTAL)),
    });
}

/// Writes the exit line the host waits for, `vminit: exit_code=N`, and
/// waits for a terminal to send it, within the end's console bounds (see
/// [`bound_console`]), whatever the console's state; false when it did not
/// all go out.
pub fn exit_line(code: i32) -> bool {
    bound_console(true);
    let line = format!("vminit: exit_code={code}\n");
    let Some(end) = END_CONSOLE.get() else {
        return false;
    };
    end.write(line.as_bytes()) && end.with_stall(&mut crate::sys::tty::drain_stderr)
}

/// Writes a line to the kernel log when the console could not take it,
/// whatever the log's target: `/dev/kmsg` opened for this line.
pub fn kmsg_fallback(message: fmt::Arguments<'_>) {
    let mut line = format!("<3>vminit: {message}");
    cut(&mut line, KMSG_MAX - 1);
    line.push('\n');
    let kmsg = KMSG
        .get()
        .map(|f| f.try_clone())
        .unwrap_or_else(|| std::fs::OpenOptions::new().write(true).open("/dev/kmsg"));
    if let Ok(mut kmsg) = kmsg {
        let _ = kmsg.write_all(line.as_bytes());
    }
}

/// Cuts `line` to at most `max` bytes, on a character boundary, saying so.
fn cut(line: &mut String, max: usize) {
    if line.len() <= max {
        return;
    }
    let total = line.len();
    let note = format!("… ({total} bytes, cut)");
    let mut end = max.saturating_sub(note.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push_str(&note);
}

/// An error and its sources as one line: `Cannot load module x: No such file`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// Logs an error line.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Error) {
            $crate::log::write($crate::log::Level::Error, format_args!($($arg)*))
        }
    };
}

/// Logs a warning line.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Warn) {
            $crate::log::write($crate::log::Level::Warn, format_args!($($arg)*))
        }
    };
}

/// Logs an info line.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Info) {
            $crate::log::write($crate::log::Level::Info, format_args!($($arg)*))
        }
    };
}

/// Logs a debug line.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::write($crate::log::Level::Debug, format_args!($($arg)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let mut line = "é".repeat(1000);
        cut(&mut line, KMSG_MAX - 1);
        assert!(line.len() < KMSG_MAX, "{}", line.len());
        assert!(line.ends_with("… (2000 bytes, cut)"), "{line}");
        let mut short = "short".to_owned();
        cut(&mut short, 10);
        assert_eq!(short, "short");
    }
}
