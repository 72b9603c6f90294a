//! The process's arguments, taken from C `main`, and its environment, read
//! from the C runtime's `environ`.
//!
//! vminit defines its own C `main` (see `main.rs`), and on musl Rust's
//! `std::env::args()` is only filled in by Rust's own start-up code, so the
//! arguments are read here from `argc`/`argv`. See execve(2).

use std::ffi::{CStr, OsStr, OsString, c_char, c_int};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

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

unsafe extern "C" {
    /// The C runtime's environment: `NAME=value` strings, NULL-terminated.
    static environ: *const *const c_char;
}

/// The process's environment as the kernel handed it in, as `(NAME,
/// value)` pairs borrowed from it, read as std reads it, in one allocation: std's `vars_os` grows
/// a vector of owned copies, a page-sized reallocation or more in a large
/// environment.
pub fn environment() -> Vec<(&'static OsStr, &'static OsStr)> {
    // SAFETY: `environ` is the C runtime's, set before `main`; vminit never
    // calls setenv or putenv (std's `set_var` is unsafe, and unused), so
    // the array and its strings stay as they were for the whole program.
    let entries = unsafe { environ };
    if entries.is_null() {
        return Vec::new();
    }
    let mut count = 0;
    // SAFETY: the array is NULL-terminated (see above).
    while !unsafe { *entries.add(count) }.is_null() {
        count += 1;
    }
    let mut pairs = Vec::with_capacity(count);
    for index in 0..count {
        // SAFETY: `index` < `count`, each a valid C string (see above).
        let entry = unsafe { CStr::from_ptr(*entries.add(index)) }.to_bytes();
        // As std: a leading `=` belongs to the name.
        let split = entry
            .iter()
            .skip(1)
            .position(|&b| b == b'=')
            .map(|at| at + 1);
        // As std (and glibc): an entry without one is skipped.
        if let Some(at) = split {
            let (name, value) = (&entry[..at], &entry[at + 1..]);
            pairs.push((OsStr::from_bytes(name), OsStr::from_bytes(value)));
        }
    }
    pairs
}
