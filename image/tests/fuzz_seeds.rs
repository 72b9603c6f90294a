//! The layer and decompression fuzz targets' seeds and regressions
//! (`fuzz/seeds/{layer,decompress}`, `fuzz/regressions/…`), replayed on
//! every test run through the targets' own checks.

use std::path::Path;

#[path = "../../fuzz/common/layers.rs"]
mod layers;

fn inputs(kind: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut found = Vec::new();
    for dir in ["seeds", "regressions"] {
        for entry in std::fs::read_dir(root.join(dir).join(kind))
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(std::fs::read(entry.path()).unwrap());
        }
    }
    assert!(!found.is_empty(), "no {kind} inputs");
    found
}

#[test]
fn layer_inputs_stay_inside_their_root() {
    for bytes in inputs("layer") {
        layers::apply_in_sandbox(&bytes);
    }
}

#[test]
fn decompress_inputs_end_without_panic() {
    for bytes in inputs("decompress") {
        layers::decompress(&bytes);
    }
}
