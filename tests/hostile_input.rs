//! Hostile input through the public interface (issue 10, part A): names
//! that swallowed their value, files that never end or never open, the
//! kernel's limits on init and on exec, and what `--check` and a boot
//! (`--mode vm` as PID 1 of a PID namespace) make of them. Each case
//! failed before the fix it names.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use common::{Run, binary, run, tempdir, vminit};

/// `vminit --check ARGS`, where an argument may hold any bytes.
fn check(args: &[&[u8]]) -> Run {
    let mut command = Command::new(binary());
    command.arg("--check");
    command.args(args.iter().map(|a| OsStr::from_bytes(a)));
    run(command)
}

/// A secret that must never appear in any message.
const SECRET: &str = "hunter2";

fn assert_refused_without_the_secret(result: &Run, needle: &str) {
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(
        result.stderr.contains(needle),
        "no {needle:?} in {result:#?}"
    );
    assert!(!result.stderr.contains(SECRET), "{}", result.stderr);
    assert!(!result.stdout.contains(SECRET), "{}", result.stdout);
}

/// `--mode vm` in a PID namespace printed the exit line of status 2 and
/// powered off (which ends the namespace's init with SIGINT).
fn assert_machine_ended_with_2(result: &Run) {
    assert!(result.stderr.contains("vminit: exit_code=2"), "{result:#?}");
    assert_eq!(
        result.status.signal(),
        Some(libc::SIGINT),
        "power-off: {result:#?}"
    );
}

#[test]
fn a_name_that_swallowed_its_value_is_cut_before_it() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"env.TOKEN:c2VjcmV0hunter2== -- true",
            "--cmdline: env.TOKEN: the byte ':' at position 9 cannot be in a variable name",
        ),
        (
            b"env.TOKEN:hunter2\xff -- true",
            "--cmdline: env.TOKEN: the byte ':' at position 9",
        ),
        (
            b"\"env.TOKEN hunter2=x\" -- true",
            "--cmdline: env.TOKEN: the byte ' ' at position 9",
        ),
        (
            b"vminit.user:hunter2=x -- true",
            "--cmdline: vminit.user: the byte ':' at position 11",
        ),
    ];
    for (line, needle) in cases {
        assert_refused_without_the_secret(&check(&[b"--cmdline", line]), needle);
    }
    let result = check(&[b"--env", b"TOKEN:aHVudGVyMg==hunter2=", b"--", b"true"]);
    assert_refused_without_the_secret(&result, "option: --env TOKEN: the byte ':' at position 5");

    let dir = tempdir("swallowed-names");
    let metadata = dir.join("m.json");
    std::fs::write(
        &metadata,
        r#"{"argv": ["true"], "env": {"TOKEN hunter2": "x", "API_KEY=hunter2": "y"}}"#,
    )
    .unwrap();
    let result = check(&[b"--metadata", metadata.as_os_str().as_bytes()]);
    assert_refused_without_the_secret(&result, "env.TOKEN: the byte ' ' at position 5");
    assert!(
        result
            .stderr
            .contains("env.API_KEY: the byte '=' at position 7")
    );
}

#[test]
fn files_that_are_not_regular_are_refused_without_blocking() {
    let dir = tempdir("fifo");
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let path = fifo.to_str().unwrap();
    // A FIFO with no writer used to block open() forever.
    for args in [
        vec!["--metadata", path, "--", "true"],
        vec!["--cmdline-file", path],
    ] {
        let result = check(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
        assert_eq!(result.code(), 2, "{result:#?}");
        assert!(
            result.stderr.contains("is a FIFO, not a regular file"),
            "{result:#?}"
        );
    }
    let result = run(vminit(&["--metadata", path, "--", "true"]));
    assert_eq!(result.code(), 2, "{result:#?}");
    // An endless file: no made-up length.
    let result = check(&[b"--metadata", b"/dev/zero", b"--", b"true"]);
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(
        result
            .stderr
            .contains("metadata file /dev/zero: is a character device, not a regular file"),
        "{result:#?}"
    );
    // Booted: the FIFO named by metadata= still ends the machine with 2.
    let mut command = common::pid1_namespace();
    let line = format!("metadata={path} -- true");
    command
        .arg(binary())
        .args(["--mode", "vm", "--cmdline", &line]);
    assert_machine_ended_with_2(&run(command));
}

#[test]
fn check_refuses_what_would_panic_the_kernel_and_accepts_what_boots() {
    let words = |n: usize, word: &str| vec![word; n].join(" ");
    let keys = |n: usize| {
        (0..n)
            .map(|i| format!("key{i}=v"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let cases = [
        // Measured by booting Debian's 6.1 kernel (xtask's VM suite).
        (format!("{} -- true", keys(31)), None),
        (
            format!("{} -- true", keys(32)),
            Some("\"Too many boot env vars\""),
        ),
        (format!("-- {}", words(32, "x")), None),
        (
            format!("-- {}", words(33, "x")),
            Some("\"Too many boot init vars\""),
        ),
        (format!("foo bar -- {}", words(30, "x")), None),
        (
            format!("foo bar baz -- {}", words(30, "x")),
            Some("gives init 33 arguments"),
        ),
    ];
    for (line, refusal) in cases {
        let result = check(&[b"--cmdline", line.as_bytes()]);
        match refusal {
            None => assert_eq!(result.code(), 0, "{line}: {result:#?}"),
            Some(needle) => {
                assert_eq!(result.code(), 2, "{line}: {result:#?}");
                assert!(result.stderr.contains(needle), "{line}: {result:#?}");
            }
        }
    }
}

#[test]
fn strings_longer_than_the_kernel_passes_to_a_program_are_refused() {
    let dir = tempdir("arg-strlen");
    let metadata = dir.join("m.json");
    // `K=` + value + NUL: 131072 bytes fit, one more does not.
    for (value_len, fits) in [(131_069, true), (131_070, false)] {
        std::fs::write(
            &metadata,
            format!(
                r#"{{"argv": ["true"], "env": {{"K": "{}"}}}}"#,
                "v".repeat(value_len)
            ),
        )
        .unwrap();
        let result = check(&[b"--metadata", metadata.as_os_str().as_bytes()]);
        if fits {
            assert_eq!(result.code(), 0, "{}", result.stderr);
            // And the app really gets it: exec accepts what --check did.
            let run = run(vminit(&[
                "--metadata",
                metadata.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "echo ${#K}",
            ]));
            assert_eq!((run.code(), run.stdout.as_str()), (0, "131069\n"));
        } else {
            assert_eq!(result.code(), 2);
            assert!(
                result.stderr.contains("env.K: KEY=VALUE is 131073 bytes with its NUL, more than the 131072 the kernel passes to a program (MAX_ARG_STRLEN)"),
                "{}",
                result.stderr
            );
            assert!(!result.stderr.contains("vvvv"));
        }
    }
    std::fs::write(
        &metadata,
        format!(r#"{{"argv": ["echo", "{}"]}}"#, "w".repeat(200_000)),
    )
    .unwrap();
    let result = check(&[b"--metadata", metadata.as_os_str().as_bytes()]);
    assert_eq!(result.code(), 2);
    assert!(
        result
            .stderr
            .contains("argv[1]: argument 1 is 200001 bytes with its NUL"),
        "{}",
        result.stderr
    );
    // The whole: a quarter of the stack limit the app gets.
    let big = "a".repeat(100_000);
    let result = check(&[
        b"--rlimit",
        b"stack=65536",
        b"--",
        b"echo",
        big.as_bytes(),
        big.as_bytes(),
    ]);
    assert_eq!(result.code(), 2);
    assert!(
        result
            .stderr
            .contains("more than the 131072 it allows a program"),
        "{}",
        result.stderr
    );
}

#[test]
fn check_refuses_a_gateway_the_boot_would() {
    for line in [
        "vminit.net.address=10.0.2.15/24 vminit.net.gateway=192.168.1.1 -- true",
        "vminit.net.gateway=10.0.2.2 -- true",
    ] {
        let result = check(&[b"--cmdline", line.as_bytes()]);
        assert_eq!(result.code(), 2, "{line}: {result:#?}");
        assert!(
            result.stderr.contains("vminit.net.gateway: ")
                && result
                    .stderr
                    .contains("is outside every prefix in net.address"),
            "{result:#?}"
        );
    }
}

#[test]
fn a_bad_option_with_mode_vm_still_ends_the_machine() {
    let mut command = common::pid1_namespace();
    command.arg(binary()).args(["--mode", "vm", "--bogus"]);
    let result = run(command);
    assert!(
        result.stderr.contains("--bogus is not an option"),
        "{result:#?}"
    );
    assert_machine_ended_with_2(&result);
}

#[test]
fn a_huge_argv0_is_quoted_short() {
    // As long as one argument can be (MAX_ARG_STRLEN).
    let program = format!("/no/such/{}", "p/".repeat(60_000));
    let result = run(vminit(&["--", &program]));
    assert!(matches!(result.code(), 126 | 127), "{}", result.stderr);
    assert!(result.stderr.len() < 1000, "{} bytes", result.stderr.len());
    assert!(
        result.stderr.contains("cannot run \"/no/such/p/p/"),
        "{}",
        result.stderr
    );
}

#[test]
fn delete_metadata_deletes_the_file_a_link_leads_to() {
    let dir = tempdir("metadata-link");
    let real = dir.join("real.json");
    let link = dir.join("link.json");
    std::fs::write(
        &real,
        format!(
            r#"{{"argv": ["sh", "-c", "cat {} 2>/dev/null || echo unreadable"],
                "env": {{"TOKEN": "{SECRET}"}}, "vminit": {{"delete_metadata": true}}}}"#,
            real.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let result = run(vminit(&["-v", "--metadata", link.to_str().unwrap()]));
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(result.stdout, "unreadable\n");
    assert!(!real.exists(), "the file read is gone");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "and the link to it"
    );
    assert!(
        result.stderr.contains(&format!(
            "deleted {} (where {} leads)",
            real.display(),
            link.display()
        )),
        "{}",
        result.stderr
    );
}
