//! Time since boot, `CLOCK_BOOTTIME` (clock_gettime(2)): comparable with the
//! kernel's own boot timestamps, and it keeps counting across suspend.

use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// Time since the kernel started.
pub fn since_boot() -> Duration {
    clock_gettime(ClockId::CLOCK_BOOTTIME).map_or(Duration::ZERO, Duration::from)
}
