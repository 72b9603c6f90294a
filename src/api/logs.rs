//! `vminit.logs=capture`: the app's stdout and stderr come through pipes,
//! which the API's server reads; each line goes on to the console and
//! into a bounded ring that `GET /v1/logs` serves as NDJSON.
//!
//! Neither blocks the app: the ring keeps the last [`MAX_RING_BYTES`] of
//! lines, dropping the oldest and counting them, and a line the console
//! cannot take at once (it is written without blocking) is dropped and
//! counted too. Lines are cut at [`MAX_LINE`] bytes.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::time::Duration;

use super::server::{self, Server};
use crate::sys::fd::{self, Interest};
use crate::sys::{clock, stdio};

/// The most the ring keeps: its lines' text, each line charged
/// [`LINE_OVERHEAD`] more (an empty line is not free).
pub const MAX_RING_BYTES: usize = 1024 * 1024;
/// What a kept line costs beside its text: its record and allocation.
const LINE_OVERHEAD: usize = 64;
/// The longest line; a longer one is cut into lines of this length.
pub const MAX_LINE: usize = 16 * 1024;

/// Which of the app's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its place in the order of all lines, kept or not.
    pub seq: u64,
    pub ts_ns: i64,
    pub stream: Stream,
    pub text: Vec<u8>,
}

impl Line {
    /// `{"ts_ns": N, "stream": "stdout", "line": "…"}` and a newline.
    pub fn to_ndjson(&self) -> String {
        // Written in this order; serde_json escapes the text.
        let text = serde_json::Value::from(String::from_utf8_lossy(&self.text));
        format!(
            "{{\"ts_ns\":{},\"stream\":\"{}\",\"line\":{text}}}\n",
            self.ts_ns,
            self.stream.name()
        )
    }
}

/// The last lines, at most [`MAX_RING_BYTES`] of them.
#[derive(Debug, Default)]
pub struct Ring {
    lines: VecDeque<Line>,
    bytes: usize,
    next_seq: u64,
    /// Lines dropped to make room.
    pub dropped: u64,
    /// Lines the console could not take.
    pub console_dropped: u64,
    /// Both streams have ended: no line comes any more.
    pub ended: bool,
}

impl Ring {
    pub fn push(&mut self, ts_ns: i64, stream: Stream, text: Vec<u8>) {
        let cost = text.len() + LINE_OVERHEAD;
        while self.bytes + cost > MAX_RING_BYTES {
            let Some(oldest) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= oldest.text.len() + LINE_OVERHEAD;
            self.dropped += 1;
        }
        self.bytes += cost;
        self.lines.push_back(Line {
            seq: self.next_seq,
            ts_ns,
            stream,
            text,
        });
        self.next_seq += 1;
    }

    /// The kept lines from `seq` on, as NDJSON, and the next `seq`.
    pub fn since(&self, seq: u64) -> (String, u64) {
        let text = self
            .lines
            .iter()
            .filter(|line| line.seq >= seq)
            .map(Line::to_ndjson)
            .collect();
        (text, self.next_seq)
    }

    /// The closing line: what was dropped.
    pub fn summary(&self) -> String {
        format!(
            "{{\"dropped\":{},\"console_dropped\":{}}}\n",
            self.dropped, self.console_dropped
        )
    }
}

/// Cuts a stream into lines.
#[derive(Debug, Default)]
pub struct Splitter {
    partial: Vec<u8>,
}

impl Splitter {
    /// The lines `bytes` completes (or that reach [`MAX_LINE`]).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            // A newline right after a full line ends that line, no more.
            let newline = bytes[..bytes.len().min(room + 1)]
                .iter()
                .position(|&b| b == b'\n');
            match newline {
                Some(at) => {
                    self.partial.extend_from_slice(&bytes[..at]);
                    lines.push(std::mem::take(&mut self.partial));
                    bytes = &bytes[at + 1..];
                }
                None if bytes.len() >= room => {
                    self.partial.extend_from_slice(&bytes[..room]);
                    lines.push(std::mem::take(&mut self.partial));
                    bytes = &bytes[room..];
                }
                None => {
                    self.partial.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
        lines
    }

    /// What is left after the stream's end.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
    }
}

/// One of the app's streams as the pump reads it.
struct Source {
    stream: Stream,
    file: Option<File>,
    splitter: Splitter,
}

/// Reads the app's streams until both end: each line to the console and
/// the ring. Once the server is ending, stops when they are quiet.
pub fn pump(server: Server, stdout: File, stderr: File) {
    let mut console = stdio::nonblocking_twin_of_stderr();
    // A line the console took part of: the rest goes before any other.
    let mut unwritten: Vec<u8> = Vec::new();
    let mut sources = [
        Source {
            stream: Stream::Stdout,
            file: Some(stdout),
            splitter: Splitter::default(),
        },
        Source {
            stream: Stream::Stderr,
            file: Some(stderr),
            splitter: Splitter::default(),
        },
    ];
    let mut chunk = vec![0u8; 64 * 1024];
    let mut failed = false;
    while !failed && sources.iter().any(|s| s.file.is_some()) {
        let ending = server.shared.lock().ending;
        let mut files: Vec<_> = sources
            .iter()
            .filter_map(|s| s.file.as_ref())
            .map(|f| (f.as_fd(), Interest::Read))
            .collect();
        let console_slot = files.len();
        if let Some(console) = console.as_ref().filter(|_| !unwritten.is_empty()) {
            files.push((console.as_fd(), Interest::Write));
        }
        // Ending, the streams are read until quiet; else a wake-up now and
        // then looks whether the server is ending.
        let wait = if ending { 100 } else { 1000 };
        let Ok(ready) = fd::poll(&files, Some(Duration::from_millis(wait))) else {
            failed = !ending;
            break;
        };
        if ending && !ready.contains(&true) {
            break;
        }
        if ready.get(console_slot) == Some(&true)
            && let Some(console) = &mut console
        {
            write_some(console, &mut unwritten);
        }
        let open = sources.iter_mut().filter(|s| s.file.is_some());
        for (source, _) in open.zip(&ready).filter(|(_, ready)| **ready) {
            let taken = take_lines(server, source, &mut chunk, &mut console, &mut unwritten);
            if taken.is_err() {
                // Nobody would read the app's output: the server ends,
                // and PID 1 starts another.
                failed = true;
                break;
            }
        }
    }
    finish_line(console.as_ref(), &unwritten);
    let mut state = server.shared.lock();
    state.logs.get_or_insert_with(Ring::default).ended = !failed;
    state.logs_drained = true;
    state.logs_failed = failed;
    drop(state);
    server.shared.changed.notify_all();
}

/// Reads what `source` has: its lines to the console and the ring (its
/// end, with the last partial line). `Err` when it cannot be read.
fn take_lines(
    server: Server,
    source: &mut Source,
    chunk: &mut [u8],
    console: &mut Option<File>,
    unwritten: &mut Vec<u8>,
) -> Result<(), ()> {
    let Some(file) = &mut source.file else {
        return Ok(());
    };
    let mut lines = match file.read(chunk) {
        Ok(0) => {
            source.file = None;
            source.splitter.finish().into_iter().collect()
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
        Err(_) => return Err(()),
        Ok(n) => source.splitter.feed(&chunk[..n]),
    };
    if lines.is_empty() {
        return Ok(());
    }
    let dropped = to_console(console.as_mut(), unwritten, &lines);
    let now = clock::realtime_ns();
    let mut state = server.shared.lock();
    let ring = state.logs.get_or_insert_with(Ring::default);
    ring.console_dropped += dropped;
    for line in lines.drain(..) {
        ring.push(now, source.stream, line);
    }
    drop(state);
    server.shared.changed.notify_all();
    Ok(())
}

/// Finishes a line the console took part of, briefly: the exit line must
/// not be glued to it.
fn finish_line(console: Option<&File>, unwritten: &[u8]) {
    use std::os::fd::AsRawFd as _;
    let Some(console) = console.filter(|_| !unwritten.is_empty()) else {
        return;
    };
    let deadline = std::time::Instant::now() + Duration::from_millis(200);
    let mut stall = stdio::Stall::until(deadline);
    if stdio::write_within(console.as_raw_fd(), unwritten, &mut stall).is_err() {
        let _ = stdio::write_within(console.as_raw_fd(), b"\n", &mut stall);
    }
}

/// Writes what the console takes of `bytes`, keeping the rest.
fn write_some(console: &mut File, bytes: &mut Vec<u8>) {
    match console.write(bytes) {
        Ok(n) => {
            bytes.drain(..n);
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(_) => bytes.clear(),
    }
}

/// Passes `lines` to the console, whole or not at all; returns how many
/// it could not take. (Without a console to write to, none is dropped.)
fn to_console(console: Option<&mut File>, unwritten: &mut Vec<u8>, lines: &[Vec<u8>]) -> u64 {
    let Some(console) = console else {
        return 0;
    };
    let mut dropped = 0;
    for line in lines {
        if !unwritten.is_empty() {
            write_some(console, unwritten);
        }
        if !unwritten.is_empty() {
            dropped += 1;
            continue;
        }
        let mut whole = Vec::with_capacity(line.len() + 1);
        whole.extend_from_slice(line);
        whole.push(b'\n');
        match console.write(&whole) {
            Ok(n) if n < whole.len() => *unwritten = whole.split_off(n),
            Ok(_) => {}
            Err(_) => dropped += 1,
        }
    }
    dropped
}

/// Serves `GET /v1/logs`: the ring, then (following) each line as it
/// comes, in chunks, until the app's streams end; last, what was dropped.
pub fn serve(server: Server, follow: bool, stream: &mut File) {
    if server.shared.lock().logs.is_none() && !server.context.logs {
        let why = "the app's output is not captured: set vminit.logs=capture";
        return server::send(stream, &super::http::Answer::error(404, why));
    }
    if !follow {
        let state = server.shared.lock();
        let (mut body, _) = state
            .logs
            .as_ref()
            .map_or((String::new(), 0), |r| r.since(0));
        body.push_str(
            &state
                .logs
                .as_ref()
                .map_or_else(|| Ring::default().summary(), Ring::summary),
        );
        drop(state);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
        return;
    }
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut seq = 0;
    loop {
        let mut state = server.shared.lock();
        // Done once the pump has read all it will: the app's last lines
        // come after SIGTERM reached the server.
        let done = state.logs_drained;
        let (text, next) = state
            .logs
            .as_ref()
            .map_or((String::new(), seq), |r| r.since(seq));
        if text.is_empty() && !done {
            if crate::sys::vsock::peer_closed(stream) {
                return;
            }
            state = server
                .shared
                .changed
                .wait_timeout(state, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            drop(state);
            continue;
        }
        let summary = state
            .logs
            .as_ref()
            .map_or_else(|| Ring::default().summary(), Ring::summary);
        drop(state);
        seq = next;
        if !text.is_empty() && write_chunk(stream, text.as_bytes()).is_err() {
            return;
        }
        if done && text.is_empty() {
            let _ = write_chunk(stream, summary.as_bytes());
            let _ = stream.write_all(b"0\r\n\r\n");
            return;
        }
    }
}

fn write_chunk(stream: &mut File, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
    stream.write_all(bytes)?;
    stream.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_and_at_the_longest() {
        let mut splitter = Splitter::default();
        assert_eq!(splitter.feed(b"one\ntw"), [b"one".to_vec()]);
        assert_eq!(splitter.feed(b"o\n\n"), [b"two".to_vec(), Vec::new()]);
        let long = vec![b'x'; MAX_LINE + 5];
        assert_eq!(splitter.feed(&long).len(), 1);
        assert_eq!(splitter.finish(), Some(vec![b'x'; 5]));
        assert_eq!(splitter.finish(), None);
        // A line of exactly the longest, then its newline: one line.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(splitter.feed(&exact), [vec![b'y'; MAX_LINE]]);
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn a_console_that_takes_nothing_drops_whole_lines_and_counts_them() {
        let (read, write) = fd::pipe().unwrap();
        let mut console = File::from(write);
        fd::set_nonblocking(&console).unwrap();
        let mut unwritten = Vec::new();
        let lines = [b"first".to_vec(), b"second".to_vec()];
        assert_eq!(to_console(Some(&mut console), &mut unwritten, &lines), 0);
        // Full: as a console that stalls.
        while console.write(&[b'.'; 4096]).is_ok() {}
        assert_eq!(to_console(Some(&mut console), &mut unwritten, &lines), 2);
        assert!(unwritten.is_empty());
        // Drained: lines go whole again.
        let mut drained = File::from(read);
        let mut sink = vec![0u8; 1 << 20];
        while fd::wait_readable(&[drained.as_fd()], Some(Duration::ZERO)).unwrap()[0] {
            fd::set_nonblocking(&drained).unwrap();
            if drained.read(&mut sink).is_err() {
                break;
            }
        }
        assert_eq!(to_console(Some(&mut console), &mut unwritten, &lines), 0);
    }

    #[test]
    fn the_ring_drops_the_oldest_and_counts_them() {
        let mut ring = Ring::default();
        // Empty lines are not free: a flood of them stays bounded.
        for _ in 0..100_000 {
            ring.push(1, Stream::Stdout, Vec::new());
        }
        assert_eq!(ring.lines.len(), MAX_RING_BYTES / LINE_OVERHEAD);
        let mut ring = Ring::default();
        let line = vec![b'a'; MAX_LINE - LINE_OVERHEAD];
        let count = MAX_RING_BYTES / MAX_LINE;
        for _ in 0..count + 3 {
            ring.push(1, Stream::Stdout, line.clone());
        }
        assert_eq!(ring.dropped, 3);
        assert_eq!(ring.lines.len(), count);
        let (text, next) = ring.since(0);
        assert_eq!(next, count as u64 + 3);
        assert_eq!(text.lines().count(), count);
        let (tail, _) = ring.since(next - 1);
        assert_eq!(tail.lines().count(), 1);
        ring.push(7, Stream::Stderr, b"caf\xc3\xa9 \"q\"".to_vec());
        let (last, _) = ring.since(next);
        assert_eq!(
            last,
            "{\"ts_ns\":7,\"stream\":\"stderr\",\"line\":\"caf\u{e9} \\\"q\\\"\"}\n"
        );
        assert_eq!(ring.summary(), "{\"dropped\":4,\"console_dropped\":0}\n");
    }
}
