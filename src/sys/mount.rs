//! Filesystems: mount(2) (with `MS_MOVE` for a root switch), umount(2),
//! chroot(2), statfs(2), statvfs(3), mkdir(2), symlink(2), the mount table in
//! `/proc/self/mounts` and the kernel's filesystems in `/proc/filesystems`
//! (proc(5)).

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

/// Opens the mount point `target` to learn later of the write errors its
/// filesystem meets: [`sync_filesystem`] on this file reports every one
/// since it was opened (the superblock's error sequence, Linux 5.8).
/// Closed on exec.
pub fn watch_errors(target: &str) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOCTTY)
        .open(target)
}

/// Flushes the filesystem of `watched` (syncfs(2)), returning the first
/// write error it met since `watched` was opened: writes that were lost.
pub fn sync_filesystem(watched: &std::fs::File) -> io::Result<()> {
    nix::unistd::syncfs(watched).map_err(io::Error::from)
}

/// Mounts `source` on `target` with `flags` and filesystem `data`.
pub fn mount_with(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> io::Result<()> {
    let data = (!data.is_empty()).then_some(data);
    mount(Some(source), target, Some(fstype), flags, data).map_err(io::Error::from)
}

/// Moves the mount at `from` (with the mounts below it) to `to`.
pub fn move_mount(from: &str, to: &str) -> io::Result<()> {
    mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(io::Error::from)
}

/// Makes the current directory the root (chroot(2)) and enters it.
pub fn chroot_here() -> io::Result<()> {
    nix::unistd::chroot(".").map_err(io::Error::from)?;
    std::env::set_current_dir("/")
}

/// A filesystem's space in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    pub free: u64,
    /// Free to unprivileged users.
    pub available: u64,
}

/// The space of the filesystem mounted at `target` (statvfs(3)).
pub fn space(target: &str) -> Option<Space> {
    let fs = nix::sys::statvfs::statvfs(target).ok()?;
    let unit = fs.fragment_size();
    Some(Space {
        total: fs.blocks().saturating_mul(unit),
        free: fs.blocks_free().saturating_mul(unit),
        available: fs.blocks_available().saturating_mul(unit),
    })
}

/// The size of a memory page, as `/proc`'s page counts use it.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Whether `/` is the initramfs the kernel unpacked (ramfs or tmpfs), whose
/// files are worth freeing before a root switch.
pub fn root_is_initramfs() -> bool {
    use nix::sys::statfs::{FsType, TMPFS_MAGIC, statfs};
    // RAMFS_MAGIC in include/uapi/linux/magic.h (nix lacks it).
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    statfs("/").is_ok_and(|fs| [RAMFS_MAGIC, TMPFS_MAGIC].contains(&fs.filesystem_type()))
}

/// Deletes everything below `dir` that is on `dir`'s own filesystem, as
/// switch_root(8) frees the initramfs: mount points (another device) are
/// left alone. Errors are skipped: this only frees memory.
pub fn delete_on_same_device(dir: &Path) {
    let Ok(device) = std::fs::symlink_metadata(dir).map(|m| m.dev()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.dev() != device {
            continue;
        }
        if metadata.is_dir() {
            delete_on_same_device(&path);
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The kernel's block filesystems (`/proc/filesystems` lines without
/// `nodev`), in its order: what it would try for `root=` without
/// `rootfstype=`.
pub fn block_filesystems() -> Vec<String> {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with("nodev"))
        .map(|line| line.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Filesystem types whose mounts are flushed and unmounted at the end
/// besides those on a device: they may hold the app's data.
const DATA_FSTYPES: &[&str] = &["overlay", "virtiofs", "9p"];

/// The mount points of every mount that may hold data: its source is a
/// device under `/dev/`, or it is an overlay, virtiofs or 9p. In the
/// table's order, each once (a target mounted over is listed once).
pub fn data_mounts() -> Vec<String> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut targets: Vec<String> = Vec::new();
    for line in table.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(target), Some(fstype)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // The table escapes spaces and such as octal: `\040`.
        let target = unescape_octal(target);
        let data = source.starts_with("/dev/") || DATA_FSTYPES.contains(&fstype);
        if data && !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

/// Makes every mount that may hold data (its source is a device under
/// `/dev/`, or it is an overlay, virtiofs or 9p) safe to power off: the
/// root first, then the deepest mounts first, each is remounted read-only
/// (which commits an ext4 journal and marks the filesystem clean) and then
/// unmounted. Read-only first, because unmounting alone can leave a
/// filesystem mounted read-write: an overlay keeps its own private mount
/// of its upper layer's filesystem. Pseudo filesystems are left: they hold
/// nothing to lose. Returns the mounts that stay mounted read-only (the
/// root, an overlay's layers) and those that stayed writable.
pub fn unmount_data() -> (Vec<String>, Vec<String>) {
    let targets = data_mounts();
    // The root, then the deepest first. (An
    // insertion sort: a few mounts, and no sort code in PID 1's binary.)
    let order = |t: &str| (t != "/", usize::MAX - t.matches('/').count());
    let mut sorted: Vec<String> = Vec::new();
    for target in targets {
        let at = sorted
            .iter()
            .position(|other| order(other) > order(&target))
            .unwrap_or(sorted.len());
        sorted.insert(at, target);
    }
    let targets = sorted;
    let (mut read_only, mut writable) = (Vec::new(), Vec::new());
    for target in targets {
        let remounted = mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .is_ok();
        if target != "/" && umount2(target.as_str(), MntFlags::empty()).is_ok() {
            continue;
        }
        if remounted {
            read_only.push(target);
        } else {
            writable.push(target);
        }
    }
    (read_only, writable)
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

/// A field of the mount table with its `\ooo` escapes (a space is
/// `\040`) turned back into bytes.
pub fn unescape_octal(text: &str) -> String {
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
