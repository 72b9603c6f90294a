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

/// How long a SIGKILLed app's OOM line may lag behind its death: the
/// kernel sends the signal first and logs after.
const LOG_LAG: std::time::Duration = std::time::Duration::from_millis(20);

/// The victim a kernel log message names, if it is an OOM kill
/// (`Out of memory: Killed process 123 (sort) total-vm:…`, the same after
/// `Memory cgroup out of memory:`, or alone as kernels before 5.0 wrote it).
pub fn victim(message: &str) -> Option<Victim> {
    let (before, rest) = message.split_once("Killed process ")?;
    if !before.is_empty() && !before.contains("out of memory") && !before.contains("Out of memory")
    {
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

    /// The OOM victims logged since the watch started; `app_was_killed`
    /// (it died of SIGKILL) allows for the kernel's log line arriving late.
    pub fn victims(&mut self, app_was_killed: bool) -> Vec<Victim> {
        let found = self.read_victims();
        if found.is_empty() && app_was_killed {
            std::thread::sleep(LOG_LAG);
            return self.read_victims();
        }
        found
    }

    fn read_victims(&mut self) -> Vec<Victim> {
        // One record per read; a record is at most about 1 KiB, and longer
        // ones fail with EINVAL for this buffer only.
        let mut buffer = vec![0u8; 8192];
        let mut found = Vec::new();
        loop {
            match self.kmsg.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => found.extend(kernel_message(&buffer[..n]).and_then(|m| victim(&m))),
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

/// The message of a `/dev/kmsg` record
/// (`PRIORITY,SEQUENCE,TIME,FLAGS;MESSAGE\n`, then continuation lines) if
/// the kernel logged it: priorities below 8 are the kernel facility, which
/// a process writing to `/dev/kmsg` cannot claim.
fn kernel_message(record: &[u8]) -> Option<String> {
    // One digit then a comma: the cheap test, as most records are not.
    if !matches!(record, [b'0'..=b'7', b',', ..]) {
        return None;
    }
    let record = String::from_utf8_lossy(record);
    let (_, message) = record.split_once(';')?;
    Some(message.lines().next().unwrap_or("").to_owned())
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
        assert_eq!(
            victim("Killed process 77 (java) total-vm:10kB").map(|v| v.pid),
            Some(77)
        );
        assert_eq!(victim("Out of memory: Killed process x (y)"), None);
    }

    #[test]
    fn only_the_kernel_facility_counts() {
        let line = "Out of memory: Killed process 5 (x) total-vm:1kB";
        let record = format!("3,812,5000,-;{line}\n SUBSYSTEM=x\n");
        assert_eq!(kernel_message(record.as_bytes()).as_deref(), Some(line));
        // Written to /dev/kmsg by a process: LOG_USER (facility 1) at least.
        let record = format!("11,813,5001,-;{line}\n");
        assert_eq!(kernel_message(record.as_bytes()), None);
        assert_eq!(kernel_message(b"garbage"), None);
        assert_eq!(kernel_message(b"8,1,2,-;x"), None);
    }
}
