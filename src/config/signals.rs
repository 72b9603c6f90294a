//! Signals by name: the names vminit logs, and the parser of
//! `vminit.stop_signal` (which takes what `docker run --stop-signal` and an
//! image's `StopSignal` take: `SIGINT`, `INT`, `sigint`, or a number).

use crate::config::error::Problem;

/// The highest signal number Linux has (`SIGRTMAX`).
const MAX_SIGNAL: i32 = 64;

/// Signals 1 to 31 by number.
const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// A signal's conventional name, for log lines.
pub fn name(signal: i32) -> String {
    match usize::try_from(signal).ok().and_then(|i| NAMES.get(i)) {
        Some(name) if !name.is_empty() => (*name).to_owned(),
        _ => format!("signal {signal}"),
    }
}

/// `SIGINT`, `INT` (any case), or a number from 1 to 64.
pub fn parse(value: &str) -> Result<i32, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be a signal name such as SIGINT or INT, or a number from 1 to 64",
    );
    if let Ok(number) = value.parse::<i32>() {
        return if (1..=MAX_SIGNAL).contains(&number) {
            Ok(number)
        } else {
            Err(RULE)
        };
    }
    let upper = value.to_ascii_uppercase();
    let wanted = format!("SIG{}", upper.strip_prefix("SIG").unwrap_or(&upper));
    NAMES
        .iter()
        .position(|name| !name.is_empty() && *name == wanted)
        .and_then(|i| i32::try_from(i).ok())
        .ok_or(RULE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(libc::SIGSYS), "SIGSYS");
        assert_eq!(name(40), "signal 40");
        assert_eq!(name(0), "signal 0");
    }

    #[test]
    fn stop_signals_as_docker_takes_them() {
        for (text, signal) in [
            ("SIGINT", libc::SIGINT),
            ("INT", libc::SIGINT),
            ("sigquit", libc::SIGQUIT),
            ("Term", libc::SIGTERM),
            ("9", libc::SIGKILL),
            ("37", 37),
            ("SIGWINCH", libc::SIGWINCH),
        ] {
            assert_eq!(parse(text), Ok(signal), "{text}");
        }
        for bad in ["", "SIG", "0", "65", "-2", "SIGNOPE", "SIG INT", "2.0"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
