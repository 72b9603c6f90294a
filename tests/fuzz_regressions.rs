//! Inputs the fuzzers found or that seed them, replayed through the parsers
//! on every test run: `fuzz/seeds/*` and `fuzz/regressions/*`.

use std::path::Path;

#[path = "../fuzz/common/secrets.rs"]
mod secrets;

use vminit::config::error::Source;
use vminit::config::{cmdline, metadata};

fn inputs(kind: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut found = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(kind)) else {
            continue;
        };
        for entry in entries.flatten() {
            found.push(std::fs::read(entry.path()).unwrap());
        }
    }
    assert!(!found.is_empty(), "no {kind} inputs");
    found
}

#[test]
fn cmdline_inputs_parse_without_panic_and_errors_are_one_line() {
    for line in inputs("cmdline") {
        let (_, errors) = cmdline::parse(&line, &Source::CmdlineOption);
        assert!(errors.iter().all(|e| !e.to_string().contains('\n')));
        secrets::check_cmdline(&line);
    }
}

#[test]
fn metadata_inputs_parse_without_panic_and_errors_are_one_line() {
    for contents in inputs("metadata") {
        let (_, errors) = metadata::parse(&contents, &Source::Metadata("/m.json".into()));
        assert!(errors.iter().all(|e| !e.to_string().contains('\n')));
        secrets::check_metadata(&contents);
    }
}

#[test]
fn names_typed_with_a_value_never_show_it() {
    // The shapes of issue 10, with the names people type.
    for name in [
        &b"TOKEN"[..],
        b"",
        b"1X",
        b"A-B",
        b"user",
        b"net.mtu",
        b"A B",
        b"\xff",
    ] {
        secrets::check_cmdline(name);
        secrets::check_metadata(name);
    }
}
