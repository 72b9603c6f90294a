//! Initramfs archives: cpio in the kernel's `newc` format, gzipped (see
//! the kernel's Documentation/driver-api/early-userspace/buffer-format.rst).
//! Every entry has owner root and time 0, so an image is reproducible.

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// A cpio `newc` archive being written in memory.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
    /// The directories added, so that none is added twice.
    dirs: std::collections::BTreeSet<String>,
}

impl Archive {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let name = name.trim_start_matches('/');
        self.next_inode += 1;
        let fields = [
            self.next_inode,
            mode,
            0, // uid
            0, // gid
            if mode & S_IFDIR == S_IFDIR { 2 } else { 1 },
            0, // mtime: fixed, so images are reproducible
            u32::try_from(data.len()).expect("file under 4 GiB"),
            0,
            0,
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).unwrap(),
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    /// Adds a directory, once.
    pub fn dir(&mut self, name: &str) {
        let name = name.trim_start_matches('/').trim_end_matches('/');
        if self.dirs.insert(name.to_owned()) {
            self.entry(name, S_IFDIR | 0o755, &[], (0, 0));
        }
    }

    /// Adds a file and, before it, each of its parent directories not
    /// added yet (the kernel does not create them).
    pub fn file_with_parents(&mut self, name: &str, mode: u32, data: &[u8]) {
        let name = name.trim_start_matches('/');
        let parts: Vec<&str> = name.split('/').collect();
        let mut parent = String::new();
        for part in parts.split_last().map_or(&[][..], |(_, dirs)| dirs) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.dir(&parent);
        }
        self.file(name, mode, data);
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, S_IFREG | mode, data, (0, 0));
    }

    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes(), (0, 0));
    }

    pub fn char_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | mode, &[], (major, minor));
    }

    /// Ends the archive and compresses it with gzip (no timestamp or name
    /// in the header, so the same files give the same bytes).
    pub fn finish_gzip(mut self) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gzip.write_all(&self.bytes)?;
        gzip.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_aligned_and_parseable() {
        let mut archive = Archive::default();
        archive.file("a", 0o644, b"hello");
        archive.symlink("b", "a");
        archive.char_device("dev/null", 0o666, 1, 3);
        let bytes = archive.bytes;
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        // The file's size field (7th) and name.
        assert_eq!(&bytes[6 + 6 * 8..6 + 7 * 8], b"00000005");
        assert_eq!(&bytes[110..112], b"a\0");
        let second = bytes
            .windows(6)
            .skip(1)
            .position(|w| w == b"070701")
            .unwrap()
            + 1;
        assert_eq!(second % 4, 0);
    }
}
