//! Reaching the guest and speaking HTTP/1.1 to its API: through
//! Firecracker's (and cloud-hypervisor's, and `vhost-device-vsock`'s)
//! hybrid Unix socket, where `CONNECT PORT\n` is answered `OK …`, or
//! straight to a CID over AF_VSOCK (QEMU's `vhost-vsock-pci`).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Where the API is.
#[derive(Debug, Clone)]
pub enum Target {
    Uds { path: PathBuf, port: u32 },
    Vsock { cid: u32, port: u32 },
}

/// How long connecting, and the hybrid socket's handshake, may take.
const CONNECT_TIME: Duration = Duration::from_secs(10);

/// A connection to the API.
pub fn connect(target: &Target) -> io::Result<UnixStream> {
    match target {
        Target::Uds { path, port } => {
            let mut stream = UnixStream::connect(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            stream.set_read_timeout(Some(CONNECT_TIME))?;
            stream.write_all(format!("CONNECT {port}\n").as_bytes())?;
            // Byte by byte: what follows the line is the API's.
            let mut line = Vec::new();
            let mut byte = [0u8];
            while line.len() < 128 && byte[0] != b'\n' {
                if stream.read(&mut byte)? == 0 {
                    break;
                }
                line.push(byte[0]);
            }
            if !line.starts_with(b"OK ") {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!(
                        "{}: nothing listens on vsock port {port} in the guest (is vminit.api set?)",
                        path.display()
                    ),
                ));
            }
            stream.set_read_timeout(None)?;
            Ok(stream)
        }
        Target::Vsock { cid, port } => {
            use nix::sys::socket::{AddressFamily, SockFlag, SockType, VsockAddr, socket};
            let fd = socket(
                AddressFamily::Vsock,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )?;
            nix::sys::socket::connect(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &VsockAddr::new(*cid, *port),
            )
            .map_err(|e| io::Error::other(format!("vsock {cid}:{port}: {e}")))?;
            Ok(UnixStream::from(fd))
        }
    }
}

/// A request to make.
#[derive(Debug, Clone, Default)]
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub body: Option<&'a [u8]>,
    /// `Upgrade: tcp`: the connection becomes an exec's stream.
    pub upgrade: bool,
}

/// An answer's head, and the bytes read past it.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub rest: Vec<u8>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `call` on `stream` and reads the answer's head.
pub fn send(stream: &mut UnixStream, call: &Call<'_>) -> io::Result<Head> {
    let mut request = format!("{} {} HTTP/1.1\r\nHost: vminit\r\n", call.method, call.path);
    if let Some(token) = call.token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = call.body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    if call.upgrade {
        request.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(call.body.unwrap_or_default());
    stream.write_all(&bytes)?;
    read_head(stream)
}

fn read_head(stream: &mut UnixStream) -> io::Result<Head> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the guest closed the connection without an answer",
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(length)) => {
                let headers = response
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_owned(), value)
                    })
                    .collect();
                return Ok(Head {
                    status: response.code.unwrap_or(0),
                    headers,
                    rest: buffer[length..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buffer.len() < 64 * 1024 => {}
            _ => return Err(io::Error::other("the guest's answer is not HTTP/1.1")),
        }
    }
}

/// The whole body after `head`: its `Content-Length`, or to the end.
pub fn read_body(stream: &mut UnixStream, head: Head) -> io::Result<Vec<u8>> {
    let mut body = head.rest.clone();
    match head
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        Some(length) => {
            let missing = length.saturating_sub(body.len() as u64);
            stream.take(missing).read_to_end(&mut body)?;
        }
        None => {
            stream.read_to_end(&mut body)?;
        }
    }
    Ok(body)
}

/// Calls the API once and returns the answer's status and body.
pub fn call(target: &Target, call: &Call<'_>) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = connect(target)?;
    let head = send(&mut stream, call)?;
    let status = head.status;
    Ok((status, read_body(&mut stream, head)?))
}

/// Passes a chunked body's data to `sink` as it comes (`Transfer-Encoding:
/// chunked`, as `GET /v1/logs?follow=1` answers), until its last chunk.
pub fn read_chunked(
    stream: &mut UnixStream,
    mut buffer: Vec<u8>,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match httparse::parse_chunk_size(&buffer) {
            Ok(httparse::Status::Complete((start, size))) => {
                let size = usize::try_from(size).map_err(io::Error::other)?;
                // The data, then its CRLF.
                if buffer.len() >= start + size + 2 {
                    if size == 0 {
                        return Ok(());
                    }
                    sink(&buffer[start..start + size])?;
                    buffer.drain(..start + size + 2);
                    continue;
                }
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Err(io::Error::other("a chunk that is not HTTP/1.1's")),
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}
