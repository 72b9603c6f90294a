//! The app of `cargo xtask soak`: run as vminit's app (in a PID namespace,
//! or in a VM), it churns for the seconds given and reports on PID 1.
//!
//! Every round, paced to about 1,000 forks a second:
//! - forks a child that exits at once, reaped only every 100 ms, so that
//!   zombies of its own stand for a while;
//! - one round in 20, forks a child that forks a grandchild and exits: the
//!   grandchild, an orphan, is PID 1's to reap when it exits a little later;
//! - every 500 ms, sends PID 1 a burst of 20 `SIGRTMIN+1`, which vminit
//!   forwards to the app's group: real-time signals queue, so each sent is
//!   one received (counted by a handler here);
//! - every 10 ms, writes a log line to standard output.
//!
//! Every 100 ms it looks for zombies whose parent is PID 1 and keeps how
//! long the oldest stood. After a second, every `REPORT` seconds (the
//! second argument), and once
//! at the end
//! (after a second's quiet, so every signal sent has come back), it prints
//! `soak: t=S rss_kb=N fds=N zombie_max_ms=N forks=N orphans=N sent=N
//! received=N`, PID 1's figures from `/proc/1/`. It exits 42.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Signals received from PID 1, counted by the handler.
static RECEIVED: AtomicU64 = AtomicU64::new(0);

extern "C" fn count(_: libc::c_int) {
    RECEIVED.fetch_add(1, Ordering::Relaxed);
}

/// What the app did and saw.
#[derive(Debug, Default)]
struct Tally {
    forks: u64,
    orphans: u64,
    sent: u64,
    /// First sight of each zombie of PID 1 still standing.
    zombies: HashMap<i32, Instant>,
    zombie_max: Duration,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let report: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let signal = libc::SIGRTMIN() + 1;
    // SAFETY: the handler only adds to an atomic; SA_RESTART keeps the
    // loop's calls from failing with EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tally = Tally::default();
    let mut round: u64 = 0;
    // A first report after a second, the start's figures; then one every
    // `report` seconds.
    let mut reports: u64 = 0;
    let mut next_report = Duration::from_secs(1);
    let mut stdout = std::io::stdout().lock();
    while Instant::now() < end {
        round += 1;
        churn_once(&mut tally, round);
        if round.is_multiple_of(10) {
            let _ = writeln!(stdout, "churn: log line {round} forks={}", tally.forks);
        }
        if round.is_multiple_of(100) {
            reap_own();
            look_for_zombies(&mut tally);
        }
        if round.is_multiple_of(500) {
            for _ in 0..20 {
                // SAFETY: kill(2) to PID 1, which forwards it back here.
                if unsafe { libc::kill(1, signal) } == 0 {
                    tally.sent += 1;
                }
            }
        }
        if start.elapsed() >= next_report {
            report_line(&mut stdout, start, &tally);
            reports += 1;
            next_report = Duration::from_secs(report * reports);
        }
        // Paced to a round a millisecond at most.
        let due = start + Duration::from_millis(round);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    // A second's quiet: the last orphans reaped, the last signals back.
    let quiet = Instant::now() + Duration::from_secs(1);
    while Instant::now() < quiet {
        reap_own();
        look_for_zombies(&mut tally);
        std::thread::sleep(Duration::from_millis(100));
    }
    report_line(&mut stdout, start, &tally);
    let _ = stdout.flush();
    std::process::exit(42);
}

/// One fork that exits at once; one round in 20, an orphan for PID 1.
fn churn_once(tally: &mut Tally, round: u64) {
    let orphan = round.is_multiple_of(20);
    // SAFETY: the child calls only async-signal-safe functions (fork,
    // usleep, _exit) before it ends.
    match unsafe { libc::fork() } {
        0 => {
            if orphan {
                // SAFETY: as above.
                if unsafe { libc::fork() } == 0 {
                    // SAFETY: as above: the orphan outlives its parent a little.
                    unsafe { libc::usleep(20_000) };
                }
            }
            // SAFETY: ends the child without running the parent's code.
            unsafe { libc::_exit(0) }
        }
        -1 => {}
        _ => {
            tally.forks += 1;
            tally.orphans += u64::from(orphan);
        }
    }
}

/// Reaps this process's own ended children.
fn reap_own() {
    // SAFETY: waitpid with a null status pointer and WNOHANG.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// Notes each zombie whose parent is PID 1, and how long the oldest stood.
fn look_for_zombies(tally: &mut Tally) {
    let now = Instant::now();
    let mut standing = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // State and parent come after the name's last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        if fields.next() == Some("Z") && fields.next() == Some("1") {
            let first = tally.zombies.get(&pid).copied().unwrap_or(now);
            tally.zombie_max = tally.zombie_max.max(now - first);
            standing.insert(pid, first);
        }
    }
    tally.zombies = standing;
}

/// PID 1's resident memory in kB, and its open descriptors.
fn pid1_figures() -> (u64, usize) {
    let status = std::fs::read_to_string("/proc/1/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/1/fd").map_or(0, |d| d.count());
    (rss, fds)
}

fn report_line(out: &mut impl Write, start: Instant, tally: &Tally) {
    let (rss, fds) = pid1_figures();
    let _ = writeln!(
        out,
        "soak: t={} rss_kb={rss} fds={fds} zombie_max_ms={} forks={} orphans={} sent={} received={}",
        start.elapsed().as_secs(),
        tally.zombie_max.as_millis(),
        tally.forks,
        tally.orphans,
        tally.sent,
        RECEIVED.load(Ordering::Relaxed),
    );
}
