//! `cargo xtask test`: the whole check, as CI runs it. Installs what is
//! missing, then: formatting, clippy (host and musl), the static build, unit
//! and integration tests against the static binary, `cargo publish
//! --dry-run`, the release artifacts with their checks and the
//! reproducibility check (one more build), the fuzz targets, vminit as the
//! init of Podman and Docker (`engines`), the unit and integration tests
//! again against the aarch64 binary under qemu-user, and the VM suite
//! (real boots in QEMU) for x86-64, then for aarch64.

use crate::arch::Arch;
use crate::{build, cmd, dist, engines, fuzz, setup, vm_tests};

/// Commands the integration tests use, and the Debian packages with them.
const TEST_TOOLS: &[(&str, &str)] = &[
    ("unshare", "util-linux"),
    ("ps", "procps"),
    ("perl", "perl-base"),
    ("bash", "bash"),
    ("awk", "mawk"),
    // vminit-image's tests make and read ext4 images.
    ("mkfs.ext4", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    // ...and hostile images, under a memory limit and as another user.
    ("prlimit", "util-linux"),
    ("setpriv", "util-linux"),
    ("tar", "tar"),
];

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(other) = args.iter().find(|a| *a != "--quick") {
        return Err(format!("unknown option {other:?} for test"));
    }
    setup::packages(TEST_TOOLS)?;
    setup::rust(Arch::host())?;

    cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))?;
    let clippy = ["clippy", "--workspace", "--all-targets", "--quiet"];
    cmd::run(cmd::cargo().args(clippy).args(["--", "-D", "warnings"]))?;
    cmd::run(cmd::cargo().args(clippy).args([
        "--target",
        Arch::host().target(),
        "--",
        "-D",
        "warnings",
    ]))?;

    let binary = build::static_binary()?;
    // Every integration test runs the static release binary, as shipped.
    cmd::run(
        cmd::cargo()
            .args(["test", "--workspace"])
            .env("VMINIT_BIN", &binary),
    )?;

    dist::publish_dry_run()?;
    dist::run(&["--check-reproducible".to_owned()])?;

    fuzz::check(if quick { None } else { Some(fuzz::CI_SECONDS) })?;
    engines::run()?;
    let other = Arch::ALL
        .into_iter()
        .find(|arch| *arch != Arch::host())
        .ok_or("no other architecture")?;
    under_qemu_user(other)?;
    vm_tests::run(None, Arch::host())?;
    // Every case that applies to the other architecture, after the host's:
    // both keep the two cores busy.
    vm_tests::run(None, other)
}

/// Integration tests that cannot pass under qemu-user (Debian's 7.2),
/// whatever the binary does, and why. Each passes natively and in the VM
/// suite's counterpart.
const QEMU_USER_SKIPS: &[(&str, &str)] = &[
    (
        "bad_configuration_is_2_and_nothing_starts",
        "prctl(PR_SET_CHILD_SUBREAPER) is not emulated: the warning vminit prints then is extra output",
    ),
    (
        "orphaned_zombies_are_reaped_as_a_subreaper",
        "prctl(PR_SET_CHILD_SUBREAPER) is not emulated",
    ),
    (
        "leftovers_are_stopped_when_the_app_exits",
        "prctl(PR_SET_CHILD_SUBREAPER) is not emulated: a subreaper's leftovers are not its children",
    ),
    (
        "a_signal_death_is_128_plus_the_signal",
        "qemu-user renumbers real-time signals between the host and the guest",
    ),
    (
        "a_sigterm_sent_right_at_start_up_is_not_lost",
        "the test reads the host's blocked mask (qemu's own), not the guest's",
    ),
    (
        "the_app_starts_with_an_empty_mask_and_default_dispositions",
        "qemu-user ignores host signal 32 itself, and exec keeps that",
    ),
    (
        "a_missing_command_is_127_and_named",
        "qemu-user runs clone(CLONE_VM|CLONE_VFORK) as a plain fork: the child's report of a failed exec, written to memory it shares with vminit on a kernel, never reaches vminit (the status, 127, does)",
    ),
    (
        "a_command_that_cannot_run_is_126_and_named",
        "qemu-user runs clone(CLONE_VM|CLONE_VFORK) as a plain fork: the child's report of a failed exec never reaches vminit (the status, 126, does)",
    ),
    (
        "a_huge_argv0_is_quoted_short",
        "qemu-user runs clone(CLONE_VM|CLONE_VFORK) as a plain fork: no report of the failed exec to quote",
    ),
    (
        "a_failing_set_up_step_is_named_not_reported_as_exec",
        "qemu-user runs clone(CLONE_VM|CLONE_VFORK) as a plain fork: the failed step's report never reaches vminit",
    ),
    (
        "a_workdir_the_user_cannot_enter_is_refused_as_that_user",
        "qemu-user runs clone(CLONE_VM|CLONE_VFORK) as a plain fork: the failed step's report never reaches vminit",
    ),
    (
        "signal_deaths_and_missing_commands_are_reported",
        "qemu-user runs clone(CLONE_VM|CLONE_VFORK) as a plain fork: the report of a missing command never reaches vminit",
    ),
];

/// The unit tests built for `arch` and the integration tests run against
/// `arch`'s static binary, both through qemu-user (binfmt_misc): syscall
/// numbers, struct layouts and ioctl numbers of that architecture, in use.
pub fn under_qemu_user(arch: Arch) -> Result<(), String> {
    setup::binfmt(arch)?;
    let binary = build::static_binary_for(arch)?;
    cmd::run(
        cmd::cargo()
            .args(["test", "--package", "vminit", "--lib"])
            .args(["--target", arch.target()])
            .arg("--target-dir")
            .arg(cmd::root().join("target/qemu-user"))
            .env(build::linker_variable(arch), "rust-lld"),
    )?;
    let mut tests = cmd::cargo();
    tests
        .args(["test", "--package", "vminit", "--test", "*", "--"])
        .env("VMINIT_BIN", &binary);
    for (name, why) in QEMU_USER_SKIPS {
        eprintln!("skipped under qemu-user: {name}: {why}");
        tests.args(["--skip", name]);
    }
    cmd::run(&mut tests)
}
