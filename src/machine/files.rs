//! The metadata's `files`, written before the app is prepared (as Fly
//! Machines' `files`, with vminit's own fields): each with its parents,
//! then its content, owner and mode, moved into place in one rename, so
//! that the app never sees half a file and a link at the path is replaced,
//! not followed. A path that is a mount point (a file an engine or vminit
//! bind-mounted, such as `/etc/hosts`) cannot be renamed over: it is
//! written in place. Links in the parent directories are followed, as
//! `mkdir -p` follows them. Contents are never logged, and nothing here
//! syncs: the end path flushes every disk, so no write can hold up the
//! start on a slow disk.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use thiserror::Error;

use crate::config::FileSpec;
use crate::config::error::escape;
use crate::info;

#[derive(Debug, Error)]
#[error("Cannot write files[{index}] ({path}): {step}")]
pub struct FileError {
    index: usize,
    /// Escaped: no control byte reaches the log.
    path: String,
    step: String,
    #[source]
    source: io::Error,
}

/// Writes `files` in order; stops at the first that cannot be written.
pub fn write_all(files: &[FileSpec]) -> Result<(), FileError> {
    for (index, file) in files.iter().enumerate() {
        write(file, index).map_err(|(step, source)| FileError {
            index,
            path: escape(&file.path),
            step: step.to_owned(),
            source,
        })?;
        let owner = match (file.uid, file.gid) {
            (None, None) => String::new(),
            (uid, gid) => format!(", owner {}:{}", show(uid), show(gid)),
        };
        info!(
            "wrote {} ({} bytes, mode {:04o}{owner})",
            escape(&file.path),
            file.content.len(),
            file.mode
        );
    }
    Ok(())
}

fn show(id: Option<u32>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}

type Failed = (&'static str, io::Error);

/// One file: its parents (as `mkdir -p` makes them), a new file beside it
/// with the content, owner and mode, then the rename; in place when the
/// path is a mount point.
fn write(file: &FileSpec, index: usize) -> Result<(), Failed> {
    let path = Path::new(&file.path);
    let Some(parent) = path.parent() else {
        return Err(("name it", io::ErrorKind::InvalidInput.into()));
    };
    fs::create_dir_all(parent).map_err(|e| ("create its directory", e))?;
    // Short and fixed: no name is too long for it; `create_new` refuses
    // to reuse whatever is there.
    let staged = parent.join(format!(".vminit-{}-{index}.tmp", std::process::id()));
    let result = stage(&staged, file).and_then(|()| match fs::rename(&staged, path) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let _ = fs::remove_file(&staged);
            in_place(path, file)
        }
        renamed => renamed.map_err(|e| ("move it into place", e)),
    });
    if result.is_err() {
        let _ = fs::remove_file(&staged);
    }
    result
}

/// The new file, private until its owner and mode are set: the owner
/// first, as chown(2) clears set-user-ID and set-group-ID bits.
fn stage(staged: &Path, file: &FileSpec) -> Result<(), Failed> {
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(staged)
    };
    let out = match create() {
        // Left by an earlier boot that ended mid-write (PID 1's pid is
        // always 1): it is ours to remove.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(staged);
            create()
        }
        created => created,
    };
    finish(out.map_err(|e| ("create it", e))?, file)
}

/// A mount point's file, rewritten where it is (never through a link).
fn in_place(path: &Path, file: &FileSpec) -> Result<(), Failed> {
    let out = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| ("open it in place (a mount point)", e))?;
    finish(out, file)
}

fn finish(mut out: fs::File, file: &FileSpec) -> Result<(), Failed> {
    out.write_all(&file.content)
        .map_err(|e| ("write its content", e))?;
    if file.uid.is_some() || file.gid.is_some() {
        std::os::unix::fs::fchown(&out, file.uid, file.gid)
            .map_err(|e| ("give it its owner", e))?;
    }
    out.set_permissions(fs::Permissions::from_mode(file.mode))
        .map_err(|e| ("give it its mode", e))
}
