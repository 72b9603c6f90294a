//! `cargo xtask bench [--runs N]`: vminit against tini, dumb-init and
//! catatonit, side by side in one run, with vminit's ratio to each.
//!
//! - Binary size (bytes as shipped, all stripped) and whether it is static.
//! - Syscalls from the init's own execve to the app's (`strace -f` of
//!   `INIT -- /bin/true`), and the instructions the init executes for it
//!   (callgrind): counts that do not move with the machine's load.
//! - Idle memory: VmRSS of the init as PID 1 of a fresh PID namespace while
//!   it supervises a sleeping child.
//! - Start-up overhead: wall time of `INIT -- /bin/true` minus that of
//!   `/bin/true` alone in the same round, over many rounds of all commands
//!   in turn, the order rotating each round, so that drift in the
//!   machine's load hits every command alike.
//! - Reaping: time for the init (PID 1) to reap 10,000 zombies reparented to
//!   it at once, and how many are left.
//! - Signal forwarding: time from `kill(init, SIGUSR1)` to the child's
//!   handler acknowledging through a FIFO; median and p99 over 1,000
//!   signals, and how many were lost.
//!
//! Each row's ratio to the best peer comes with a 95% bootstrap interval of
//! the ratio of medians ([`stats::clustered_ratio_interval`]; signals
//! resampled by round), in the table and the CSV, and the targets are
//! judged on it.
//!
//! Writes `target/bench/peers.csv` (raw numbers), `peers.md` (the table)
//! and `peers.svg` (a chart of the ratios).

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::stats;
use crate::release::build;
use crate::{cmd, setup};

/// One init under test.
#[derive(Debug, Clone)]
struct Init {
    name: &'static str,
    path: PathBuf,
    /// Arguments before `--` (tini's `-s`: subreaper, as vminit and
    /// catatonit are by default outside PID 1; also silences its warning).
    args: &'static [&'static str],
}

impl Init {
    fn command(&self, app: &[&str]) -> Command {
        let mut command = Command::new(&self.path);
        command.args(self.args).arg("--").args(app);
        command
    }

    fn as_pid1(&self, app: &[impl AsRef<std::ffi::OsStr>]) -> Command {
        let mut command = cmd::pid1_namespace();
        command
            .arg("--")
            .arg(&self.path)
            .args(self.args)
            .arg("--")
            .args(app);
        command
    }
}

/// Everything measured for one init.
#[derive(Debug, Clone, Default)]
struct Results {
    size: u64,
    is_static: bool,
    rss_kb: Vec<f64>,
    /// Of which anonymous (`RssAnon`): the rest is the binary's own pages,
    /// shared with the page cache.
    rss_anon_kb: Vec<f64>,
    startup_ms: Vec<f64>,
    reap_ms: Vec<f64>,
    zombies_left: u64,
    signal_us: Vec<f64>,
    /// How many of `signal_us` each round took, in order: the interval
    /// resamples rounds, which drift apart more than signals in one do.
    signal_rounds: Vec<usize>,
    signals_lost: usize,
    /// Syscalls from the init's own execve to the app's, under strace.
    syscalls: u64,
    /// Instructions the init executes to run `/bin/true` (callgrind, the
    /// init's process alone): repeatable where times are noisy.
    instructions: u64,
}

/// Reaping runs per init, taken in turn.
const REAP_ROUNDS: usize = 11;
/// Signal rounds per init (1,000 signals in all), taken in turn.
const SIGNAL_ROUNDS: usize = 10;

const PEER_PACKAGES: &[(&str, &str)] = &[
    ("tini-static", "tini"),
    ("dumb-init", "dumb-init"),
    ("catatonit", "catatonit"),
];

pub fn run(args: &[String]) -> Result<(), String> {
    let mut runs = 400usize;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--runs" => runs = cmd::count(&mut words, "--runs", 10)?,
            other => return Err(format!("unknown option {other:?} for bench")),
        }
    }
    setup::packages(PEER_PACKAGES)?;
    setup::packages(&[
        ("unshare", "util-linux"),
        ("strace", "strace"),
        ("valgrind", "valgrind"),
    ])?;
    let vminit = build::static_binary()?;
    let which =
        |program: &str| cmd::which(program).ok_or_else(|| format!("{program} is not on the PATH"));
    let inits = vec![
        Init {
            name: "vminit",
            path: vminit,
            args: &[],
        },
        Init {
            name: "tini-static",
            path: which("tini-static")?,
            args: &["-s"],
        },
        Init {
            name: "dumb-init",
            path: which("dumb-init")?,
            args: &[],
        },
        Init {
            name: "catatonit",
            path: which("catatonit")?,
            args: &[],
        },
    ];
    let helper = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut results: Vec<Results> = vec![Results::default(); inits.len()];
    for (init, result) in inits.iter().zip(results.iter_mut()) {
        let bytes =
            std::fs::read(&init.path).map_err(|e| format!("{}: {e}", init.path.display()))?;
        result.size = bytes.len() as u64;
        result.is_static = !build::has_interpreter(&bytes)?;
        result.syscalls = syscalls_to_app(init)?;
        result.instructions = instructions(init)?;
    }
    eprintln!("idle memory…");
    for _ in 0..5 {
        for (init, result) in inits.iter().zip(results.iter_mut()) {
            let (rss, anon) = idle_rss_kb(init)?;
            result.rss_kb.push(rss);
            result.rss_anon_kb.push(anon);
        }
    }
    eprintln!("start-up overhead ({runs} runs each, in turn)…");
    startup(&inits, &mut results, runs)?;
    eprintln!("reaping 10,000 zombies…");
    for _ in 0..REAP_ROUNDS {
        for (init, result) in inits.iter().zip(results.iter_mut()) {
            let (ms, left) = reap(init, &helper, 10_000)?;
            result.reap_ms.push(ms);
            result.zombies_left = result.zombies_left.max(left);
        }
    }
    eprintln!("forwarding 1,000 signals…");
    // In rounds, inits in turn: latency here is mostly the scheduler's, and
    // it drifts; rounds spread that drift over every init alike.
    for _ in 0..SIGNAL_ROUNDS {
        for (init, result) in inits.iter().zip(results.iter_mut()) {
            let (latencies, lost) = forward_signals(init, &helper, 1000 / SIGNAL_ROUNDS)?;
            result.signal_rounds.push(latencies.len());
            result.signal_us.extend(latencies);
            result.signals_lost += lost;
        }
    }

    let table = render(&inits, &results, runs);
    print!("{table}");
    let dir = cmd::root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("peers.md"), &table).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("peers.csv"), csv(&inits, &results)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("peers.svg"), svg(&inits, &results)).map_err(|e| e.to_string())?;
    eprintln!("wrote target/bench/peers.md, peers.csv, peers.svg");
    Ok(())
}

/// How many syscalls the init makes from its own execve to the app's, as
/// `strace -f` lists them for `INIT -- /bin/true`.
fn syscalls_to_app(init: &Init) -> Result<u64, String> {
    let log = cmd::root().join(format!("target/bench/strace-{}.txt", init.name));
    std::fs::create_dir_all(cmd::root().join("target/bench")).map_err(|e| e.to_string())?;
    let mut command = Command::new("strace");
    command
        .args(["-f", "-o"])
        .arg(&log)
        .arg(&init.path)
        .args(init.args)
        .args(["--", "/bin/true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd::run(&mut command)?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let app = lines
        .iter()
        .position(|line| line.contains("execve(\"/bin/true\""))
        .ok_or_else(|| format!("{}: no execve of /bin/true", log.display()))?;
    // Lines between the first (the init's execve) and the app's, less
    // strace's own notes (`+++`, `---`, `<... resumed>`).
    Ok(lines[1..app]
        .iter()
        .filter(|line| !line.contains("+++") && !line.contains("---") && !line.contains("resumed>"))
        .count() as u64)
}

/// The instructions the init executes for `INIT -- /bin/true`, as
/// callgrind counts them (`Collected`), its child's not included.
fn instructions(init: &Init) -> Result<u64, String> {
    let out = cmd::root().join(format!("target/bench/callgrind-{}.out", init.name));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&init.path)
        .args(init.args)
        .args(["--", "/bin/true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    let text = String::from_utf8_lossy(&output.stderr);
    text.lines()
        .find_map(|line| line.split("Collected : ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "no instruction count from callgrind for {}:\n{text}",
                init.name
            )
        })
}

/// VmRSS of the init, and its RssAnon, as PID 1 of a new PID namespace,
/// supervising `sleep`.
fn idle_rss_kb(init: &Init) -> Result<(f64, f64), String> {
    let mut child = init
        .as_pid1(&["sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let pid = child_of(child.id())?;
        // Let it settle: started its child and gone to sleep waiting.
        std::thread::sleep(Duration::from_millis(300));
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .ok_or_else(|| format!("no {name} for {}", init.name))
        };
        Ok((field("VmRSS:")?, field("RssAnon:")?))
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `INIT -- /bin/true` minus `/bin/true`, medians of runs taken in turn.
fn startup(inits: &[Init], results: &mut [Results], runs: usize) -> Result<(), String> {
    let time = |command: &mut Command| -> Result<f64, String> {
        let start = Instant::now();
        let status = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        if status.success() {
            Ok(elapsed)
        } else {
            Err(format!("{command:?} failed: {status}"))
        }
    };
    let mut bare = Vec::with_capacity(runs);
    let mut with: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); inits.len()];
    for round in 0..runs {
        // The order rotates each round, so no init always follows the same one.
        let count = inits.len() + 1;
        for slot in 0..count {
            match (round + slot) % count {
                0 => bare.push(time(&mut Command::new("/bin/true"))?),
                i => with[i - 1].push(time(&mut inits[i - 1].command(&["/bin/true"]))?),
            }
        }
    }
    for (result, samples) in results.iter_mut().zip(with) {
        // Each run's overhead against the bare run of its own round: the
        // bare runs' spread then shows in the interval, and drift in the
        // machine's load cancels.
        result.startup_ms = samples.iter().zip(&bare).map(|(s, b)| s - b).collect();
    }
    Ok(())
}

/// Runs the helper's `orphans` mode under the init as PID 1; returns the
/// reaping time and the zombies left, as the helper reports them.
fn reap(init: &Init, helper: &Path, count: u32) -> Result<(f64, u64), String> {
    let count = count.to_string();
    let helper = helper.to_string_lossy();
    let output = init
        .as_pid1(&[&*helper, "bench-helper", "orphans", &count])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| {
                format!(
                    "{}: no {name} in {text:?} {}",
                    init.name,
                    String::from_utf8_lossy(&output.stderr)
                )
            })
    };
    Ok((field("reap_ms=")?, field("left=")? as u64))
}

/// Sends `count` SIGUSR1 to the init (PID 1) one at a time, each waiting for
/// the child's acknowledgement; returns latencies (µs) and the signals lost.
fn forward_signals(init: &Init, helper: &Path, count: usize) -> Result<(Vec<f64>, usize), String> {
    let fifo = std::env::temp_dir().join(format!(
        "vminit-bench-{}-{}.fifo",
        init.name,
        std::process::id()
    ));
    let _ = std::fs::remove_file(&fifo);
    let path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } != 0 {
        return Err(format!("mkfifo: {}", std::io::Error::last_os_error()));
    }
    let helper = helper.to_string_lossy();
    let fifo_arg = fifo.to_string_lossy();
    let mut child: Child = init
        .as_pid1(&[&*helper, "bench-helper", "echo-signal", &*fifo_arg])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let mut acks = std::fs::File::open(&fifo).map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        // The helper writes one byte once its handler is installed.
        acks.read_exact(&mut byte)
            .map_err(|e| format!("helper never started: {e}"))?;
        let pid = child_of(child.id())? as i32;
        let mut latencies = Vec::with_capacity(count);
        let mut lost = 0;
        for _ in 0..count {
            let start = Instant::now();
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGUSR1) };
            if read_byte(&mut acks, Duration::from_secs(2)) {
                latencies.push(start.elapsed().as_secs_f64() * 1e6);
            } else {
                lost += 1;
                // A late answer must not be taken for the next signal's.
                while read_byte(&mut acks, Duration::from_millis(500)) {}
            }
        }
        Ok((latencies, lost))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&fifo);
    result
}

/// Reads one byte from `file`, giving up after `timeout`: a lost signal
/// must not hang the benchmark.
fn read_byte(file: &mut std::fs::File, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, for the duration of the call.
    if unsafe { libc::poll(&mut poll, 1, millis) } != 1 {
        return false;
    }
    let mut byte = [0u8; 1];
    matches!(file.read(&mut byte), Ok(1))
}

/// The only child of `pid` (the init under `unshare --fork`).
fn child_of(pid: u32) -> Result<u32, String> {
    for _ in 0..500 {
        let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        if let Some(child) = list
            .ok()
            .as_deref()
            .and_then(|l| l.split_whitespace().next())
        {
            return child.parse().map_err(|_| "bad pid".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("{pid} has no child"))
}

/// One row of the table: a metric's value per init, and how to compare.
struct Row {
    name: &'static str,
    values: Vec<f64>,
    /// Shown instead of the number, e.g. "708,080 (static)".
    shown: Vec<String>,
    /// Only static peers compete on size; `None`: every peer counts.
    competitors: Option<Vec<bool>>,
    /// Each init's samples, in the rounds they were taken in, for the
    /// ratio's interval (which resamples rounds); empty for size.
    samples: Vec<Vec<Vec<f64>>>,
}

fn rows(results: &[Results]) -> Vec<Row> {
    let p99 = |v: &[f64]| stats::quantile(v, 0.99);
    let row = |name, values: Vec<f64>, shown: Vec<String>, f: fn(&Results) -> &Vec<f64>| Row {
        name,
        values,
        shown,
        competitors: None,
        // One run, one round.
        samples: results
            .iter()
            .map(|r| f(r).iter().map(|v| vec![*v]).collect())
            .collect(),
    };
    let median_of = |f: fn(&Results) -> &Vec<f64>| {
        results
            .iter()
            .map(|r| stats::median(f(r)))
            .collect::<Vec<_>>()
    };
    let mut rows = Vec::new();
    let sizes: Vec<f64> = results.iter().map(|r| r.size as f64).collect();
    rows.push(Row {
        name: "binary size, bytes",
        shown: results
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    thousands(r.size),
                    if r.is_static { "static" } else { "dynamic" }
                )
            })
            .collect(),
        values: sizes,
        competitors: Some(results.iter().map(|r| r.is_static).collect()),
        samples: Vec::new(),
    });
    let syscalls: Vec<f64> = results.iter().map(|r| r.syscalls as f64).collect();
    rows.push(Row {
        name: "syscalls from the init's execve to the app's",
        shown: results.iter().map(|r| r.syscalls.to_string()).collect(),
        values: syscalls,
        competitors: None,
        samples: Vec::new(),
    });
    rows.push(Row {
        name: "instructions to start /bin/true (callgrind, the init alone)",
        shown: results.iter().map(|r| thousands(r.instructions)).collect(),
        values: results.iter().map(|r| r.instructions as f64).collect(),
        competitors: None,
        samples: Vec::new(),
    });
    let rss = median_of(|r| &r.rss_kb);
    rows.push(row(
        "idle RSS as PID 1, kB (median of 5; anonymous)",
        rss.clone(),
        results
            .iter()
            .map(|r| {
                format!(
                    "{:.0} (anon {:.0})",
                    stats::median(&r.rss_kb),
                    stats::median(&r.rss_anon_kb)
                )
            })
            .collect(),
        |r| &r.rss_kb,
    ));
    let startup = median_of(|r| &r.startup_ms);
    rows.push(row(
        "start-up overhead on /bin/true, ms (median)",
        startup.clone(),
        results
            .iter()
            .map(|r| {
                format!(
                    "{:.3} (p10 {:.3}, p90 {:.3})",
                    stats::median(&r.startup_ms),
                    stats::quantile(&r.startup_ms, 0.1),
                    stats::quantile(&r.startup_ms, 0.9)
                )
            })
            .collect(),
        |r| &r.startup_ms,
    ));
    let reap = median_of(|r| &r.reap_ms);
    rows.push(row(
        "reap 10,000 zombies as PID 1, ms (median of 11)",
        reap.clone(),
        results
            .iter()
            .map(|r| {
                format!(
                    "{:.1} ({}–{}), {} left",
                    stats::median(&r.reap_ms),
                    fmt1(stats::min(&r.reap_ms)),
                    fmt1(stats::max(&r.reap_ms)),
                    r.zombies_left
                )
            })
            .collect(),
        |r| &r.reap_ms,
    ));
    let signal = median_of(|r| &r.signal_us);
    rows.push(row(
        "signal to child's handler, µs (median; p99)",
        signal.clone(),
        results
            .iter()
            .map(|r| {
                format!(
                    "{:.1}; {:.1}; {} lost",
                    stats::median(&r.signal_us),
                    p99(&r.signal_us),
                    r.signals_lost
                )
            })
            .collect(),
        |r| &r.signal_us,
    ));
    if let Some(signal_row) = rows.last_mut() {
        signal_row.samples = results.iter().map(signal_rounds).collect();
    }
    rows
}

/// An init's signal latencies, round by round.
fn signal_rounds(result: &Results) -> Vec<Vec<f64>> {
    let mut rest = result.signal_us.as_slice();
    let mut rounds = Vec::new();
    for &len in &result.signal_rounds {
        let (round, after) = rest.split_at(len.min(rest.len()));
        rounds.push(round.to_vec());
        rest = after;
    }
    rounds
}

fn fmt1(v: f64) -> String {
    format!("{v:.1}")
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The best (lowest) peer of a row, among those that compete: its index.
fn best_peer_index(row: &Row) -> usize {
    (1..row.values.len())
        .filter(|i| row.competitors.as_ref().is_none_or(|c| c[*i]))
        .min_by(|a, b| row.values[*a].total_cmp(&row.values[*b]))
        .unwrap_or(1)
}

/// The best (lowest) peer value of a row, among those that compete.
fn best_peer(row: &Row) -> f64 {
    row.values[best_peer_index(row)]
}

/// vminit's value over the best peer's, and the 95% bootstrap interval of
/// that ratio of medians (none for size, which does not vary).
fn ratio(row: &Row) -> (f64, Option<(f64, f64)>) {
    let best = best_peer_index(row);
    let point = row.values[0] / row.values[best];
    let interval = (!row.samples.is_empty()).then(|| {
        // Every init ran in each round, in turn.
        stats::clustered_ratio_interval(&row.samples[0], &row.samples[best], true)
    });
    (point, interval)
}

fn shown_ratio(row: &Row) -> String {
    match ratio(row) {
        (point, Some((low, high))) => format!("{point:.2} [{low:.2}–{high:.2}]"),
        (point, None) => format!("{point:.2}"),
    }
}

fn render(inits: &[Init], results: &[Results], runs: usize) -> String {
    let mut out = String::new();
    let machine = machine_line();
    let _ = writeln!(
        out,
        "Peers side by side, one run on {machine}; start-up: {runs} runs of each, taken in turn.\n"
    );
    let _ = write!(out, "| | ");
    let _ = writeln!(
        out,
        "{} | vminit ÷ best peer [95% interval] |",
        inits.iter().map(|i| i.name).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|", "---|".repeat(inits.len()));
    let rows = rows(results);
    for row in &rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            row.name,
            row.shown.join(" | "),
            shown_ratio(row)
        );
    }
    let _ = writeln!(out, "\nTargets:\n");
    for (name, met) in targets(&results[0], &rows) {
        let _ = writeln!(out, "- {}: {name}", if met { "MET" } else { "MISSED" });
    }
    out
}

/// The targets, each judged on the ratio and, where samples vary,
/// on its interval: whether it is met.
fn targets(vm: &Results, rows: &[Row]) -> Vec<(String, bool)> {
    let (startup, startup_interval) = ratio(&rows[4]);
    let startup_high = startup_interval.map_or(f64::NAN, |(_, high)| high);
    let tie = |row: &Row| match ratio(row).1 {
        Some((low, high)) if low <= 1.0 && 1.0 <= high => " (a tie within the interval)",
        Some((_, high)) if high < 1.0 => " (ahead beyond the interval)",
        _ => "",
    };
    vec![
        (
            // 480 KiB before the host API; 512 KiB with it compiled in.
            "binary at most 512 KiB with the host API, static, smaller than every static peer"
                .to_owned(),
            vm.is_static && vm.size <= 512 * 1024 && rows[0].values[0] < best_peer(&rows[0]),
        ),
        (
            "syscalls from the init's execve to the app's: no more than any peer's".to_owned(),
            rows[1].values[0] <= best_peer(&rows[1]),
        ),
        (
            "idle RSS at most 400 kB, below every peer's".to_owned(),
            rows[3].values[0] <= 400.0 && rows[3].values[0] < best_peer(&rows[3]),
        ),
        (
            format!(
                "start-up overhead at most 0.9× the fastest peer's, the interval's upper end below 1.0 (upper end {startup_high:.2})"
            ),
            startup <= 0.9 && startup_high < 1.0,
        ),
        (
            format!(
                "reaping: no zombie left, ratio at most 1.0{}",
                tie(&rows[5])
            ),
            vm.zombies_left == 0 && ratio(&rows[5]).0 <= 1.0,
        ),
        (
            format!(
                "forwarding: no signal lost, median latency ratio at most 1.0{}",
                tie(&rows[6])
            ),
            vm.signals_lost == 0 && ratio(&rows[6]).0 <= 1.0,
        ),
    ]
}

fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d"])).unwrap_or_default();
    format!(
        "{} ({cores} cores), Linux {}, {}",
        cpu,
        kernel.trim(),
        date.trim()
    )
}

fn csv(inits: &[Init], results: &[Results]) -> String {
    let mut out = String::from("init,metric,sample,value\n");
    for (init, r) in inits.iter().zip(results) {
        let _ = writeln!(out, "{},size_bytes,0,{}", init.name, r.size);
        let _ = writeln!(out, "{},static,0,{}", init.name, u8::from(r.is_static));
        let _ = writeln!(out, "{},syscalls_to_app,0,{}", init.name, r.syscalls);
        let _ = writeln!(out, "{},instructions,0,{}", init.name, r.instructions);
        let series: [(&str, &Vec<f64>); 5] = [
            ("idle_rss_kb", &r.rss_kb),
            ("idle_rss_anon_kb", &r.rss_anon_kb),
            ("startup_overhead_ms", &r.startup_ms),
            ("reap_10000_ms", &r.reap_ms),
            ("signal_latency_us", &r.signal_us),
        ];
        for (metric, values) in series {
            for (i, v) in values.iter().enumerate() {
                let _ = writeln!(out, "{},{metric},{i},{v}", init.name);
            }
        }
        let _ = writeln!(out, "{},zombies_left,0,{}", init.name, r.zombies_left);
        let _ = writeln!(out, "{},signals_lost,0,{}", init.name, r.signals_lost);
    }
    // vminit over the best peer: the ratio of medians and its interval.
    let metrics = [
        "size_bytes",
        "syscalls_to_app",
        "instructions",
        "idle_rss_kb",
        "startup_overhead_ms",
        "reap_10000_ms",
        "signal_latency_us",
    ];
    for (metric, row) in metrics.iter().zip(rows(results)) {
        let (point, interval) = ratio(&row);
        let best = inits[best_peer_index(&row)].name;
        let _ = writeln!(out, "vminit/{best},{metric}_ratio,point,{point}");
        if let Some((low, high)) = interval {
            let _ = writeln!(out, "vminit/{best},{metric}_ratio,ci95_low,{low}");
            let _ = writeln!(out, "vminit/{best},{metric}_ratio,ci95_high,{high}");
        }
    }
    out
}

/// A bar chart: one group per metric, one bar per init, each scaled to the
/// largest in its group (shorter is better everywhere).
fn svg(inits: &[Init], results: &[Results]) -> String {
    let rows = rows(results);
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"];
    let (label_w, bar_w, bar_h, gap) = (150.0, 420.0, 16.0, 28.0);
    let group_h = bar_h * inits.len() as f64 + gap + 14.0;
    let height = 40.0 + group_h * rows.len() as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">vminit and its peers (shorter is better)</text>\n",
        label_w + bar_w + 120.0
    );
    for (g, row) in rows.iter().enumerate() {
        let top = 40.0 + group_h * g as f64;
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\" font-weight=\"bold\">{}</text>",
            top + 12.0,
            row.name
        );
        let max = row
            .values
            .iter()
            .copied()
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        for (i, init) in inits.iter().enumerate() {
            let y = top + 18.0 + bar_h * i as f64;
            let w = (row.values[i] / max * bar_w).max(1.0);
            let _ = writeln!(
                out,
                "<text x=\"10\" y=\"{}\">{}</text>",
                y + 12.0,
                init.name
            );
            let _ = writeln!(
                out,
                "<rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/>",
                bar_h - 3.0,
                colours[i % colours.len()]
            );
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{}\">{}</text>",
                label_w + w + 5.0,
                y + 12.0,
                format_value(row.values[i])
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn format_value(v: f64) -> String {
    if v >= 1000.0 {
        thousands(v.round() as u64)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
