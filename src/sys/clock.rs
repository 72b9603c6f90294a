//! Clocks (clock_gettime(2), clock_settime(2)). Time since boot is
//! `CLOCK_BOOTTIME`: comparable with the
//! kernel's own boot timestamps, and it keeps counting across suspend.

use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// Time since the kernel started.
pub fn since_boot() -> Duration {
    clock_gettime(ClockId::CLOCK_BOOTTIME).map_or(Duration::ZERO, Duration::from)
}

/// The wall clock, in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> i64 {
    clock_gettime(ClockId::CLOCK_REALTIME).map_or(0, |t| {
        t.tv_sec()
            .saturating_mul(1_000_000_000)
            .saturating_add(t.tv_nsec())
    })
}

/// Sets the wall clock (`CLOCK_REALTIME`, clock_settime(2)): what a
/// restored snapshot needs, its clock frozen at the snapshot.
pub fn set_realtime_ns(ns: i64) -> std::io::Result<()> {
    let spec =
        nix::sys::time::TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    nix::time::clock_settime(ClockId::CLOCK_REALTIME, spec).map_err(std::io::Error::from)
}
