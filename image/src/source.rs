//! Where an image comes from, named by its transport as skopeo names them:
//! `oci:DIR[:TAG]` (an OCI image layout), `oci-archive:FILE` (one as a
//! tar), `docker-archive:FILE` (`docker save`), `dir:DIR` (a plain root
//! directory). Every blob is checked against its digest and size.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::layers::Compression;

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
}

/// A blob that is read, and checked, later: a layer.
#[derive(Debug, Clone)]
pub struct Blob {
    pub path: PathBuf,
    /// `sha256:HEX`, when the source gives one to check.
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub compression: Compression,
}

/// An image ready to apply: its configuration (none for `dir:`) and its
/// layers, oldest first.
#[derive(Debug)]
pub struct Image {
    pub config: Option<ImageConfiguration>,
    pub layers: Vec<Blob>,
    /// A plain root to copy, for `dir:`.
    pub root: Option<PathBuf>,
    /// A directory to remove afterwards (an unpacked archive).
    pub scratch: Option<PathBuf>,
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
            Source::Oci { dir, tag } => open_layout(dir, tag.as_deref(), arch, None),
            Source::OciArchive(file) => {
                unpack(file, scratch)?;
                open_layout(scratch, None, arch, Some(scratch.to_path_buf()))
            }
            Source::DockerArchive(file) => {
                unpack(file, scratch)?;
                open_docker(scratch)
            }
            Source::Dir(dir) => Ok(Image {
                config: None,
                layers: Vec::new(),
                root: Some(dir.clone()),
                scratch: None,
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

/// Unpacks a tar archive (path escapes refused by the tar crate).
fn unpack(file: &Path, into: &Path) -> Result<(), SourceError> {
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).map_err(read_error(into))?;
    let archive = File::open(file).map_err(read_error(file))?;
    tar::Archive::new(archive)
        .unpack(into)
        .map_err(read_error(file))
}

/// `sha256:HEX` → the blob's path in an OCI layout.
fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, SourceError> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(SourceError::UnsupportedDigest(digest.to_owned()));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SourceError::UnsupportedDigest(digest.to_owned()));
    }
    Ok(layout.join("blobs/sha256").join(hex))
}

/// Reads a small blob whole and checks it.
fn read_blob(layout: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, SourceError> {
    let digest = descriptor.digest().to_string();
    let path = blob_path(layout, &digest)?;
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SourceError::MissingBlob(digest.clone()),
        _ => SourceError::Read {
            path: path.display().to_string(),
            source: e,
        },
    })?;
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
fn open_layout(
    dir: &Path,
    tag: Option<&str>,
    arch: &str,
    scratch: Option<PathBuf>,
) -> Result<Image, SourceError> {
    let index_path = dir.join("index.json");
    let index = ImageIndex::from_file(&index_path)
        .map_err(|e| parse_error("the image index", &index_path)(e.to_string()))?;
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
    while is_index(descriptor.media_type()) {
        let bytes = read_blob(dir, &descriptor)?;
        let nested = ImageIndex::from_reader(bytes.as_slice())
            .map_err(|e| parse_error("an image index", dir)(e.to_string()))?;
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
    let bytes = read_blob(dir, &descriptor)?;
    let manifest = ImageManifest::from_reader(bytes.as_slice())
        .map_err(|e| parse_error("the image manifest", dir)(e.to_string()))?;
    let config_bytes = read_blob(dir, manifest.config())?;
    let config = ImageConfiguration::from_reader(config_bytes.as_slice())
        .map_err(|e| parse_error("the image configuration", dir)(e.to_string()))?;
    let mut layers = Vec::new();
    for layer in manifest.layers() {
        let digest = layer.digest().to_string();
        let compression = layer_compression(layer.media_type())?;
        let path = blob_path(dir, &digest)?;
        if !path.exists() {
            return Err(SourceError::MissingBlob(digest));
        }
        layers.push(Blob {
            path,
            digest: Some(digest),
            size: Some(layer.size()),
            compression,
        });
    }
    Ok(Image {
        config: Some(config),
        layers,
        root: None,
        scratch,
        id: descriptor.digest().to_string(),
    })
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
fn open_docker(dir: &Path) -> Result<Image, SourceError> {
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read(&manifest_path).map_err(read_error(&manifest_path))?;
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
    let config_path = inside(dir, &config_name)?;
    let config_bytes = std::fs::read(&config_path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SourceError::MissingBlob(config_name.clone()),
        _ => read_error(&config_path)(e),
    })?;
    let config_digest = named_digest(&config_name);
    if let Some(digest) = &config_digest {
        verify(digest, None, &config_bytes)?;
    }
    let config = ImageConfiguration::from_reader(config_bytes.as_slice())
        .map_err(|e| parse_error("the image configuration", &config_path)(e.to_string()))?;
    let mut layers = Vec::new();
    for layer in entry
        .get("Layers")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let name = layer.as_str().unwrap_or_default().to_owned();
        let path = inside(dir, &name)?;
        let mut head = [0u8; 4];
        let mut file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SourceError::MissingBlob(name.clone()),
            _ => read_error(&path)(e),
        })?;
        let n = file.read(&mut head).map_err(read_error(&path))?;
        layers.push(Blob {
            path,
            digest: named_digest(&name),
            size: None,
            compression: Compression::sniff(&head[..n]),
        });
    }
    Ok(Image {
        config: Some(config),
        layers,
        root: None,
        scratch: Some(dir.to_path_buf()),
        id: config_digest
            .unwrap_or_else(|| format!("sha256:{}", hex(&Sha256::digest(&config_bytes)))),
    })
}

/// A file named in an archive's manifest, refused if it climbs out.
fn inside(dir: &Path, name: &str) -> Result<PathBuf, SourceError> {
    let path = Path::new(name);
    if path.is_absolute()
        || path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(SourceError::Parse {
            what: "manifest.json",
            path: dir.join("manifest.json").display().to_string(),
            message: format!("{name} is outside the archive"),
        });
    }
    // A link in the archive must not lead to the building machine's files.
    let joined = dir.join(path);
    match (std::fs::canonicalize(&joined), std::fs::canonicalize(dir)) {
        (Ok(real), Ok(base)) if !real.starts_with(&base) => Err(SourceError::Parse {
            what: "manifest.json",
            path: dir.join("manifest.json").display().to_string(),
            message: format!("{name} leads outside the archive"),
        }),
        _ => Ok(joined),
    }
}

/// `blobs/sha256/HEX` (Docker 25 and later) and `HEX.json` (a config of
/// older Dockers) name their own digest.
fn named_digest(name: &str) -> Option<String> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json").filter(|n| !n.contains('/')))?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

/// A reader that hashes what passes through it, to check a layer's digest
/// once it is applied.
#[derive(Debug)]
pub struct Hashing<R> {
    inner: R,
    hash: Sha256,
    pub bytes: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what the consumer left (tar stops at its end marker), then
    /// returns the hex sha256 of everything.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex(&self.hash.finalize()), self.bytes))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
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
        let mut hashing = Hashing::new(&b"hello"[..]);
        let mut first = [0u8; 2];
        hashing.read_exact(&mut first).unwrap();
        let (found, bytes) = hashing.finish().unwrap();
        assert_eq!((format!("sha256:{found}"), bytes), (digest, 5));
        assert!(blob_path(Path::new("/x"), "sha256:../../etc").is_err());
    }
}
