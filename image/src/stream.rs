//! The byte streams an image is read through: how a layer is compressed,
//! a reader that hashes (a blob's digest), and the meter every layer's
//! uncompressed stream passes, which holds it to the build's bounds:
//! - all layers together yield at most [`Meter`]'s limit, so a compression
//!   bomb stops there and not at the disk's end;
//! - between two entries, the tar headers (with GNU long names and PAX
//!   records, which the tar crate reads whole into memory) take at most
//!   [`MAX_HEADERS`], so memory follows the stream's buffers, not the image;
//! - a Ctrl-C or SIGTERM ([`crate::stop`]) ends the read at once.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the first bytes of a blob, for archives that do not say.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// `blob` decompressed as this says. Memory stays constant: gzip's
    /// window is 32 KiB, and ruzstd refuses frames whose window is over
    /// 100 MiB (zstd's own command line writes 8 MiB at most by default).
    pub fn decoder<'a>(self, blob: impl Read + 'a) -> Box<dyn Read + 'a> {
        match self {
            Compression::None => Box::new(blob),
            // Every member: eStargz layers are many gzip streams in a row.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            // Every frame: zstd:chunked layers are many frames in a row.
            Compression::Zstd => Box::new(crate::zstd::Frames::new(io::BufReader::new(blob))),
        }
    }
}

/// The most that one entry's headers may take between two entries: its
/// tar header, a GNU long name and link name, a PAX record (extended
/// attributes included) and GNU sparse maps. Linux caps an extended
/// attribute at 64 KiB and a path at 4 KiB, so real images stay far below.
pub const MAX_HEADERS: u64 = 1 << 20;

/// What held a stream back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tripped {
    /// The layers together went past the limit (bytes).
    Limit(u64),
    /// One entry's headers went past [`MAX_HEADERS`].
    Headers,
    /// A signal asked the build to stop.
    Stopped,
}

/// The bounds one stream is read under, shared between the reader the tar
/// crate owns and the code that walks its entries.
#[derive(Debug)]
pub struct Meter {
    /// Bytes this stream may still yield.
    allowed: u64,
    /// The limit named in the error.
    limit: u64,
    read: Cell<u64>,
    /// Bytes counted against the limit beyond those read (see `charge`).
    charged: Cell<u64>,
    /// Until which position headers may be read; `u64::MAX` while an
    /// entry's data is read.
    headers_until: Cell<u64>,
    tripped: Cell<Option<Tripped>>,
    /// Where the stream may end early: from the end of the last entry's
    /// data to the next header, the padding missing is read as zeros.
    padding: Cell<(u64, u64)>,
    /// Whether the stream has ended.
    ended: Cell<bool>,
}

impl Meter {
    /// A meter that lets `allowed` more bytes through of `limit` in all.
    pub fn new(allowed: u64, limit: u64) -> Rc<Meter> {
        Rc::new(Meter {
            allowed,
            limit,
            read: Cell::new(0),
            charged: Cell::new(0),
            headers_until: Cell::new(u64::MAX),
            tripped: Cell::new(None),
            padding: Cell::new((0, 0)),
            ended: Cell::new(false),
        })
    }

    /// The limit of the whole build, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes this stream may still yield.
    pub fn left(&self) -> u64 {
        self.allowed
            .saturating_sub(self.read.get() + self.charged.get())
    }

    /// Counts `bytes` against the limit as if read: what the disk will
    /// hold beyond the stream (an entry's inode and directory entry, a
    /// hole that a format writes out). Past the limit, trips it.
    pub fn charge(&self, bytes: u64) -> bool {
        self.charged.set(self.charged.get().saturating_add(bytes));
        let over = self.read.get().saturating_add(self.charged.get()) > self.allowed;
        if over {
            self.tripped.set(Some(Tripped::Limit(self.limit)));
        }
        !over
    }

    /// Bytes counted so far: read, and charged.
    pub fn used(&self) -> u64 {
        self.read.get() + self.charged.get()
    }

    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.get()
    }

    /// The next entry's headers start at `at`: from there at most
    /// [`MAX_HEADERS`] may be read until [`Meter::data`].
    pub fn headers_from(&self, at: u64) {
        self.headers_until.set(at.saturating_add(MAX_HEADERS));
    }

    /// An entry's data is read: no header bound.
    pub fn data(&self) {
        self.headers_until.set(u64::MAX);
    }

    /// The last entry's data ends at `data_end`, and its padding runs to
    /// `next_header`: a stream that ends in between (as Go's
    /// `archive/tar` and umoci allow, with neither padding nor end marker)
    /// is read as if padded with zeros, which are not hashed.
    pub fn padding(&self, data_end: u64, next_header: u64) {
        self.padding.set((data_end, next_header));
    }

    /// Whether the stream has ended (a read returned nothing).
    pub fn ended(&self) -> bool {
        self.ended.get()
    }

    /// What tripped, if anything did.
    pub fn tripped(&self) -> Option<Tripped> {
        self.tripped.get()
    }

    /// Why a read may not go on, if it may not (the limit is checked by
    /// the read itself, which may still find the stream's end).
    fn check(&self) -> Option<Tripped> {
        if crate::stop::requested().is_some() {
            return Some(Tripped::Stopped);
        }
        (self.read.get() >= self.headers_until.get()).then_some(Tripped::Headers)
    }
}

/// A reader held to a [`Meter`], hashing what passes (the DiffID).
#[derive(Debug)]
pub struct Metered<R> {
    inner: R,
    hash: Option<Sha256>,
    meter: Rc<Meter>,
}

impl<R: Read> Metered<R> {
    pub fn new(inner: R, meter: Rc<Meter>) -> Self {
        Metered {
            inner,
            hash: Some(Sha256::new()),
            meter,
        }
    }

    /// One that does not hash: an image archive, whose blobs are hashed
    /// one by one.
    pub fn unhashed(inner: R, meter: Rc<Meter>) -> Self {
        Metered {
            inner,
            hash: None,
            meter,
        }
    }

    /// The hex sha256 of what was read.
    pub fn digest(self) -> String {
        self.hash.map(|h| hex(&h.finalize())).unwrap_or_default()
    }
}

/// Where `entry`'s data ends in the stream, and where the tar header
/// after it starts (its data padded to a block), given where its data
/// starts (the stream's position when the tar crate hands the entry over:
/// after its header, extension headers and a GNU sparse map). A GNU
/// sparse entry's data in the archive is its header's size (or a PAX
/// `size`), not the file's length.
pub fn entry_end<R: Read>(entry: &mut tar::Entry<'_, R>, start: u64) -> io::Result<(u64, u64)> {
    let in_archive = if entry.header().entry_type().is_gnu_sparse() {
        let pax_size = entry.pax_extensions()?.and_then(|extensions| {
            extensions
                .flatten()
                .find(|e| e.key().ok() == Some("size"))
                .and_then(|e| e.value().ok()?.parse::<u64>().ok())
        });
        match pax_size {
            Some(size) => size,
            None => entry.header().entry_size()?,
        }
    } else {
        entry.size()
    };
    Ok((
        start.saturating_add(in_archive),
        start.saturating_add(in_archive.saturating_add(511) & !511),
    ))
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let trip = |meter: &Meter, tripped| {
            meter.tripped.set(Some(tripped));
            Err(io::Error::other("the stream went past a bound"))
        };
        if let Some(tripped) = self.meter.check() {
            return trip(&self.meter, tripped);
        }
        // Never past the limit or the header window, by a single byte; at
        // the limit, one byte more is asked for: a stream that ends there
        // is within it.
        let read = self.meter.read.get();
        let room = self
            .meter
            .left()
            .min(self.meter.headers_until.get().saturating_sub(read))
            .max(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let at_limit = self.meter.left() == 0;
        let n = self.inner.read(&mut buf[..want])?;
        if n > 0 && at_limit {
            return trip(&self.meter, Tripped::Limit(self.meter.limit));
        }
        if n == 0 && want > 0 {
            self.meter.ended.set(true);
            let (from, to) = self.meter.padding.get();
            if (from..to).contains(&read) {
                let zeros = want.min(usize::try_from(to - read).unwrap_or(usize::MAX));
                buf[..zeros].fill(0);
                self.meter.read.set(read + zeros as u64);
                return Ok(zeros);
            }
        }
        if let Some(hash) = &mut self.hash {
            hash.update(&buf[..n]);
        }
        self.meter.read.set(read + n as u64);
        Ok(n)
    }
}

/// A reader that hashes what passes through it: a blob checked against
/// its digest before it is unpacked.
#[derive(Debug)]
pub struct Hashing<R> {
    inner: R,
    hash: Sha256,
    pub bytes: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what the consumer left, then returns the hex sha256 of
    /// everything and its length.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex(&self.hash.finalize()), self.bytes))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::stop::check()?;
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_stops_at_the_limit_and_the_header_window() {
        let meter = Meter::new(10, 10);
        let mut reader = Metered::new(&[1u8; 64][..], meter.clone());
        let mut buf = [0u8; 64];
        assert_eq!(reader.read(&mut buf).unwrap(), 10);
        assert!(reader.read(&mut buf).is_err());
        assert_eq!(meter.tripped(), Some(Tripped::Limit(10)));
        // A stream that ends at the limit is within it.
        let meter = Meter::new(10, 10);
        let mut reader = Metered::new(&[1u8; 10][..], meter.clone());
        assert_eq!(reader.read(&mut buf).unwrap(), 10);
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
        assert_eq!(meter.tripped(), None);
        // What is charged counts as read.
        let meter = Meter::new(10, 10);
        assert!(meter.charge(4));
        let mut reader = Metered::new(&[1u8; 64][..], meter.clone());
        assert_eq!(reader.read(&mut buf).unwrap(), 6);
        assert!(!meter.charge(1));

        let meter = Meter::new(u64::MAX, u64::MAX);
        let zeros = io::repeat(0).take(3 * MAX_HEADERS);
        let mut reader = Metered::new(zeros, meter.clone());
        meter.headers_from(0);
        let mut got = 0;
        while let Ok(n) = reader.read(&mut buf) {
            got += n as u64;
        }
        assert_eq!(
            (got, meter.tripped()),
            (MAX_HEADERS, Some(Tripped::Headers))
        );
        meter.data();
        meter.tripped.set(None);
        assert_eq!(reader.read(&mut buf).unwrap(), 64);
    }

    #[test]
    fn hashing_reads_to_the_end() {
        let digest = hex(&Sha256::digest(b"hello"));
        let mut hashing = Hashing::new(&b"hello"[..]);
        let mut first = [0u8; 2];
        hashing.read_exact(&mut first).unwrap();
        assert_eq!(hashing.finish().unwrap(), (digest, 5));
    }
}
