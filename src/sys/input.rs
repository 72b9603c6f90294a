//! Input devices, as the evdev interface hands out their events:
//! `/dev/input/eventN`, read(2) in `struct input_event` records, with
//! fcntl(2)'s `O_ASYNC` asking the kernel for a signal when one arrives.
//!
//! See the kernel's Documentation/input/input.rst and fcntl(2) on
//! `F_SETOWN`, `F_SETSIG`. vminit waits for signals only (sigtimedwait), so
//! an input device is watched by having its events raise SIGIO.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::fd;

/// `EV_KEY`: a key or button changed state.
pub const EV_KEY: u16 = 0x01;
/// `KEY_POWER`, what ACPI and `gpio-keys` power buttons report.
pub const KEY_POWER: u16 = 116;

/// One `struct input_event`, without its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    pub code: u16,
    /// For a key: 1 pressed, 0 released, 2 repeated.
    pub value: i32,
}

/// The size of one record: a `struct timeval`, then type, code and value.
const RECORD: usize = std::mem::size_of::<libc::input_event>();

/// Opens an event device for reading without blocking, so that the kernel
/// sends SIGIO to this process when it has events ([`fd::signal_when_ready`]).
pub fn open_signalling(path: &Path) -> io::Result<File> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    fd::signal_when_ready(&file)?;
    Ok(file)
}

/// Every event the device has queued, without waiting.
pub fn read_events(mut device: &File) -> io::Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut buffer = [0u8; RECORD * 16];
    loop {
        match device.read(&mut buffer) {
            Ok(0) => return Ok(events),
            Ok(read) => events.extend(parse(&buffer[..read])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(events),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Records as the kernel writes them (whole ones only: evdev never splits
/// one): the time, then `u16` type, `u16` code and `i32` value.
pub fn parse(bytes: &[u8]) -> impl Iterator<Item = Event> + '_ {
    bytes.chunks_exact(RECORD).map(|record| {
        let tail = &record[RECORD - 8..];
        Event {
            kind: u16::from_ne_bytes([tail[0], tail[1]]),
            code: u16::from_ne_bytes([tail[2], tail[3]]),
            value: i32::from_ne_bytes([tail[4], tail[5], tail[6], tail[7]]),
        }
    })
}

/// Whether a device's key capability bitmap (sysfs
/// `/sys/class/input/eventN/device/capabilities/key`: hexadecimal words of
/// the kernel's `unsigned long`, most significant first) has `key`.
pub fn has_key(bitmap: &str, key: u16) -> bool {
    let bits = usize::BITS as usize;
    let key = usize::from(key);
    bitmap
        .split_whitespace()
        .rev()
        .nth(key / bits)
        .and_then(|word| usize::from_str_radix(word, 16).ok())
        .is_some_and(|word| word & (1 << (key % bits)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_whole() {
        let mut record = vec![0u8; RECORD];
        record[RECORD - 8..RECORD - 6].copy_from_slice(&EV_KEY.to_ne_bytes());
        record[RECORD - 6..RECORD - 4].copy_from_slice(&KEY_POWER.to_ne_bytes());
        record[RECORD - 4..].copy_from_slice(&1i32.to_ne_bytes());
        let mut two = record.clone();
        two.extend(vec![0u8; RECORD]);
        two.extend(&record[..5]);
        let events: Vec<Event> = parse(&two).collect();
        assert_eq!(
            events,
            [
                Event {
                    kind: EV_KEY,
                    code: KEY_POWER,
                    value: 1
                },
                Event {
                    kind: 0,
                    code: 0,
                    value: 0
                }
            ]
        );
    }

    #[test]
    fn capability_bitmaps() {
        // The ACPI power button's, on a 64-bit kernel: KEY_POWER only.
        assert!(has_key("10000000000000 0", KEY_POWER));
        assert!(!has_key("0", KEY_POWER));
        assert!(!has_key("", KEY_POWER));
        // Four words, as a keyboard has: KEY_POWER is word 1, bit 52.
        assert!(has_key(
            "402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe",
            KEY_POWER
        ));
        assert!(!has_key("10000000000000 0", KEY_POWER + 1));
        assert!(!has_key("zz 0", KEY_POWER));
    }
}
