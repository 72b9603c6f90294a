//! Disk images for the VM suite: ext4 filesystems made from a directory
//! with `mkfs.ext4 -d` (no mount, no root needed), checked afterwards with
//! `e2fsck -fn` and read with `debugfs`, all from Debian's e2fsprogs.

use std::path::Path;
use std::process::Command;

use crate::cmd;

/// The tools, for `setup::packages`.
pub const TOOLS: &[(&str, &str)] = &[
    ("mkfs.ext4", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
];

/// Makes `dir` afresh as a small root: busybox with a link per applet in
/// `bin/`, the directories a root has, and `more` directories.
pub fn busybox_tree(dir: &Path, busybox: &Path, more: &[&str]) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    for sub in ["bin", "dev", "proc", "sys", "run", "tmp", "etc"]
        .iter()
        .chain(more)
    {
        std::fs::create_dir_all(dir.join(sub)).map_err(io)?;
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).map_err(io)?;
    for applet in super::initramfs::applets()?
        .iter()
        .filter(|a| *a != "busybox")
    {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).map_err(io)?;
    }
    Ok(())
}

/// A root filesystem: busybox with a link per applet, the directories a
/// root has, and `files` (guest path, contents, mode), as an ext4 image of
/// `size_mb` at `image`.
pub fn root_image(
    image: &Path,
    busybox: &Path,
    files: &[(&str, &[u8], u32)],
    size_mb: u32,
    finish: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = image.with_extension("d");
    busybox_tree(&dir, busybox, &["data"])?;
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    for (path, data, mode) in files {
        let path = dir.join(path.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, data).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).map_err(io)?;
    }
    finish(&dir).map_err(io)?;
    let made = mkfs(image, Some(&dir), size_mb);
    let _ = std::fs::remove_dir_all(&dir);
    made
}

/// An empty ext4 image of `size_mb`.
pub fn empty(image: &Path, size_mb: u32) -> Result<(), String> {
    mkfs(image, None, size_mb)
}

fn mkfs(image: &Path, from: Option<&Path>, size_mb: u32) -> Result<(), String> {
    let _ = std::fs::remove_file(image);
    let mut command = Command::new("mkfs.ext4");
    command.args(["-q", "-F", "-E", "root_owner=0:0"]);
    if let Some(dir) = from {
        command.arg("-d").arg(dir);
    }
    command.arg(image).arg(format!("{size_mb}M"));
    cmd::output(&mut command).map(|_| ())
}

/// `e2fsck -fn`: Ok when the filesystem is clean (nothing to fix, no
/// journal to recover), else what e2fsck said.
pub fn check(image: &Path) -> Result<(), String> {
    let output = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run e2fsck: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // 0: clean. A journal to recover makes -n report it and exit 4.
    if output.status.success() && !text.contains("recover") {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn {}: {}\n{text}",
            image.display(),
            output.status
        ))
    }
}

/// A file's contents in the image (`debugfs -R "cat PATH"`); empty when
/// it is not there.
pub fn read(image: &Path, path: &str) -> Result<String, String> {
    let output = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run debugfs: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
