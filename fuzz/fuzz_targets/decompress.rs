//! Fuzzes the gzip and zstd readers layers are read through (see
//! `fuzz/common/layers.rs`).
#![no_main]

#[path = "../common/layers.rs"]
mod layers;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| layers::decompress(bytes));
