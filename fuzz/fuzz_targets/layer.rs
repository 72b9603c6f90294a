//! Fuzzes applying a layer: the fuzzer's bytes as a tar stream, applied
//! into a fresh root; nothing beside it may change, nothing may panic (see
//! `fuzz/common/layers.rs`).
#![no_main]

#[path = "../common/layers.rs"]
mod layers;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| layers::apply_in_sandbox(bytes));
