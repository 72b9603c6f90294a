//! Bad input: a command line and metadata file that are refused before
//! anything starts, a module that is not there, and both sides of the
//! kernel's own limits on init's arguments and variables.

use super::checks::{expect, line, refused_before_the_app, require};
use super::{Case, Image, Outside};
use crate::vm::qemu::Console;

/// Input that is refused, and the kernel's limits.
pub(super) fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case {
            name: "bad_input_is_named_exits_2_and_ends_the_vm",
            image: Image::Normal,
            // A power-off: under QEMU microvm a guest restart sometimes
            // boots again despite -no-reboot (seen here), so the restart
            // path is checked in tests/vm_mode.rs instead.
            cmdline: "env.1BAD=s3cret-on-cmdline workdir=/a/../b \
                      metadata=/tests/broken.json -- true",
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 2)?;
                require(
                    c,
                    &[
                        "vminit: error: kernel command line: env.1BAD: is not a valid variable name",
                        "vminit: error: kernel command line: workdir: must be a clean path: no '..' component",
                        "vminit: error: metadata file /tests/broken.json: is not valid JSON",
                    ],
                )?;
                if c.has("s3cret") {
                    Err("a value was printed".into())
                } else {
                    Ok(())
                }
            },
        },
        Case {
            name: "missing_module_is_refused_before_the_app",
            image: Image::Normal,
            cmdline: r#"vminit.modules=virtio_mmio,no_such_module -- sh -c "echo app-ran""#,
            after: &[],
            devices: &[],
            check: |c, _| {
                refused_before_the_app(
                    c,
                    "Module no_such_module is neither in modules.dep nor built into the kernel",
                )
            },
        },
    ];
    cases.extend(init_limit_cases());
    cases
}

/// Both sides of the kernel's limits on init's arguments and variables
/// (`init/main.c`): what boots must pass `--check`, what panics must not.
fn init_limit_cases() -> Vec<Case> {
    let case = |name, cmdline, check: fn(&Console, &Outside) -> Result<(), String>| Case {
        name,
        image: Image::Normal,
        cmdline,
        after: &[],
        devices: &[],
        check,
    };
    vec![
        case(
            "init_limits_31_variables_and_32_arguments_boot",
            line(format!(
                "{} -- /tests/count.sh {}",
                words(31, "key"),
                words(31, "x")
            )),
            |c, o| kernel_accepted(c, o, "args=31 keys=31"),
        ),
        case(
            "init_limits_32_variables_panic_the_kernel_and_fail_check",
            line(format!("{} -- /tests/count.sh", words(32, "key"))),
            |c, o| kernel_refused(c, o, "Too many boot env vars"),
        ),
        case(
            "init_limits_33_arguments_panic_the_kernel_and_fail_check",
            line(format!("-- /tests/count.sh {}", words(32, "x"))),
            |c, o| kernel_refused(c, o, "Too many boot init vars"),
        ),
        case(
            "init_limits_bare_words_share_the_arguments_32_boot",
            line(format!(
                "nomodules foo -- /tests/count.sh {}",
                words(29, "x")
            )),
            |c, o| kernel_accepted(c, o, "args=29 keys=0"),
        ),
        case(
            "init_limits_bare_words_share_the_arguments_33_panic",
            line(format!(
                "nomodules foo bar -- /tests/count.sh {}",
                words(29, "x")
            )),
            |c, o| kernel_refused(c, o, "Too many boot init vars"),
        ),
    ]
}

/// The kernel panicked before init with `message`, and `--check` refused
/// the same line naming the same rule.
fn kernel_refused(console: &Console, outside: &Outside, message: &str) -> Result<(), String> {
    if !console.kernel_panicked() || !console.has(message) {
        return Err(format!("no kernel panic with {message:?}"));
    }
    if console.has("vminit:") {
        return Err("vminit ran".into());
    }
    match &outside.check {
        (2, stderr) if stderr.contains(message) => Ok(()),
        other => Err(format!("--check did not refuse the line: {other:?}")),
    }
}

/// The app ran, exited 0 and printed `line`, and `--check` accepted the line.
fn kernel_accepted(console: &Console, outside: &Outside, line: &str) -> Result<(), String> {
    expect(console, 0)?;
    require(console, &[line])?;
    match &outside.check {
        (0, _) => Ok(()),
        other => Err(format!("--check refused the line: {other:?}")),
    }
}

/// A line of `n` words: `word` repeated, or `key0=v key1=v …` for "key".
fn words(n: usize, word: &str) -> String {
    (0..n)
        .map(|i| {
            if word == "key" {
                format!("key{i}=v")
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
