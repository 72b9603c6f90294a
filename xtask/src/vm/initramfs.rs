//! Initramfs images: a cpio archive in the kernel's `newc` format, gzipped
//! (see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! An image holds vminit as `/init`, busybox (from Debian's busybox-static)
//! with a link per applet, the device nodes init needs before `/dev` is
//! mounted, and whatever files the caller adds.

use std::path::Path;
use std::process::Command;

use vminit_image::cpio::Archive;

use crate::cmd;

/// How `/dev/console` appears in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// Character devices `/dev/console` (5,1) and `/dev/null` (1,3).
    Nodes,
    /// `/dev/console` as a dangling symlink and no `/dev/null`: the kernel
    /// (whose built-in initramfs has the node, replaced here) then starts
    /// init with fds 0-2 closed, as from a disk root without `/dev`.
    Missing,
}

/// What goes into an image besides vminit and busybox.
#[derive(Debug, Clone)]
pub struct Contents<'a> {
    pub vminit: &'a Path,
    /// An `/init` to use instead of vminit (the benchmark's shell baseline).
    pub init_script: Option<&'a str>,
    pub busybox: &'a Path,
    pub console: Console,
    /// Extra files: (guest path, contents, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
}

/// Builds a gzipped initramfs.
pub fn build(contents: &Contents<'_>) -> Result<Vec<u8>, String> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let mut archive = Archive::default();
    for dir in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp", "etc",
        "root",
    ] {
        archive.dir(dir);
    }
    match contents.init_script {
        Some(script) => archive.file("init", 0o755, script.as_bytes()),
        None => archive.file("init", 0o755, &read(contents.vminit)?),
    }
    archive.file("bin/busybox", 0o755, &read(contents.busybox)?);
    for applet in applets()? {
        if applet != "busybox" && applet != "init" && applet != "linuxrc" {
            archive.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    match contents.console {
        Console::Nodes => {
            archive.char_device("dev/console", 0o600, 5, 1);
            archive.char_device("dev/null", 0o666, 1, 3);
        }
        Console::Missing => archive.symlink("dev/console", "/nonexistent/console"),
    }
    archive.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    archive.file("etc/group", 0o644, b"root:x:0:\ntty:x:5:\n");
    for (path, data, mode) in &contents.files {
        archive.file_with_parents(path, *mode, data);
    }
    archive
        .finish_gzip()
        .map_err(|e| format!("cannot compress the initramfs: {e}"))
}

/// The applets Debian's busybox-static provides, from the host's own (the
/// same package's build for another architecture has the same list, and
/// cannot run here).
pub fn applets() -> Result<Vec<String>, String> {
    let list = cmd::output(Command::new(BUSYBOX).arg("--list"))?;
    Ok(list.lines().map(str::to_owned).collect())
}

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";
