//! `cargo xtask test`: the whole check, as CI runs it. Installs what is
//! missing, then: formatting, clippy (host and musl), the static build, unit
//! and integration tests against the static binary, `cargo publish
//! --dry-run`, the release artifacts with their checks and the
//! reproducibility check (one more build), the fuzz targets, vminit as the
//! init of Podman and Docker (`engines`), the unit and integration tests
//! again against the aarch64 binary under qemu-user, the soak (two
//! minutes), and the VM suite (real boots in QEMU) for x86-64, then for
//! aarch64.

use super::{engines, fuzz, qemu_user, soak, vm};
use crate::release::{build, dist};
use crate::vm::arch::Arch;
use crate::{cmd, setup};

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
    qemu_user::run(other)?;
    soak::soak(soak::CI_MINUTES)?;
    vm::run(None, Arch::host())?;
    // Every case that applies to the other architecture, after the host's:
    // both keep the two cores busy.
    vm::run(None, other)
}
