//! Ending the machine: reboot(2) with power-off or restart, and turning
//! Ctrl-Alt-Del into a SIGINT for PID 1 (`LINUX_REBOOT_CMD_CAD_OFF`).

use std::io;

use nix::sys::reboot::{RebootMode, reboot, set_cad_enabled};

/// Makes the kernel send SIGINT to PID 1 on Ctrl-Alt-Del instead of
/// restarting at once, so a host's "graceful stop" reaches the app.
pub fn ctrl_alt_del_sends_sigint() -> io::Result<()> {
    set_cad_enabled(false).map_err(io::Error::from)
}

/// Asks the kernel to power off, or to restart. Returns only on failure.
pub fn end_machine(restart: bool) -> io::Error {
    let mode = if restart {
        RebootMode::RB_AUTOBOOT
    } else {
        RebootMode::RB_POWER_OFF
    };
    match reboot(mode) {
        Err(errno) => errno.into(),
    }
}
