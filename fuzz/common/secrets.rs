//! The no-value rule, as the fuzz targets and their replay test check it:
//! the fuzzer's bytes become the name part of words whose value is a known
//! marker, malformed in the ways a typed configuration is (a `:`, a space
//! or another stray byte for the `=`, a quoted word), in the kernel command
//! line, the metadata file and vminit's options, and no error may show the
//! marker. The marker itself is made of name bytes, as a secret may be; a
//! byte no name may hold always stands before it (else it would be part of
//! a name, which errors do show).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use vminit::config::error::{ConfigError, Source};
use vminit::config::{cli, cmdline, metadata};

/// The stand-in for a secret value.
pub const MARKER: &str = "q9VALUEq9";

/// Bytes that end a name, typed where the `=` should be.
const STRAYS: [&[u8]; 6] = [b":", b" ", b"\xff", b"/", b"%", b","];

/// Fails when an error shows the marker, unless the fuzzer wrote it itself.
fn assert_no_marker(input: &[u8], errors: &[ConfigError]) {
    if input.windows(7).any(|w| w == b"q9VALUE") {
        return;
    }
    for error in errors {
        let text = error.to_string();
        assert!(!text.contains("q9VALUE"), "a value in an error: {text}");
        assert!(!text.contains('\n'), "an error spans lines: {text}");
    }
}

/// Kernel command lines with `name` in the name of an env or vminit word.
pub fn check_cmdline(name: &[u8]) {
    let marker = MARKER.as_bytes();
    for stray in STRAYS {
        let shapes: [&[&[u8]]; 7] = [
            &[b"env.", name, stray, marker],
            &[b"env.", name, b"=", marker],
            &[b"env.", name, stray, marker, b"=="],
            &[b"\"env.", name, stray, marker, b"=x\""],
            &[b"vminit.", name, stray, marker, b"=1"],
            &[b"vminit.", name, b"=", marker],
            &[name, b" env.K", stray, marker, b" -- true"],
        ];
        for parts in shapes {
            let line = parts.concat();
            let (_, errors) = cmdline::parse(&line, &Source::CmdlineOption);
            assert_no_marker(name, &errors);
        }
        check_options(name, stray);
    }
}

/// vminit's own options with `name` where a name goes.
fn check_options(name: &[u8], stray: &[u8]) {
    let marker = MARKER.as_bytes();
    let word = |parts: &[&[u8]]| OsString::from_vec(parts.concat());
    let calls = [
        vec![word(&[b"--env"]), word(&[name, stray, marker, b"="])],
        vec![word(&[b"--env"]), word(&[name, b"=", marker])],
        vec![word(&[b"--rlimit"]), word(&[name, stray, marker, b"=1"])],
        vec![word(&[b"--", name, stray, marker])],
        vec![word(&[b"--check=", name, marker])],
    ];
    for words in calls {
        if let Err(error) = cli::parse(words) {
            assert_no_marker(name, &[error]);
        }
    }
}

/// Metadata files with `name` in env keys, fields and setting names.
pub fn check_metadata(name: &[u8]) {
    let name = String::from_utf8_lossy(name);
    let json = |text: &str| serde_json::Value::String(text.to_owned()).to_string();
    let with_marker = json(&format!("{name}%{MARKER}"));
    let after_colon = json(&format!("{name}:{MARKER}"));
    let plain = json(&name);
    let value = json(MARKER);
    let files = [
        format!(r#"{{"env": {{{with_marker}: {value}}}}}"#),
        format!(r#"{{"env": {{{after_colon}: {value}}}}}"#),
        format!(r#"{{"env": {{{plain}: {value}}}}}"#),
        format!(r#"{{{with_marker}: {value}}}"#),
        format!(r#"{{"vminit": {{{after_colon}: {value}}}}}"#),
        format!(r#"{{"vminit": {{"net": {{{with_marker}: {value}}}}}}}"#),
        format!(r#"{{"vminit": {{{plain}: {value}}}}}"#),
    ];
    for file in files {
        let (_, errors) = metadata::parse(file.as_bytes(), &Source::Metadata("/m.json".into()));
        assert_no_marker(name.as_bytes(), &errors);
    }
}
