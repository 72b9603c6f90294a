//! Exit-status conventions, as PID 1 of a namespace and as a subreaper:
//! the app's code, 128+N for a signal, 127 not found, 126 not executable,
//! 2 for a configuration error (and then nothing starts).

mod common;

use common::{run, vminit, vminit_pid1};

fn both(args: &[&str]) -> [common::Run; 2] {
    [run(vminit(args)), run(vminit_pid1(args))]
}

#[test]
fn the_apps_exit_code_passes_through() {
    for code in [0, 1, 3, 42, 255] {
        let script = format!("exit {code}");
        for result in both(&["--", "sh", "-c", &script]) {
            assert_eq!(result.code(), code, "{result:#?}");
        }
    }
}

#[test]
fn a_signal_death_is_128_plus_the_signal() {
    // 40: a real-time signal, whose death status nix's waitpid cannot decode.
    for (signal, code) in [
        ("KILL", 137),
        ("TERM", 143),
        ("INT", 130),
        ("SEGV", 139),
        ("40", 168),
    ] {
        let script = format!("kill -{signal} $$");
        for result in both(&["sh", "-c", &script]) {
            assert_eq!(result.code(), code, "{signal}: {result:#?}");
        }
    }
}

#[test]
fn a_missing_command_is_127_and_named() {
    for result in both(&["--", "no-such-command-xyz", "arg"]) {
        assert_eq!(result.code(), 127, "{result:#?}");
        assert!(
            result.stderr.contains("no-such-command-xyz"),
            "{}",
            result.stderr
        );
        assert!(result.stderr.starts_with("vminit: "), "{}", result.stderr);
    }
}

#[test]
fn a_command_that_cannot_run_is_126_and_named() {
    let dir = tempdir("not-executable");
    let file = format!("{dir}/data.txt");
    std::fs::write(&file, "not a program\n").unwrap();
    for result in both(&[&file]) {
        assert_eq!(result.code(), 126, "{result:#?}");
        assert!(result.stderr.contains(&file), "{}", result.stderr);
    }
    // A directory cannot be run either.
    assert_eq!(run(vminit(&[&dir])).code(), 126);
    // Nor a path through a file: "Not a directory", as execve says it,
    // not "not found" (127) as a search of PATH would end.
    let through = format!("{file}/x");
    let result = run(vminit(&[&through]));
    assert_eq!(result.code(), 126, "{result:#?}");
    assert!(
        result.stderr.contains("Not a directory"),
        "{}",
        result.stderr
    );
    // A name too long to search for.
    let long = "x".repeat(300);
    let result = run(vminit(&[&long]));
    assert_eq!(result.code(), 126, "{result:#?}");
    assert!(result.stderr.contains("too long"), "{}", result.stderr);
}

#[test]
fn bad_configuration_is_2_and_nothing_starts() {
    let dir = tempdir("bad-config");
    let marker = format!("{dir}/started");
    let script = format!("touch {marker}");
    let cases: &[&[&str]] = &[
        &["--env", "1BAD=secret-value"],
        &["--env", "NOVALUE"],
        &["--workdir", "relative/dir"],
        &["--workdir", "/no/such/dir"],
        &["--grace", "soon"],
        &["--metadata", "/no/such/metadata.json"],
        &["--cmdline", "env.X=secret-value vminit.bogus=1"],
        &["--bogus-option"],
    ];
    for case in cases {
        let mut args = case.to_vec();
        args.extend(["--", "sh", "-c", &script]);
        for result in both(&args) {
            assert_eq!(result.code(), 2, "{case:?}: {result:#?}");
            let lines: Vec<&str> = result.stderr.lines().collect();
            assert!(!lines.is_empty(), "{case:?}: no message");
            for line in lines {
                assert!(line.starts_with("vminit: error: "), "{case:?}: {line}");
            }
            assert!(
                !result.stderr.contains("secret-value"),
                "{case:?}: {}",
                result.stderr
            );
            assert!(
                !std::path::Path::new(&marker).exists(),
                "{case:?} started the app"
            );
        }
    }
    assert_eq!(run(vminit(&["--env", "A=1", "--", "true"])).code(), 0);
}

#[test]
fn no_command_is_a_configuration_error() {
    for result in both(&[]) {
        assert_eq!(result.code(), 2, "{result:#?}");
        assert!(
            result.stderr.contains("no command given"),
            "{}",
            result.stderr
        );
    }
}

#[test]
fn help_and_version() {
    let help = run(vminit(&["--help"]));
    assert_eq!(help.code(), 0);
    assert!(help.stdout.contains("Usage: vminit"));
    let version = run(vminit(&["--version"]));
    assert!(version.stdout.starts_with("vminit "), "{version:#?}");
}

/// [`common::tempdir`] as a string, for building command lines.
fn tempdir(name: &str) -> String {
    common::tempdir(name).to_string_lossy().into_owned()
}
