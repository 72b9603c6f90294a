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
/// frame; what could still be the frame stays in `buffer`. The frame is
/// the stream's last bytes: at its end (`eof`), a whole frame of stream 3
/// that ends exactly there is the record; anywhere else, such bytes are
/// output.
pub fn take_raw(buffer: &mut Vec<u8>, eof: bool) -> (Vec<u8>, Option<Vec<u8>>) {
    const START: &[u8] = b"\x03\x00\x00\x00";
    if eof {
        // The last place where a whole frame would end exactly at the end.
        let record = (0..buffer.len()).rev().find_map(|at| {
            let rest = &buffer[at..];
            let length = rest.get(4..8)?;
            let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
            (rest.starts_with(START) && rest.len() == 8 + length && rest.get(8) == Some(&b'{'))
                .then_some(at)
        });
        return match record {
            Some(at) => {
                let frame = buffer.split_off(at);
                (std::mem::take(buffer), Some(frame[8..].to_vec()))
            }
            None => (std::mem::take(buffer), None),
        };
    }
    // Held back: from the first place that could start a frame that
    // ends at or after the end of what came so far.
    let hold = (0..buffer.len()).find(|&at| {
        let rest = &buffer[at..];
        let prefix = rest.len().min(START.len());
        if rest[..prefix] != START[..prefix] {
            return false;
        }
        match rest.get(4..8) {
            None => true,
            Some(l) => {
                let length = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                length <= MAX_FRAME
                    && 8 + length >= rest.len()
                    && rest.get(8).is_none_or(|b| *b == b'{')
            }
        }
    });
    let keep = hold.unwrap_or(buffer.len());
    let output = buffer.drain(..keep).collect();
    (output, None)
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
        // Output that looks like the frame, but for where it ends.
        stream.extend(frame(3, b"{\"not\":1}"));
        stream.extend(b"more");
        stream.extend(frame(3, b"{\"exit_code\":0}"));
        for cut in 0..stream.len() {
            let mut buffer = stream[..cut].to_vec();
            let (mut output, record) = take_raw(&mut buffer, false);
            assert_eq!(record, None);
            buffer.extend_from_slice(&stream[cut..]);
            let (more, none) = take_raw(&mut buffer, false);
            assert_eq!(none, None);
            output.extend(more);
            let (rest, record) = take_raw(&mut buffer, true);
            output.extend(rest);
            let mut expected = b"$ ls\r\n\x03\x00\x00\x00x".to_vec();
            expected.extend(frame(3, b"{\"not\":1}"));
            expected.extend(b"more");
            assert_eq!(output, expected, "cut at {cut}");
            assert_eq!(record.as_deref(), Some(&b"{\"exit_code\":0}"[..]));
        }
    }
}
