//! `cargo xtask bench-api [--boots N]`: what the host API costs in memory
//! at idle. The same microVM boots with the API off and on (its vsock
//! served by `vhost-device-vsock`, as the suites have it), alternating in
//! one run; two seconds after the app starts, it reads `smaps_rollup` of
//! every vminit process: PID 1 alone with the API off, PID 1 and the API's
//! server with it on. Pss is the honest sum, as the server shares its
//! pages with PID 1 until either writes them (fork's copy on write); Rss
//! summed counts those shared pages twice, and is shown too.
//!
//! Prints the medians and the difference, and writes
//! `target/bench/api.md` and `api.csv`.

use std::fmt::Write as _;
use std::time::Duration;

use super::stats;
use crate::cmd;
use crate::vm::initramfs::Console as ConsoleNodes;
use crate::vm::kernel;
use crate::vm::kit::Kit;
use crate::vm::qemu::{self, Boot};
use crate::vm::vsock::VsockHost;

/// The app: waits for the start to settle, then reports every vminit
/// process's memory (the API's server is a child of PID 1 with its name:
/// `init`, as the kernel started `/init`).
/// (Inside the kernel line's double quotes: none of its own.)
const APP: &str = "sleep 2; for p in 1 $(cat /proc/1/task/1/children); do \
     if [ $(cat /proc/$p/comm) = $(cat /proc/1/comm) ]; then \
     echo mem $(grep -E '^(Rss|Pss|Pss_Anon):' /proc/$p/smaps_rollup); fi; done";

const MODULES: &[&str] = &["virtio_mmio", "vmw_vsock_virtio_transport"];

/// One boot's memory, summed over vminit's processes, in kB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    processes: usize,
    rss: f64,
    pss: f64,
    pss_anon: f64,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let boots = super::boots_option(args, "bench-api")?;
    let kit = Kit::prepare(None)?;
    VsockHost::install()?;
    let files = kernel::module_files(&kit.kernel, MODULES)?;
    let image = kit.image("bench-api", ConsoleNodes::Nodes, files)?;
    let modules = format!("vminit.modules={}", MODULES.join(","));
    let off = format!("{modules} -- sh -c \"{APP}\"");
    let on = format!("{modules} vminit.api=vsock:10000 vminit.api.insecure=1 -- sh -c \"{APP}\"");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..boots {
        eprintln!("round {}/{boots}", round + 1);
        // Alternate, so that drift hits both alike; the same device both ways.
        without.push(measure(&kit, &image, &off, round)?);
        with.push(measure(&kit, &image, &on, round)?);
    }
    if without.iter().any(|m| m.processes != 1) || with.iter().any(|m| m.processes != 2) {
        return Err(format!(
            "expected 1 vminit process without the API and 2 with it: {without:?} {with:?}"
        ));
    }
    let table = render(&without, &with);
    print!("{table}");
    let dir = cmd::root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut csv = String::from("api,boot,processes,rss_kb,pss_kb,pss_anon_kb\n");
    for (name, samples) in [("off", &without), ("on", &with)] {
        for (i, m) in samples.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{name},{i},{},{},{},{}",
                m.processes, m.rss, m.pss, m.pss_anon
            );
        }
    }
    std::fs::write(dir.join("api.csv"), csv).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("api.md"), &table).map_err(|e| e.to_string())?;
    eprintln!("raw numbers: target/bench/api.csv; table: target/bench/api.md");
    Ok(())
}

fn measure(
    kit: &Kit,
    image: &std::path::Path,
    cmdline: &str,
    round: usize,
) -> Result<Memory, String> {
    let name = format!("vminit-bench-api-{}-{round}", std::process::id());
    let host = VsockHost::start(&std::env::temp_dir(), &name)?;
    let boot = Boot {
        devices: host.devices(),
        ..kit.boot(image, cmdline.to_owned())
    };
    let console = qemu::run(&boot, Duration::from_secs(120), false, |_| {})?;
    drop(host);
    if !console.lines.iter().any(|l| l.starts_with("mem ")) {
        return Err(format!("no memory line:\n{}", console.text()));
    }
    let mut memory = Memory::default();
    for line in console.lines.iter().filter_map(|l| l.strip_prefix("mem ")) {
        let mut words = line.split_whitespace();
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            let value: f64 = value.parse().map_err(|_| format!("not a number: {line}"))?;
            let _unit = words.next();
            match key {
                "Rss:" => memory.rss += value,
                "Pss:" => memory.pss += value,
                "Pss_Anon:" => memory.pss_anon += value,
                _ => {}
            }
        }
        memory.processes += 1;
    }
    Ok(memory)
}

/// One figure of a sample.
type Pick = fn(&Memory) -> f64;

fn render(without: &[Memory], with: &[Memory]) -> String {
    let column =
        |samples: &[Memory], pick: Pick| -> Vec<f64> { samples.iter().map(pick).collect() };
    let mut out = format!(
        "## The host API's memory at idle\n\n{} boots each, alternating; kB, median (min–max)\n\n\
         | | API off (PID 1) | API on (PID 1 + server) | difference (paired by round) |\n|---|---|---|---|\n",
        without.len()
    );
    let rows: [(&str, Pick); 3] = [
        ("Pss", |m| m.pss),
        ("Pss, anonymous", |m| m.pss_anon),
        ("Rss summed (shared pages twice)", |m| m.rss),
    ];
    for (name, pick) in rows {
        let (a, b) = (column(without, pick), column(with, pick));
        let differences: Vec<f64> = a.iter().zip(&b).map(|(a, b)| b - a).collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            stats::summary(&a, 0),
            stats::summary(&b, 0),
            stats::summary(&differences, 0)
        );
    }
    out
}
