//! The fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer): built on every test
//! run, and run briefly from the seeds. A crash is saved by libFuzzer under
//! `fuzz/artifacts/`; copy it to `fuzz/regressions/<target>/` so that
//! `tests/fuzz_regressions.rs` replays it forever.

use crate::cmd;

/// Seconds each target runs in `cargo xtask test`.
pub const CI_SECONDS: u64 = 20;
const TARGETS: &[&str] = &["cmdline", "metadata", "layer", "decompress"];

/// Builds the fuzz targets and, with `seconds`, runs each that long.
pub fn check(seconds: Option<u64>) -> Result<(), String> {
    if !cmd::exists("cargo-fuzz") {
        cmd::run(cmd::cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let fuzz = |args: &[&str]| {
        let mut command = cmd::cargo();
        // cargo-fuzz passes nightly-only flags; RUSTC_BOOTSTRAP lets stable take them.
        command.arg("fuzz").args(args).env("RUSTC_BOOTSTRAP", "1");
        command
    };
    cmd::run(&mut fuzz(&["build", "--sanitizer", "none"]))?;
    let Some(seconds) = seconds else {
        return Ok(());
    };
    for target in TARGETS {
        let corpus = cmd::root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        let seeds = cmd::root().join("fuzz/seeds").join(target);
        let time = format!("-max_total_time={seconds}");
        let mut command = fuzz(&["run", "--sanitizer", "none", target]);
        command
            .arg(&corpus)
            .arg(&seeds)
            .args(["--", &time, "-print_final_stats=1"]);
        cmd::run(&mut command)?;
    }
    Ok(())
}
