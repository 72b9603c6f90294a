//! Initramfs images: a cpio archive in the kernel's `newc` format, gzipped
//! (see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! An image holds vminit as `/init`, busybox (from Debian's busybox-static)
//! with a link per applet, the device nodes init needs before `/dev` is
//! mounted, and whatever files the caller adds.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cmd;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// A cpio `newc` archive being written in memory.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Archive {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let name = name.trim_start_matches('/');
        self.next_inode += 1;
        let fields = [
            self.next_inode,
            mode,
            0, // uid
            0, // gid
            if mode & S_IFDIR == S_IFDIR { 2 } else { 1 },
            0, // mtime: fixed, so images are reproducible
            u32::try_from(data.len()).expect("file under 4 GiB"),
            0,
            0,
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).unwrap(),
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, &[], (0, 0));
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, S_IFREG | mode, data, (0, 0));
    }

    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes(), (0, 0));
    }

    pub fn char_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | mode, &[], (major, minor));
    }

    /// Ends the archive and compresses it with `gzip`.
    pub fn finish_gzip(mut self) -> Result<Vec<u8>, String> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        let mut gzip = Command::new("gzip")
            .args(["-c", "-6", "-n"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run gzip: {e}"))?;
        let mut stdin = gzip.stdin.take().unwrap();
        let bytes = std::mem::take(&mut self.bytes);
        let writer = std::thread::spawn(move || stdin.write_all(&bytes));
        let output = gzip.wait_with_output().map_err(|e| e.to_string())?;
        writer.join().unwrap().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!("gzip failed: {}", output.status));
        }
        Ok(output.stdout)
    }
}

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
    for applet in applets(contents.busybox)? {
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
    let mut made = std::collections::BTreeSet::new();
    for (path, data, mode) in &contents.files {
        let path = path.trim_start_matches('/');
        // Parent directories first; the kernel does not create them.
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            if made.insert(parent.clone()) {
                archive.dir(&parent);
            }
        }
        archive.file(path, *mode, data);
    }
    archive.finish_gzip()
}

/// The applets a busybox binary provides.
fn applets(busybox: &Path) -> Result<Vec<String>, String> {
    let list = cmd::output(Command::new(busybox).arg("--list"))?;
    Ok(list.lines().map(str::to_owned).collect())
}

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_aligned_and_parseable() {
        let mut archive = Archive::default();
        archive.file("a", 0o644, b"hello");
        archive.symlink("b", "a");
        archive.char_device("dev/null", 0o666, 1, 3);
        let bytes = archive.bytes;
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        // The file's size field (7th) and name.
        assert_eq!(&bytes[6 + 6 * 8..6 + 7 * 8], b"00000005");
        assert_eq!(&bytes[110..112], b"a\0");
        let second = bytes
            .windows(6)
            .skip(1)
            .position(|w| w == b"070701")
            .unwrap()
            + 1;
        assert_eq!(second % 4, 0);
    }
}
