//! `--version` names the version and, when built in a git checkout, the
//! commit (see `build.rs`): `vminit 0.1.0 (git 6d841aa5c0de)`.

mod common;

use std::process::Command;

use common::{run, vminit};

/// The short revision of this checkout, as `build.rs` reads it; `None`
/// outside git (a packaged crate).
fn checkout_revision() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let same = std::fs::canonicalize(top).ok()? == std::fs::canonicalize(dir).ok()?;
    same.then(|| git(&["rev-parse", "--short=12", "HEAD"]))?
}

#[test]
fn version_names_the_commit() {
    let result = run(vminit(&["--version"]));
    assert_eq!(result.code(), 0, "{result:#?}");
    let version = env!("CARGO_PKG_VERSION");
    let expected = match checkout_revision() {
        Some(revision) => format!("vminit {version} (git {revision})\n"),
        None => format!("vminit {version}\n"),
    };
    assert_eq!(result.stdout, expected, "{result:#?}");
    assert_eq!(result.stderr, "");
}

#[test]
fn short_version_option_is_the_same() {
    let long = run(vminit(&["--version"]));
    let short = run(vminit(&["-V"]));
    assert_eq!(short.code(), 0, "{short:#?}");
    assert_eq!(short.stdout, long.stdout);
}
