//! The `vminit` executable: hands `argv` to [`vminit::run::run`].
//!
//! `#![no_main]` on purpose: Rust's own start-up code opens `/dev/null` for
//! any of fds 0-2 that is closed and aborts if it cannot, which is what a
//! kernel-started init meets when the root has no `/dev/console`; for PID 1
//! an abort is a kernel panic. vminit's C `main` repairs stdio itself
//! instead (see `machine::open_console_if_closed`).
#![no_main]

use std::ffi::{c_char, c_int};

/// The C entry point.
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: the C runtime calls `main` with `argc` valid argument strings.
    let args = unsafe { vminit::sys::args::from_c_main(argc, argv) };
    vminit::run::run(args)
}
