//! The builder run through its binary under a 1 GiB address-space limit
//! (`prlimit --as`) and a guard against hangs, and what a refusal must
//! look like.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::stderr;

/// The address space the builder runs in.
pub const MEMORY: &str = "--as=1073741824";
/// Only against hangs.
pub const GUARD: Duration = Duration::from_secs(180);

pub fn command(source: &str, out: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new("prlimit");
    command
        .args([MEMORY, "--", env!("CARGO_BIN_EXE_vminit-image")])
        .args(["build", source, "--output"])
        .arg(out)
        .arg("--vminit")
        .arg(super::static_vminit())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Builds under the memory limit; a build that outlives [`GUARD`] fails
/// the test as hung.
pub fn build(source: &str, out: &Path, extra: &[&str]) -> Output {
    wait_guarded(command(source, out, extra).spawn().unwrap())
}

pub fn wait_guarded(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > GUARD {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("hung for {GUARD:?}: {}", stderr(&output));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Exit status 2 and one line on stderr that says `needle`.
pub fn assert_refused(output: &Output, needle: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains(needle), "wanted {needle:?}: {text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
}

/// Nothing of the build is left in `out`.
pub fn assert_nothing_left(out: &Path) {
    for name in [
        ".rootfs",
        ".unpacked",
        ".rootfs-key",
        "rootfs.ext4",
        "metadata.json",
        "initramfs.cpio.gz",
    ] {
        assert!(
            std::fs::symlink_metadata(out.join(name)).is_err(),
            "{name} left in {}",
            out.display()
        );
    }
}
