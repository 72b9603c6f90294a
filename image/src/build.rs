//! `vminit-image build`: from an image source to the files that boot it.
//!
//! `DIR` gets the root disk (`rootfs.ext4` or `rootfs.erofs`),
//! `metadata.json`, `initramfs.cpio.gz` (vminit as `/init`, the metadata
//! file, and with `--kernel-modules` the modules the root needs), a
//! `cmdline` file, and a Firecracker `vm-config.json`.
//!
//! The image's files are staged in `DIR/.rootfs/tree`, below a directory
//! only the builder can enter: a root build makes the image's device
//! nodes and setuid files for real, and no other user may reach them
//! before they are sealed in the disk. On any failure, and on SIGINT,
//! SIGTERM or SIGHUP ([`crate::stop`]), the staging tree and every output
//! this build writes are removed, so `--reuse` never finds half a disk.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use thiserror::Error;

use crate::cpio::Archive;
use crate::depmod;
use crate::files::remove_tree;
use crate::layers::{self, LayerError};
use crate::metadata::{self, ConfigError};
use crate::source::{self, Source, SourceError};
use crate::stream::{Compression, Hashing, Meter};

/// The least the layers may unpack to when neither `--size` nor
/// `--max-size` says: 1 GiB, or ten times the compressed layers (five
/// times the uncompressed), whichever is more (real images unpack to two
/// to four times their compressed size).
pub const MIN_DEFAULT_LIMIT: u64 = 1 << 30;
/// See [`MIN_DEFAULT_LIMIT`].
pub const DEFAULT_RATIO: u64 = 10;
/// The most layers an image may have: Docker stops at 125 (its layer
/// store's depth), so no image Docker runs has more.
pub const MAX_LAYERS: usize = 256;
/// See [`MIN_DEFAULT_LIMIT`]: for uncompressed layers.
pub const PLAIN_RATIO: u64 = 5;

/// The names this build writes into its output directory, removed again
/// when it fails.
const OUTPUTS: &[&str] = &[
    ".rootfs",
    ".unpacked",
    ".rootfs-key",
    "rootfs.ext4",
    "rootfs.erofs",
    "metadata.json",
    "initramfs.cpio.gz",
    "cmdline",
    "vm-config.json",
];

/// The filesystem of the root disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ext4,
    Erofs,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Ext4 => "ext4",
            Format::Erofs => "erofs",
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    pub source: Source,
    pub output: PathBuf,
    /// `/lib/modules/VERSION` of the kernel that will boot it.
    pub kernel_modules: Option<PathBuf>,
    pub format: Format,
    /// The root disk's size in MiB; by default its contents and half again.
    pub size_mib: Option<u64>,
    /// The most, in MiB, that the layers together may unpack to; by
    /// default `size_mib`, else [`default_limit`].
    pub max_size_mib: Option<u64>,
    /// The vminit binary to put in the initramfs.
    pub vminit: PathBuf,
    /// The kernel to name in `vm-config.json`.
    pub kernel: Option<PathBuf>,
    /// The target architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// A command in place of the image's.
    pub command: Vec<String>,
    /// Set-up steps for the metadata's `"setup"`, each a JSON object
    /// (`{"argv": [...], "user": "...", "env": {...}}`).
    pub setup: Vec<serde_json::Value>,
    /// More modules for the initramfs, with `kernel_modules` (e.g.
    /// `virtio_net`); the boot loads them too.
    pub extra_modules: Vec<String>,
    /// Keep the root disk already in `output` when it was built from the
    /// same image digest, format and size, and nothing has written to it
    /// since (see [`RootKey`]). Never for `dir:`, whose contents have no digest.
    pub reuse: bool,
}

#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("Layer {digest}")]
    Layer {
        digest: String,
        #[source]
        source: LayerError,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Cannot {what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{tool} failed ({status}): {output}; it comes with Debian's {package}")]
    Tool {
        tool: String,
        package: &'static str,
        status: String,
        output: String,
    },
    #[error("The image has {0} layers, more than the {MAX_LAYERS} this tool applies")]
    TooManyLayers(usize),
    #[error("The vminit binary {path} {message}")]
    Vminit { path: String, message: String },
    #[error("Cannot plan the kernel modules from {dir}: {message}")]
    Modules { dir: String, message: String },
    #[error("The image has {layers} layers but its config lists {diff_ids} DiffIDs")]
    DiffIds { layers: usize, diff_ids: usize },
    #[error("Layer {layer} unpacks to sha256:{found}, not its DiffID {diff_id}")]
    DiffId {
        layer: String,
        diff_id: String,
        found: String,
    },
    #[error("Stopped by {0}; the partial build was removed")]
    Stopped(&'static str),
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BuildError + 'a {
    move |source| BuildError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// Where the metadata file goes in the initramfs.
pub const METADATA_IN_IMAGE: &str = "/etc/vminit/metadata.json";

/// The modules a root on a virtio disk with an overlay needs on a stock
/// kernel (their soft dependencies, ext4's crc32c, come with them).
fn root_modules(format: Format) -> Vec<String> {
    let fs: &[&str] = match format {
        Format::Ext4 => &["ext4"],
        Format::Erofs => &["erofs"],
    };
    ["virtio_mmio", "virtio_blk"]
        .iter()
        .chain(fs)
        .chain(&["overlay"])
        .map(|m| (*m).to_owned())
        .collect()
}

/// The modules that give a stock kernel its power button, so that
/// `system_powerdown` (QEMU) or `power-button` (cloud-hypervisor) stops
/// the app gracefully: the ACPI button on x86-64, `gpio-keys` on arm64,
/// and `evdev` for `/dev/input/eventN`. Harmless where there is no button.
pub fn power_button_modules(arch: &str) -> &'static [&'static str] {
    match arch {
        "aarch64" => &["gpio_keys", "evdev"],
        _ => &["button", "evdev"],
    }
}

/// What was built, and where.
#[derive(Debug)]
pub struct Built {
    pub rootfs: PathBuf,
    pub metadata: PathBuf,
    pub initramfs: PathBuf,
    pub cmdline: String,
    pub vm_config: PathBuf,
    /// The digest that names the image.
    pub id: String,
    /// Whether the root disk was kept from an earlier build (`reuse`).
    pub reused: bool,
}

/// Builds everything into `options.output`. On failure nothing of this
/// build is left there (see the module's docs).
pub fn build(options: &Options) -> Result<Built, BuildError> {
    let out = &options.output;
    fs::create_dir_all(out).map_err(io_error("create", out))?;
    let out = fs::canonicalize(out).map_err(io_error("find", out))?;
    crate::stop::leave(OUTPUTS.iter().map(|name| out.join(name)));
    let built = stage_and_build(options, &out);
    let stopped = crate::stop::requested();
    if built.is_err() || stopped.is_some() {
        for name in OUTPUTS {
            remove_tree(&out.join(name));
        }
    }
    crate::stop::forget();
    match stopped {
        Some(signal) => Err(BuildError::Stopped(signal.as_str())),
        None => built,
    }
}

fn stage_and_build(options: &Options, out: &Path) -> Result<Built, BuildError> {
    let private = out.join(".rootfs");
    let scratch = out.join(".unpacked");
    remove_tree(&private);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(io_error("create", &private))?;
    // The root of the image's tree, whose mode the disk's root takes.
    let staging = private.join("tree");
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&staging)
        .map_err(io_error("create", &staging))?;
    let image = options.source.open(&options.arch, &scratch);
    let built = image
        .map_err(BuildError::from)
        .and_then(|image| fill_and_pack(options, out, &staging, &image));
    remove_tree(&private);
    remove_tree(&scratch);
    built
}

/// The most, in bytes, that the layers together may unpack to: the
/// `--max-size` given, else the `--size` given (more cannot fit), else ten
/// times the compressed layers and five times the uncompressed ones (their
/// own bytes, and what their entries cost: a layer of empty files charges
/// 9 times its headers), and at least [`MIN_DEFAULT_LIMIT`].
pub fn default_limit(options: &Options, image: &source::Image) -> u64 {
    let mib = |n: u64| n.saturating_mul(1 << 20);
    if let Some(max) = options.max_size_mib.or(options.size_mib) {
        return mib(max);
    }
    // Each blob once: one listed again allows no more unpacking (and is
    // charged again when applied again).
    let mut counted = std::collections::HashSet::new();
    image
        .layers
        .iter()
        .filter(|l| counted.insert(l.name()))
        .map(|l| match l.compression {
            Compression::None => l.size.saturating_mul(PLAIN_RATIO),
            _ => l.size.saturating_mul(DEFAULT_RATIO),
        })
        .fold(0u64, u64::saturating_add)
        .max(MIN_DEFAULT_LIMIT)
}

/// What the root disk was built from, kept beside it as `.rootfs-key`: the
/// builder's version, the image's digest, the format and size asked for,
/// and the disk's length and modification time once written, so a disk a
/// VM has written to (`vminit.root.rw=1`) is never taken for a fresh one.
struct RootKey(String);

impl RootKey {
    const FILE: &'static str = ".rootfs-key";

    fn of(options: &Options, image: &source::Image) -> Option<RootKey> {
        if image.root.is_some() || !options.reuse {
            return None;
        }
        Some(RootKey(format!(
            "{} {} {} {:?}",
            env!("CARGO_PKG_VERSION"),
            image.id,
            options.format.name(),
            options.size_mib
        )))
    }

    fn stamped(&self, rootfs: &Path) -> Option<String> {
        let meta = fs::metadata(rootfs).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(format!("{}\n{} {}\n", self.0, meta.len(), mtime.as_nanos()))
    }

    /// Whether `out` holds a disk built from this key and untouched since.
    fn matches(&self, out: &Path, rootfs: &Path) -> bool {
        let kept = fs::read_to_string(out.join(Self::FILE)).ok();
        kept.is_some() && kept == self.stamped(rootfs)
    }

    fn save(&self, out: &Path, rootfs: &Path) -> Result<(), BuildError> {
        let path = out.join(Self::FILE);
        let text = self.stamped(rootfs).unwrap_or_default();
        fs::write(&path, text).map_err(io_error("write", &path))
    }
}

fn fill_and_pack(
    options: &Options,
    out: &Path,
    staging: &Path,
    image: &source::Image,
) -> Result<Built, BuildError> {
    let rootfs = out.join(format!("rootfs.{}", options.format.name()));
    let key = RootKey::of(options, image);
    let reused = key.as_ref().is_some_and(|key| key.matches(out, &rootfs));
    // Gone until the new disk is whole, so a failed build is never kept.
    let _ = fs::remove_file(out.join(RootKey::FILE));
    if !reused {
        fill_root(options, staging, image, &rootfs)?;
    }
    if let Some(key) = &key {
        key.save(out, &rootfs)?;
    }
    Ok(Built {
        reused,
        ..pack(options, out, image, rootfs)?
    })
}

/// The root disk: the image's layers (or directory) and the mount points
/// vminit needs, made into a filesystem.
fn fill_root(
    options: &Options,
    staging: &Path,
    image: &source::Image,
    rootfs: &Path,
) -> Result<(), BuildError> {
    if let Some(root) = &image.root {
        copy_tree(root, staging)?;
    }
    let limit = default_limit(options, image);
    let mut left = limit;
    // mkfs.erofs writes holes out: there they cost what data does.
    let mut tree = layers::Tree::new(options.format == Format::Erofs);
    // Each layer's uncompressed stream is checked against the config's
    // DiffIDs too: the one check a `docker save` of Docker 20 allows.
    let diff_ids: Vec<String> = image
        .config
        .as_ref()
        .map(|c| c.rootfs().diff_ids().clone())
        .unwrap_or_default();
    if image.config.is_some() && diff_ids.len() != image.layers.len() {
        return Err(BuildError::DiffIds {
            layers: image.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    if image.layers.len() > MAX_LAYERS {
        return Err(BuildError::TooManyLayers(image.layers.len()));
    }
    // Every layer listed is applied, in order, a layer listed twice twice,
    // as Docker does (its own `docker save` writes such images); each time
    // it is charged against the bound.
    for (index, layer) in image.layers.iter().enumerate() {
        let meter = Meter::new(left, limit);
        let diff_id = diff_ids.get(index).map(String::as_str);
        apply_layer(staging, &image.files, layer, diff_id, &meter, &mut tree)?;
        left = left.saturating_sub(meter.used());
    }
    make_working_dir(image, staging)?;
    // vminit moves the kernel's filesystems into these at the root switch.
    for (dir, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
        ("tmp", 0o1777),
    ] {
        let path = staging.join(dir);
        if fs::symlink_metadata(&path).is_err() {
            fs::create_dir(&path).map_err(io_error("create", &path))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(io_error("set the mode of", &path))?;
        }
    }
    make_filesystem(options, staging, rootfs)
}

/// The image's `WorkingDir` when its layers lack it, as Docker creates it
/// (root's, 0755), so that a read-only root has it too.
fn make_working_dir(image: &source::Image, staging: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(dir) = image
        .config
        .as_ref()
        .and_then(|c| c.config().as_ref())
        .and_then(|c| c.working_dir().as_ref())
        .filter(|d| d.starts_with('/'))
    else {
        return Ok(());
    };
    // Resolved inside the root, as the image's own links lead.
    let path = layers::resolve(staging, Path::new(dir)).map_err(io_error("resolve", staging))?;
    if fs::symlink_metadata(&path).is_err() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&path)
            .map_err(io_error("create the working directory", &path))?;
    }
    Ok(())
}

/// Everything but the root disk: metadata, initramfs, cmdline, vm-config.
fn pack(
    options: &Options,
    out: &Path,
    image: &source::Image,
    rootfs: PathBuf,
) -> Result<Built, BuildError> {
    let metadata = metadata::metadata(image.config.as_ref(), &options.command, &options.setup)?;
    let metadata_text = serde_json::to_string_pretty(&metadata).unwrap_or_default() + "\n";
    let metadata_path = out.join("metadata.json");
    fs::write(&metadata_path, &metadata_text).map_err(io_error("write", &metadata_path))?;

    let mut archive = Archive::default();
    for dir in ["dev", "proc", "sys", "run", "tmp", "etc", "etc/vminit"] {
        archive.dir(dir);
    }
    let vminit =
        fs::read(&options.vminit).map_err(io_error("read vminit from", &options.vminit))?;
    check_vminit(&vminit, &options.arch).map_err(|message| BuildError::Vminit {
        path: options.vminit.display().to_string(),
        message,
    })?;
    archive.file("init", 0o755, &vminit);
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.char_device("dev/null", 0o666, 1, 3);
    archive.file(METADATA_IN_IMAGE, 0o600, metadata_text.as_bytes());
    let mut cmdline = format!(
        "console=ttyS0 metadata={METADATA_IN_IMAGE} vminit.root=/dev/vda vminit.root.fstype={} vminit.root.overlay=tmpfs",
        options.format.name()
    );
    if let Some(dir) = &options.kernel_modules {
        let mut wanted = root_modules(options.format);
        wanted.extend(
            power_button_modules(&options.arch)
                .iter()
                .map(|m| (*m).to_owned()),
        );
        wanted.extend(options.extra_modules.iter().cloned());
        add_modules(&mut archive, dir, &wanted)?;
        cmdline.push_str(&format!(" vminit.modules={}", wanted.join(",")));
    }
    let initramfs = out.join("initramfs.cpio.gz");
    let bytes = archive
        .finish_gzip()
        .map_err(io_error("compress", &initramfs))?;
    fs::write(&initramfs, bytes).map_err(io_error("write", &initramfs))?;
    let cmdline_path = out.join("cmdline");
    fs::write(&cmdline_path, format!("{cmdline}\n")).map_err(io_error("write", &cmdline_path))?;

    // Firecracker: on x86 a guest ends only by a restart, its serial
    // console is ttyS0, and it has no PCI.
    let kernel = options
        .kernel
        .as_ref()
        .map_or("vmlinux".to_owned(), |k| k.display().to_string());
    let vm_config = json!({
        "boot-source": {
            "kernel_image_path": kernel,
            "initrd_path": initramfs.display().to_string(),
            "boot_args": format!("{cmdline} reboot=k panic=1 pci=off vminit.shutdown=reboot"),
        },
        "drives": [{
            "drive_id": "rootfs",
            "path_on_host": rootfs.display().to_string(),
            "is_root_device": false,
            "is_read_only": true,
        }],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 512},
    });
    let vm_config_path = out.join("vm-config.json");
    fs::write(
        &vm_config_path,
        serde_json::to_string_pretty(&vm_config).unwrap_or_default() + "\n",
    )
    .map_err(io_error("write", &vm_config_path))?;
    Ok(Built {
        rootfs,
        metadata: metadata_path,
        initramfs,
        cmdline,
        vm_config: vm_config_path,
        id: image.id.clone(),
        reused: false,
    })
}

/// Applies one layer: its blob's digest and size checked first, then its
/// uncompressed stream held to `meter` and checked against its DiffID.
fn apply_layer(
    staging: &Path,
    files: &crate::files::Files,
    layer: &source::Blob,
    diff_id: Option<&str>,
    meter: &std::rc::Rc<Meter>,
    tree: &mut layers::Tree,
) -> Result<(), BuildError> {
    let name = layer.name();
    let path = files.base.join(&layer.path);
    // Nothing unchecked is unpacked; a blob that grows meanwhile is cut.
    let file = layer.open(files)?;
    let (found, bytes) = Hashing::new(io::BufReader::new(file.take(layer.size + 1)))
        .finish()
        .map_err(io_error("read", &path))?;
    if bytes != layer.size {
        return Err(SourceError::SizeMismatch {
            digest: name,
            expected: layer.size,
            found: bytes,
        }
        .into());
    }
    if let Some(digest) = &layer.digest {
        source::check_hash(digest, &found)?;
    }
    let file = layer.open(files)?.take(layer.size);
    let applied = layers::apply(
        staging,
        io::BufReader::new(file),
        layer.compression,
        meter,
        tree,
    )
    .map_err(|source| BuildError::Layer {
        digest: name.clone(),
        source,
    })?;
    if let Some(diff_id) = diff_id {
        source::check_hash(diff_id, &applied.diff_id).map_err(|_| BuildError::DiffId {
            layer: name,
            diff_id: diff_id.to_owned(),
            found: applied.diff_id,
        })?;
    }
    Ok(())
}

/// Copies a plain root directory, keeping owners, modes, links and times.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    run_tool(
        Command::new("cp").arg("-a").arg(from.join(".")).arg(to),
        "coreutils",
    )
}

/// The root disk, from the staging directory.
fn make_filesystem(options: &Options, staging: &Path, image: &Path) -> Result<(), BuildError> {
    let _ = fs::remove_file(image);
    match options.format {
        Format::Ext4 => {
            let (bytes, entries) = tree_size(staging);
            let size = options
                .size_mib
                .unwrap_or_else(|| bytes / (1 << 20) * 3 / 2 + 64);
            run_tool(
                Command::new("mkfs.ext4")
                    .args(["-q", "-F", "-L", "rootfs", "-E", "root_owner=0:0"])
                    .args(inodes(size, entries).map(|n| format!("-N{n}")))
                    .arg("-d")
                    .arg(staging)
                    .arg(image)
                    .arg(format!("{size}M")),
                "e2fsprogs",
            )
        }
        Format::Erofs => run_tool(
            Command::new("mkfs.erofs")
                .args(["--quiet", "-T", "0"])
                .arg(image)
                .arg(staging),
            "erofs-utils",
        ),
    }
}

/// The inodes a root disk of `size_mib` must have when the tree's
/// `entries` need more than mke2fs gives by default (Debian's
/// `mke2fs.conf`: one per 16 KiB from 512 MiB, per 4 KiB below; an image
/// of many small files failed with "Could not allocate inode"): one an
/// entry and a quarter more. `None`: mke2fs's own count will do.
fn inodes(size_mib: u64, entries: u64) -> Option<u64> {
    let ratio = if size_mib >= 512 { 16 << 10 } else { 4 << 10 };
    let default = size_mib.saturating_mul(1 << 20) / ratio;
    let needed = entries.saturating_add(entries / 4).saturating_add(1024);
    (needed > default).then_some(needed.min(u64::from(u32::MAX)))
}

/// The bytes of every file below `dir`, with a block for each entry (a
/// sparse file counts its data, not its holes), and the number of entries.
fn tree_size(dir: &Path) -> (u64, u64) {
    let mut total = 0;
    let mut entries = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            entries += 1;
            let Ok(meta) = entry.metadata() else { continue };
            let len = if meta.is_file() && meta.blocks().saturating_mul(512) < meta.len() {
                data_bytes(&entry.path()).unwrap_or(meta.len())
            } else {
                meta.len()
            };
            total += len.max(4096);
            if meta.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    (total, entries)
}

/// The bytes of a file outside its holes (SEEK_DATA and SEEK_HOLE), for a
/// file that takes fewer blocks than its length: sparse, or compressed by
/// the filesystem, whose data still counts whole.
fn data_bytes(path: &Path) -> Option<u64> {
    use nix::unistd::{Whence, lseek};
    let file = fs::File::open(path).ok()?;
    let mut total = 0u64;
    let mut at = 0i64;
    while let Ok(start) = lseek(&file, at, Whence::SeekData) {
        let end = lseek(&file, start, Whence::SeekHole).ok()?;
        total += u64::try_from(end - start).ok()?;
        at = end;
    }
    Some(total)
}

/// A tool's error output as one line of the builder's: its lines joined,
/// control characters escaped, cut to 1 KiB.
fn one_line(text: &str) -> String {
    let joined: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    vminit::config::error::shorten_to(&joined.join(" / "), 1024)
}

fn run_tool(command: &mut Command, package: &'static str) -> Result<(), BuildError> {
    let tool = command.get_program().to_string_lossy().into_owned();
    let output = crate::stop::output(command).map_err(|e| BuildError::Tool {
        tool: tool.clone(),
        package,
        status: "cannot start".into(),
        output: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(BuildError::Tool {
        tool,
        package,
        status: output.status.to_string(),
        output: one_line(&String::from_utf8_lossy(&output.stderr)),
    })
}

/// Adds `wanted` and their dependencies from a kernel's module directory
/// (`/lib/modules/VERSION`: its `modules.dep`, else the modules' own
/// `.modinfo`), under the same path, with a `modules.dep` and
/// `modules.builtin` for them.
fn add_modules(archive: &mut Archive, dir: &Path, wanted: &[String]) -> Result<(), BuildError> {
    let fail = |message: String| BuildError::Modules {
        dir: dir.display().to_string(),
        message,
    };
    let version = dir
        .file_name()
        .map(|v| v.to_string_lossy().into_owned())
        .ok_or_else(|| fail("it is not a /lib/modules/VERSION directory".into()))?;
    let builtin = fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
    let (dep, softdep, alias) = match fs::read_to_string(dir.join("modules.dep")) {
        Ok(dep) => (
            dep,
            fs::read_to_string(dir.join("modules.softdep")).unwrap_or_default(),
            fs::read_to_string(dir.join("modules.alias")).unwrap_or_default(),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let tables =
                depmod::from_modinfo(dir, &builtin, wanted).map_err(|e| fail(e.to_string()))?;
            (tables.dep, tables.softdep, tables.alias)
        }
        Err(e) => return Err(fail(format!("modules.dep: {e}"))),
    };
    let plan = vminit::machine::modules::Index::parse(&dep, &builtin)
        .with_soft(&softdep, &alias)
        .plan(wanted)
        .map_err(|e| fail(e.to_string()))?;
    let base = format!("lib/modules/{version}");
    let mut dep_lines = String::new();
    for load in &plan {
        let data =
            fs::read(dir.join(&load.path)).map_err(|e| fail(format!("{}: {e}", load.path)))?;
        let path = format!("{base}/{}", load.path);
        archive.file_with_parents(&path, 0o644, &data);
        if let Some(line) = dep
            .lines()
            .find(|l| l.split(':').next() == Some(load.path.as_str()))
        {
            dep_lines.push_str(line);
            dep_lines.push('\n');
        }
    }
    archive.file_with_parents(&format!("{base}/modules.dep"), 0o644, dep_lines.as_bytes());
    // The soft dependencies, and only the aliases of the modules included:
    // all of them are a megabyte.
    let names: Vec<&str> = plan.iter().map(|load| load.name.as_str()).collect();
    let aliases: String = alias
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .nth(2)
                .is_some_and(|module| names.contains(&module.replace('-', "_").as_str()))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    archive.file_with_parents(
        &format!("{base}/modules.softdep"),
        0o644,
        softdep.as_bytes(),
    );
    archive.file_with_parents(&format!("{base}/modules.alias"), 0o644, aliases.as_bytes());
    archive.file(
        &format!("{base}/modules.builtin"),
        0o644,
        builtin.as_bytes(),
    );
    Ok(())
}

/// Whether `binary` is an ELF executable for `arch` (`x86_64`, `aarch64`):
/// an initramfs whose `/init` the kernel cannot run panics at boot.
pub fn check_vminit(binary: &[u8], arch: &str) -> Result<(), String> {
    use object::Object as _;
    let file =
        object::File::parse(binary).map_err(|e| format!("is not an ELF executable ({e})"))?;
    let found = match file.architecture() {
        object::Architecture::X86_64 => "x86_64",
        object::Architecture::Aarch64 => "aarch64",
        other => return Err(format!("is for {other:?}, not {arch}")),
    };
    if found != arch {
        return Err(format!("is for {found}, not {arch} (see --arch)"));
    }
    // /init runs before any library or loader is there: a dynamic build
    // would end the boot in a kernel panic, so it is refused here.
    if let Some(loader) = interpreter(binary) {
        return Err(format!(
            "is dynamically linked (it needs the loader {loader}); /init must be static: use the release's vminit-ARCH, or build it with cargo xtask build"
        ));
    }
    Ok(())
}

/// The loader a 64-bit ELF executable asks for (`PT_INTERP`), if any.
fn interpreter(binary: &[u8]) -> Option<String> {
    use object::read::elf::{FileHeader as _, ProgramHeader as _};
    let header = object::elf::FileHeader64::<object::Endianness>::parse(binary).ok()?;
    let endian = header.endian().ok()?;
    let path = header
        .program_headers(endian, binary)
        .ok()?
        .iter()
        .find_map(|ph| ph.interpreter(endian, binary).ok().flatten())?;
    Some(
        String::from_utf8_lossy(path)
            .trim_end_matches('\0')
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_needs_its_disk_filesystem_and_overlay() {
        assert_eq!(
            root_modules(Format::Ext4),
            ["virtio_mmio", "virtio_blk", "ext4", "overlay"]
        );
        assert!(root_modules(Format::Erofs).contains(&"erofs".to_owned()));
        assert_eq!(power_button_modules("x86_64"), ["button", "evdev"]);
        assert_eq!(power_button_modules("aarch64"), ["gpio_keys", "evdev"]);
    }
}
