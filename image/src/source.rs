//! Where an image comes from, named by its transport as skopeo names them:
//! `oci:DIR[:TAG]` (an OCI image layout), `oci-archive:FILE` (one as a
//! tar), `docker-archive:FILE` (`docker save`), `dir:DIR` (a plain root
//! directory). Every blob is checked against its digest and size.
//!
//! Every file inside a source is opened through [`Files`]: regular files
//! only, no link followed (but an archive's own, inside it), nothing read
//! past its size. An archive is unpacked here, its directories and regular
//! files only, into a directory only the builder can enter.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::files::{self, Files, MAX_DOCUMENT, Refusal};
use crate::stream::{Compression, Meter, Metered, Tripped, entry_end, hex};

/// The image's source, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Oci { dir: PathBuf, tag: Option<String> },
    OciArchive(PathBuf),
    DockerArchive(PathBuf),
    Dir(PathBuf),
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error(
        "{0}: not an image source: name its transport, as oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE or dir:DIR"
    )]
    Transport(String),
    #[error("Cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot parse {what} {path}: {message}")]
    Parse {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("Blob {0} is missing from the image")]
    MissingBlob(String),
    #[error("Blob {digest} does not match its digest: its content hashes to sha256:{found}")]
    DigestMismatch { digest: String, found: String },
    #[error("Blob {digest} is {found} bytes long, not the {expected} its descriptor says")]
    SizeMismatch {
        digest: String,
        expected: u64,
        found: u64,
    },
    #[error("Digest {0} uses an algorithm other than sha256, which this tool cannot check")]
    UnsupportedDigest(String),
    #[error("Unsupported media type {0}")]
    UnsupportedMediaType(String),
    #[error("The image layout holds {0} images: name one as oci:DIR:TAG")]
    Ambiguous(usize),
    #[error("The image layout has no image tagged {0}")]
    NoSuchTag(String),
    #[error("The image index has no image for linux/{0}")]
    NoPlatform(String),
    #[error("The archive's manifest.json lists no image")]
    EmptyArchive,
    #[error("{what} is {kind}: an image's files are read only from regular files")]
    NotRegular { what: String, kind: &'static str },
    #[error("{what} is longer than {max} bytes, the most this tool reads of it")]
    TooLong { what: String, max: u64 },
    #[error("Archive {0}: an entry's headers (long names, PAX records) take more than 1 MiB")]
    ArchiveHeaders(String),
    #[error("{what} lists {count} manifests, more than the {MAX_INDEX_MANIFESTS} this tool reads")]
    TooManyManifests { what: String, count: usize },
    #[error("Blob {0}, an image index, is nested more than {MAX_NESTED_INDEXES} deep")]
    NestedTooDeep(String),
    #[error("Archive {archive}: entry {entry} {problem}")]
    ArchiveEntry {
        archive: String,
        entry: String,
        problem: &'static str,
    },
}

impl SourceError {
    /// The error for a file of the source that was not read: `what` names
    /// it ("Blob sha256:…", "The archive's manifest.json").
    fn refused(what: String, path: &Path, refusal: Refusal) -> SourceError {
        match refusal {
            Refusal::Missing => SourceError::MissingBlob(what),
            Refusal::NotRegular(kind) => SourceError::NotRegular { what, kind },
            Refusal::TooLong(max) => SourceError::TooLong { what, max },
            Refusal::Io(source) => SourceError::Read {
                path: path.display().to_string(),
                source,
            },
        }
    }
}

/// A blob that is read, and checked, later: a layer.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Its path below [`Image::files`]' base.
    pub path: PathBuf,
    /// `sha256:HEX`, when the source gives one to check.
    pub digest: Option<String>,
    /// Its length when it was found: the descriptor's, where there is one.
    pub size: u64,
    pub compression: Compression,
}

impl Blob {
    /// How errors name it: its digest, else its path.
    pub fn name(&self) -> String {
        self.digest
            .clone()
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// Opens it again, as a regular file of the length it had.
    pub fn open(&self, files: &Files) -> Result<File, SourceError> {
        let what = format!("Blob {}", self.name());
        let (file, len) = files
            .open(&self.path)
            .map_err(|r| SourceError::refused(what, &files.base.join(&self.path), r))?;
        if len != self.size {
            return Err(SourceError::SizeMismatch {
                digest: self.name(),
                expected: self.size,
                found: len,
            });
        }
        Ok(file)
    }
}

/// An image ready to apply: its configuration (none for `dir:`) and its
/// layers, oldest first.
#[derive(Debug)]
pub struct Image {
    pub config: Option<ImageConfiguration>,
    /// Where the layers are.
    pub files: Files,
    pub layers: Vec<Blob>,
    /// A plain root to copy, for `dir:`.
    pub root: Option<PathBuf>,
    /// The digest that names the image (its manifest's), for caching.
    pub id: String,
}

impl Source {
    /// Parses `oci:DIR[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`
    /// or `dir:DIR`.
    pub fn parse(text: &str) -> Result<Source, SourceError> {
        let (transport, rest) = text
            .split_once(':')
            .ok_or_else(|| SourceError::Transport(text.to_owned()))?;
        if rest.is_empty() {
            return Err(SourceError::Transport(text.to_owned()));
        }
        Ok(match transport {
            "oci" => {
                // A tag has no '/': `oci:/a/b:latest`, but `oci:./x:y/z` is a path.
                match rest.rsplit_once(':') {
                    Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => Source::Oci {
                        dir: dir.into(),
                        tag: Some(tag.to_owned()),
                    },
                    _ => Source::Oci {
                        dir: rest.into(),
                        tag: None,
                    },
                }
            }
            "oci-archive" => Source::OciArchive(rest.into()),
            "docker-archive" => Source::DockerArchive(rest.into()),
            "dir" => Source::Dir(rest.into()),
            _ => return Err(SourceError::Transport(text.to_owned())),
        })
    }

    /// Opens the image; archives are unpacked into `scratch`.
    pub fn open(&self, arch: &str, scratch: &Path) -> Result<Image, SourceError> {
        match self {
            Source::Oci { dir, tag } => open_layout(Files::new(dir), tag.as_deref(), arch),
            Source::OciArchive(file) => {
                let files = unpack(file, scratch)?;
                open_layout(files, None, arch)
            }
            Source::DockerArchive(file) => open_docker(unpack(file, scratch)?),
            Source::Dir(dir) => Ok(Image {
                config: None,
                files: Files::new(dir),
                layers: Vec::new(),
                root: Some(dir.clone()),
                id: format!("dir:{}", dir.display()),
            }),
        }
    }
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Read {
        path: path.display().to_string(),
        source,
    }
}

fn parse_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(String) -> SourceError + 'a {
    move |message| SourceError::Parse {
        what,
        path: path.display().to_string(),
        message,
    }
}

/// Unpacks an image archive into `into` (made 0700): its directories and
/// regular files, nothing else. Links, devices and FIFOs are recorded, not
/// made, so that a file named there is refused for what it is; a sparse
/// entry (which could stand for far more than the archive holds), a name
/// that climbs out, and a file given twice are refused.
fn unpack(file: &Path, into: &Path) -> Result<Files, SourceError> {
    crate::files::remove_tree(into);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(into)
        .map_err(read_error(into))?;
    let archive = File::open(file).map_err(read_error(file))?;
    let mut files = Files::new(into);
    // The tar crate reads a GNU long name or PAX record whole: one entry's
    // headers get a window, as in a layer.
    let meter = Meter::new(u64::MAX, u64::MAX);
    let reader = Metered::unhashed(io::BufReader::new(archive), meter.clone());
    let mut archive = tar::Archive::new(reader);
    let read_failed = |e: io::Error| match meter.tripped() {
        Some(Tripped::Headers) => SourceError::ArchiveHeaders(file.display().to_string()),
        _ => read_error(file)(e),
    };
    meter.headers_from(0);
    for entry in archive.entries().map_err(read_error(file))? {
        let mut entry = entry.map_err(read_failed)?;
        meter.data();
        let (_, next) = entry_end(&mut entry, meter.read()).map_err(read_error(file))?;
        unpack_entry(file, into, &mut entry, &mut files)?;
        meter.headers_from(next);
    }
    Ok(files)
}

/// One entry of an image archive: a directory or regular file is made
/// (owner-only), anything else recorded.
fn unpack_entry<R: Read>(
    file: &Path,
    into: &Path,
    entry: &mut tar::Entry<'_, R>,
    files: &mut Files,
) -> Result<(), SourceError> {
    // Names shown escaped and cut: an error stays one line.
    let fail = |entry: &Path, problem| SourceError::ArchiveEntry {
        archive: file.display().to_string(),
        entry: vminit::config::error::shorten_to(&entry.to_string_lossy(), 256),
        problem,
    };
    let name = entry.path().map_err(read_error(file))?.into_owned();
    if name.as_os_str().len() > crate::layers::MAX_PATH {
        return Err(fail(&name, "has a path longer than 4096 bytes"));
    }
    let relative: PathBuf = name
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(fail(&name, "climbs out of the archive"));
    }
    if relative.as_os_str().is_empty() {
        return Ok(());
    }
    let target = into.join(&relative);
    let kind = entry.header().entry_type();
    match kind {
        tar::EntryType::Directory => std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&target)
            .map_err(read_error(&target))?,
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            if let Some(parent) = target.parent() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .recursive(true)
                    .create(parent)
                    .map_err(read_error(parent))?;
            }
            // A name given twice: the later entry wins, as with tar(1).
            // Only files made here can be there, never a link.
            if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_file()) {
                std::fs::remove_file(&target).map_err(read_error(&target))?;
            }
            files.not_extracted.remove(&relative);
            files.links.remove(&relative);
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .map_err(read_error(&target))?;
            crate::stop::check().map_err(read_error(file))?;
            io::copy(entry, &mut out).map_err(read_error(file))?;
        }
        tar::EntryType::GNUSparse => return Err(fail(&name, "is a sparse file")),
        // Recorded, never made: followed inside the archive when named.
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(read_error(file))?
                .unwrap_or_default()
                .into_owned();
            if target.as_os_str().len() > crate::layers::MAX_PATH {
                return Err(fail(&name, "links to a path longer than 4096 bytes"));
            }
            files.not_extracted.remove(&relative);
            files.links.insert(relative, target);
        }
        other => {
            let kind = match other {
                tar::EntryType::Link => "a hard link in the archive",
                tar::EntryType::Char | tar::EntryType::Block => "a device in the archive",
                tar::EntryType::Fifo => "a FIFO in the archive",
                _ => "not a regular file in the archive",
            };
            files.not_extracted.insert(relative, kind);
        }
    }
    Ok(())
}

/// `sha256:HEX` → the blob's path in an OCI layout, below its directory.
fn blob_path(digest: &str) -> Result<PathBuf, SourceError> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(SourceError::UnsupportedDigest(digest.to_owned()));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SourceError::UnsupportedDigest(digest.to_owned()));
    }
    Ok(Path::new("blobs/sha256").join(hex))
}

/// Opens a blob of a layout as a regular file of its descriptor's size.
fn open_blob(layout: &Files, descriptor: &Descriptor) -> Result<(File, PathBuf), SourceError> {
    let digest = descriptor.digest().to_string();
    let path = blob_path(&digest)?;
    let what = format!("Blob {digest}");
    let (file, len) = layout
        .open(&path)
        .map_err(|r| SourceError::refused(what, &layout.base.join(&path), r))?;
    if len != descriptor.size() {
        return Err(SourceError::SizeMismatch {
            digest,
            expected: descriptor.size(),
            found: len,
        });
    }
    Ok((file, path))
}

/// Reads a small blob (an index, a manifest, a config) whole and checks it;
/// one whose descriptor says it is too long is refused unread.
fn read_blob(layout: &Files, descriptor: &Descriptor) -> Result<Vec<u8>, SourceError> {
    let digest = descriptor.digest().to_string();
    if descriptor.size() > MAX_DOCUMENT {
        return Err(SourceError::TooLong {
            what: format!("Blob {digest}"),
            max: MAX_DOCUMENT,
        });
    }
    let (file, path) = open_blob(layout, descriptor)?;
    let bytes = files::read_at_most(file, MAX_DOCUMENT)
        .map_err(|r| SourceError::refused(format!("Blob {digest}"), &layout.base.join(&path), r))?;
    verify(&digest, Some(descriptor.size()), &bytes)?;
    Ok(bytes)
}

/// Checks `bytes` against `digest` and `size`.
pub fn verify(digest: &str, size: Option<u64>, bytes: &[u8]) -> Result<(), SourceError> {
    if let Some(expected) = size.filter(|&s| s != bytes.len() as u64) {
        return Err(SourceError::SizeMismatch {
            digest: digest.to_owned(),
            expected,
            found: bytes.len() as u64,
        });
    }
    check_hash(digest, &hex(&Sha256::digest(bytes)))
}

/// Compares a computed sha256 with `digest`.
pub fn check_hash(digest: &str, found: &str) -> Result<(), SourceError> {
    match digest.strip_prefix("sha256:") {
        Some(expected) if expected.eq_ignore_ascii_case(found) => Ok(()),
        Some(_) => Err(SourceError::DigestMismatch {
            digest: digest.to_owned(),
            found: found.to_owned(),
        }),
        None => Err(SourceError::UnsupportedDigest(digest.to_owned())),
    }
}

/// The OCI platform architecture for a Rust `target_arch`.
pub fn oci_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn is_manifest(media: &MediaType) -> bool {
    matches!(media, MediaType::ImageManifest)
        || matches!(media, MediaType::Other(m) if m == DOCKER_MANIFEST)
}

fn is_index(media: &MediaType) -> bool {
    matches!(media, MediaType::ImageIndex)
        || matches!(media, MediaType::Other(m) if m == DOCKER_LIST)
}

/// An OCI image layout: `index.json`, then the manifest (through a
/// platform index if there is one), the config and the layers.
fn open_layout(files: Files, tag: Option<&str>, arch: &str) -> Result<Image, SourceError> {
    let dir = files.base.clone();
    let dir = dir.as_path();
    let index_path = dir.join("index.json");
    let index_bytes = files
        .read(Path::new("index.json"), MAX_DOCUMENT)
        .map_err(|r| {
            SourceError::refused("The image layout's index.json".into(), &index_path, r)
        })?;
    let index = ImageIndex::from_reader(index_bytes.as_slice())
        .map_err(|e| parse_error("the image index", &index_path)(e.to_string()))?;
    few_enough(&index, || "The image layout's index.json".into())?;
    let chosen: Vec<&Descriptor> = match tag {
        Some(tag) => index
            .manifests()
            .iter()
            .filter(|d| {
                d.annotations().as_ref().is_some_and(|a| {
                    a.get("org.opencontainers.image.ref.name")
                        .is_some_and(|name| name == tag || name.rsplit(':').next() == Some(tag))
                })
            })
            .collect(),
        None => index.manifests().iter().collect(),
    };
    let mut descriptor = match (chosen.as_slice(), tag) {
        ([one], _) => (*one).clone(),
        ([], Some(tag)) => return Err(SourceError::NoSuchTag(tag.to_owned())),
        (many, _) => return Err(SourceError::Ambiguous(many.len())),
    };
    // A multi-platform index: the target architecture's image.
    let mut nested_indexes = 0;
    while is_index(descriptor.media_type()) {
        let digest = descriptor.digest().to_string();
        nested_indexes += 1;
        if nested_indexes > MAX_NESTED_INDEXES {
            return Err(SourceError::NestedTooDeep(digest));
        }
        let bytes = read_blob(&files, &descriptor)?;
        let nested = ImageIndex::from_reader(bytes.as_slice())
            .map_err(|e| parse_error("an image index", dir)(e.to_string()))?;
        few_enough(&nested, || format!("Blob {digest}, an image index,"))?;
        let wanted = oci_arch(arch);
        descriptor = nested
            .manifests()
            .iter()
            .find(|d| {
                d.platform().as_ref().is_some_and(|p| {
                    p.architecture().to_string() == wanted && p.os().to_string() == "linux"
                })
            })
            .cloned()
            .ok_or_else(|| SourceError::NoPlatform(wanted.to_owned()))?;
    }
    if !is_manifest(descriptor.media_type()) {
        return Err(SourceError::UnsupportedMediaType(
            descriptor.media_type().to_string(),
        ));
    }
    let bytes = read_blob(&files, &descriptor)?;
    let manifest = ImageManifest::from_reader(bytes.as_slice())
        .map_err(|e| parse_error("the image manifest", dir)(e.to_string()))?;
    let config_bytes = read_blob(&files, manifest.config())?;
    let config = ImageConfiguration::from_reader(config_bytes.as_slice())
        .map_err(|e| parse_error("the image configuration", dir)(e.to_string()))?;
    let mut layers = Vec::new();
    for layer in manifest.layers() {
        let digest = layer.digest().to_string();
        let compression = layer_compression(layer.media_type())?;
        let (_, path) = open_blob(&files, layer)?;
        layers.push(Blob {
            path,
            digest: Some(digest),
            size: layer.size(),
            compression,
        });
    }
    Ok(Image {
        config: Some(config),
        files,
        layers,
        root: None,
        id: descriptor.digest().to_string(),
    })
}

/// The most manifests an index may list: a multi-platform image has a few
/// dozen, attestations included.
pub const MAX_INDEX_MANIFESTS: usize = 1024;
/// The most indexes one image may nest.
pub const MAX_NESTED_INDEXES: usize = 8;

/// Refuses an index (`what`) of more than [`MAX_INDEX_MANIFESTS`]
/// manifests.
fn few_enough(index: &ImageIndex, what: impl FnOnce() -> String) -> Result<(), SourceError> {
    match index.manifests().len() {
        count if count > MAX_INDEX_MANIFESTS => Err(SourceError::TooManyManifests {
            what: what(),
            count,
        }),
        _ => Ok(()),
    }
}

/// How a layer of this media type is compressed.
fn layer_compression(media: &MediaType) -> Result<Compression, SourceError> {
    Ok(match media {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Compression::None,
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Compression::Gzip,
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Compression::Zstd,
        MediaType::Other(m) if m == "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            Compression::Gzip
        }
        MediaType::Other(m) if m == "application/vnd.docker.image.rootfs.diff.tar" => {
            Compression::None
        }
        other => return Err(SourceError::UnsupportedMediaType(other.to_string())),
    })
}

/// `docker save`'s archive: `manifest.json`, a config file, layer tars
/// (compressed or not, said by their first bytes). A `blobs/sha256/HEX`
/// path (Docker 25 and later) is checked against its name.
fn open_docker(files: Files) -> Result<Image, SourceError> {
    let dir = files.base.clone();
    let manifest_path = dir.join("manifest.json");
    let text = files
        .read(Path::new("manifest.json"), MAX_DOCUMENT)
        .map_err(|r| {
            SourceError::refused("The archive's manifest.json".into(), &manifest_path, r)
        })?;
    let entries: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| parse_error("manifest.json", &manifest_path)(e.to_string()))?;
    let entries = entries.as_array().cloned().unwrap_or_default();
    let entry = match entries.as_slice() {
        [one] => one,
        [] => return Err(SourceError::EmptyArchive),
        many => return Err(SourceError::Ambiguous(many.len())),
    };
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let config_name = field("Config").ok_or_else(|| {
        parse_error("manifest.json", &manifest_path)("it names no Config".to_owned())
    })?;
    let config_path = inside(&dir, &config_name)?;
    let config_bytes = files.read(&config_path, MAX_DOCUMENT).map_err(|r| {
        SourceError::refused(
            format!("The archive's {config_name}"),
            &dir.join(&config_path),
            r,
        )
    })?;
    let config_digest = named_digest(&config_name);
    if let Some(digest) = &config_digest {
        verify(digest, None, &config_bytes)?;
    }
    let config = ImageConfiguration::from_reader(config_bytes.as_slice()).map_err(|e| {
        parse_error("the image configuration", &dir.join(&config_path))(e.to_string())
    })?;
    let mut layers = Vec::new();
    for layer in entry
        .get("Layers")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let name = layer.as_str().unwrap_or_default().to_owned();
        let path = inside(&dir, &name)?;
        let (mut file, size) = files.open(&path).map_err(|r| {
            SourceError::refused(format!("The archive's {name}"), &dir.join(&path), r)
        })?;
        let mut head = [0u8; 4];
        let n = file.read(&mut head).map_err(read_error(&dir.join(&path)))?;
        layers.push(Blob {
            path,
            digest: named_digest(&name),
            size,
            compression: Compression::sniff(&head[..n]),
        });
    }
    Ok(Image {
        config: Some(config),
        files,
        layers,
        root: None,
        id: config_digest
            .unwrap_or_else(|| format!("sha256:{}", hex(&Sha256::digest(&config_bytes)))),
    })
}

/// A file named in an archive's manifest, as a path below the archive's
/// directory; refused if it climbs out. Links on the way are refused when
/// it is opened.
fn inside(dir: &Path, name: &str) -> Result<PathBuf, SourceError> {
    let path = Path::new(name);
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(SourceError::Parse {
            what: "manifest.json",
            path: dir.join("manifest.json").display().to_string(),
            message: format!("{name} is outside the archive"),
        });
    }
    Ok(path
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect())
}

/// `blobs/sha256/HEX` (Docker 25 and later) and `HEX.json` (a config of
/// older Dockers) name their own digest.
fn named_digest(name: &str) -> Option<String> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json").filter(|n| !n.contains('/')))?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_their_transport() {
        assert_eq!(
            Source::parse("oci:/images/web:latest").unwrap(),
            Source::Oci {
                dir: "/images/web".into(),
                tag: Some("latest".into())
            }
        );
        assert_eq!(
            Source::parse("oci:/images/web").unwrap(),
            Source::Oci {
                dir: "/images/web".into(),
                tag: None
            }
        );
        assert_eq!(
            Source::parse("docker-archive:/tmp/x.tar").unwrap(),
            Source::DockerArchive("/tmp/x.tar".into())
        );
        assert_eq!(Source::parse("dir:/r").unwrap(), Source::Dir("/r".into()));
        for bad in ["/images/web", "docker://nginx", "oci:", "tar:/x"] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_and_sizes_are_checked() {
        let digest = format!("sha256:{}", hex(&Sha256::digest(b"hello")));
        assert!(verify(&digest, Some(5), b"hello").is_ok());
        assert!(matches!(
            verify(&digest, Some(5), b"hellO"),
            Err(SourceError::DigestMismatch { .. })
        ));
        assert!(matches!(
            verify(&digest, Some(6), b"hello"),
            Err(SourceError::SizeMismatch { .. })
        ));
        assert!(matches!(
            verify("sha512:abc", None, b"x"),
            Err(SourceError::UnsupportedDigest(_))
        ));
        assert!(blob_path("sha256:../../etc").is_err());
    }
}
