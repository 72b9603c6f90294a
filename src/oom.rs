//! Noticing the kernel's OOM killer: its `Killed process PID (COMM)` line
//! in the kernel log, read from `/dev/kmsg` from where it ended when the
//! app started (see the kernel's Documentation/ABI/testing/dev-kmsg).
//!
//! VM mode only: in a container `/dev/kmsg` is the host's log.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// A process the OOM killer killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub pid: i32,
    pub command: String,
}

/// The victim a kernel log message names, if it is an OOM kill
/// (`Out of memory: Killed process 123 (sort) total-vm:…`, and the same
/// after `Memory cgroup out of memory:`).
pub fn victim(message: &str) -> Option<Victim> {
    let (before, rest) = message.split_once("Killed process ")?;
    if !before.contains("out of memory") && !before.contains("Out of memory") {
        return None;
    }
    let (pid, rest) = rest.split_once(" (")?;
    let (command, _) = rest.split_once(')')?;
    Some(Victim {
        pid: pid.parse().ok()?,
        command: command.to_owned(),
    })
}

/// Reads the kernel log from the point where it was opened.
#[derive(Debug)]
pub struct Watch {
    kmsg: File,
}

impl Watch {
    /// Starts watching: only messages logged from now on are read.
    pub fn start() -> io::Result<Watch> {
        let mut kmsg = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/kmsg")?;
        kmsg.seek(SeekFrom::End(0))?;
        Ok(Watch { kmsg })
    }

    /// The OOM victims logged since the last call.
    pub fn victims(&mut self) -> Vec<Victim> {
        // One record per read; a record is at most about 1 KiB, and longer
        // ones fail with EINVAL for this buffer only.
        let mut buffer = vec![0u8; 8192];
        let mut found = Vec::new();
        loop {
            match self.kmsg.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    let record = String::from_utf8_lossy(&buffer[..n]);
                    // `PRIORITY,SEQUENCE,TIME,FLAGS;MESSAGE\n` then continuation lines.
                    let message = record.split_once(';').map_or(&*record, |(_, m)| m);
                    found.extend(victim(message.lines().next().unwrap_or("")));
                }
                // Older records were overwritten while we were not reading.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: nothing more; anything else: give up.
                Err(_) => break,
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_lines() {
        assert_eq!(
            victim(
                "Out of memory: Killed process 123 (sort) total-vm:264144kB, anon-rss:250000kB, \
                 file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:540kB oom_score_adj:0"
            ),
            Some(Victim {
                pid: 123,
                command: "sort".into()
            })
        );
        assert_eq!(
            victim("Memory cgroup out of memory: Killed process 9 (a b) total-vm:1kB")
                .map(|v| v.command),
            Some("a b".into())
        );
        // The reaper's follow-up and unrelated lines are not kills.
        assert_eq!(
            victim("oom_reaper: reaped process 123 (sort), now anon-rss:0kB"),
            None
        );
        assert_eq!(victim("app said: Killed process 5 (x)"), None);
        assert_eq!(victim("Out of memory: Killed process x (y)"), None);
    }
}
