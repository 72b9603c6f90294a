//! Where a boot's time goes before the app starts: each step (the early
//! mounts, each module's load, the wait for the root device, its mount,
//! the overlay, the switch, volumes, network, the user's lookup, set-up
//! steps, the spawn) with how long it took, in the order taken. The debug
//! log prints them once the app has started (`steps:`), and
//! `cargo xtask bench-vm` breaks vminit's part of a boot down by them.
//!
//! One list for the process: vminit is single-threaded, and the steps are
//! taken in many modules that would otherwise pass it along.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::log;

/// The steps taken so far: name, duration.
static STEPS: Mutex<Vec<(Cow<'static, str>, Duration)>> = Mutex::new(Vec::new());

/// Runs `work` as the step `name`, and records how long it took, less
/// the time its log lines took to write (shown apart, as `log`).
pub fn time<T>(name: impl Into<Cow<'static, str>>, work: impl FnOnce() -> T) -> T {
    let (start, logged) = (Instant::now(), log::time_spent());
    let result = work();
    let writing = log::time_spent().saturating_sub(logged);
    record(name.into(), start.elapsed().saturating_sub(writing));
    result
}

fn record(name: Cow<'static, str>, took: Duration) {
    if let Ok(mut steps) = STEPS.lock() {
        steps.push((name, took));
    }
}

/// The steps as one line, `name=MICROSECONDS` each, in order, then
/// `log=` the time all log lines so far took to write.
pub fn line() -> String {
    let Ok(steps) = STEPS.lock() else {
        return String::new();
    };
    let mut line = format_line(&steps);
    line.push_str(&format!(" log={}", log::time_spent().as_micros()));
    line
}

fn format_line(steps: &[(Cow<'static, str>, Duration)]) -> String {
    let mut line = String::new();
    for (name, took) in steps {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&format!("{name}={}", took.as_micros()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_listed_in_order_in_microseconds() {
        let steps = [
            (Cow::Borrowed("mounts"), Duration::from_micros(812)),
            (
                Cow::Owned("module:virtio_blk".to_owned()),
                Duration::from_millis(2),
            ),
        ];
        assert_eq!(format_line(&steps), "mounts=812 module:virtio_blk=2000");
        assert_eq!(time("test-step", || 7), 7);
        assert!(line().contains("test-step="));
    }
}
