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
