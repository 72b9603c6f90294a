//! Fuzzes the kernel command-line tokenizer and parser with arbitrary
//! bytes, and the no-value rule with those bytes as names (see
//! `fuzz/common/secrets.rs`).
#![no_main]

#[path = "../common/secrets.rs"]
mod secrets;

use libfuzzer_sys::fuzz_target;
use vminit::config::cmdline;
use vminit::config::error::Source;

fuzz_target!(|line: &[u8]| {
    let tokens = cmdline::tokenize(line);
    // Re-joining words never grows past the line (quotes are only removed).
    let total: usize = tokens.params.iter().chain(tokens.init_args.iter().flatten()).map(|p| p.word().len()).sum();
    assert!(total <= line.len());
    let (_, errors) = cmdline::parse(line, &Source::CmdlineOption);
    for error in errors {
        assert!(!error.to_string().contains('\n'), "an error spans lines");
    }
    secrets::check_cmdline(line);
});
