//! The exit record: how the application ended, as one JSON object
//! `{"exit_code": N, "signal": null|N, "oom_killed": bool, "timings": {…}}`,
//! and the channels that carry it to the host besides the console's exit
//! line: a virtio-serial port and an AF_VSOCK connection.
//!
//! Every channel is bounded in time: a host that never reads cannot keep
//! the VM from powering off.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use serde_json::json;

pub mod oom;
pub mod steps;

/// Exit status for invalid configuration.
pub const EXIT_CONFIG: i32 = 2;
/// Exit status when the command cannot be run (found, but not executable).
pub const EXIT_CANNOT_RUN: i32 = 126;
/// Exit status when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit status reported when vminit itself fails (sysexits' EX_SOFTWARE),
/// or the app's status is lost.
pub const EXIT_INTERNAL: i32 = 70;
use thiserror::Error;

use crate::config::channels::VsockAddr;
use crate::sys::vsock;

/// How long one channel may take, all steps included.
pub const CHANNEL_TIMEOUT: Duration = Duration::from_secs(2);
/// Where the kernel lists virtio-serial ports, each with a `name` file.
const PORTS_DIR: &str = "/sys/class/virtio-ports";

/// When things happened, as time since the kernel started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub init_start: Duration,
    pub app_exec: Option<Duration>,
    pub app_exit: Option<Duration>,
    pub poweroff: Option<Duration>,
}

/// How the application ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process while the app ran.
    pub oom_killed: bool,
    pub timings: Timings,
}

#[derive(Debug, Error)]
pub enum ChannelError {
    #[error("No virtio-serial port is named {0}")]
    NoSuchPort(String),
    #[error("Cannot write to virtio-serial port {name}")]
    Port {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot send to vsock {address}")]
    Vsock {
        address: VsockAddr,
        #[source]
        source: io::Error,
    },
    #[error(
        "Sent the exit record to vsock {0}, but the host did not close the connection within 2 s (it should read one line, then close)"
    )]
    NoReceipt(VsockAddr),
}

fn micros(t: Option<Duration>) -> Option<u64> {
    t.map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX))
}

impl Report {
    /// The record, as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "exit_code": self.exit_code,
            "signal": self.signal,
            "oom_killed": self.oom_killed,
            "timings": {
                "init_start_us": micros(Some(self.timings.init_start)),
                "app_exec_us": micros(self.timings.app_exec),
                "app_exit_us": micros(self.timings.app_exit),
                "poweroff_us": micros(self.timings.poweroff),
            },
        })
    }

    /// The record as one line.
    pub fn to_line(&self) -> String {
        format!("{}\n", self.to_json())
    }

    /// Every timing in microseconds since boot (`-` for what did not
    /// happen), for the debug log and `cargo xtask bench-vm`.
    pub fn timings_line(&self) -> String {
        let text = |t: Option<Duration>| micros(t).map_or("-".to_owned(), |t| t.to_string());
        let t = &self.timings;
        format!(
            "init_start_us={} app_exec_us={} app_exit_us={} poweroff_us={}",
            text(Some(t.init_start)),
            text(t.app_exec),
            text(t.app_exit),
            text(t.poweroff),
        )
    }
}

/// The device of the virtio-serial port called `name` (`/dev/vport0p1`),
/// looked up by name in sysfs, since no udev makes `/dev/virtio-ports/NAME`.
/// Ports appear once the host announces them, so this waits, up to `deadline`.
fn find_port(name: &str, deadline: Instant) -> Option<String> {
    loop {
        let found = std::fs::read_dir(PORTS_DIR).ok().and_then(|entries| {
            entries.flatten().find_map(|entry| {
                let port_name = std::fs::read_to_string(entry.path().join("name")).ok()?;
                (port_name.trim_end() == name)
                    .then(|| format!("/dev/{}", entry.file_name().to_string_lossy()))
            })
        });
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `bytes` to a non-blocking file, retrying until `deadline`.
fn write_by(file: &mut File, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends the record to the virtio-serial port `name`.
pub fn send_to_port(report: &Report, name: &str) -> Result<(), ChannelError> {
    let deadline = Instant::now() + CHANNEL_TIMEOUT;
    let path =
        find_port(name, deadline).ok_or_else(|| ChannelError::NoSuchPort(name.to_owned()))?;
    let fail = |source| ChannelError::Port {
        name: name.to_owned(),
        source,
    };
    // Non-blocking: a write to a port whose host side is closed would
    // otherwise wait for ever.
    let mut port = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(fail)?;
    write_by(&mut port, report.to_line().as_bytes(), deadline).map_err(fail)
}

/// Sends the record over vsock as one line, then waits for the host to
/// close the connection: its close is the receipt, after which a power-off
/// cannot lose the record. Every step counts against one deadline.
pub fn send_to_vsock(report: &Report, address: VsockAddr) -> Result<(), ChannelError> {
    let deadline = Instant::now() + CHANNEL_TIMEOUT;
    let left = || deadline.saturating_duration_since(Instant::now());
    let fail = |source| ChannelError::Vsock { address, source };
    let mut stream = vsock::connect(address.cid, address.port, left()).map_err(fail)?;
    vsock::set_timeout(&stream, left()).map_err(fail)?;
    stream
        .write_all(report.to_line().as_bytes())
        .map_err(fail)?;
    // A host that already read its line and closed makes this fail:
    // the read below then sees the close.
    let _ = vsock::shutdown_write(&stream);
    let mut rest = [0u8; 64];
    loop {
        if left().is_zero() {
            return Err(ChannelError::NoReceipt(address));
        }
        // Fails only on a socket that is gone, which the read then says.
        let _ = vsock::set_timeout(&stream, left());
        match stream.read(&mut rest) {
            // The record is written: a reset (Firecracker resets the stream
            // when its Unix socket closes) or a connection already torn
            // down (ENOTCONN, when the host closed first) is the host's
            // close too.
            Ok(0) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
                ) =>
            {
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(ChannelError::NoReceipt(address));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record() {
        let report = Report {
            exit_code: 143,
            signal: Some(15),
            oom_killed: false,
            timings: Timings {
                init_start: Duration::from_millis(1500),
                app_exec: Some(Duration::from_micros(1_500_800)),
                app_exit: None,
                poweroff: None,
            },
        };
        assert_eq!(
            report.to_line(),
            "{\"exit_code\":143,\"oom_killed\":false,\"signal\":15,\"timings\":{\"app_exec_us\":1500800,\
             \"app_exit_us\":null,\"init_start_us\":1500000,\"poweroff_us\":null}}\n"
        );
        assert_eq!(
            report.timings_line(),
            "init_start_us=1500000 app_exec_us=1500800 app_exit_us=- poweroff_us=-"
        );
    }
}
