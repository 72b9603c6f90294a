//! Fuzzes the metadata parser and the merge with arbitrary bytes, and the
//! no-value rule with those bytes as names (see `fuzz/common/secrets.rs`).
#![no_main]

#[path = "../common/secrets.rs"]
mod secrets;

use libfuzzer_sys::fuzz_target;
use vminit::config::merge;
use vminit::config::error::Source;
use vminit::config::metadata;

fuzz_target!(|contents: &[u8]| {
    let (layer, errors) = metadata::parse(contents, &Source::Metadata("/m.json".into()));
    for error in &errors {
        assert!(!error.to_string().contains('\n'), "an error spans lines");
    }
    if errors.is_empty() {
        let config = merge(&[&layer]);
        let _ = config.to_json().to_string();
        let _ = config.redacted();
    }
    secrets::check_metadata(contents);
});
