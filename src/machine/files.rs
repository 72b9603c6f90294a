//! The metadata's `files`, written into the final root before the set-up
//! steps and the app (as Fly Machines' `files`): each with its parents,
//! then its content, owner and mode, and moved into place in one rename,
//! so that the app never sees half a file and a link at the path is
//! replaced, not followed. Contents are never logged.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use thiserror::Error;

use crate::config::FileSpec;
use crate::info;

#[derive(Debug, Error)]
#[error("Cannot write files[{index}] ({path}): {step}")]
pub struct FileError {
    index: usize,
    path: String,
    step: String,
    #[source]
    source: io::Error,
}

/// Writes `files` in order; stops at the first that cannot be written.
pub fn write_all(files: &[FileSpec]) -> Result<(), FileError> {
    for (index, file) in files.iter().enumerate() {
        write(file).map_err(|(step, source)| FileError {
            index,
            path: file.path.clone(),
            step: step.to_owned(),
            source,
        })?;
        info!(
            "wrote {} ({} bytes, mode {:04o}, owner {}:{})",
            file.path,
            file.content.len(),
            file.mode,
            file.uid,
            file.gid
        );
    }
    Ok(())
}

/// One file: its parents (root's, 0755, as `mkdir -p` under umask 022),
/// a new file beside it with the content, owner and mode, then the rename.
fn write(file: &FileSpec) -> Result<(), (&'static str, io::Error)> {
    let path = Path::new(&file.path);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(("name it", io::ErrorKind::InvalidInput.into()));
    };
    fs::create_dir_all(parent).map_err(|e| ("create its directory", e))?;
    let staged = parent.join(format!(
        ".{}.vminit-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = stage(&staged, file)
        .and_then(|()| fs::rename(&staged, path).map_err(|e| ("move it into place", e)));
    if result.is_err() {
        let _ = fs::remove_file(&staged);
    }
    result
}

/// The new file, private until its owner and mode are set: the owner
/// first, as chown(2) clears set-user-ID and set-group-ID bits.
fn stage(staged: &Path, file: &FileSpec) -> Result<(), (&'static str, io::Error)> {
    let _ = fs::remove_file(staged);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(staged)
        .map_err(|e| ("create it", e))?;
    out.write_all(&file.content)
        .map_err(|e| ("write its content", e))?;
    std::os::unix::fs::fchown(&out, Some(file.uid), Some(file.gid))
        .map_err(|e| ("give it its owner", e))?;
    out.set_permissions(fs::Permissions::from_mode(file.mode))
        .map_err(|e| ("give it its mode", e))?;
    out.sync_all().map_err(|e| ("sync it", e))
}
