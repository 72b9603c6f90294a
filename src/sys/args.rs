//! The process's arguments, taken from C `main`.
//!
//! vminit defines its own C `main` (see `main.rs`), and on musl Rust's
//! `std::env::args()` is only filled in by Rust's own start-up code, so the
//! arguments are read here from `argc`/`argv`. See execve(2).

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStringExt;

/// Copies `argv[0..argc]` into owned strings.
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings, as the C
/// runtime passes them to `main`.
pub unsafe fn from_c_main(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    let count = usize::try_from(argc).unwrap_or(0);
    if count == 0 || argv.is_null() {
        return Vec::new();
    }
    // SAFETY: the caller guarantees `argv` holds `argc` pointers.
    let pointers = unsafe { std::slice::from_raw_parts(argv, count) };
    pointers
        .iter()
        .map(|&pointer| {
            // SAFETY: each entry is a valid C string that lives for the whole program.
            let arg = unsafe { CStr::from_ptr(pointer) };
            OsString::from_vec(arg.to_bytes().to_vec())
        })
        .collect()
}
