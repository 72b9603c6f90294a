//! The properties the layer and decompression fuzz targets check, shared
//! with `image/tests/fuzz_seeds.rs`, which replays their seeds and
//! regressions on every test run:
//! - a layer's tar bytes, applied into a fresh root inside a sandbox
//!   directory, never panic and never touch anything beside the root (a
//!   canary directory there stays as it was); the stream is metered, so
//!   memory follows the input;
//! - gzip and zstd readers fed any bytes end with data or an error, never
//!   a panic, within a bound on what they yield.
#![allow(dead_code)] // each target uses half of it

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use vminit_image::layers;
use vminit_image::stream::{Compression, Meter};

/// What one layer may unpack to under the fuzzer.
const LIMIT: u64 = 16 << 20;

/// A sandbox of this process: `root/` is applied into, `canary/` must stay.
fn sandbox() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vminit-fuzz-layer-{}", std::process::id()));
    let canary = dir.join("canary");
    if !canary.join("file").exists() {
        std::fs::create_dir_all(&canary).unwrap();
        std::fs::write(canary.join("file"), "canary").unwrap();
    }
    dir
}

/// Applies `bytes` as a plain layer into a fresh root and checks that
/// nothing beside it changed.
pub fn apply_in_sandbox(bytes: &[u8]) {
    let sandbox = sandbox();
    let root = sandbox.join("root");
    vminit_image::files::remove_tree(&root);
    std::fs::create_dir_all(&root).unwrap();
    let meter = Meter::new(LIMIT, LIMIT);
    let _ = layers::apply(
        &root,
        bytes,
        Compression::None,
        &meter,
        &mut layers::Tree::default(),
    );
    assert!(meter.read() <= LIMIT, "read past the limit");
    let mut beside: Vec<String> = std::fs::read_dir(&sandbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["canary", "root"],
        "something was made beside the root"
    );
    let canary: Vec<_> = std::fs::read_dir(sandbox.join("canary"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(canary, ["file"], "the canary directory changed");
    let file = sandbox.join("canary/file");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "canary");
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(meta.is_file() && meta.permissions().mode() & 0o7777 == 0o644);
    vminit_image::files::remove_tree(&root);
    assert!(!root.exists(), "the root cannot be removed");
}

/// Decodes `bytes` as gzip (first byte even) or zstd (odd) into nothing,
/// at most `LIMIT` bytes of it.
pub fn decompress(bytes: &[u8]) {
    let Some((choice, rest)) = bytes.split_first() else {
        return;
    };
    let compression = if choice % 2 == 0 {
        Compression::Gzip
    } else {
        Compression::Zstd
    };
    let mut decoder = compression.decoder(rest).take(LIMIT);
    let _ = std::io::copy(&mut decoder, &mut std::io::sink());
}
