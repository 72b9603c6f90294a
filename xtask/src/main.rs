//! `cargo xtask`: vminit's tooling, written in Rust with std only so that it
//! builds in seconds on a fresh machine.
//!
//! ```text
//! cargo xtask run [OPTIONS] -- COMMAND [ARGS...]   boot a microVM running COMMAND
//! cargo xtask build            the static, size-tuned binary (prints its path)
//! cargo xtask dist             the release artifacts in target/dist/ (see release/dist.rs)
//! cargo xtask test [--quick]   every check: set-up, lints, unit, integration, fuzz,
//!                              engines, VM suite
//! cargo xtask test-vm [FILTER] the VM suite
//! cargo xtask test-engines [FILTER]
//!                              vminit as the init of Podman and Docker
//! cargo xtask bench, bench-vm  vminit against its peers, and in a microVM
//! cargo xtask bench-boot       nginx served under vminit, systemd, busybox init, a script
//! ```

mod bench;
mod cmd;
mod release;
mod setup;
mod suites;
mod vm;

use std::process::ExitCode;

use release::{build, dist};
use suites::{engines, qemu_user, test};
use vm::{arch, run};

const USAGE: &str = "\
Usage: cargo xtask <COMMAND>

Commands:
  run [OPTIONS] -- COMMAND [ARGS...]
                   boot a microVM (QEMU microvm, stock Debian kernel) with vminit as
                   /init running COMMAND; exits with its status. Options:
                   --env K=V, --workdir DIR, --metadata FILE, --add HOST:GUEST,
                   --kernel PATH, --cmdline EXTRA, --net (virtio-net with QEMU's
                   user networking: the guest is 10.0.2.15, the host's loopback 10.0.2.2),
                   --arch aarch64 (qemu-system-aarch64 -M virt, Debian's arm64 kernel)
  test-vm [--arch aarch64] [FILTER]
                   only the VM test suite (the cases whose name contains FILTER);
                   --arch aarch64: under qemu-system-aarch64 -M virt
  test-engines [FILTER]
                   vminit as the init of real engines: rootful Podman (podman run
                   --init --init-path, runc) and a private dockerd (--init-path);
                   stop, orphans, run -it, exit codes (the tests whose name
                   contains FILTER, e.g. podman or docker);
                   VMINIT_ENGINES_INIT=PATH puts another init in vminit's place
  test-qemu-user   the unit and integration tests against the aarch64 binary, run by
                   qemu-user (binfmt_misc; a few tests qemu-user cannot pass are skipped,
                   each with its reason)
  soak [--minutes N]
                   vminit as PID 1 for N minutes (default 2), in a PID namespace and in a
                   VM at once, under an app that forks 1,000 processes a second, leaves
                   orphans and zombies, sends signal bursts and logs: RSS and fds flat,
                   no zombie older than 1 s, every signal forwarded (target/soak.md)
  bench [--runs N]  vminit against tini, dumb-init and catatonit, side by side
  bench-vm [--boots N] [--cpus N] [--kernel PATH]
                   boot timings of vminit against a shell-script init, side by side,
                   and vminit's start to the app's exec by step
  bench-boot [--boots N]
                   one nginx image booted to serving under vminit, systemd, busybox
                   init and a shell script: time to the first HTTP 200, memory in use,
                   time to stop (target/bench/boot.md)
  bench-api [--boots N]
                   the host API's memory at idle: the same microVM with it off and on,
                   Pss of vminit's processes (target/bench/api.md)
  build [--arch aarch64]
                   build the static vminit (musl, std rebuilt for size); prints its path
  dist [--check-reproducible]
                   the release artifacts in target/dist/, built with the pinned Rust
                   (release::dist::RELEASE_TOOLCHAIN): per architecture a tarball and a .deb
                   of vminit and a tarball of vminit-image, then SHA256SUMS; checks
                   the packages; --check-reproducible: builds x86_64 again into
                   another target directory and compares the bytes
  publish-dry-run  cargo publish --dry-run of vminit and vminit-image
  test [--quick]   install what is missing, then run every check and test:
                   lints, unit, integration, fuzz, engines, VM suite
                   (--quick: skip the fuzz runs)
  help             print this
";

/// `test-vm [--arch ARCH] [FILTER]`.
fn test_vm_command(args: &[String]) -> Result<(), String> {
    let (arch, rest) = match args {
        [flag, name, rest @ ..] if flag == "--arch" => (arch::Arch::parse(name)?, rest),
        rest => (arch::Arch::host(), rest),
    };
    match rest {
        [] => suites::vm::run(None, arch),
        [filter] => suites::vm::run(Some(filter), arch),
        _ => Err("test-vm takes [--arch x86_64|aarch64] [FILTER]".into()),
    }
}

/// `build [--arch ARCH]`.
fn build_command(args: &[String]) -> Result<(), String> {
    let arch = match args {
        [] => arch::Arch::host(),
        [flag, name] if flag == "--arch" => arch::Arch::parse(name)?,
        _ => return Err("build takes only --arch x86_64|aarch64".into()),
    };
    let path = build::static_binary_for(arch)?;
    println!("{}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build_command(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        Some("publish-dry-run") if args.len() == 1 => dist::publish_dry_run(),
        Some("test") => test::run(&args[1..]),
        Some("test-vm") => test_vm_command(&args[1..]),
        Some("test-qemu-user") => qemu_user::run(arch::Arch::Aarch64),
        Some("test-engines") => match &args[1..] {
            [] => engines::run(),
            [filter] => engines::run_matching(Some(filter)),
            _ => Err("test-engines takes [FILTER]".into()),
        },
        Some("soak") => suites::soak::run(&args[1..]),
        Some("bench-vm") => bench::vm::run(&args[1..]),
        Some("bench-boot") => bench::boot::run(&args[1..]),
        Some("bench-api") => bench::api::run(&args[1..]),
        Some("bench") => bench::peers::run(&args[1..]),
        Some("bench-helper") => bench::helper::run(&args[1..]),
        Some("run") => match run::run(&args[1..]) {
            Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => Err(e),
        },
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
