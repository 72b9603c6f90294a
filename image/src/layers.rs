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

//!
//! What an image can make this do is bounded ([`crate::stream::Meter`]):
//! the uncompressed streams of all layers together by the build's limit,
//! one entry's headers by [`crate::stream::MAX_HEADERS`], the zeros after
//! a tar's end by [`MAX_TRAILING_ZEROS`]. A stream may end right after an
//! entry's data, without the padding or the end marker, as Go's
//! `archive/tar` (Docker, containerd, umoci) accepts; one cut inside an
//! entry's data is refused, naming the entry. A sparse entry is written with
//! its holes as holes (they cost neither time nor disk), and may be at
//! most [`MAX_SPARSE_LENGTH`] long, holes included.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use thiserror::Error;

use crate::stream::{Compression, Meter, Metered, Tripped, entry_end};

/// The most zero bytes read after a tar's end-of-archive marker: GNU tar
/// pads to its 10 KiB record, Go's `archive/tar` writes none.
pub const MAX_TRAILING_ZEROS: u64 = 1 << 20;

/// The longest sparse file, holes included: ext4's largest file (with
/// 4 KiB blocks).
pub const MAX_SPARSE_LENGTH: u64 = 16 << 40;

/// What each entry costs against the limit beyond its bytes in the
/// stream: a block and an inode on the disk (and time in `mkfs.ext4`).
pub const ENTRY_COST: u64 = 4096;

/// The most entries the layers may make in one directory: `mkfs.ext4 -d`
/// takes time quadratic in a directory's size (minutes at this many).
pub const MAX_DIRECTORY_ENTRIES: u32 = 32_768;

/// The longest entry path or link target: Linux's `PATH_MAX`.
pub const MAX_PATH: usize = 4096;

/// The deepest directory the layers may make or reach, counted from the
/// root: deeper trees would hold one descriptor per level open in
/// `remove_dir_all`, and recurse as deep in `mkfs.erofs`.
pub const MAX_DEPTH: usize = 256;

/// The work resolving the layers' paths may take in one build, counted in
/// components the kernel walks (each lookup walks the whole path from the
/// root): deep directories and chains of links make it quadratic, and
/// this keeps it to a minute or so.
pub const MAX_RESOLVE_WORK: u64 = 1 << 28;

/// What the layers of one build share, bounded by their entries (no path
/// is kept): how many entries each directory has been given, whether
/// holes cost what data does (`mkfs.erofs` writes them out), and how much
/// resolving work is left.
#[derive(Debug)]
pub struct Tree {
    /// By the directory's device and inode.
    entries_in: std::collections::HashMap<(u64, u64), u32>,
    holes_cost: bool,
    /// Of [`MAX_RESOLVE_WORK`].
    resolve_work_left: u64,
}

impl Default for Tree {
    fn default() -> Tree {
        Tree {
            entries_in: std::collections::HashMap::new(),
            holes_cost: false,
            resolve_work_left: MAX_RESOLVE_WORK,
        }
    }
}

impl Tree {
    /// `holes_cost`: a sparse file's holes count as data.
    pub fn new(holes_cost: bool) -> Tree {
        Tree {
            holes_cost,
            ..Tree::default()
        }
    }

    /// Counts one more entry in `dir`; false past [`MAX_DIRECTORY_ENTRIES`].
    fn count_in(&mut self, dir: &fs::Metadata) -> bool {
        let count = self.entries_in.entry((dir.dev(), dir.ino())).or_default();
        *count += 1;
        *count <= MAX_DIRECTORY_ENTRIES
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
    #[error("The layer has more than 1 MiB of zeros after the end of its tar archive")]
    TrailingZeros,
    #[error(
        "The layers unpack to more than {} MiB (their data, and 4 KiB an entry), this build's bound (--max-size, else --size, else its default): give --max-size to raise it",
        .0 >> 20
    )]
    TooLarge(u64),
    #[error(
        "Layer entry {path} is a sparse file {size} bytes long with its holes, more than the 16 TiB an ext4 file can be"
    )]
    SparseTooLong { path: String, size: u64 },
    #[error("An entry's headers (long names, PAX records) take more than 1 MiB")]
    Headers,
    #[error("Stopped by a signal")]
    Stopped,
    #[error("Layer entry {0} is cut short: the layer ends inside its data")]
    Cut(String),
    #[error("Layer entry {0}: its path or link target is longer than {MAX_PATH} bytes")]
    PathTooLong(String),
    #[error(
        "Layer entry {0}: its directory would hold more than {MAX_DIRECTORY_ENTRIES} entries, the most the builder makes in one"
    )]
    CrowdedDirectory(String),
    #[error(
        "Layer entry {0}: it lies deeper than {MAX_DEPTH} directories below the root, the most the builder makes or follows"
    )]
    TooDeep(String),
    #[error(
        "Layer entry {0}: resolving the layers' paths took more than this build's bound of {MAX_RESOLVE_WORK} steps (directories nested deep, chains of links)"
    )]
    TooMuchResolving(String),
}

/// What applying a layer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub entries: usize,
    pub whiteouts: usize,
    /// The sha256 of the uncompressed tar stream: the layer's DiffID.
    pub diff_id: String,
    /// The uncompressed stream's length.
    pub bytes: u64,
}

/// Applies one layer's tar stream (compressed as `compression`) to `root`,
/// its uncompressed stream held to `meter`.
pub fn apply(
    root: &Path,
    blob: impl Read,
    compression: Compression,
    meter: &Rc<Meter>,
    tree: &mut Tree,
) -> Result<Applied, LayerError> {
    let stream = Metered::new(compression.decoder(blob), meter.clone());
    let mut archive = tar::Archive::new(stream);
    let mut applied = Applied::default();
    let bounded = |error: LayerError| match meter.tripped() {
        Some(Tripped::Limit(limit)) => LayerError::TooLarge(limit),
        Some(Tripped::Headers) => LayerError::Headers,
        Some(Tripped::Stopped) => LayerError::Stopped,
        None => error,
    };
    apply_entries(root, &mut archive, meter, tree, &mut applied).map_err(bounded)?;
    let mut stream = archive.into_inner();
    trailing_zeros(&mut stream).map_err(bounded)?;
    applied.bytes = meter.read();
    applied.diff_id = stream.digest();
    Ok(applied)
}

/// After the tar's end only zero padding may follow, and not much of it:
/// anything else is part of the layer that would not be applied. Read in
/// fixed chunks, never whole.
fn trailing_zeros(stream: &mut impl Read) -> Result<(), LayerError> {
    let mut chunk = vec![0u8; 64 << 10];
    let mut zeros = 0u64;
    loop {
        let n = stream.read(&mut chunk).map_err(LayerError::Read)?;
        if n == 0 {
            return Ok(());
        }
        if chunk[..n].iter().any(|&b| b != 0) {
            return Err(LayerError::TrailingData);
        }
        zeros += n as u64;
        if zeros > MAX_TRAILING_ZEROS {
            return Err(LayerError::TrailingZeros);
        }
    }
}

fn apply_entries<R: Read>(
    root: &Path,
    archive: &mut tar::Archive<Metered<R>>,
    meter: &Meter,
    tree: &mut Tree,
    applied: &mut Applied,
) -> Result<(), LayerError> {
    // What this layer made: its whiteouts apply to the layers below only.
    let mut made = Made::default();
    let entries = archive.entries().map_err(LayerError::Read)?;
    // The iterator reads each entry's headers when the loop asks for it.
    meter.headers_from(0);
    for entry in entries {
        let mut entry = entry.map_err(LayerError::Read)?;
        meter.data();
        let (data_end, next_header) =
            entry_end(&mut entry, meter.read()).map_err(LayerError::Read)?;
        apply_entry(root, &mut entry, meter, tree, &mut made, applied)?;
        meter.padding(data_end, next_header);
        meter.headers_from(next_header);
    }
    meter.data();
    Ok(())
}

/// Applies one entry: a whiteout, an opaque directory, or a file of any kind.
fn apply_entry<R: Read>(
    root: &Path,
    entry: &mut tar::Entry<'_, R>,
    meter: &Meter,
    tree: &mut Tree,
    made: &mut Made,
    applied: &mut Applied,
) -> Result<(), LayerError> {
    let raw = entry.path().map_err(LayerError::Read)?.into_owned();
    // Shown escaped and cut: an error stays one line, whatever the name.
    let name = vminit::config::error::shorten_to(&raw.to_string_lossy(), 256);
    let too_long = |path: Option<&Path>| path.is_some_and(|p| p.as_os_str().len() > MAX_PATH);
    let link = entry.link_name().map_err(LayerError::Read)?;
    if too_long(Some(&raw)) || too_long(link.as_deref()) {
        return Err(LayerError::PathTooLong(name));
    }
    drop(link);
    // Every entry costs a block and an inode.
    if !meter.charge(ENTRY_COST) {
        return Err(LayerError::TooLarge(meter.limit()));
    }
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
        return Ok(()); // the root itself
    };
    let file_name = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = resolve_within(
        root,
        relative.parent().unwrap_or(Path::new("")),
        &mut tree.resolve_work_left,
    )
    .map_err(|e| unresolved(e, &name, "resolve its directory"))?;
    if file_name == ".wh..wh..opq" {
        // Opaque: what earlier layers put in this directory is hidden.
        remove_children(&parent, made).map_err(fail("empty the opaque directory"))?;
        applied.whiteouts += 1;
        return Ok(());
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
        return Ok(());
    }
    let kind = entry.header().entry_type();
    // A file's data past what the build may still unpack is refused before
    // a byte of it is written; a sparse file's holes cost nothing, but no
    // disk can hold a file longer than ext4's.
    if kind.is_gnu_sparse() && entry.size() > MAX_SPARSE_LENGTH {
        return Err(LayerError::SparseTooLong {
            path: name,
            size: entry.size(),
        });
    }
    let is_file = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
    if is_file && entry.size() > meter.left() {
        return Err(LayerError::TooLarge(meter.limit()));
    }
    // mkfs.erofs writes a sparse file's holes out: there they cost.
    if kind.is_gnu_sparse() && tree.holes_cost && !meter.charge(entry.size()) {
        return Err(LayerError::TooLarge(meter.limit()));
    }
    make_parents(&parent, meter, tree, &name)?;
    let target = parent.join(&file_name);
    if fs::symlink_metadata(&target).is_err() {
        let dir = fs::symlink_metadata(&parent).map_err(fail("look at its directory"))?;
        if !tree.count_in(&dir) {
            return Err(LayerError::CrowdedDirectory(name));
        }
    }
    // A later layer replaces what was there, but keeps a directory: a
    // real one (not a link to one, which would lead the mode and times
    // out of the root).
    let is_real_dir = fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
    if !(kind.is_dir() && is_real_dir) {
        remove_any(&target).map_err(fail("replace what was there"))?;
    }
    made.insert(&target);
    if make(
        root,
        entry,
        &target,
        &name,
        meter,
        &mut tree.resolve_work_left,
    )? {
        set_attributes(&target, entry, kind).map_err(fail("set its owner, mode or times"))?;
    }
    applied.entries += 1;
    Ok(())
}

/// Makes the file `entry` describes at `target`; false when it takes no
/// attributes of its own (a hard link) or carries nothing to make.
fn make<R: Read>(
    root: &Path,
    entry: &mut tar::Entry<'_, R>,
    target: &Path,
    name: &str,
    meter: &Meter,
    resolve_work_left: &mut u64,
) -> Result<bool, LayerError> {
    let fail = |what: &'static str| {
        move |source| LayerError::Entry {
            path: name.to_owned(),
            what: what.to_owned(),
            source,
        }
    };
    let kind = entry.header().entry_type();
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
        tar::EntryType::Directory => fs::create_dir_all(target).map_err(fail("create it"))?,
        tar::EntryType::Symlink => symlink(&link, target).map_err(fail("create the link"))?,
        tar::EntryType::Link => {
            // The target's directory resolved inside the root; the last
            // component not followed: a hard link to a symbolic link
            // links the link.
            let source = clean(&link)
                .map(|l| {
                    let dir = l.parent().unwrap_or(Path::new(""));
                    let dir = resolve_within(root, dir, resolve_work_left);
                    dir.map(|dir| dir.join(l.file_name().unwrap_or_default()))
                })
                .transpose()
                .map_err(|e| unresolved(e, name, "resolve its target"))?
                .filter(|p| p.symlink_metadata().is_ok())
                .ok_or_else(|| {
                    LayerError::MissingLinkTarget(name.to_owned(), link.display().to_string())
                })?;
            fs::hard_link(&source, target).map_err(fail("create the hard link"))?;
            return Ok(false);
        }
        // The tar crate writes a sparse entry's holes by seeking past
        // them: they stay holes.
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            entry.unpack(target).map_err(|source| {
                if meter.ended() && meter.tripped().is_none() {
                    LayerError::Cut(name.to_owned())
                } else {
                    fail("write it")(source)
                }
            })?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            make_node(target, entry.header()).map_err(fail("create the device node"))?;
        }
        // Extended headers and the like carry nothing to make.
        _ => return Ok(false),
    }
    Ok(true)
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

/// Makes the directories an entry's path names and no entry made (`a/b/`
/// for an entry `a/b/c` alone), as the entries they are: each costs what
/// an entry costs and counts in its own directory.
fn make_parents(dir: &Path, meter: &Meter, tree: &mut Tree, name: &str) -> Result<(), LayerError> {
    let fail = |source| LayerError::Entry {
        path: name.to_owned(),
        what: "create its directory".into(),
        source,
    };
    let mut missing = Vec::new();
    let mut here = dir;
    while fs::symlink_metadata(here).is_err() {
        missing.push(here);
        here = here
            .parent()
            .ok_or_else(|| fail(io::ErrorKind::NotFound.into()))?;
    }
    for dir in missing.into_iter().rev() {
        if !meter.charge(ENTRY_COST) {
            return Err(LayerError::TooLarge(meter.limit()));
        }
        let parent = dir.parent().unwrap_or(dir);
        let parent = fs::symlink_metadata(parent).map_err(fail)?;
        if !tree.count_in(&parent) {
            return Err(LayerError::CrowdedDirectory(name.to_owned()));
        }
        fs::create_dir(dir).map_err(fail)?;
    }
    Ok(())
}

/// The error for an entry `name` whose path (`what`) could not be
/// resolved.
fn unresolved(error: Unresolved, name: &str, what: &str) -> LayerError {
    match error {
        Unresolved::TooDeep => LayerError::TooDeep(name.to_owned()),
        Unresolved::TooMuchWork => LayerError::TooMuchResolving(name.to_owned()),
        Unresolved::Io(source) => LayerError::Entry {
            path: name.to_owned(),
            what: what.to_owned(),
            source,
        },
    }
}

/// Why a path could not be resolved.
#[derive(Debug)]
enum Unresolved {
    /// Deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The work allowed ran out.
    TooMuchWork,
    Io(io::Error),
}

/// `relative` inside `root`, following the symbolic links met on the way
/// as the image would see them (an absolute target from `root`, a relative
/// one from the link's directory), never out of `root`, and never deeper
/// than [`MAX_DEPTH`]: with a budget of its own (a path's length in
/// components, times 40 links).
pub fn resolve(root: &Path, relative: &Path) -> io::Result<PathBuf> {
    let mut work = (MAX_PATH as u64) * 40 * MAX_DEPTH as u64;
    resolve_within(root, relative, &mut work).map_err(|e| match e {
        Unresolved::TooDeep => {
            io::Error::other(format!("it lies deeper than {MAX_DEPTH} directories"))
        }
        Unresolved::TooMuchWork => io::Error::other("it takes too many steps to resolve"),
        Unresolved::Io(e) => e,
    })
}

/// [`resolve`], taking its work (each lookup costs the components it
/// walks) from `work_left`.
fn resolve_within(
    root: &Path,
    relative: &Path,
    work_left: &mut u64,
) -> Result<PathBuf, Unresolved> {
    const MAX_LINKS: usize = 40;
    // One path, pushed and popped: linear in the components.
    let mut here = root.to_path_buf();
    let mut depth = 0usize;
    let mut todo: Vec<std::ffi::OsString> = clean(relative)
        .map(|p| p.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    todo.reverse();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            if depth > 0 {
                here.pop();
                depth -= 1;
            }
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        here.push(&part);
        *work_left = work_left
            .checked_sub(depth as u64 + 1)
            .ok_or(Unresolved::TooMuchWork)?;
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Unresolved::Io(io::Error::other("too many symbolic links")));
                }
                let target = fs::read_link(&here).map_err(Unresolved::Io)?;
                here.pop();
                if target.is_absolute() {
                    here = root.to_path_buf();
                    depth = 0;
                }
                let mut parts: Vec<std::ffi::OsString> =
                    target.iter().map(|c| c.to_owned()).collect();
                parts.retain(|p| p != "/");
                parts.reverse();
                todo.extend(parts);
            }
            _ => {
                // A directory here holds entries one level deeper.
                depth += 1;
                if depth >= MAX_DEPTH {
                    return Err(Unresolved::TooDeep);
                }
            }
        }
    }
    Ok(here)
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

/// What one layer made, by a keyed hash of each path: 8 bytes an entry,
/// however long its path (a collision, which nobody can aim for without
/// the key, would at worst spare a file from a whiteout).
#[derive(Debug, Default)]
struct Made {
    hashes: HashSet<u64>,
    keys: std::hash::RandomState,
}

impl Made {
    fn hash(&self, path: &Path) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one(path)
    }

    fn insert(&mut self, path: &Path) {
        let hash = self.hash(path);
        self.hashes.insert(hash);
    }

    fn contains(&self, path: &Path) -> bool {
        self.hashes.contains(&self.hash(path))
    }
}

/// Removes what is in `dir`, but what this layer made (`made`).
fn remove_children(dir: &Path, made: &Made) -> io::Result<()> {
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

/// A device node or FIFO, with mknod(2): the image may name any device
/// numbers, which is why the staging tree is private (see `build`).
fn make_node(path: &Path, header: &tar::Header) -> io::Result<()> {
    let kind = match header.entry_type() {
        tar::EntryType::Char => SFlag::S_IFCHR,
        tar::EntryType::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    // A FIFO's header may leave the device numbers blank.
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    let device = nix::sys::stat::makedev(major.into(), minor.into());
    // Owner-only until `set_attributes` gives it the image's mode.
    nix::sys::stat::mknod(path, kind, Mode::S_IRUSR | Mode::S_IWUSR, device)?;
    Ok(())
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
    let time = TimeSpec::new(mtime.try_into().unwrap_or(0), 0);
    let _ = nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    );
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn unbounded() -> Rc<Meter> {
        Meter::new(u64::MAX, u64::MAX)
    }

    /// Applies an uncompressed layer without bounds.
    fn plain(root: &Path, bytes: &[u8]) -> Result<Applied, LayerError> {
        apply(
            root,
            bytes,
            Compression::None,
            &unbounded(),
            &mut Tree::default(),
        )
    }

    /// [`plain`] with `tree`.
    fn plain_with(root: &Path, bytes: &[u8], tree: &mut Tree) -> Result<Applied, LayerError> {
        apply(root, bytes, Compression::None, &unbounded(), tree)
    }

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
    fn resolving_is_paid_for_by_every_entry_hard_links_too() {
        // A deep directory, a file in it, then a hard link to the file: each
        // lookup walks the path from the root, and the link's too.
        let deep = "d/".repeat(100);
        let root = root("resolve-work");
        let linked = layer(|b| {
            file(b, &format!("{deep}f"), "x");
            link(b, &format!("{deep}g"), &format!("{deep}f"), true);
        });
        let mut tree = Tree::default();
        plain_with(&root, &linked, &mut tree).unwrap();
        let spent = MAX_RESOLVE_WORK - tree.resolve_work_left;
        // Two entries' directories, and the link's target's: 3 × 1..=100.
        assert_eq!(spent, 3 * (1..=100).sum::<u64>());
        // With only the two directories' worth left, the link is refused.
        let mut tree = Tree {
            resolve_work_left: 2 * (1..=100).sum::<u64>(),
            ..Tree::default()
        };
        fs::remove_dir_all(&root).unwrap();
        fs::create_dir_all(&root).unwrap();
        let refused = plain_with(&root, &linked, &mut tree).unwrap_err();
        assert!(
            matches!(refused, LayerError::TooMuchResolving(_)),
            "{refused}"
        );
        // And a directory 256 deep is refused, 255 is not.
        let too_deep = layer(|b| file(b, &format!("{}f", "e/".repeat(256)), "x"));
        let refused = plain(&root, &too_deep).unwrap_err();
        assert!(matches!(refused, LayerError::TooDeep(_)), "{refused}");
        let deepest = layer(|b| file(b, &format!("{}f", "e/".repeat(255)), "x"));
        plain(&root, &deepest).unwrap();
        fs::remove_dir_all(&root).unwrap();
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
        plain(&root, first.as_slice()).unwrap();
        let applied = plain(&root, second.as_slice()).unwrap();
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
        plain(&root, layer.as_slice()).unwrap();
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
        apply(
            &root,
            gz.as_slice(),
            Compression::Gzip,
            &unbounded(),
            &mut Tree::default(),
        )
        .unwrap();
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
        apply(
            &root,
            zst.as_slice(),
            Compression::Zstd,
            &unbounded(),
            &mut Tree::default(),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(root.join("z")).unwrap(), "zstd");
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
    }

    #[test]
    fn a_stream_may_end_after_an_entrys_data_but_not_inside_it() {
        let root = root("ends");
        let full = layer(|b| file(b, "etc/motd", &"m".repeat(49)));
        let digest = |bytes: &[u8]| crate::stream::hex(&sha2::Sha256::digest(bytes));
        // umoci's `insert`: one header and 49 bytes, no padding, no end;
        // then with the padding but no end marker.
        for cut in [512 + 49, 1024] {
            let applied = apply(
                &root,
                &full[..cut],
                Compression::None,
                &unbounded(),
                &mut Tree::default(),
            )
            .unwrap();
            assert_eq!(applied.entries, 1);
            assert_eq!(
                applied.diff_id,
                digest(&full[..cut]),
                "only real bytes hashed"
            );
            assert_eq!(
                fs::read_to_string(root.join("etc/motd")).unwrap(),
                "m".repeat(49)
            );
        }
        // Cut inside the data, or inside the next header: refused.
        let two = layer(|b| {
            file(b, "a", &"a".repeat(600));
            file(b, "b", "b");
        });
        assert!(matches!(
            apply(&root, &two[..512 + 550], Compression::None, &unbounded(), &mut Tree::default()),
            Err(LayerError::Cut(name)) if name == "a"
        ));
        assert!(
            apply(
                &root,
                &two[..1536 + 100],
                Compression::None,
                &unbounded(),
                &mut Tree::default()
            )
            .is_err()
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn holes_cost_where_the_disk_writes_them() {
        // A GNU sparse file of 64 MiB with 512 bytes of data.
        let mut header = tar::Header::new_gnu();
        header.set_path("big").unwrap();
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_size(512);
        let offset = format!("{:011o}", 64u64 << 20);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.sparse[0].offset[..11].copy_from_slice(offset.as_bytes());
        gnu.sparse[0].numbytes[..11].copy_from_slice(b"00000001000");
        gnu.realsize[..11].copy_from_slice(format!("{:011o}", (64u64 << 20) + 512).as_bytes());
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &[1u8; 512][..]).unwrap();
        let sparse = builder.into_inner().unwrap();
        let root = root("holes");
        let meter = || Meter::new(32 << 20, 32 << 20);
        apply(
            &root,
            sparse.as_slice(),
            Compression::None,
            &meter(),
            &mut Tree::new(false),
        )
        .unwrap();
        assert!(
            fs::metadata(root.join("big")).unwrap().blocks() < 64,
            "written sparse"
        );
        assert!(matches!(
            apply(
                &root,
                sparse.as_slice(),
                Compression::None,
                &meter(),
                &mut Tree::new(true)
            ),
            Err(LayerError::TooLarge(_))
        ));
        fs::remove_dir_all(&root).unwrap();
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
                    plain(&root, whiteout.as_slice()),
                    Err(LayerError::BadWhiteout(_))
                ),
                "{bad}"
            );
        }
        // A directory entry over a link to the builder's directory replaces
        // the link: the mode lands inside the root.
        let first = layer(|b| link(b, "etc2", &outside.display().to_string(), false));
        let second = layer(|b| entry(b, "etc2/", tar::EntryType::Directory, 0o777));
        plain(&root, first.as_slice()).unwrap();
        plain(&root, second.as_slice()).unwrap();
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
            let _ = done.send(plain(&fifo_root, fifo.as_slice()).is_ok());
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
        plain(&root, links.as_slice()).unwrap();
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
        plain(&root, same.as_slice()).unwrap();
        assert!(root.join("d/x").exists() && root.join("e/y").exists());
        // Data after the tar's end would be a part never applied.
        let mut trailing = layer(|b| file(b, "t", "t"));
        trailing.extend_from_slice(b"more data");
        assert!(matches!(
            plain(&root, trailing.as_slice()),
            Err(LayerError::TrailingData)
        ));
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }
}
