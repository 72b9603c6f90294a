//! The root and the volumes: the `root`, `root.*` and `mount.NAME`
//! settings, as written. [`crate::machine::root`] switches to the root and
//! [`crate::machine::volumes`] mounts the volumes.

use std::time::Duration;

use crate::config::error::Problem;
use crate::config::user::UserSpec;
use crate::config::validate;
use crate::config::value::{parse_flag, parse_grace, pick};

/// How long to wait for a root or volume device by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The `root.*` settings as one source gave them; `None` is "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootSettings {
    /// A block device path (`/dev/vda`), or a `virtiofs`/`9p` tag.
    pub source: Option<String>,
    /// The filesystem type; probed among the kernel's block filesystems
    /// when absent.
    pub fstype: Option<String>,
    /// Mount options, as mount(8) takes them.
    pub options: Option<String>,
    /// Mount it read-write (default: read-only).
    pub rw: Option<bool>,
    /// A writable layer over it.
    pub overlay: Option<Overlay>,
    /// How long to wait for the device to appear.
    pub wait: Option<Duration>,
}

/// Where an overlay's upper and work directories live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// A tmpfs, of this size (`size=` as tmpfs takes it) or the default.
    Tmpfs(Option<String>),
    /// A block device with a filesystem of its own, probed as the root's.
    Device(String),
}

impl std::fmt::Display for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Overlay::Tmpfs(None) => f.write_str("tmpfs"),
            Overlay::Tmpfs(Some(size)) => write!(f, "tmpfs:{size}"),
            Overlay::Device(device) => f.write_str(device),
        }
    }
}

/// One volume: `SOURCE,TARGET,TYPE[,OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub source: String,
    pub target: String,
    pub fstype: String,
    /// Mount options, as mount(8) takes them; may hold commas.
    pub options: String,
}

impl std::fmt::Display for MountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.source, self.target, self.fstype)?;
        if !self.options.is_empty() {
            write!(f, ",{}", self.options)?;
        }
        Ok(())
    }
}

/// The owner and mode a volume's top directory is given once mounted
/// (`mount.NAME.owner`, `mount.NAME.mode`): a fresh filesystem belongs to
/// root, and an app that runs as its own user cannot write it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub owner: Option<UserSpec>,
    /// Permission bits, 0 to 0o7777.
    pub mode: Option<u32>,
}

/// The volumes by name, in the order first given; a name given again (a
/// higher layer) replaces its volume whole, while its owner and mode are
/// taken member by member. Lists, not maps: there are a few, and PID 1's
/// binary stays smaller without another map type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volumes(Vec<(String, MountSpec)>, Vec<(String, Access)>);

impl Volumes {
    /// Sets the volume `name`.
    pub fn set(&mut self, name: &str, spec: MountSpec) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = spec,
            None => self.0.push((name.to_owned(), spec)),
        }
    }

    /// Sets the volume `name`'s `owner` or `mode` (`member`).
    pub fn set_access(&mut self, name: &str, member: &str, value: &str) -> Result<(), Problem> {
        let mut access = self.access(name).cloned().unwrap_or_default();
        match member {
            "owner" => access.owner = Some(crate::config::user::parse_user(value)?),
            "mode" => access.mode = Some(parse_mode(value)?),
            _ => {
                return Err(Problem::UnknownSetting(&[
                    "mount.NAME.owner",
                    "mount.NAME.mode",
                ]));
            }
        }
        self.put_access(name, access);
        Ok(())
    }

    fn put_access(&mut self, name: &str, access: Access) {
        match self.1.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = access,
            None => self.1.push((name.to_owned(), access)),
        }
    }

    /// Overlays `other` (higher precedence), volume by volume; owner and
    /// mode member by member.
    pub fn overlay(&mut self, other: &Volumes) {
        for (name, spec) in &other.0 {
            self.set(name, spec.clone());
        }
        for (name, high) in &other.1 {
            let mut access = self.access(name).cloned().unwrap_or_default();
            pick(&mut access.owner, &high.owner);
            pick(&mut access.mode, &high.mode);
            self.put_access(name, access);
        }
    }

    /// The owner and mode asked for the volume `name`.
    pub fn access(&self, name: &str) -> Option<&Access> {
        self.1.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// A volume given an owner or mode but never defined.
    pub fn orphaned_access(&self) -> Option<&str> {
        self.1
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| self.get(name).is_none())
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Option<&MountSpec> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, spec)| spec)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &MountSpec)> {
        self.0.iter().map(|(name, spec)| (name.as_str(), spec))
    }
}

impl RootSettings {
    /// Parses and stores `root` (`member` empty) or `root.MEMBER`.
    pub fn set(&mut self, member: &str, value: &str) -> Result<(), Problem> {
        match member {
            "" => self.source = Some(parse_source(value)?),
            "fstype" => self.fstype = Some(parse_fstype(value)?),
            "options" => self.options = Some(parse_options(value)?),
            "rw" => self.rw = Some(parse_flag(value)?),
            "overlay" => self.overlay = Some(parse_overlay(value)?),
            "wait" => {
                self.wait = Some(parse_grace(value).map_err(|_| Problem::BadSetting(WAIT_RULE))?)
            }
            _ => return Err(Problem::UnknownSetting(ROOT_NAMES)),
        }
        Ok(())
    }

    /// Overlays `other` (higher precedence) on `self`, setting by setting.
    pub fn overlay(&mut self, other: &RootSettings) {
        pick(&mut self.source, &other.source);
        pick(&mut self.fstype, &other.fstype);
        pick(&mut self.options, &other.options);
        pick(&mut self.rw, &other.rw);
        pick(&mut self.overlay, &other.overlay);
        pick(&mut self.wait, &other.wait);
    }

    /// Whether any `root.*` setting is given without the root itself.
    pub fn orphaned(&self) -> bool {
        self.source.is_none()
            && (self.fstype.is_some()
                || self.options.is_some()
                || self.rw.is_some()
                || self.overlay.is_some())
    }
}

/// The `root` setting names, for the "unknown setting" message.
const ROOT_NAMES: &[&str] = &[
    "root",
    "root.fstype",
    "root.options",
    "root.rw",
    "root.overlay",
    "root.wait",
];

const WAIT_RULE: &str = "must be a number of seconds from 0 to 3600, with at most 3 decimals";

/// A device path (`/dev/vda`, clean and absolute) or a tag of a shared
/// filesystem (`virtiofs`, `9p`): letters, digits, `.`, `_`, `-`.
pub fn parse_source(value: &str) -> Result<String, Problem> {
    if value.starts_with('/') {
        validate::clean_absolute_path(value)?;
        return Ok(value.to_owned());
    }
    let tag = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if tag {
        Ok(value.to_owned())
    } else {
        Err(Problem::BadSetting(
            "must be a device path (/dev/vda) or a virtiofs or 9p tag of letters, digits, '.', '_' and '-'",
        ))
    }
}

/// A filesystem type as `/proc/filesystems` lists them.
pub fn parse_fstype(value: &str) -> Result<String, Problem> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Problem::BadSetting(
            "must be a filesystem type such as ext4, erofs, xfs, virtiofs or 9p",
        ))
    }
}

/// Mount options: printable, no spaces, at most 1024 bytes.
pub fn parse_options(value: &str) -> Result<String, Problem> {
    if value.len() <= 1024 && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value.to_owned())
    } else {
        Err(Problem::BadSetting(
            "must be mount options such as noatime,size=64m: printable, no spaces, at most 1024 bytes",
        ))
    }
}

/// `tmpfs`, `tmpfs:SIZE` or a device path.
pub fn parse_overlay(value: &str) -> Result<Overlay, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be tmpfs, tmpfs:SIZE (as tmpfs takes size=, e.g. 512m or 25%) or a device path",
    );
    match value.split_once(':') {
        None if value == "tmpfs" => Ok(Overlay::Tmpfs(None)),
        Some(("tmpfs", size)) => {
            let ok =
                !size.is_empty() && size.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'%');
            ok.then(|| Overlay::Tmpfs(Some(size.to_owned())))
                .ok_or(RULE)
        }
        None if value.starts_with("/dev/") => validate::clean_absolute_path(value)
            .map(|()| Overlay::Device(value.to_owned()))
            .map_err(|_| RULE),
        _ => Err(RULE),
    }
}

/// A volume's name in `mount.NAME`: letters, digits, `_` and `-`.
pub fn parse_mount_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Problem::BadSetting(
            "needs a volume name of letters, digits, '_' and '-', as in mount.data",
        ))
    }
}

/// A mode in octal, as chmod(1) takes it: `0700`, `2775`.
pub fn parse_mode(value: &str) -> Result<u32, Problem> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777 && !value.is_empty() && value.len() <= 5)
        .ok_or(Problem::BadSetting(
            "must be an octal mode from 0 to 7777, as chmod takes it (e.g. 0700)",
        ))
}

/// `SOURCE,TARGET,TYPE[,OPTIONS]`: options last, so they may hold commas.
pub fn parse_mount(value: &str) -> Result<MountSpec, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be SOURCE,TARGET,TYPE[,OPTIONS] (e.g. /dev/vdb,/data,ext4,noatime)",
    );
    let mut parts = value.splitn(4, ',');
    let (Some(source), Some(target), Some(fstype)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RULE);
    };
    mount_spec(source, target, fstype, parts.next().unwrap_or(""))
}

/// Checks one volume's parts.
pub fn mount_spec(
    source: &str,
    target: &str,
    fstype: &str,
    options: &str,
) -> Result<MountSpec, Problem> {
    // tmpfs and the like take any word as their source.
    let source = if source.starts_with('/') {
        parse_source(source)?
    } else {
        parse_source(source).map_err(|_| {
            Problem::BadSetting("must have a source: a device path, a tag, or a word such as tmpfs")
        })?
    };
    validate::clean_absolute_path(target)?;
    if target == "/" {
        return Err(Problem::BadSetting(
            "cannot mount a volume on / (that is vminit.root)",
        ));
    }
    Ok(MountSpec {
        source,
        target: target.to_owned(),
        fstype: parse_fstype(fstype)?,
        options: parse_options(options)?,
    })
}

/// The volumes in the order to mount them: parents before children (by the
/// number of components of the target, then by target), so that
/// `/data/logs` lands on the `/data` volume. Unmount in reverse.
pub fn mount_order(volumes: &Volumes) -> Vec<(&str, &MountSpec)> {
    let key = |spec: &MountSpec| (spec.target.matches('/').count(), spec.target.clone());
    // An insertion sort: a few volumes, and no sort code in PID 1's binary.
    let mut order: Vec<(&str, &MountSpec)> = Vec::new();
    for (name, spec) in volumes.iter() {
        let at = order
            .iter()
            .position(|(_, other)| key(other) > key(spec))
            .unwrap_or(order.len());
        order.insert(at, (name, spec));
    }
    order
}

/// Two volumes on one target.
pub fn shared_target(volumes: &Volumes) -> Option<&str> {
    let order = mount_order(volumes);
    order
        .windows(2)
        .find(|pair| pair[0].1.target == pair[1].1.target)
        .map(|pair| pair[1].1.target.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_settings() {
        let mut root = RootSettings::default();
        root.set("", "/dev/vda").unwrap();
        root.set("fstype", "ext4").unwrap();
        root.set("options", "noatime,errors=remount-ro").unwrap();
        root.set("rw", "1").unwrap();
        root.set("overlay", "tmpfs:512m").unwrap();
        root.set("wait", "2.5").unwrap();
        assert_eq!(root.overlay, Some(Overlay::Tmpfs(Some("512m".into()))));
        assert_eq!(root.wait, Some(Duration::from_millis(2500)));
        let mut tag = RootSettings::default();
        tag.set("", "rootfs").unwrap();
        tag.set("overlay", "/dev/vdb").unwrap();
        root.overlay(&tag);
        assert_eq!(root.source.as_deref(), Some("rootfs"));
        assert_eq!(root.overlay, Some(Overlay::Device("/dev/vdb".into())));
        assert_eq!(root.fstype.as_deref(), Some("ext4"));
        for (member, bad) in [
            ("", "/dev/../vda"),
            ("", "a tag"),
            ("fstype", "EXT4"),
            ("options", "a b"),
            ("overlay", "tmpfs:"),
            ("overlay", "disk"),
            ("overlay", "/dev/../x"),
            ("wait", "-1"),
            ("rw", "maybe"),
            ("colour", "red"),
        ] {
            assert!(root.set(member, bad).is_err(), "{member}={bad}");
        }
        assert!(!root.orphaned());
        let mut orphan = RootSettings::default();
        orphan.set("fstype", "ext4").unwrap();
        assert!(orphan.orphaned());
    }

    #[test]
    fn volumes() {
        let spec = parse_mount("/dev/vdb,/data,ext4,noatime,data=ordered").unwrap();
        assert_eq!(spec.options, "noatime,data=ordered");
        assert_eq!(spec.to_string(), "/dev/vdb,/data,ext4,noatime,data=ordered");
        let tmp = parse_mount("tmpfs,/scratch,tmpfs").unwrap();
        assert_eq!(tmp.options, "");
        for bad in [
            "/dev/vdb,/data",
            "/dev/vdb,data,ext4",
            "/dev/vdb,/,ext4",
            "/dev/vdb,/data/,ext4",
            "/dev/vdb,/data,EXT4",
            "a b,/data,ext4",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
        let mut mounts = Volumes::default();
        mounts.set("logs", parse_mount("tmpfs,/data/logs,tmpfs").unwrap());
        mounts.set("data", parse_mount("/dev/vdb,/data,ext4").unwrap());
        mounts.set("a", parse_mount("tmpfs,/zz,tmpfs").unwrap());
        let order: Vec<&str> = mount_order(&mounts).iter().map(|(n, _)| *n).collect();
        assert_eq!(order, ["data", "a", "logs"]);
        assert_eq!(shared_target(&mounts), None);
        mounts.set("again", parse_mount("tmpfs,/data,tmpfs").unwrap());
        // The same name again replaces the volume.
        mounts.set("again", parse_mount("tmpfs,/other,tmpfs").unwrap());
        assert_eq!(shared_target(&mounts), None);
        mounts.set("again", parse_mount("tmpfs,/data,tmpfs").unwrap());
        assert_eq!(shared_target(&mounts), Some("/data"));
        assert!(parse_mount_name("data-1").is_ok());
        assert!(parse_mount_name("a.b").is_err());
    }
}
