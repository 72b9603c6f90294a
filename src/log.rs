//! vminit's log: one `vminit:` prefix, three levels, to the console
//! (standard error) or the kernel log (`/dev/kmsg`, see dev-kmsg in the
//! kernel docs). Never given an env value: callers log keys and redacted
//! configuration only.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::settings::{LogTarget, Verbosity};

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Info as u8);
static KMSG: OnceLock<File> = OnceLock::new();

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

/// Writes one line; the macros call it only when its level is enabled,
/// so that a hidden line costs neither formatting nor its arguments
/// (`signal::name` allocates, `Config::redacted` builds JSON).
pub fn write(level: Level, message: fmt::Arguments<'_>) {
    let tag = match level {
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        Level::Info | Level::Debug => "",
    };
    match KMSG.get() {
        Some(mut kmsg) => {
            // kmsg priorities: 3 err, 4 warning, 6 info, 7 debug.
            let priority = match level {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug => 7,
            };
            let _ = kmsg.write_all(format!("<{priority}>vminit: {tag}{message}\n").as_bytes());
        }
        None => always(format_args!("{tag}{message}")),
    }
}

/// Writes one `vminit:` line to standard error whatever the settings: for
/// the exit line the host waits for, and for usage output.
pub fn always(message: fmt::Arguments<'_>) {
    // One write per line, so lines from vminit and the app never interleave mid-line.
    let _ = std::io::stderr().write_all(format!("vminit: {message}\n").as_bytes());
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
