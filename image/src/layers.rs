//! Applying an image's layers to a root directory, in order, as the OCI
//! image spec's "Applying changesets" says: whiteouts (`.wh.NAME`) delete
//! what an earlier layer made, an opaque directory (`.wh..wh..opq`) hides
//! all of it; owners, modes, times, symbolic and hard links and extended
//! attributes are kept.
//!
//! Every path is resolved inside the root, as a container runtime would
//! see it: `..` cannot climb out, and a symbolic link met on the way
//! (absolute or relative) is followed inside the root, never into the
//! building machine's own files.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the first bytes of a blob, for archives that do not say.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

#[derive(Debug, Error)]
pub enum LayerError {
    #[error("Cannot read the layer")]
    Read(#[source] io::Error),
    #[error("Layer entry {path}: {what}")]
    Entry {
        path: String,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("Layer entry {0}: a hard link to {1}, which the layers have not made")]
    MissingLinkTarget(String, String),
    #[error("Layer entry {0}: a whiteout must name one file (not '', '.' or '..')")]
    BadWhiteout(String),
    #[error("The layer has data after the end of its tar archive: it would be applied in part")]
    TrailingData,
}

/// What applying a layer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub entries: usize,
    pub whiteouts: usize,
    /// The sha256 of the uncompressed tar stream: the layer's DiffID.
    pub diff_id: String,
}

/// Applies one layer's tar stream (compressed as `compression`) to `root`.
pub fn apply(
    root: &Path,
    blob: impl Read,
    compression: Compression,
) -> Result<Applied, LayerError> {
    let stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(blob),
        // Every member: eStargz layers are many gzip streams in a row.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        // Every frame: zstd:chunked layers are many frames in a row.
        Compression::Zstd => Box::new(crate::zstd::Frames::new(io::BufReader::new(blob))),
    };
    let mut archive = tar::Archive::new(crate::source::Hashing::new(stream));
    let mut applied = Applied::default();
    // What this layer made: its whiteouts apply to the layers below only.
    let mut made: HashSet<PathBuf> = HashSet::new();
    let entries = archive.entries().map_err(LayerError::Read)?;
    for entry in entries {
        let mut entry = entry.map_err(LayerError::Read)?;
        let raw = entry.path().map_err(LayerError::Read)?.into_owned();
        let name = raw.display().to_string();
        let fail = |what: &str| {
            let name = name.clone();
            let what = what.to_owned();
            move |source| LayerError::Entry {
                path: name,
                what,
                source,
            }
        };
        let Some(relative) = clean(&raw) else {
            continue; // the root itself
        };
        let file_name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = resolve(root, relative.parent().unwrap_or(Path::new("")))
            .map_err(fail("resolve its directory"))?;
        if file_name == ".wh..wh..opq" {
            // Opaque: what earlier layers put in this directory is hidden.
            remove_children(&parent, &made).map_err(fail("empty the opaque directory"))?;
            applied.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            // One name, never the directory itself or its parent.
            if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                return Err(LayerError::BadWhiteout(name));
            }
            let gone = parent.join(hidden);
            if !made.contains(&gone) {
                remove_any(&gone).map_err(fail("apply the whiteout"))?;
            }
            applied.whiteouts += 1;
            continue;
        }
        fs::create_dir_all(&parent).map_err(fail("create its directory"))?;
        let target = parent.join(&file_name);
        let header = entry.header().clone();
        let kind = header.entry_type();
        // A later layer replaces what was there, but keeps a directory: a
        // real one (not a link to one, which would lead the mode and times
        // out of the root).
        let is_real_dir = fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
        if !(kind.is_dir() && is_real_dir) {
            remove_any(&target).map_err(fail("replace what was there"))?;
        }
        made.insert(target.clone());
        // The entry's, not the header's: PAX and GNU long names.
        let link = match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => entry
                .link_name()
                .map_err(fail("read its target"))?
                .unwrap_or_default()
                .into_owned(),
            _ => PathBuf::new(),
        };
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(fail("create it"))?;
            }
            tar::EntryType::Symlink => {
                symlink(&link, &target).map_err(fail("create the link"))?;
            }
            tar::EntryType::Link => {
                // The target's directory resolved inside the root; the last
                // component not followed: a hard link to a symbolic link
                // links the link.
                let source = clean(&link)
                    .map(|l| -> io::Result<PathBuf> {
                        let dir = resolve(root, l.parent().unwrap_or(Path::new("")))?;
                        Ok(dir.join(l.file_name().unwrap_or_default()))
                    })
                    .transpose()
                    .map_err(fail("resolve its target"))?
                    .filter(|p| p.symlink_metadata().is_ok())
                    .ok_or_else(|| {
                        LayerError::MissingLinkTarget(name.clone(), link.display().to_string())
                    })?;
                fs::hard_link(&source, &target).map_err(fail("create the hard link"))?;
                applied.entries += 1;
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut file = fs::File::create(&target).map_err(fail("create it"))?;
                io::copy(&mut entry, &mut file).map_err(fail("write it"))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                make_node(&target, &header).map_err(fail("create the device node"))?;
            }
            // Extended headers and the like carry nothing to make.
            _ => continue,
        }
        set_attributes(&target, &mut entry, kind).map_err(fail("set its owner, mode or times"))?;
        applied.entries += 1;
    }
    // After the tar's end only zero padding may follow: anything else is
    // part of the layer that would not be applied.
    let mut hashing = archive.into_inner();
    let mut rest = Vec::new();
    hashing.read_to_end(&mut rest).map_err(LayerError::Read)?;
    if rest.iter().any(|&b| b != 0) {
        return Err(LayerError::TrailingData);
    }
    let (diff_id, _) = hashing.finish().map_err(LayerError::Read)?;
    applied.diff_id = diff_id;
    Ok(applied)
}

/// An entry's path as a relative path without `.` and `..` (a `..` at the
/// top stays at the top, as in a container); `None` for the root itself.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.iter().collect())
}

/// `relative` inside `root`, following the symbolic links met on the way
/// as the image would see them (an absolute target from `root`, a relative
/// one from the link's directory), never out of `root`.
pub fn resolve(root: &Path, relative: &Path) -> io::Result<PathBuf> {
    const MAX_LINKS: usize = 40;
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = clean(relative)
        .map(|p| p.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    todo.reverse();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let here: PathBuf = root.join(done.iter().collect::<PathBuf>()).join(&part);
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other("too many symbolic links"));
                }
                let target = fs::read_link(&here)?;
                if target.is_absolute() {
                    done.clear();
                }
                let mut parts: Vec<std::ffi::OsString> =
                    target.iter().map(|c| c.to_owned()).collect();
                parts.retain(|p| p != "/");
                parts.reverse();
                todo.extend(parts);
            }
            _ => done.push(part),
        }
    }
    Ok(root.join(done.iter().collect::<PathBuf>()))
}

/// Removes a file, link or whole directory; nothing there is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes what is in `dir`, but what this layer made (`made`).
fn remove_children(dir: &Path, made: &HashSet<PathBuf>) -> io::Result<()> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                if !made.contains(&path) {
                    remove_any(&path)?;
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn make_node(path: &Path, header: &tar::Header) -> io::Result<()> {
    let kind = match header.entry_type() {
        tar::EntryType::Char => libc_mode::CHAR,
        tar::EntryType::Block => libc_mode::BLOCK,
        _ => libc_mode::FIFO,
    };
    let mode = header.mode()? & 0o7777;
    // A FIFO's header may leave the device numbers blank.
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    let status = std::process::Command::new("mknod")
        .arg("-m")
        .arg(format!("{mode:o}"))
        .arg(path)
        .args(match kind {
            libc_mode::FIFO => vec!["p".to_owned()],
            kind => vec![kind.to_owned(), major.to_string(), minor.to_string()],
        })
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("mknod failed: {status}")))
    }
}

/// mknod(1)'s type letters.
mod libc_mode {
    pub const CHAR: &str = "c";
    pub const BLOCK: &str = "b";
    pub const FIFO: &str = "p";
}

/// Owner, mode, extended attributes and modification time, as the layer
/// gives them. Owners need root; without it they stay the builder's.
fn set_attributes<R: Read>(
    path: &Path,
    entry: &mut tar::Entry<'_, R>,
    kind: tar::EntryType,
) -> io::Result<()> {
    let header = entry.header();
    let id = |n: u64| u32::try_from(n).unwrap_or(0);
    let (uid, gid) = (id(header.uid().unwrap_or(0)), id(header.gid().unwrap_or(0)));
    let mode = header.mode()? & 0o7777;
    let mtime = header.mtime().unwrap_or(0);
    let symlink = kind == tar::EntryType::Symlink;
    if is_root() {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    if !symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions.flatten() {
            let Ok(key) = extension.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                // Some filesystems refuse some namespaces: not fatal.
                let _ = xattr::set(path, name, extension.value_bytes());
            }
        }
    }
    // Without opening the file (a FIFO would block, a device act) and
    // without following a link.
    set_mtime(path, mtime);
    Ok(())
}

/// Sets a path's access and modification times to `mtime` (seconds since
/// the epoch) with utimensat(2): no open (a FIFO would block, a device
/// act), and a symbolic link's own times, not its target's.
fn set_mtime(path: &Path, mtime: u64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // tv_sec's type differs between libcs (musl's time_t changes).
    let times = [libc::timespec {
        tv_sec: mtime.try_into().unwrap_or(0),
        tv_nsec: 0,
    }; 2];
    // SAFETY: `name` is a NUL-terminated path and `times` two valid
    // timespecs, both alive for the call.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn file(builder: &mut tar::Builder<Vec<u8>>, path: &str, text: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o640);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, text.as_bytes())
            .unwrap();
    }

    fn link(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str, hard: bool) {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(if hard {
            tar::EntryType::Link
        } else {
            tar::EntryType::Symlink
        });
        builder.append_link(&mut header, path, target).unwrap();
    }

    fn root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vminit-image-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn whiteouts_and_opaque_directories() {
        let root = root("whiteouts");
        let first = layer(|b| {
            file(b, "etc/keep", "k");
            file(b, "etc/gone", "g");
            file(b, "var/cache/a", "a");
            file(b, "var/cache/b", "b");
        });
        let second = layer(|b| {
            file(b, "etc/.wh.gone", "");
            file(b, "var/cache/.wh..wh..opq", "");
            file(b, "var/cache/c", "c");
            file(b, "etc/keep", "replaced");
        });
        apply(&root, first.as_slice(), Compression::None).unwrap();
        let applied = apply(&root, second.as_slice(), Compression::None).unwrap();
        assert_eq!(applied.whiteouts, 2);
        assert!(!root.join("etc/gone").exists());
        assert_eq!(
            fs::read_to_string(root.join("etc/keep")).unwrap(),
            "replaced"
        );
        let cache: Vec<_> = fs::read_dir(root.join("var/cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(cache, ["c"]);
        assert_eq!(
            fs::metadata(root.join("etc/keep"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o640
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn links_are_kept_and_never_lead_out_of_the_root() {
        let root = root("links");
        let outside = root.with_extension("outside");
        let _ = fs::remove_dir_all(&outside);
        fs::create_dir_all(&outside).unwrap();
        let layer = layer(|b| {
            file(b, "bin/busybox", "elf");
            link(b, "bin/sh", "busybox", false);
            link(b, "bin/ash", "bin/busybox", true);
            // An absolute link to the builder's directory, then a file
            // written through it: it must land inside the root.
            link(b, "escape", &outside.display().to_string(), false);
            file(b, "escape/owned", "x");
            link(b, "up", "../../../../..", false);
            file(b, "up/tmp-owned", "y");
        });
        apply(&root, layer.as_slice(), Compression::None).unwrap();
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            fs::metadata(root.join("bin/ash")).unwrap().ino(),
            fs::metadata(root.join("bin/busybox")).unwrap().ino()
        );
        assert!(!outside.join("owned").exists(), "written outside the root");
        let inside = root.join(outside.strip_prefix("/").unwrap()).join("owned");
        assert!(inside.exists(), "{}", inside.display());
        assert!(root.join("tmp-owned").exists());
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn compressed_layers() {
        use std::io::Write;
        let plain = layer(|b| file(b, "a", "gz"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(Compression::sniff(&gz), Compression::Gzip);
        let root = root("gzip");
        apply(&root, gz.as_slice(), Compression::Gzip).unwrap();
        assert_eq!(fs::read_to_string(root.join("a")).unwrap(), "gz");
        fs::remove_dir_all(&root).unwrap();
        // zstd in two frames, split inside the tar stream, as zstd:chunked does.
        let plain = layer(|b| file(b, "z", "zstd"));
        let (head, tail) = plain.split_at(700);
        let level = ruzstd::encoding::CompressionLevel::Fastest;
        let mut zst = ruzstd::encoding::compress_to_vec(head, level);
        zst.extend(ruzstd::encoding::compress_to_vec(tail, level));
        assert_eq!(Compression::sniff(&zst), Compression::Zstd);
        let root = self::root("zstd");
        apply(&root, zst.as_slice(), Compression::Zstd).unwrap();
        assert_eq!(fs::read_to_string(root.join("z")).unwrap(), "zstd");
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
    }

    fn entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, mode: u32) {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(kind);
        builder.append_data(&mut header, path, &[][..]).unwrap();
    }

    #[test]
    fn hostile_layers_stay_inside_the_root() {
        use std::os::unix::fs::PermissionsExt;
        let root = root("hostile");
        let outside = root.with_extension("outside");
        let _ = fs::remove_dir_all(&outside);
        fs::create_dir_all(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(outside.join("precious"), "p").unwrap();
        // A whiteout of `..` or `.` would delete the root's parent or itself.
        for bad in [".wh..", ".wh...", "a/.wh."] {
            let whiteout = layer(|b| file(b, bad, ""));
            assert!(
                matches!(
                    apply(&root, whiteout.as_slice(), Compression::None),
                    Err(LayerError::BadWhiteout(_))
                ),
                "{bad}"
            );
        }
        // A directory entry over a link to the builder's directory replaces
        // the link: the mode lands inside the root.
        let first = layer(|b| link(b, "etc2", &outside.display().to_string(), false));
        let second = layer(|b| entry(b, "etc2/", tar::EntryType::Directory, 0o777));
        apply(&root, first.as_slice(), Compression::None).unwrap();
        apply(&root, second.as_slice(), Compression::None).unwrap();
        assert_eq!(
            fs::metadata(&outside).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(fs::symlink_metadata(root.join("etc2")).unwrap().is_dir());
        assert!(outside.join("precious").exists());
        // A FIFO entry: its time is set without opening it (which blocks).
        let fifo = layer(|b| entry(b, "run/fifo", tar::EntryType::Fifo, 0o600));
        let (done, finished) = std::sync::mpsc::channel();
        let fifo_root = root.clone();
        std::thread::spawn(move || {
            let _ = done.send(apply(&fifo_root, fifo.as_slice(), Compression::None).is_ok());
        });
        assert_eq!(
            finished.recv_timeout(std::time::Duration::from_secs(20)),
            Ok(true)
        );
        // A hard link to a symbolic link links the link itself.
        let links = layer(|b| {
            link(b, "sl", "bin", false);
            link(b, "hl", "sl", true);
        });
        apply(&root, links.as_slice(), Compression::None).unwrap();
        assert!(
            fs::symlink_metadata(root.join("hl"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A whiteout applies to the layers below, not its own.
        let same = layer(|b| {
            file(b, "d/x", "mine");
            file(b, "d/.wh.x", "");
            file(b, "e/y", "mine");
            file(b, "e/.wh..wh..opq", "");
        });
        apply(&root, same.as_slice(), Compression::None).unwrap();
        assert!(root.join("d/x").exists() && root.join("e/y").exists());
        // Data after the tar's end would be a part never applied.
        let mut trailing = layer(|b| file(b, "t", "t"));
        trailing.extend_from_slice(b"more data");
        assert!(matches!(
            apply(&root, trailing.as_slice(), Compression::None),
            Err(LayerError::TrailingData)
        ));
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }
}
