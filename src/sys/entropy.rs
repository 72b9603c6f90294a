//! The kernel's random pool, fed by ioctl(2) on `/dev/urandom` (random(4)):
//! `RNDADDENTROPY` adds bytes and credits them, `RNDRESEEDCRNG` makes the
//! CRNG draw on them at once. Clones of one snapshot share the pool they
//! were saved with until then (Firecracker's `random-for-clones.md`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `_IOW('R', 0x03, int[2])`, from `<linux/random.h>`.
const RNDADDENTROPY: libc::Ioctl = 0x4008_5203;
/// `_IO('R', 0x07)`.
const RNDRESEEDCRNG: libc::Ioctl = 0x5207;

/// Adds `data` to the pool, credited in full, and reseeds the CRNG.
/// Needs `CAP_SYS_ADMIN`.
pub fn add_and_reseed(data: &[u8]) -> io::Result<()> {
    let device = File::options().write(true).open("/dev/urandom")?;
    let length = i32::try_from(data.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // `struct rand_pool_info`: entropy_count (bits), buf_size (bytes),
    // then the bytes, as native-endian ints and a flexible array.
    let mut info = Vec::with_capacity(8 + data.len());
    info.extend_from_slice(&length.saturating_mul(8).to_ne_bytes());
    info.extend_from_slice(&length.to_ne_bytes());
    info.extend_from_slice(data);
    // SAFETY: `info` is a whole rand_pool_info whose buf_size matches the
    // bytes that follow; the kernel only reads it.
    if unsafe { libc::ioctl(device.as_raw_fd(), RNDADDENTROPY, info.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: takes no argument.
    if unsafe { libc::ioctl(device.as_raw_fd(), RNDRESEEDCRNG) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
