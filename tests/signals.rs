//! Signal forwarding: every catchable signal reaches the app's process
//! group, none is lost at start-up, and SIGTERM/SIGINT start the grace timer.

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use std::process::{Child, ChildStdout};

use common::{HANG_GUARD, finish, send, spawn, vminit, vminit_pid, vminit_pid1, wait_for_line};

/// A bash app that reports each listed signal it receives, then exits on USR2.
fn reporter(signals: &[&str]) -> String {
    let mut script = String::new();
    for signal in signals {
        script.push_str(&format!("trap 'echo got {signal}' {signal}; "));
    }
    script.push_str("trap 'echo bye; exit 0' USR2; echo ready; while :; do sleep 0.05; done");
    script
}

#[test]
fn catchable_signals_reach_the_app_as_a_subreaper() {
    forward_all(false);
}

#[test]
fn catchable_signals_reach_the_app_as_pid1() {
    forward_all(true);
}

fn forward_all(pid1: bool) {
    let names = [
        "HUP", "INT", "QUIT", "USR1", "PIPE", "ALRM", "TERM", "WINCH", "URG", "PWR", "RTMIN",
        "RTMIN+3", "RTMAX",
    ];
    let numbers = [1, 2, 3, 10, 13, 14, 15, 28, 23, 30, 34, 37, 64];
    let script = reporter(&names);
    let args = ["--grace", "30", "--", "bash", "-c", script.as_str()];
    let (mut child, mut out, target) = start_until_ready(pid1, &args);
    for (name, number) in names.iter().zip(numbers) {
        send(target, number);
        wait_for_line(&mut out, &format!("got {name}"));
    }
    send(target, libc::SIGUSR2);
    wait_for_line(&mut out, "bye");
    child.stdout = Some(out.into_inner());
    let result = finish(child, HANG_GUARD);
    assert_eq!(result.code(), 0, "{result:#?}");
}

/// Starts vminit (as PID 1 or not) on an app that prints "ready", waits
/// for that line, and returns vminit's pid as seen from here.
fn start_until_ready(pid1: bool, args: &[&str]) -> (Child, BufReader<ChildStdout>, u32) {
    let mut child = spawn(if pid1 {
        vminit_pid1(args)
    } else {
        vminit(args)
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    let target = vminit_pid(&child, pid1);
    (child, out, target)
}

#[test]
fn a_sigterm_sent_right_at_start_up_is_not_lost() {
    // dumb-init lost a SIGTERM that arrived between its fork and the child's
    // setsid: the child then ran to its end and exited 0. Here every TERM,
    // whenever it lands, must end the app (143) long before its 30 s sleep.
    for round in 0..40 {
        let child = spawn(vminit(&["--grace", "30", "--", "sleep", "30"]));
        // Before vminit blocks signals, a TERM kills vminit itself (as it
        // would any init): the window under test opens once they are blocked.
        wait_until_signals_blocked(child.id());
        if round % 4 != 0 {
            std::thread::sleep(Duration::from_micros(round * 150));
        }
        send(child.id(), libc::SIGTERM);
        let result = finish(child, Duration::from_secs(20));
        assert_eq!(result.code(), 143, "round {round}: {result:#?}");
    }
}

/// Waits until vminit has blocked its signals (while it waits in
/// sigtimedwait the kernel shows them unblocked, but by then it has a child).
fn wait_until_signals_blocked(pid: u32) {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .map(str::trim);
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        if blocked.is_some_and(|mask| mask != "0000000000000000")
            || children.is_ok_and(|list| !list.trim().is_empty())
        {
            return;
        }
        std::thread::yield_now();
    }
    panic!("{pid} never blocked signals");
}

#[test]
fn the_grace_timer_kills_an_app_that_ignores_sigterm() {
    for pid1 in [false, true] {
        let args = [
            "--grace",
            "1",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo ready; sleep 60; exit 9",
        ];
        let (mut child, out, target) = start_until_ready(pid1, &args);
        let start = std::time::Instant::now();
        send(target, libc::SIGTERM);
        child.stdout = Some(out.into_inner());
        let result = finish(child, Duration::from_secs(30));
        assert_eq!(result.code(), 137, "pid1={pid1}: {result:#?}");
        // A lower bound only: the kill cannot come before the grace ends.
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
}

#[test]
fn a_second_sigterm_during_the_grace_period_changes_nothing() {
    // One stop at a time: the app gets one SIGTERM, and its grace period
    // is neither restarted nor cut short by another (no double stop).
    for pid1 in [false, true] {
        let args = [
            "--grace",
            "5",
            "--",
            "sh",
            "-c",
            "n=0; trap 'n=$((n+1)); echo term-$n' TERM; echo ready; \
             while [ $n = 0 ]; do sleep 0.1; done; sleep 1; exit $((40+n))",
        ];
        let (mut child, mut out, target) = start_until_ready(pid1, &args);
        send(target, libc::SIGTERM);
        wait_for_line(&mut out, "term-1");
        send(target, libc::SIGTERM);
        child.stdout = Some(out.into_inner());
        let result = finish(child, Duration::from_secs(30));
        assert_eq!(result.code(), 41, "pid1={pid1}: {result:#?}");
    }
}

#[test]
fn sigint_starts_the_grace_timer_too() {
    let args = [
        "--grace",
        "0.5",
        "--",
        "sh",
        "-c",
        "trap '' INT; echo ready; sleep 60",
    ];
    let mut child = spawn(vminit(&args));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    send(child.id(), libc::SIGINT);
    child.stdout = Some(out.into_inner());
    assert_eq!(finish(child, Duration::from_secs(30)).code(), 137);
}

#[test]
fn signals_reach_the_whole_process_group() {
    // The app's background child shares its group and hears SIGHUP too.
    let script = "trap 'echo parent got HUP' HUP; \
        (trap 'echo child got HUP; exit 0' HUP; echo child ready; while :; do sleep 0.05; done) & \
        wait_child=$!; echo ready; wait $wait_child; wait $wait_child; echo done";
    let mut child = spawn(vminit(&["--", "bash", "-c", script]));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        seen.push_str(&line);
    }
    assert!(
        seen.contains("child ready") && seen.contains("ready"),
        "{seen}"
    );
    send(child.id(), libc::SIGHUP);
    child.stdout = Some(out.into_inner());
    let result = finish(child, HANG_GUARD);
    assert!(result.stdout.contains("child got HUP"), "{result:#?}");
    assert!(result.stdout.contains("parent got HUP"), "{result:#?}");
    assert_eq!(result.code(), 0);
}

#[test]
fn the_app_starts_with_an_empty_mask_and_default_dispositions() {
    // vminit itself starts with signals ignored and blocked (as under nohup
    // or a careless parent); the app must see none of that. catatonit
    // started its child with TSTP/TTIN/TTOU blocked.
    use std::os::unix::process::CommandExt;
    let mut command = vminit(&["--", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTSTP);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let result = common::run(command);
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(
        result.stdout,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}

#[test]
fn the_app_leads_its_own_process_group() {
    let script = "ps -o pid=,pgid= -p $$; ps -o pgid= -p $PPID";
    let result = common::run(vminit(&["--", "sh", "-c", script]));
    let numbers: Vec<i64> = result
        .stdout
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 3, "{result:#?}");
    assert_eq!(numbers[0], numbers[1], "app pid == its pgid");
    assert_ne!(numbers[1], numbers[2], "app's group is not vminit's");
}

#[test]
fn vminit_keeps_its_own_sigpipe() {
    // At debug level vminit logs each forwarded signal; with its stderr a
    // pipe nobody reads, each log line raises SIGPIPE on vminit itself,
    // which must not reach the app (nor loop).
    // The app's own stderr goes elsewhere: bash reports its killed jobs there.
    let script = "exec 2>/dev/null; trap 'echo got-usr1' USR1; trap 'echo got-pipe; exit 6' PIPE; \
        trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let mut command = vminit(&["-v", "--grace", "30", "--", "bash", "-c", script]);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    drop(child.stderr.take());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    send(child.id(), libc::SIGUSR1);
    wait_for_line(&mut out, "got-usr1");
    send(child.id(), libc::SIGTERM);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{rest}");
    assert!(!rest.contains("got-pipe"), "{rest}");
}

#[test]
fn the_grace_kill_reaches_the_app_without_proc() {
    // Under bubblewrap or a bare chroot there is no /proc to list
    // descendants: the app itself must still get the SIGKILL.
    let script = "umount -l /proc && exec \"$@\"";
    let mut command = std::process::Command::new("unshare");
    command.args(["--mount", "sh", "-c", script, "sh", &common::binary()]);
    command.args([
        "--grace",
        "1",
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo ready; sleep 60",
    ]);
    let mut child = spawn(command);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    // unshare execs sh, which execs vminit: the same pid.
    send(child.id(), libc::SIGTERM);
    child.stdout = Some(out.into_inner());
    let result = finish(child, Duration::from_secs(30));
    assert_eq!(result.code(), 137, "{result:#?}");
}
