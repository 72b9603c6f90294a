//! `cargo xtask soak --minutes N`: vminit as PID 1 for N minutes under an
//! app that keeps churning (`xtask/churn`: about 1,000 forks a second,
//! orphans, zombies, bursts of real-time signals sent to PID 1 and
//! forwarded back, a log line every 10 ms), at once in a PID namespace and
//! in a QEMU VM (x86-64, under TCG there the rate is what the emulated CPU
//! allows).
//!
//! The app reports PID 1's figures after a second and then every minute
//! (`soak: t=… rss_kb=…`); each run must show:
//! - vminit's RSS flat: no report more than [`RSS_SLACK_KB`] above the
//!   first's;
//! - its descriptors flat: the same count in every report;
//! - no zombie of PID 1 standing for a second or more;
//! - every signal sent forwarded back and counted, at the end;
//! - the app's status (42) as the run's.
//!
//! Writes the figures to `target/soak.md`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cmd;
use crate::release::build;
use crate::vm::arch::Arch;
use crate::vm::initramfs::Console as ConsoleNodes;
use crate::vm::kit::Kit;
use crate::vm::qemu;

/// How much vminit's RSS may grow over the run: a few pages (the
/// allocator's and the stack's), not a leak.
const RSS_SLACK_KB: u64 = 64;
/// The app's status when it ran to its end.
const CHURN_STATUS: i32 = 42;
/// How long CI soaks.
pub const CI_MINUTES: u64 = 2;
/// How often the app reports.
const REPORT_SECONDS: u64 = 60;

pub fn run(args: &[String]) -> Result<(), String> {
    let minutes = match args {
        [flag, n] if flag == "--minutes" => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or("--minutes takes a whole number above 0")?,
        [] => CI_MINUTES,
        _ => return Err("soak takes [--minutes N]".into()),
    };
    soak(minutes)
}

/// Runs both soaks side by side (two cores: each keeps about one busy)
/// and checks them.
pub fn soak(minutes: u64) -> Result<(), String> {
    let seconds = minutes * 60;
    let vminit = build::static_binary()?;
    let churn = build_churn()?;
    let kit = Kit::prepare_for(None, Arch::host())?;
    let image = kit.image(
        "soak",
        ConsoleNodes::Nodes,
        vec![(
            "/churn".into(),
            std::fs::read(&churn).map_err(|e| format!("{}: {e}", churn.display()))?,
            0o755,
        )],
    )?;
    let (namespace, vm) = std::thread::scope(|scope| {
        let namespace = scope.spawn(|| in_namespace(&vminit, &churn, seconds));
        let vm = scope.spawn(|| in_vm(&kit, &image, seconds));
        (namespace.join(), vm.join())
    });
    let namespace = namespace.map_err(|_| "the namespace soak panicked")??;
    let vm = vm.map_err(|_| "the VM soak panicked")??;
    let table = format!(
        "# Soak: {minutes} minutes\n\n{}\n{}\n{}",
        Run::HEADER,
        namespace.row("PID namespace"),
        vm.row("QEMU VM (TCG)")
    );
    let path = cmd::root().join("target/soak.md");
    std::fs::write(&path, &table).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{table}");
    let failures: Vec<String> = [("PID namespace", &namespace), ("VM", &vm)]
        .iter()
        .filter_map(|(name, run)| run.check().err().map(|e| format!("{name}: {e}")))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// The churning app, static (musl), for the host's architecture.
fn build_churn() -> Result<PathBuf, String> {
    let arch = Arch::host();
    cmd::run(
        cmd::cargo()
            .args(["build", "--quiet", "--release", "--package", "churn"])
            .args(["--target", arch.target()])
            .env(build::linker_variable(arch), "rust-lld"),
    )?;
    Ok(cmd::root().join(format!("target/{}/release/churn", arch.target())))
}

/// One report of the app's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Report {
    seconds: u64,
    rss_kb: u64,
    fds: u64,
    zombie_max_ms: u64,
    forks: u64,
    orphans: u64,
    sent: u64,
    received: u64,
}

impl Report {
    /// A `soak: t=… rss_kb=… …` line; `None` for any other.
    fn parse(line: &str) -> Option<Report> {
        let rest = line.trim().strip_prefix("soak: ")?;
        let mut report = Report::default();
        for pair in rest.split_whitespace() {
            let (key, value) = pair.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                "t" => report.seconds = value,
                "rss_kb" => report.rss_kb = value,
                "fds" => report.fds = value,
                "zombie_max_ms" => report.zombie_max_ms = value,
                "forks" => report.forks = value,
                "orphans" => report.orphans = value,
                "sent" => report.sent = value,
                "received" => report.received = value,
                _ => return None,
            }
        }
        Some(report)
    }
}

/// One soak's reports and status.
#[derive(Debug)]
struct Run {
    reports: Vec<Report>,
    status: Option<i32>,
}

impl Run {
    const HEADER: &str = "| run | vminit's RSS, start → end (kB) | fds, start → end | oldest zombie (ms) | forks (a second) | orphans | signals sent / forwarded and counted | status |\n|---|---|---|---|---|---|---|---|";

    fn from_lines(lines: impl Iterator<Item = String>, status: Option<i32>) -> Run {
        Run {
            reports: lines.filter_map(|l| Report::parse(&l)).collect(),
            status,
        }
    }

    fn row(&self, name: &str) -> String {
        let (Some(first), Some(last)) = (self.reports.first(), self.reports.last()) else {
            return format!("| {name} | no report | | | | | | {:?} |", self.status);
        };
        let most = |field: fn(&Report) -> u64| self.reports.iter().map(field).max().unwrap_or(0);
        let rate = last.forks / last.seconds.max(1);
        format!(
            "| {name} | {} → {} (most {}) | {} → {} (most {}) | {} | {} ({rate}) | {} | {} / {} | {} |",
            first.rss_kb,
            last.rss_kb,
            most(|r| r.rss_kb),
            first.fds,
            last.fds,
            most(|r| r.fds),
            most(|r| r.zombie_max_ms),
            last.forks,
            last.orphans,
            last.sent,
            last.received,
            self.status.map_or("none".into(), |s| s.to_string()),
        )
    }

    /// What the soak must show (see the module's docs).
    fn check(&self) -> Result<(), String> {
        let (Some(first), Some(last)) = (self.reports.first(), self.reports.last()) else {
            return Err("the app reported nothing".into());
        };
        if self.reports.len() < 3 {
            return Err("fewer than three reports: no minute to compare".into());
        }
        if self.status != Some(CHURN_STATUS) {
            return Err(format!(
                "status {:?}, not the app's {CHURN_STATUS}",
                self.status
            ));
        }
        for report in &self.reports {
            if report.rss_kb > first.rss_kb + RSS_SLACK_KB {
                return Err(format!(
                    "RSS grew from {} kB to {} kB by {} s",
                    first.rss_kb, report.rss_kb, report.seconds
                ));
            }
            if report.fds != first.fds {
                return Err(format!(
                    "{} fds at {} s, {} at first",
                    report.fds, report.seconds, first.fds
                ));
            }
            if report.zombie_max_ms >= 1000 {
                return Err(format!("a zombie stood {} ms", report.zombie_max_ms));
            }
        }
        if last.sent == 0 || last.received != last.sent {
            return Err(format!(
                "{} signals sent, {} forwarded and counted",
                last.sent, last.received
            ));
        }
        Ok(())
    }
}

/// vminit as PID 1 of a new PID namespace, the app its child.
fn in_namespace(vminit: &Path, churn: &Path, seconds: u64) -> Result<Run, String> {
    let mut child = Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc"])
        .arg(vminit)
        .arg("--")
        .arg(churn)
        .args([seconds.to_string(), REPORT_SECONDS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("unshare: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok(Run::from_lines(lines.into_iter(), status.code()))
}

/// vminit as `/init` of a VM, the app its command.
fn in_vm(kit: &Kit, image: &Path, seconds: u64) -> Result<Run, String> {
    let boot = qemu::Boot {
        memory_mb: 256,
        ..kit.boot(image, format!("-- /churn {seconds} {REPORT_SECONDS}"))
    };
    let guard = Duration::from_secs(seconds + 180);
    let console = qemu::run(&boot, guard, false, |_| {})?;
    if console.timed_out {
        return Err("the VM did not end (hang guard)".into());
    }
    let status = console.exit_code();
    Ok(Run::from_lines(console.lines.into_iter(), status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rss: &[u64], sent: u64, received: u64) -> Run {
        Run {
            reports: rss
                .iter()
                .enumerate()
                .map(|(i, &rss_kb)| Report {
                    seconds: 60 * (i as u64 + 1),
                    rss_kb,
                    fds: 5,
                    sent,
                    received,
                    ..Report::default()
                })
                .collect(),
            status: Some(CHURN_STATUS),
        }
    }

    #[test]
    fn reports_are_read_and_checked() {
        let line = "soak: t=60 rss_kb=568 fds=5 zombie_max_ms=3 forks=60000 orphans=3000 sent=2400 received=2400";
        let report = Report::parse(line).unwrap();
        assert_eq!(
            (report.seconds, report.rss_kb, report.received),
            (60, 568, 2400)
        );
        assert_eq!(Report::parse("churn: log line 10 forks=10"), None);
        assert!(run(&[568, 570, 600], 10, 10).check().is_ok());
        assert!(
            run(&[568, 568, 700], 10, 10)
                .check()
                .unwrap_err()
                .contains("RSS grew")
        );
        assert!(
            run(&[568, 568, 568], 10, 9)
                .check()
                .unwrap_err()
                .contains("signals")
        );
        assert!(run(&[568, 568], 10, 10).check().is_err());
    }
}
