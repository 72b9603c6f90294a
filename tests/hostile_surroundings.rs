//! Hostile surroundings (issue 10, part B): state PID 1 inherits or shares
//! with the app and did not choose: an ignored SIGCHLD, closed standard
//! fds, a console the app made non-blocking, an app that cannot be
//! reaped, a failing set-up step in the child, a stop request while the
//! rest stops. Each case failed before its fix.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{HANG_GUARD, binary, run, vminit};

/// `perl -e '$SIG{CHLD}="IGNORE"; exec @ARGV' ARGS`: what a parent that ran
/// `signal(SIGCHLD, SIG_IGN)` or `trap '' CHLD` passes on through exec.
fn with_sigchld_ignored(args: &[&str]) -> Command {
    let mut command = Command::new("perl");
    command
        .args(["-e", "$SIG{CHLD} = 'IGNORE'; exec @ARGV or die"])
        .args(args);
    command
}

#[test]
fn an_inherited_ignored_sigchld_does_not_lose_the_status() {
    let result = run(with_sigchld_ignored(&[
        &binary(),
        "--",
        "sh",
        "-c",
        "exit 3",
    ]));
    assert_eq!(result.code(), 3, "as a subreaper: {result:#?}");
    let mut command = common::pid1_namespace();
    command.args(["perl", "-e", "$SIG{CHLD} = 'IGNORE'; exec @ARGV or die"]);
    command.args([&binary(), "--", "sh", "-c", "exit 3"]);
    let result = run(command);
    assert_eq!(result.code(), 3, "as PID 1: {result:#?}");
}

#[test]
fn closed_standard_fds_are_open_for_the_app() {
    // stdin and stdout closed (`<&- >&-`); the app reports on stderr.
    let mut command = vminit(&[
        "--",
        "sh",
        "-c",
        "[ -e /proc/self/fd/0 ] && [ -e /proc/self/fd/1 ] && echo out && echo both-open >&2",
    ]);
    // SAFETY: close is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::close(0);
            libc::close(1);
            Ok(())
        });
    }
    command.stdin(Stdio::inherit()).stdout(Stdio::inherit());
    command.stderr(Stdio::piped());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("both-open"), "{stderr}");
}

/// The syscalls poll(2) is made with here.
#[cfg(target_arch = "x86_64")]
const POLL_SYSCALLS: &[i64] = &[libc::SYS_poll, libc::SYS_ppoll];
#[cfg(not(target_arch = "x86_64"))]
const POLL_SYSCALLS: &[i64] = &[libc::SYS_ppoll];

/// Whether `pid` is blocked in poll(2) (`/proc/PID/syscall`).
fn in_poll(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
        .is_some_and(|n| POLL_SYSCALLS.contains(&n))
}

/// vminit in VM mode in a PID namespace whose app shares vminit's stderr
/// (a pipe nobody reads yet), makes it non-blocking and fills it to its
/// capacity (F_GETPIPE_SZ), then exits 4: the exit line meets a full
/// console. Returned once vminit waits for room (or, broken, has given up),
/// with the pipe's read end.
fn vminit_behind_a_full_console() -> (std::process::Child, std::process::ChildStderr) {
    let fill = "use Fcntl; fcntl(STDERR, F_SETFL, fcntl(STDERR, F_GETFL, 0) | O_NONBLOCK); \
                my $size = fcntl(STDERR, 1032, 0); syswrite(STDERR, 'x' x $size); exit 4";
    let mut command = common::pid1_namespace();
    command
        .arg(binary())
        .args(["--mode", "vm", "--cmdline", "console=ttyS0", "-q", "--"])
        .args(["perl", "-e", fill]);
    command.stdin(Stdio::null()).stdout(Stdio::null());
    command.stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn().unwrap();
    let vminit_pid = common::vminit_pid(&child, true);
    let stderr = child.stderr.take().unwrap();
    let start = Instant::now();
    while !in_poll(vminit_pid) && common::alive(vminit_pid as i32) {
        assert!(start.elapsed() < HANG_GUARD, "vminit never waited for room");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(stderr.as_raw_fd(), libc::FIONREAD, &mut queued) };
    // SAFETY: F_GETPIPE_SZ reads the pipe's capacity.
    let capacity = unsafe { libc::fcntl(stderr.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert_eq!(queued, capacity, "the app filled the pipe");
    (child, stderr)
}

/// Reads the console to its end and checks that the exit line arrived
/// last and that the namespace was powered off.
fn exit_line_arrives(mut child: std::process::Child, mut stderr: std::process::ChildStderr) {
    let mut text = Vec::new();
    stderr.read_to_end(&mut text).unwrap();
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.ends_with("vminit: exit_code=4\n"),
        "{:?}",
        &text[text.len().saturating_sub(200)..]
    );
    assert_eq!(status.signal(), Some(libc::SIGINT), "power-off");
}

#[test]
fn the_exit_line_survives_a_console_the_app_made_non_blocking() {
    // It met EAGAIN, and used to be dropped.
    let (child, stderr) = vminit_behind_a_full_console();
    exit_line_arrives(child, stderr);
}

#[test]
fn the_exit_line_waits_for_a_console_that_stalls_then_drains() {
    // A host's log collector that pauses for 5 s: the line used to be
    // given up after 2 s. It now waits up to 10 s with no progress.
    let (child, stderr) = vminit_behind_a_full_console();
    std::thread::sleep(Duration::from_secs(5));
    exit_line_arrives(child, stderr);
}

#[test]
fn a_console_that_never_drains_holds_the_end_for_its_stall_bound_only() {
    let (mut child, stderr) = vminit_behind_a_full_console();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < HANG_GUARD, "hung behind a full console");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stderr);
    // The stall bound (10 s), and a margin for a loaded machine.
    assert!(
        start.elapsed() < Duration::from_secs(10 + 20),
        "the end took {:?}",
        start.elapsed()
    );
    assert_eq!(status.signal(), Some(libc::SIGINT), "power-off");
}

#[test]
fn an_app_that_cannot_be_reaped_after_sigkill_does_not_hang_vminit() {
    // The app is traced by this test's thread, which never waits for it:
    // once killed, its zombie is visible to the tracer only, as the app of
    // a stuck disk never dies. vminit gives up after its 5 s bound.
    let mut command = vminit(&[
        "--grace",
        "0.2",
        "--",
        "sh",
        "-c",
        "echo $$; exec sleep 300",
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    let app: i32 = line.trim().parse().unwrap();
    // SAFETY: ptrace with integer arguments; the tracee is our grandchild.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, app, 0, 0) };
    assert_eq!(rc, 0, "ptrace: {}", std::io::Error::last_os_error());
    common::send(child.id(), libc::SIGTERM);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < HANG_GUARD, "vminit hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(70), "{stderr}");
    assert!(
        stderr.contains("the application did not end within 5s of SIGKILL"),
        "{stderr}"
    );
}

#[test]
fn a_failing_set_up_step_is_named_not_reported_as_exec() {
    // Above the kernel's nr_open: setrlimit fails with EPERM, even as root.
    let result = run(vminit(&["--rlimit", "nofile=99999999", "--", "true"]));
    assert_eq!(result.code(), 126, "{result:#?}");
    assert!(
        result
            .stderr
            .contains("cannot set the resource limit nofile=99999999:99999999 for \"true\": Operation not permitted"),
        "{}",
        result.stderr
    );
    assert!(!result.stderr.contains("cannot run"), "{}", result.stderr);
}

#[test]
fn a_second_stop_request_ends_the_grace_given_to_the_rest() {
    // The app exits and leaves a process that ignores SIGTERM; the grace
    // period is long; SIGTERM to vminit meanwhile ends it.
    let mut command = common::pid1_namespace();
    command.arg(binary()).args([
        "--grace",
        "30",
        "--",
        "sh",
        "-c",
        "(trap '' TERM; echo ready; exec sleep 100) & sleep 0.5; exit 5",
    ]);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().unwrap();
    let vminit_pid = common::vminit_pid(&child, true);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    common::wait_for_line(&mut out, "ready");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    common::wait_for_line(&mut stderr, "stopping the remaining processes");
    common::send(vminit_pid, libc::SIGTERM);
    let line = common::wait_for_line(&mut stderr, "no more grace");
    assert!(line.contains("SIGTERM while the rest stops"), "{line}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5), "{rest}");
}
