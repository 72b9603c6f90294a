//! Filesystems: mount(2), umount(2), mkdir(2), symlink(2), and the mount
//! table in `/proc/self/mounts` (proc(5)).

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// One filesystem to mount.
#[derive(Debug, Clone, Copy)]
pub struct Mount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MsFlags,
    pub data: &'static str,
}

/// The mount points listed in `/proc/self/mountinfo`, or `None` without
/// `/proc`. Read once and passed to [`is_mountpoint`]: the table can be long.
pub fn mount_points() -> Option<Vec<String>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Field 5 of each line is the mount point, octal-escaped.
    Some(
        table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(unescape_octal)
            .collect(),
    )
}

/// Whether `path` (absolute and clean) is a mount point: listed in `table`
/// (from [`mount_points`], which sees bind mounts too) when there is one,
/// else sitting on another device than its parent, or the root.
pub fn is_mountpoint(path: &Path, table: Option<&[String]>) -> io::Result<bool> {
    if let Some(table) = table {
        let wanted = path.to_string_lossy();
        return Ok(table.iter().any(|point| *point == wanted));
    }
    let here = std::fs::metadata(path)?;
    let parent = std::fs::metadata(path.join(".."))?;
    Ok(here.dev() != parent.dev() || here.ino() == parent.ino())
}

/// Mounts `m`, creating its directory first when missing.
pub fn mount_fs(m: &Mount) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(m.target)?;
    let data = (!m.data.is_empty()).then_some(m.data);
    mount(Some(m.source), m.target, Some(m.fstype), m.flags, data).map_err(io::Error::from)
}

/// Creates the directory `path` (and parents) when missing.
pub fn create_dir(path: &str, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
}

/// Creates the symlink `link` -> `target` unless something is at `link`.
pub fn symlink_if_missing(target: &str, link: &str) -> io::Result<()> {
    if std::fs::symlink_metadata(link).is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(target, link)
}

/// Bind-mounts `source` over `target`, e.g. `/dev/null` over a file to
/// hide it (works on a read-only filesystem, where unlink and chmod
/// cannot), or a file in `/run` over one on a read-only image.
pub fn bind(source: &str, target: &str) -> io::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Removes the mount at `target` lazily (umount2 with `MNT_DETACH`).
pub fn detach(target: &str) -> io::Result<()> {
    umount2(target, MntFlags::MNT_DETACH).map_err(io::Error::from)
}

/// Flushes every filesystem: sync(2).
pub fn sync() {
    nix::unistd::sync();
}

/// Unmounts, newest first, every mount backed by a block device (its source
/// is under `/dev/`), or failing that remounts it read-only, so that disks
/// are clean when the VM stops. Pseudo filesystems are left: they hold
/// nothing to lose. Returns the mount points that stayed writable.
pub fn unmount_disks() -> Vec<String> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut left = Vec::new();
    for line in table.lines().rev() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(target)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !source.starts_with("/dev/") {
            continue;
        }
        // The table escapes spaces and such as octal: `\040`.
        let target = unescape_octal(target);
        if umount2(target.as_str(), MntFlags::empty()).is_ok() {
            continue;
        }
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .is_err()
        {
            left.push(target);
        }
    }
    left
}

/// The kernel's pages not yet on disk, dirty or under writeback, in KiB
/// (`Dirty` + `Writeback` in `/proc/meminfo`); `None` without `/proc`.
pub fn unwritten_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find_map(|l| l.strip_prefix(name))?;
        line.trim().trim_end_matches("kB").trim().parse().ok()
    };
    Some(field("Dirty:")? + field("Writeback:")?)
}

/// Sectors written to every block device since boot (field 10 of each line
/// of `/proc/diskstats`); `None` without `/proc`.
pub fn sectors_written() -> Option<u64> {
    let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
    Some(
        stats
            .lines()
            .filter_map(|line| line.split_whitespace().nth(9)?.parse::<u64>().ok())
            .sum(),
    )
}

fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_escapes() {
        assert_eq!(unescape_octal("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert_eq!(unescape_octal("/odd\\0"), "/odd\\0");
    }

    #[test]
    fn unwritten_pages_are_read() {
        assert!(unwritten_kib().is_some());
        assert!(sectors_written().is_some());
    }

    #[test]
    fn root_and_proc_are_mount_points() {
        let table = mount_points().expect("/proc is mounted");
        for table in [Some(table.as_slice()), None] {
            assert!(is_mountpoint(Path::new("/"), table).unwrap());
            assert!(is_mountpoint(Path::new("/proc"), table).unwrap());
            assert!(!is_mountpoint(Path::new("/proc/self"), table).unwrap());
        }
    }
}
