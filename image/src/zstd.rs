//! A zstd stream of any number of frames, as RFC 8878 allows and
//! `zstd:chunked` layers use: data frames one after the other, their
//! output concatenated, and skippable frames (`zstd:chunked` keeps its
//! table of contents in one) passed over. ruzstd's `StreamingDecoder`
//! reads one frame; this drives its `FrameDecoder` across all of them.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// Decodes every frame of `source` in turn.
pub struct Frames<R> {
    source: R,
    decoder: FrameDecoder,
    /// Whether a data frame is open (its header read, not all collected).
    in_frame: bool,
}

impl<R> std::fmt::Debug for Frames<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames")
            .field("in_frame", &self.in_frame)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> Frames<R> {
    pub fn new(source: R) -> Self {
        Frames {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Opens the next data frame, passing over skippable ones; false at
    /// the end of the stream (which may only fall between frames).
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.source).take(length.into()), &mut io::sink())?;
                    if skipped != u64::from(length) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the stream ends inside a skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}

impl<R: BufRead> Read for Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            // As StreamingDecoder does: decode until enough can be
            // collected or the frame is done, then collect.
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                let wanted = buf.len() - self.decoder.can_collect();
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(wanted))
                    .map_err(io::Error::other)?;
            }
            let read = self.decoder.read(buf)?;
            if read > 0 {
                return Ok(read);
            }
            if self.decoder.is_finished() {
                self.in_frame = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruzstd::encoding::{CompressionLevel, compress_to_vec};

    fn decode(stream: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Frames::new(stream).read_to_end(&mut out)?;
        Ok(out)
    }

    fn skippable(data: &[u8]) -> Vec<u8> {
        let mut frame = 0x184D_2A5Eu32.to_le_bytes().to_vec();
        frame.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
        frame.extend(data);
        frame
    }

    #[test]
    fn every_frame_is_decoded_and_skippable_ones_passed_over() {
        let first = vec![b'a'; 300_000];
        let second = b"the second frame".to_vec();
        let mut stream = compress_to_vec(first.as_slice(), CompressionLevel::Fastest);
        stream.extend(skippable(b"a table of contents"));
        stream.extend(compress_to_vec(
            second.as_slice(),
            CompressionLevel::Fastest,
        ));
        stream.extend(skippable(b""));
        let mut expected = first.clone();
        expected.extend(&second);
        assert_eq!(decode(&stream).unwrap(), expected);
        assert_eq!(decode(&[]).unwrap(), b"");
    }

    #[test]
    fn damage_is_an_error_not_a_short_read() {
        let frame = compress_to_vec(&b"data"[..], CompressionLevel::Fastest);
        let mut stream = frame.clone();
        stream.extend(b"junk after the frame");
        assert!(decode(&stream).is_err(), "a bad magic number");
        let mut cut = skippable(b"0123456789");
        cut.truncate(12);
        assert!(decode(&cut).is_err(), "a cut skippable frame");
        assert!(
            decode(&frame[..frame.len() - 2]).is_err(),
            "a cut data frame"
        );
    }
}
