//! The files of an image source, opened as regular files or not at all.
//!
//! An image layout or archive is somebody else's bytes: a blob may be a
//! symbolic link to the building machine's `/dev/zero` or to one of its
//! files, a FIFO that never ends, a device. So every file inside a source
//! is opened from the source's directory one component at a time with
//! `O_NOFOLLOW` (a link anywhere on the way is refused, not followed). The
//! file itself is looked at before it is opened (a device's driver never
//! sees an open), opened with `O_NONBLOCK` (a FIFO swapped in meanwhile
//! does not wait for a writer), checked again on the descriptor, and read
//! no further than the size it is expected to have. A refusal names the
//! file and what it is, never where a link leads.
//!
//! In an unpacked archive, a symbolic link is followed, lexically and
//! inside the archive only: `docker save` of Docker 24 and earlier names
//! a layer given twice as `ID/layer.tar`, a link to `../OTHER/layer.tar`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::Mode;

/// The most read of a JSON document that has no descriptor to give its
/// size (`index.json`, `manifest.json`); the OCI distribution spec has
/// registries refuse manifests over 4 MiB.
pub const MAX_DOCUMENT: u64 = 16 << 20;

/// Why a file of a source was not read.
#[derive(Debug)]
pub enum Refusal {
    /// Not there.
    Missing,
    /// There, but not a regular file: what it is ("a symbolic link", ...).
    NotRegular(&'static str),
    /// Longer than the most it may be.
    TooLong(u64),
    /// It could not be opened or read.
    Io(io::Error),
}

/// A directory whose files are opened as regular files only: an OCI
/// layout, or an archive unpacked by [`crate::source`], which records the
/// entries it did not extract (links, devices, FIFOs) so that a file named
/// there is reported for what it is.
#[derive(Debug, Clone)]
pub struct Files {
    pub base: PathBuf,
    pub not_extracted: HashMap<PathBuf, &'static str>,
    /// An archive's symbolic links: where each says it leads.
    pub links: HashMap<PathBuf, PathBuf>,
}

/// The most links followed inside an archive for one name.
const MAX_LINKS: usize = 8;

impl Files {
    pub fn new(base: impl Into<PathBuf>) -> Files {
        Files {
            base: base.into(),
            not_extracted: HashMap::new(),
            links: HashMap::new(),
        }
    }

    /// `relative` with an archive's links followed, inside the archive.
    fn follow(&self, relative: &Path) -> Result<PathBuf, Refusal> {
        const OUT: Refusal = Refusal::NotRegular("a symbolic link that leads out of the archive");
        let mut path = relative.to_path_buf();
        for _ in 0..MAX_LINKS {
            let Some(target) = self.links.get(&path) else {
                return Ok(path);
            };
            if target.is_absolute() {
                return Err(OUT);
            }
            let mut next = path.parent().map(Path::to_path_buf).unwrap_or_default();
            for component in target.components() {
                match component {
                    Component::Normal(part) => next.push(part),
                    Component::ParentDir if next.pop() => {}
                    Component::CurDir => {}
                    _ => return Err(OUT),
                }
            }
            path = next;
        }
        Err(Refusal::NotRegular(
            "a chain of symbolic links in the archive",
        ))
    }

    /// Opens `relative` (no `..`, not absolute) below the base: every
    /// directory on the way a real directory, the file a regular one.
    /// Returns it with its length.
    pub fn open(&self, relative: &Path) -> Result<(File, u64), Refusal> {
        let relative = &self.follow(relative)?;
        if let Some(kind) = self.not_extracted.get(relative) {
            return Err(Refusal::NotRegular(kind));
        }
        let parts: Vec<&std::ffi::OsStr> = relative
            .components()
            .map(|c| match c {
                Component::Normal(part) => Ok(part),
                _ => Err(Refusal::Missing),
            })
            .collect::<Result<_, _>>()?;
        let Some((last, dirs)) = parts.split_last() else {
            return Err(Refusal::Missing);
        };
        let directory = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir: OwnedFd = File::open(&self.base).map_err(Refusal::Io)?.into();
        for part in dirs {
            dir = openat(&dir, *part, directory | OFlag::O_NOFOLLOW, Mode::empty())
                .map_err(|e| refusal(&dir, part, e))?;
        }
        // What it is, before any open: a device's open would reach its driver.
        let seen = nix::sys::stat::fstatat(&dir, *last, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(
            |e| match e {
                Errno::ENOENT => Refusal::Missing,
                other => Refusal::Io(io::Error::from(other)),
            },
        )?;
        if seen.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
            return Err(Refusal::NotRegular(kind_of_mode(seen.st_mode)));
        }
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let file: File = openat(&dir, *last, flags, Mode::empty())
            .map_err(|e| refusal(&dir, last, e))?
            .into();
        let meta = file.metadata().map_err(Refusal::Io)?;
        if !meta.is_file() {
            return Err(Refusal::NotRegular(kind_of_mode(meta.mode())));
        }
        Ok((file, meta.len()))
    }

    /// Reads `relative` whole, when it is at most `max` bytes long.
    pub fn read(&self, relative: &Path, max: u64) -> Result<Vec<u8>, Refusal> {
        let (file, len) = self.open(relative)?;
        if len > max {
            return Err(Refusal::TooLong(max));
        }
        read_at_most(file, max)
    }
}

/// Reads all of `reader` when it holds at most `max` bytes (a file that
/// grows while read is still cut there).
pub fn read_at_most(reader: impl Read, max: u64) -> Result<Vec<u8>, Refusal> {
    let mut bytes = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Refusal::Io)?;
    if bytes.len() as u64 > max {
        return Err(Refusal::TooLong(max));
    }
    Ok(bytes)
}

/// Removes a file or a whole tree, whatever modes an image gave its
/// directories: a build that is not root cannot empty a 0555 directory
/// until it makes it writable again. Nothing there is fine.
pub fn remove_tree(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        let _ = std::fs::remove_file(path);
        return;
    }
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    let mut todo = vec![path.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(path);
}

/// What a failed `openat(O_NOFOLLOW)` of `name` in `dir` met.
fn refusal(dir: &OwnedFd, name: &std::ffi::OsStr, errno: Errno) -> Refusal {
    match errno {
        Errno::ENOENT => Refusal::Missing,
        // O_NOFOLLOW on a link; O_DIRECTORY on something else.
        Errno::ELOOP | Errno::ENOTDIR => {
            let kind = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|st| kind_of_mode(st.st_mode))
                .unwrap_or("not a regular file");
            Refusal::NotRegular(kind)
        }
        // A FIFO or socket that O_NONBLOCK did not get past, and the like.
        Errno::ENXIO => Refusal::NotRegular("a FIFO or socket"),
        other => Refusal::Io(io::Error::from(other)),
    }
}

/// What a file that is not a regular file is, in words, from its mode.
fn kind_of_mode(mode: nix::libc::mode_t) -> &'static str {
    match mode & nix::libc::S_IFMT {
        nix::libc::S_IFLNK => "a symbolic link",
        nix::libc::S_IFDIR => "a directory",
        nix::libc::S_IFIFO => "a FIFO",
        nix::libc::S_IFSOCK => "a socket",
        nix::libc::S_IFCHR => "a character device",
        nix::libc::S_IFBLK => "a block device",
        nix::libc::S_IFREG => "a regular file",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn only_regular_files_below_the_base_are_opened() {
        let base = std::env::temp_dir().join(format!("vminit-image-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("blobs/sha256")).unwrap();
        std::fs::write(base.join("blobs/sha256/good"), "12345").unwrap();
        symlink("/dev/zero", base.join("blobs/sha256/zero")).unwrap();
        symlink("good", base.join("blobs/sha256/near")).unwrap();
        symlink("blobs", base.join("linked")).unwrap();
        nix::unistd::mkfifo(&base.join("blobs/sha256/fifo"), Mode::S_IRWXU).unwrap();
        let files = Files::new(&base);
        let (_, len) = files.open(Path::new("blobs/sha256/good")).unwrap();
        assert_eq!(len, 5);
        let kind = |path: &str| match files.open(Path::new(path)) {
            Err(Refusal::NotRegular(kind)) => kind,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(kind("blobs/sha256/zero"), "a symbolic link");
        assert_eq!(kind("blobs/sha256/near"), "a symbolic link");
        assert_eq!(kind("linked/sha256/good"), "a symbolic link");
        assert_eq!(kind("blobs/sha256/fifo"), "a FIFO");
        assert_eq!(kind("blobs"), "a directory");
        assert!(matches!(
            files.open(Path::new("blobs/sha256/none")),
            Err(Refusal::Missing)
        ));
        assert!(matches!(
            files.open(Path::new("../x")),
            Err(Refusal::Missing)
        ));
        assert!(matches!(
            files.read(Path::new("blobs/sha256/good"), 4),
            Err(Refusal::TooLong(4))
        ));
        assert_eq!(
            files.read(Path::new("blobs/sha256/good"), 5).unwrap(),
            b"12345"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
