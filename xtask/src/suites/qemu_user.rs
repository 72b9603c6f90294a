//! `cargo xtask test-qemu-user`: vminit's unit and integration tests for
//! another architecture, run by qemu-user (binfmt_misc), with the tests
//! qemu-user cannot pass skipped, each with its reason.

use crate::release::build;
use crate::vm::arch::Arch;
use crate::{cmd, setup};

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
pub fn run(arch: Arch) -> Result<(), String> {
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
