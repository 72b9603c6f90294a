//! Job control on a terminal: with a controlling tty, the app's group is the
//! foreground group, so `bash -m` has job control and Ctrl-C reaches the
//! app (exit 130). Runs vminit on a fresh pseudo-terminal.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{HANG_GUARD, binary, vminit, vminit_pid1};

/// vminit on a new pty as the session's controlling terminal.
struct OnPty {
    master: File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
    child: std::process::Child,
}

/// A new pty whose fds close on exec: tests run in parallel threads, and a
/// child that another test forks meanwhile must not inherit this terminal.
fn new_pty() -> nix::pty::OpenptyResult {
    use std::os::fd::AsRawFd;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
        // SAFETY: fcntl on descriptors we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    pty
}

/// vminit ARGS on a new pty, as PID 1 of a namespace or not.
fn on_pty(pid1: bool, args: &[&str]) -> OnPty {
    spawn_on_pty(if pid1 {
        vminit_pid1(args)
    } else {
        vminit(args)
    })
}

/// Starts `command` as a session leader whose controlling terminal is a
/// new pty, and collects what the pty prints.
fn spawn_on_pty(mut command: Command) -> OnPty {
    let pty = new_pty();
    let slave = File::from(pty.slave);
    command
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("spawn on a pty");
    drop(command); // closes the parent's copies of the slave
    let master = File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let (send, output) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once every slave fd is closed.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if send.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    OnPty {
        master,
        output,
        seen: String::new(),
        child,
    }
}

impl OnPty {
    fn expect(&mut self, needle: &str) {
        let start = Instant::now();
        while !self.seen.contains(needle) {
            let left = HANG_GUARD.saturating_sub(start.elapsed());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("never saw {needle:?}; saw: {}", self.seen),
            }
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    fn exit_code(mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(bytes) = self.output.recv_timeout(Duration::from_millis(100)) {
                    self.seen.push_str(&String::from_utf8_lossy(&bytes));
                }
                return (status.code().expect("an exit code"), self.seen);
            }
            if start.elapsed() > HANG_GUARD {
                let _ = self.child.kill();
                panic!("hung; saw: {}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn ctrl_c_reaches_the_foreground_app_and_gives_130() {
    for pid1 in [false, true] {
        let mut pty = on_pty(
            pid1,
            &[
                "--grace",
                "30",
                "--",
                "sh",
                "-c",
                "echo ready; exec sleep 30",
            ],
        );
        pty.expect("ready");
        pty.type_keys(b"\x03");
        let (code, seen) = pty.exit_code();
        assert_eq!(code, 130, "pid1={pid1}: {seen}");
    }
}

#[test]
fn the_app_owns_the_terminal() {
    for pid1 in [false, true] {
        let script =
            "echo owner=$(ps -o tpgid= -p $$ | tr -d ' ') me=$(ps -o pgid= -p $$ | tr -d ' ')";
        let pty = on_pty(pid1, &["--", "sh", "-c", script]);
        let (code, seen) = pty.exit_code();
        assert_eq!(code, 0, "{seen}");
        let line = seen.lines().find(|l| l.starts_with("owner=")).expect(&seen);
        let fields: Vec<&str> = line.split([' ', '=']).collect();
        assert_eq!(fields[1], fields[3], "pid1={pid1}: {line}");
    }
}

#[test]
fn bash_gets_job_control() {
    for pid1 in [false, true] {
        let mut pty = on_pty(pid1, &["--", "bash", "--norc", "--noprofile", "-i"]);
        pty.type_keys(b"sleep 30 &\njobs; echo jobs-listed\n");
        pty.expect("jobs-listed");
        pty.type_keys(b"sleep 30\n");
        std::thread::sleep(Duration::from_millis(300));
        pty.type_keys(b"\x03");
        pty.type_keys(b"echo status=$?; kill %1; exit 4\n");
        let (code, seen) = pty.exit_code();
        assert_eq!(code, 4, "{seen}");
        assert!(
            seen.contains("status=130"),
            "Ctrl-C did not reach sleep: {seen}"
        );
        assert!(!seen.contains("no job control"), "{seen}");
        assert!(
            !seen.contains("cannot set terminal process group"),
            "{seen}"
        );
        assert!(
            seen.contains("Running"),
            "jobs did not list the job: {seen}"
        );
    }
}

#[test]
fn short_runs_on_a_terminal_never_die_of_a_hangup() {
    // dumb-init #136: TIOCNOTTY's SIGHUP raced into the new child (129).
    for _ in 0..20 {
        let pty = on_pty(false, &["--", "true"]);
        let (code, seen) = pty.exit_code();
        assert_eq!(code, 0, "{seen}");
    }
}

#[test]
fn ctrl_z_stops_the_job_and_fg_resumes_it() {
    // Outside PID 1, vminit stops with its app so the shell sees a stopped
    // job, and SIGCONT resumes both with the app back in the foreground.
    let mut outer = on_pty_shell();
    let vminit = binary();
    // Quotes split the markers so that the echoed command line cannot match.
    // The app forks nothing: ^Z landing in a vfork'd child before its exec
    // leaves the shell in uninterruptible sleep, not stopped, under any init.
    let command = format!("{vminit} -- sh -c 'echo sta\"\"rted; read line; echo g\"\"ot:$line'\n");
    outer.type_keys(command.as_bytes());
    outer.expect("started");
    outer.type_keys(b"\x1a");
    outer.expect("Stopped");
    fg_then_the_app_reads_the_terminal(outer);
}

#[test]
fn a_background_app_that_reads_the_terminal_stops_and_fg_resumes_it() {
    // dumb-init PR #10: a child left in a background group stops forever on
    // SIGTTIN. Started with `&`, vminit stops with the app; `fg` hands the
    // terminal to the app, which then reads it.
    let mut outer = on_pty_shell();
    let vminit = binary();
    let command = format!("{vminit} -- sh -c 'read line; echo g\"\"ot:$line' &\n");
    outer.type_keys(command.as_bytes());
    // Bash reports a background job's stop at its next prompt.
    outer.type_keys(b"sleep 0.5; jobs\n");
    outer.expect("Stopped");
    fg_then_the_app_reads_the_terminal(outer);
}

#[test]
fn ctrl_z_without_a_job_control_shell_does_not_stop_for_good() {
    // Under `ssh -t` or `docker exec -it` nobody would resume a stopped
    // vminit: there the app is let go on, and still reads its terminal.
    ctrl_z_then_the_app_reads_a_line(false);
}

/// Ctrl-Z on an app that vminit (PID 1 or not) must let go on: it still
/// reads a line from its terminal and ends well. The echo's `g""ot` keeps
/// the terminal's echo of the typed line from matching.
fn ctrl_z_then_the_app_reads_a_line(pid1: bool) {
    let mut pty = on_pty(
        pid1,
        &[
            "--",
            "sh",
            "-c",
            "echo ready; read line; echo g\"\"ot:$line",
        ],
    );
    pty.expect("ready");
    pty.type_keys(b"\x1a");
    std::thread::sleep(Duration::from_millis(300));
    pty.type_keys(b"hello\n");
    pty.expect("got:hello");
    let (code, seen) = pty.exit_code();
    assert_eq!(code, 0, "pid1={pid1}: {seen}");
}

/// Types `fg` into the shell and checks that the app, back in the
/// foreground, reads a line from the terminal and the job ends well.
fn fg_then_the_app_reads_the_terminal(mut outer: OnPty) {
    outer.type_keys(b"fg\n");
    std::thread::sleep(Duration::from_millis(300));
    outer.type_keys(b"hello\n");
    outer.expect("got:hello");
    outer.type_keys(b"echo fg-status=$?; exit 0\n");
    outer.expect("fg-status=0");
    let (code, seen) = outer.exit_code();
    assert_eq!(code, 0, "{seen}");
}

/// An interactive bash (without vminit) on a pty, for typing vminit commands into.
fn on_pty_shell() -> OnPty {
    let mut bash = Command::new("bash");
    bash.args(["--norc", "--noprofile", "-i"]);
    spawn_on_pty(bash)
}

#[test]
fn ctrl_z_does_not_freeze_the_app_of_pid_1() {
    // `docker run -it`: vminit is PID 1, nobody above would send SIGCONT.
    ctrl_z_then_the_app_reads_a_line(true);
}

#[test]
fn output_stopped_by_xoff_does_not_hold_the_machine_end() {
    // Every line of the end path and the exit line would wait for XON
    // forever: they share one 10 s stall, after which none waits.
    let mut pty = on_pty(
        true,
        &[
            "--mode",
            "vm",
            "--cmdline",
            "console=ttyS0",
            "--grace",
            "1",
            "--",
            "sh",
            "-c",
            // Killed by a signal, leaving a child that ignores SIGTERM:
            // the end path logs several lines while output is stopped.
            "(trap '' TERM; exec sleep 100) & echo ready; sleep 0.5; kill -TERM $$",
        ],
    );
    pty.expect("ready");
    pty.type_keys(b"\x13");
    let start = Instant::now();
    loop {
        if let Some(status) = pty.child.try_wait().unwrap() {
            // Inside a PID namespace, reboot(2) ends it with SIGINT.
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(libc::SIGINT), "{}", pty.seen);
            break;
        }
        assert!(
            start.elapsed() < HANG_GUARD,
            "hung behind XOFF: {}",
            pty.seen
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pty.type_keys(b"\x11");
}
