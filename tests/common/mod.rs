//! Helpers for tests that run the built `vminit` binary: as a plain child
//! (a subreaper), as PID 1 of a fresh PID namespace, and with a hang guard.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Guards against hangs only; never a performance bound.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// The binary under test: `VMINIT_BIN` (CI points it at the static musl
/// build), else the one cargo built for this test run.
pub fn binary() -> String {
    std::env::var("VMINIT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_vminit").to_owned())
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The exit code; panics (with the output) if a signal ended the process.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("no exit code: {:?}\n{self:#?}", self.status))
    }
}

/// `vminit ARGS` as a child of the test: vminit is not PID 1, so it is a subreaper.
pub fn vminit(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command.args(args);
    command
}

/// `unshare` ready to run a program as PID 1 of a new PID and mount
/// namespace with its own /proc (killed when unshare dies); add the program.
pub fn pid1_namespace() -> Command {
    let mut command = Command::new("unshare");
    command.args([
        "--fork",
        "--pid",
        "--mount",
        "--mount-proc",
        "--kill-child",
        "--",
    ]);
    command
}

/// `vminit ARGS` as PID 1 of a new PID and mount namespace.
pub fn vminit_pid1(args: &[&str]) -> Command {
    let mut command = pid1_namespace();
    command.arg(binary()).args(args);
    command
}

/// vminit's pid as seen from here: under `unshare`, its child.
pub fn vminit_pid(child: &Child, pid1: bool) -> u32 {
    if !pid1 {
        return child.id();
    }
    let pid = child.id();
    for _ in 0..500 {
        let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        if let Some(found) = list
            .ok()
            .as_deref()
            .and_then(|l| l.split_whitespace().next())
        {
            return found.parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{pid} has no child");
}

/// Runs `command` to its end with piped output, killing it after `HANG_GUARD`.
pub fn run(mut command: Command) -> Run {
    command.stdin(Stdio::null());
    finish(spawn(command), HANG_GUARD)
}

/// Starts `command` with piped stdout and stderr, in its own process group
/// so that the guard can kill everything it started.
pub fn spawn(mut command: Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command.spawn().expect("spawn the command under test")
}

/// Waits for `child` and collects its output; kills its group and panics
/// after `guard`.
pub fn finish(mut child: Child, guard: Duration) -> Run {
    let start = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let pid = child.id() as i32;
    let (done, waiting) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = done.send(());
        status
    });
    if waiting.recv_timeout(guard).is_err() {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let status = waiter.join().unwrap();
        panic!(
            "hung for {guard:?} ({status:?})\nstdout: {}\nstderr: {}",
            out.join().unwrap(),
            err.join().unwrap()
        );
    }
    let status = waiter.join().unwrap().unwrap();
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: start.elapsed(),
    }
}

/// Sends `signal` to `pid`.
pub fn send(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Reads lines from a piped child stdout until one contains `marker`.
pub fn wait_for_line(reader: &mut impl std::io::BufRead, marker: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "EOF before {marker:?}; saw: {seen}");
        seen.push_str(&line);
        if line.contains(marker) {
            return line;
        }
    }
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// A fresh, empty directory for one test: `vminit-NAME-PID` in the temp dir.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vminit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
