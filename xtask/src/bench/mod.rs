//! The benchmarks, each writing its table under `target/bench/`:
//!
//! - [`peers`]: vminit against tini, dumb-init and catatonit (`bench`),
//!   with [`helper`], the processes it runs as the init's child
//!   (`bench-helper`);
//! - [`vm`]: boot timings in a microVM, against a shell-script init
//!   (`bench-vm`);
//! - [`boot`]: one nginx image booted to serving under vminit, systemd,
//!   busybox init and a script (`bench-boot`);
//! - [`api`]: the host API's memory at idle, on against off (`bench-api`);
//! - [`stats`]: the summaries and intervals they share.

pub mod api;
pub mod boot;
pub mod helper;
pub mod peers;
pub mod stats;
pub mod vm;

/// The `--boots N` of a benchmark that takes nothing else (default 10).
pub fn boots_option(args: &[String], command: &str) -> Result<usize, String> {
    let mut boots = 10usize;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--boots" => boots = crate::cmd::count(&mut words, "--boots", 1)?,
            other => return Err(format!("unknown option {other:?} for {command}")),
        }
    }
    Ok(boots)
}
