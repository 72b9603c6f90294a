//! Build script: records the git revision vminit is built from, for
//! `--version` (`vminit 0.1.0 (git 6d841aa5c0de)`).
//!
//! `VMINIT_GIT_REVISION` wins when set (a release build passes the commit
//! it packages); otherwise `git rev-parse`, but only when this crate is the
//! top of its own checkout: a packaged copy (from crates.io, or `cargo
//! package`'s under `target/`) may sit inside some other repository, whose
//! revision would be a lie. Without git the revision is `unknown` and
//! `--version` prints the version alone. No dependencies: std only.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VMINIT_GIT_REVISION");
    // Without any rerun-if-changed, cargo would rerun on every file change.
    println!("cargo:rerun-if-changed=build.rs");
    let revision = std::env::var("VMINIT_GIT_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VMINIT_GIT_REVISION={}", revision.trim());
}

fn git_revision() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), &dir) {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself (a file in a worktree's own git
    // directory; `.git` may be a file there) and the branch it points to,
    // loose or packed (refs live in the common directory).
    let absolute = |what: &str| git(&["rev-parse", "--path-format=absolute", what]);
    let mut watched = Vec::new();
    if let Some(git_dir) = absolute("--git-dir") {
        watched.push(Path::new(&git_dir).join("HEAD"));
    }
    if let Some(common) = absolute("--git-common-dir") {
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(Path::new(&common).join(branch));
        }
        watched.push(Path::new(&common).join("packed-refs"));
    }
    // A missing path would make cargo rerun this script on every build.
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    git(&["rev-parse", "--short=12", "HEAD"]).filter(|r| !r.is_empty())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
