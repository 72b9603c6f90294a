//! The volumes (`mount.NAME`): mounted in the final root before the app
//! starts, parents before children; a failed one stops the boot. Also the
//! mount options as mount(8) reads them, and the wait for a device, which
//! the root switch shares.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::MsFlags;
use thiserror::Error;

use crate::config::mounts::{self, Volumes};
use crate::sys::mount;
use crate::{debug, info};

/// A volume that could not be mounted: the app does not start without it.
#[derive(Debug, Error)]
pub enum VolumeError {
    #[error("Volume {name}: device {device} did not appear within {wait:?}")]
    NoDevice {
        name: String,
        device: String,
        wait: Duration,
    },
    #[error("Volume {name}: cannot create its target {target}")]
    Target {
        name: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("Volume {name}: cannot give its top directory {target} its owner or mode")]
    Access {
        name: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot mount volume {name} ({spec})")]
    Mount {
        name: String,
        /// `SOURCE,TARGET,TYPE[,OPTIONS]`.
        spec: String,
        #[source]
        source: io::Error,
    },
}

/// Gives a mounted volume's top directory `owner` (uid, gid) and `mode`
/// (`mount.NAME.owner`, `.mode`): that directory only, never what is in
/// it, so that a volume that already holds data keeps its files' owners.
pub fn give(
    name: &str,
    target: &str,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
) -> Result<(), VolumeError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |source| VolumeError::Access {
        name: name.to_owned(),
        target: target.to_owned(),
        source,
    };
    // Owner first: chown clears the setgid bit a mode may set.
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(target, Some(uid), Some(gid)).map_err(fail)?;
    }
    if let Some(mode) = mode {
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    }
    info!(
        "volume {name}: {target} is {}{}",
        owner.map_or(String::new(), |(uid, gid)| format!("owned by {uid}:{gid}")),
        mode.map_or(String::new(), |m| format!(
            "{}mode {m:04o}",
            if owner.is_some() { ", " } else { "" }
        ))
    );
    Ok(())
}

/// Mounts every volume, parents first, waiting up to `wait` for each
/// device.
pub fn mount_all(volumes: &Volumes, wait: Duration) -> Result<(), VolumeError> {
    for (name, spec) in mounts::mount_order(volumes) {
        if !wait_for_device(&spec.source, wait) {
            return Err(VolumeError::NoDevice {
                name: name.to_owned(),
                device: spec.source.clone(),
                wait,
            });
        }
        mount::create_dir(&spec.target, 0o755).map_err(|source| VolumeError::Target {
            name: name.to_owned(),
            target: spec.target.clone(),
            source,
        })?;
        let (flags, data) = split_options(&spec.options);
        let data = data_for(&spec.fstype, &data);
        mount::mount_with(&spec.source, &spec.target, &spec.fstype, flags, &data).map_err(
            |source| VolumeError::Mount {
                name: name.to_owned(),
                spec: spec.to_string(),
                source,
            },
        )?;
        debug!("mounted volume {name}: {spec}");
    }
    Ok(())
}

/// Waits until a device path exists, at most `wait`; true at once for a
/// source that is not under `/dev/` (a tag, `tmpfs`).
pub fn wait_for_device(source: &str, wait: Duration) -> bool {
    if !source.starts_with("/dev/") {
        return true;
    }
    crate::sys::inotify::wait_for(Path::new(source), Instant::now() + wait)
}

/// The data a filesystem needs besides what was given: a 9p share over
/// virtio.
pub fn data_for(fstype: &str, data: &str) -> String {
    if fstype == "9p" && !data.split(',').any(|o| o.starts_with("trans=")) {
        let extra = "trans=virtio,version=9p2000.L";
        return if data.is_empty() {
            extra.to_owned()
        } else {
            format!("{extra},{data}")
        };
    }
    data.to_owned()
}

/// Splits mount options as mount(8) does: the generic ones become flags
/// (`ro`, `nosuid`, `noatime`, …), the rest the filesystem's data.
pub fn split_options(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let (set, clear) = match option {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            // mount(8)'s own, not the kernel's or the filesystem's.
            "defaults" | "nofail" | "noauto" | "auto" | "user" | "nouser" | "users" | "owner"
            | "group" | "_netdev" => (MsFlags::empty(), MsFlags::empty()),
            other if other.starts_with("x-") || other.starts_with("comment=") => {
                (MsFlags::empty(), MsFlags::empty())
            }
            other => {
                data.push(other);
                continue;
            }
        };
        flags = (flags | set) - clear;
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let (flags, data) = split_options(
            "noatime,ro,size=64m,nofail,mode=1777,x-systemd.device-timeout=5,nosuid,rw",
        );
        assert_eq!(flags, MsFlags::MS_NOATIME | MsFlags::MS_NOSUID);
        assert_eq!(data, "size=64m,mode=1777");
        assert_eq!(split_options(""), (MsFlags::empty(), String::new()));
        assert_eq!(data_for("9p", ""), "trans=virtio,version=9p2000.L");
        assert_eq!(data_for("9p", "trans=fd"), "trans=fd");
        assert_eq!(data_for("ext4", "x"), "x");
    }

    #[test]
    fn a_tag_needs_no_wait_and_a_missing_device_ends_it() {
        assert!(wait_for_device("tmpfs", Duration::ZERO));
        assert!(wait_for_device("/dev/null", Duration::ZERO));
        assert!(!wait_for_device(
            "/dev/no-such-disk",
            Duration::from_millis(30)
        ));
    }
}
