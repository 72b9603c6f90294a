//! Loading a kernel module from an open file with finit_module(2).
//!
//! See <https://man7.org/linux/man-pages/man2/finit_module.2.html>.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `MODULE_INIT_COMPRESSED_FILE` (Linux 6.4): the kernel decompresses.
const COMPRESSED_FILE: libc::c_uint = 4;

/// Loads the module in `file` with `params` (`name=value …`). A module that
/// is loaded already counts as loaded. `compressed` asks the kernel to
/// decompress it (`.ko.xz`, `.ko.zst`, `.ko.gz`).
pub fn load(file: &File, params: &str, compressed: bool) -> io::Result<()> {
    let params = CString::new(params).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let flags = if compressed { COMPRESSED_FILE } else { 0 };
    // SAFETY: the fd is open for the call's duration and `params` is a
    // NUL-terminated string the kernel only reads.
    let result = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    if result == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EEXIST) {
        return Ok(());
    }
    Err(error)
}
