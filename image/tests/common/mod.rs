//! Helpers of the integration tests: images written byte by byte, and
//! the binary run on them.
#![allow(dead_code)]

pub mod guarded;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A static executable for this machine to stand in for vminit as
/// `/init` (vminit-image refuses a dynamic one): `VMINIT_BIN`, the static
/// release binary `cargo xtask test` builds and names, else the one
/// `cargo xtask build` leaves, else Debian's busybox-static.
pub fn static_vminit() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../target/static/{}-unknown-linux-musl/release/vminit",
        std::env::consts::ARCH
    ));
    std::env::var_os("VMINIT_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain([built, PathBuf::from("/bin/busybox")])
        .find(|path| path.is_file() && !is_dynamic(path))
        .expect(
            "no static executable to stand in for vminit: run cargo xtask build, or set VMINIT_BIN",
        )
}

/// Whether the ELF file at `path` asks for a loader (`PT_INTERP`).
fn is_dynamic(path: &Path) -> bool {
    use object::read::elf::{FileHeader as _, ProgramHeader as _};
    let Ok(data) = std::fs::read(path) else {
        return true;
    };
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(&*data) else {
        return true;
    };
    let Ok(endian) = header.endian() else {
        return true;
    };
    header
        .program_headers(endian, &*data)
        .map_or(true, |headers| {
            headers
                .iter()
                .any(|ph| ph.interpreter(endian, &*data).is_ok_and(|i| i.is_some()))
        })
}

pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vminit-image-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tar layer from (path, contents or link target, kind).
pub fn layer(entries: &[(&str, &str, char)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, kind) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match kind {
            'd' => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            'l' => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, data).unwrap();
            }
            _ => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o755);
                header.set_size(data.len() as u64);
                builder
                    .append_data(&mut header, path, data.as_bytes())
                    .unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes a blob into an OCI layout; returns its descriptor.
pub fn blob(layout: &Path, media: &str, bytes: &[u8]) -> Value {
    let digest = hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&digest), bytes).unwrap();
    json!({"mediaType": media, "digest": format!("sha256:{digest}"), "size": bytes.len()})
}

pub const GZ_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An OCI layout with the usual two layers and `config`.
pub fn layout(name: &str, config: Value) -> PathBuf {
    let dir = tempdir(name).join("layout");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion": "1.0.0"}"#).unwrap();
    let first = layer(&[
        ("bin/", "", 'd'),
        ("bin/app", "#!/bin/sh\necho app\n", 'f'),
        ("etc/", "", 'd'),
        ("etc/remove-me", "old", 'f'),
        ("etc/keep", "keep", 'f'),
        ("var/cache/", "", 'd'),
        ("var/cache/old", "old", 'f'),
        ("host-etc", "/etc", 'l'),
    ]);
    let second = layer(&[
        ("etc/.wh.remove-me", "", 'f'),
        ("var/cache/.wh..wh..opq", "", 'f'),
        ("var/cache/new", "new", 'f'),
        // Through an absolute link: lands in the image's /etc, not the host's.
        ("host-etc/written-through-link", "inside", 'f'),
    ]);
    let layers = vec![
        blob(&dir, GZ_LAYER, &gzip(&first)),
        blob(&dir, "application/vnd.oci.image.layer.v1.tar", &second),
    ];
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", hex(&first)), format!("sha256:{}", hex(&second))]},
        "config": config,
    });
    let config = blob(
        &dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": config, "layers": layers});
    let mut manifest_descriptor = blob(
        &dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    manifest_descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    let index = json!({"schemaVersion": 2, "manifests": [manifest_descriptor]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    dir
}

pub fn build(source: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vminit-image"))
        .args(["build", source, "--output"])
        .arg(out)
        .arg("--vminit")
        .arg(static_vminit())
        .args(extra)
        .output()
        .unwrap()
}

pub fn debugfs_cat(image: &Path, path: &str) -> String {
    let output = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An OCI layout of one image with `layers` (media type, blob) whose
/// DiffIDs are `diff_ids`; returns it with the config's and the layers'
/// blob paths.
pub fn oci(
    name: &str,
    layers: &[(&str, Vec<u8>)],
    diff_ids: &[String],
) -> (PathBuf, PathBuf, Vec<PathBuf>) {
    let dir = tempdir(name).join("layout");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion": "1.0.0"}"#).unwrap();
    let descriptors: Vec<Value> = layers
        .iter()
        .map(|(media, bytes)| blob(&dir, media, bytes))
        .collect();
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {"Cmd": ["/app"]}});
    let config = blob(
        &dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let path = |descriptor: &Value| {
        let digest = descriptor["digest"].as_str().unwrap();
        dir.join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    };
    let config_path = path(&config);
    let layer_paths = descriptors.iter().map(path).collect();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": config, "layers": descriptors});
    let manifest = blob(
        &dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    let index = json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    (dir, config_path, layer_paths)
}
