//! The interactive exec's stream, as plain functions over bytes: Docker's
//! 8-byte frames (stream 1 stdout, 2 stderr, 3 the exit record; three
//! zeros; a big-endian length) without a terminal, and with one, raw
//! bytes that end with the one frame of stream 3.

/// One piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The exit record's JSON.
    Exit(Vec<u8>),
}

/// The most one frame may carry: vminit sends at most 16 KiB.
const MAX_FRAME: usize = 1024 * 1024;

/// Takes the whole frames at the start of `buffer`, leaving a partial one.
/// `Err` for a header no vminit sends.
pub fn take_frames(buffer: &mut Vec<u8>) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut at = 0;
    while let Some(header) = buffer.get(at..at + 8) {
        let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if header[1..4] != [0, 0, 0] || length > MAX_FRAME {
            return Err("the exec's stream is not in Docker's frames".to_owned());
        }
        let Some(payload) = buffer.get(at + 8..at + 8 + length) else {
            break;
        };
        pieces.push(match header[0] {
            1 => Piece::Stdout(payload.to_vec()),
            2 => Piece::Stderr(payload.to_vec()),
            3 => Piece::Exit(payload.to_vec()),
            other => return Err(format!("the exec's stream has a frame of stream {other}")),
        });
        at += 8 + length;
    }
    buffer.drain(..at);
    Ok(pieces)
}

/// With a terminal: the output in `buffer` that is surely not the exit
/// frame, and the exit record once it is all there. What could still be
/// the start of the frame stays in `buffer`.
pub fn take_raw(buffer: &mut Vec<u8>) -> (Vec<u8>, Option<Vec<u8>>) {
    const START: &[u8] = b"\x03\x00\x00\x00";
    let mut search = 0;
    while let Some(found) = find(&buffer[search..], START).map(|i| i + search) {
        let rest = &buffer[found..];
        if rest.len() < 9 {
            // Too short to tell: keep it until more comes.
            let output = buffer.drain(..found).collect();
            return (output, None);
        }
        let length = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        // The record is a JSON object: that tells it from output.
        if rest[8] == b'{' && length <= MAX_FRAME {
            if rest.len() < 8 + length {
                let output = buffer.drain(..found).collect();
                return (output, None);
            }
            let record = rest[8..8 + length].to_vec();
            let output = buffer[..found].to_vec();
            buffer.clear();
            return (output, Some(record));
        }
        search = found + 1;
    }
    // A tail that could start the frame's header stays.
    let keep = (1..START.len())
        .rev()
        .find(|&n| buffer.ends_with(&START[..n]))
        .unwrap_or(0);
    let output = buffer.drain(..buffer.len() - keep).collect();
    (output, None)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![stream, 0, 0, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn frames_come_whole_however_the_bytes_are_cut() {
        let mut stream = frame(1, b"out");
        stream.extend(frame(2, b"err"));
        stream.extend(frame(3, b"{\"exit_code\":3}"));
        for cut in 0..stream.len() {
            let mut buffer = stream[..cut].to_vec();
            let mut pieces = take_frames(&mut buffer).unwrap();
            buffer.extend_from_slice(&stream[cut..]);
            pieces.extend(take_frames(&mut buffer).unwrap());
            assert_eq!(
                pieces,
                [
                    Piece::Stdout(b"out".to_vec()),
                    Piece::Stderr(b"err".to_vec()),
                    Piece::Exit(b"{\"exit_code\":3}".to_vec())
                ]
            );
            assert!(buffer.is_empty());
        }
        assert!(take_frames(&mut b"HTTP/1.1 500".to_vec()).is_err());
    }

    #[test]
    fn a_terminal_stream_ends_in_its_record() {
        let mut stream = b"$ ls\r\n\x03\x00\x00\x00x".to_vec();
        stream.extend(frame(3, b"{\"exit_code\":0}"));
        for cut in 0..stream.len() {
            let mut buffer = stream[..cut].to_vec();
            let (mut output, record) = take_raw(&mut buffer);
            assert_eq!(record, None);
            buffer.extend_from_slice(&stream[cut..]);
            let (more, record) = take_raw(&mut buffer);
            output.extend(more);
            assert_eq!(output, b"$ ls\r\n\x03\x00\x00\x00x");
            assert_eq!(record.as_deref(), Some(&b"{\"exit_code\":0}"[..]));
        }
    }
}
