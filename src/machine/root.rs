//! The switch from the initramfs to the real root (`vminit.root`), as
//! switch_root(8) makes it: mount the root (read-only unless `root.rw`,
//! under a writable overlay if `root.overlay`), move `/proc`, `/sys`,
//! `/dev` and `/run` into it, free the initramfs's files, make it `/`
//! (`MS_MOVE` and chroot(2)); vminit goes on as PID 1 there.
//!
//! The overlay's layers live below `/run/vminit` (`lower`, and `upper` with
//! the upper and work directories), so they move with `/run` and the end
//! of the run finds them in the mount table to flush and remount.
//!
//! The tmpfs on `/run` would hide the image's own `/run`, where images
//! make directories at build time (PostgreSQL's `/run/postgresql`, owned by
//! postgres). Docker keeps them: so the image's `/run` is carried into the
//! tmpfs before it moves, owners, modes and links kept, within
//! [`RUN_MAX_ENTRIES`] and [`RUN_MAX_BYTES`], and the log says what was
//! left out.

use std::io;
use std::path::Path;
use std::time::Duration;

use nix::mount::MsFlags;
use thiserror::Error;

use crate::config::mounts::{self, Overlay, RootSettings};
use crate::machine::volumes::{self, split_options};
use crate::record::steps;
use crate::sys::mount;
use crate::{debug, info};

/// Where the new root is assembled in the initramfs.
const NEW_ROOT: &str = "/newroot";
/// The read-only root under an overlay.
const LOWER: &str = "/run/vminit/lower";
/// The overlay's writable storage: `upper/` and `work/` inside.
const UPPER: &str = "/run/vminit/upper";
/// What moves from the initramfs into the new root.
const MOVED: &[&str] = &["/dev", "/proc", "/sys", "/run"];
/// The most entries of the image's `/run` carried into vminit's.
pub const RUN_MAX_ENTRIES: usize = 1024;
/// The most bytes of regular files carried (PID files, a few configs).
pub const RUN_MAX_BYTES: u64 = 1 << 20;

/// A root switch that failed: the app does not start.
#[derive(Debug, Error)]
pub enum RootError {
    #[error("Root device {device} did not appear within {wait:?}")]
    NoDevice { device: String, wait: Duration },
    #[error("Cannot mount the root {device} as {fstype}")]
    Mount {
        device: String,
        fstype: String,
        #[source]
        error: io::Error,
    },
    #[error("Cannot mount the root {device}: none of the filesystems tried ({tried}) takes it")]
    NoFilesystem { device: String, tried: String },
    #[error("Cannot mount the overlay's {what}")]
    Overlay {
        what: &'static str,
        #[source]
        error: io::Error,
    },
    #[error("Cannot move {what} into the new root (it needs the directory {what})")]
    Move {
        what: &'static str,
        #[source]
        error: io::Error,
    },
    #[error("Cannot make the new root /")]
    Switch(#[source] io::Error),
}

/// Mounts the root `settings` describe and makes it `/`.
pub fn switch(settings: &RootSettings) -> Result<(), RootError> {
    let Some(source) = settings.source.as_deref() else {
        return Ok(());
    };
    let wait = settings.wait.unwrap_or(mounts::DEFAULT_WAIT);
    if !steps::time("root_wait", || volumes::wait_for_device(source, wait)) {
        return Err(RootError::NoDevice {
            device: source.to_owned(),
            wait,
        });
    }
    let read_only = settings.overlay.is_some() || settings.rw != Some(true);
    let options = settings.options.as_deref().unwrap_or("");
    let at = if settings.overlay.is_some() {
        LOWER
    } else {
        NEW_ROOT
    };
    let fstype = steps::time("root_mount", || {
        mount_probing(source, at, settings.fstype.as_deref(), options, read_only)
    })?;
    info!(
        "mounted the root {source} ({fstype}, {})",
        if read_only { "read-only" } else { "read-write" }
    );
    if let Some(overlay) = &settings.overlay {
        steps::time("overlay", || mount_overlay(overlay, wait))?;
    }
    steps::time("switch", || enter(NEW_ROOT))
}

/// Copies the image's `/run` (`from`) into vminit's tmpfs (`to`):
/// directories, symbolic links and regular files with their owners and
/// modes, nothing vminit has made there replaced, within the bounds.
fn carry_run(from: &Path, to: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
    let (mut carried, mut left_out, mut bytes) = (0usize, 0usize, 0u64);
    let mut todo = vec![std::path::PathBuf::new()];
    while let Some(relative) = todo.pop() {
        for entry in std::fs::read_dir(from.join(&relative))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = relative.join(entry.file_name());
            let (source, target) = (from.join(&name), to.join(&name));
            let Ok(meta) = std::fs::symlink_metadata(&source) else {
                continue;
            };
            if std::fs::symlink_metadata(&target).is_ok() {
                continue; // vminit's own, such as /run/vminit
            }
            let fits = carried < RUN_MAX_ENTRIES
                && (!meta.is_file() || bytes + meta.len() <= RUN_MAX_BYTES);
            let made = fits
                && if meta.is_dir() {
                    std::fs::create_dir(&target).is_ok()
                } else if meta.is_symlink() {
                    std::fs::read_link(&source)
                        .and_then(|t| symlink(t, &target))
                        .is_ok()
                } else {
                    meta.is_file() && std::fs::copy(&source, &target).is_ok()
                };
            if !made {
                left_out += 1;
                continue;
            }
            carried += 1;
            bytes += if meta.is_file() { meta.len() } else { 0 };
            // Owner first: chown clears setuid and setgid bits.
            let _ = lchown(&target, Some(meta.uid()), Some(meta.gid()));
            if !meta.is_symlink() {
                let mode = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
                let _ = std::fs::set_permissions(&target, mode);
            }
            if meta.is_dir() {
                todo.push(name);
            }
        }
    }
    if left_out > 0 {
        info!(
            "carried {carried} entries of the image's /run into vminit's; left out {left_out} \
             (past {RUN_MAX_ENTRIES} entries or {RUN_MAX_BYTES} bytes, or not a directory, link or file)"
        );
    } else if carried > 0 {
        debug!("carried {carried} entries of the image's /run into vminit's");
    }
}

/// Mounts `source` at `at` as `fstype`, or as each filesystem the kernel
/// would try (a tag: virtiofs, then 9p); returns the type that took it.
fn mount_probing(
    source: &str,
    at: &str,
    fstype: Option<&str>,
    options: &str,
    read_only: bool,
) -> Result<String, RootError> {
    let candidates = match fstype {
        Some(fstype) => vec![fstype.to_owned()],
        None if source.starts_with('/') => mount::block_filesystems(),
        None => vec!["virtiofs".to_owned(), "9p".to_owned()],
    };
    mount::create_dir(at, 0o755).map_err(|error| RootError::Mount {
        device: source.to_owned(),
        fstype: "a directory for it".to_owned(),
        error,
    })?;
    let (mut flags, data) = split_options(options);
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    let mut last = None;
    for fstype in &candidates {
        let data = volumes::data_for(fstype, &data);
        match mount::mount_with(source, at, fstype, flags, &data) {
            Ok(()) => return Ok(fstype.clone()),
            Err(error) => {
                debug!("the root {source} is not {fstype}: {error}");
                last = Some(error);
            }
        }
    }
    match (fstype, last) {
        (Some(fstype), Some(error)) => Err(RootError::Mount {
            device: source.to_owned(),
            fstype: fstype.to_owned(),
            error,
        }),
        _ => Err(RootError::NoFilesystem {
            device: source.to_owned(),
            tried: candidates.join(", "),
        }),
    }
}

/// Mounts the overlay's storage and the overlay over [`LOWER`] at
/// [`NEW_ROOT`].
fn mount_overlay(overlay: &Overlay, wait: Duration) -> Result<(), RootError> {
    let fail = |what| move |error| RootError::Overlay { what, error };
    mount::create_dir(UPPER, 0o755).map_err(fail("storage directory"))?;
    match overlay {
        Overlay::Tmpfs(size) => {
            let data = match size {
                Some(size) => format!("mode=0755,size={size}"),
                None => "mode=0755".to_owned(),
            };
            mount::mount_with("tmpfs", UPPER, "tmpfs", MsFlags::empty(), &data)
                .map_err(fail("tmpfs"))?;
        }
        Overlay::Device(device) => {
            if !volumes::wait_for_device(device, wait) {
                return Err(RootError::Overlay {
                    what: "device",
                    error: io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{device} did not appear within {wait:?}"),
                    ),
                });
            }
            mount_probing(device, UPPER, None, "", false).map_err(|e| RootError::Overlay {
                what: "device",
                error: io::Error::other(crate::log::chain(&e)),
            })?;
        }
    }
    for dir in ["upper", "work"] {
        mount::create_dir(&format!("{UPPER}/{dir}"), 0o755).map_err(fail("upper directory"))?;
    }
    mount::create_dir(NEW_ROOT, 0o755).map_err(fail("mount point"))?;
    let data = format!("lowerdir={LOWER},upperdir={UPPER}/upper,workdir={UPPER}/work");
    mount::mount_with("overlay", NEW_ROOT, "overlay", MsFlags::empty(), &data)
        .map_err(fail("overlay"))?;
    debug!("mounted an overlay ({overlay}) over the root");
    Ok(())
}

/// Moves the kernel's filesystems into `root`, frees the initramfs, and
/// makes `root` the root.
fn enter(root: &str) -> Result<(), RootError> {
    // Every target checked (or made) before anything moves: a failure half
    // way would leave PID 1 in the initramfs without /proc, unable to flush.
    // A real directory, not a link (which would resolve in the initramfs).
    for what in MOVED {
        let target = format!("{root}{what}");
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(RootError::Move {
                    what,
                    error: io::Error::other(format!("{target} is not a directory")),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => mount::create_dir(&target, 0o755)
                .map_err(|error| RootError::Move { what, error })?,
            Err(error) => return Err(RootError::Move { what, error }),
        }
    }
    carry_run(Path::new(&format!("{root}/run")), Path::new("/run"));
    for what in MOVED {
        let target = format!("{root}{what}");
        mount::move_mount(what, &target).map_err(|error| RootError::Move { what, error })?;
    }
    std::env::set_current_dir(root).map_err(RootError::Switch)?;
    if mount::root_is_initramfs() {
        // What stays is the new root's mount point, on another device.
        mount::delete_on_same_device(Path::new("/"));
    }
    mount::move_mount(".", "/").map_err(RootError::Switch)?;
    mount::chroot_here().map_err(RootError::Switch)?;
    debug!("switched to the new root");
    // The app's console from the new root's /dev, not the freed initramfs's.
    if let Err(e) = crate::sys::stdio::reopen_same_device("/dev/console") {
        debug!("the console stays as the kernel opened it: {e}");
    }
    Ok(())
}
