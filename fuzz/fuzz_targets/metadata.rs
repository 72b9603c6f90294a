//! Fuzzes the metadata parser and the merge with arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vminit::config::merge;
use vminit::error::Source;
use vminit::metadata;

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
});
