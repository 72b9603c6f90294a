//! The API's server: the child process PID 1 forks for it. One thread
//! waits in poll(2) for connections, PID 1's notices and SIGTERM; each
//! connection gets a thread of its own, at most [`MAX_CONNECTIONS`] at
//! once (one over that is answered 503 at once, without waiting for its
//! request, and closed), each with [`CLIENT_TIME`] to send its request. What the connections share
//! (the app's state, its exit record, the running execs) sits behind one
//! mutex, and a condition variable wakes whoever waits on it.
//!
//! Every signal stays blocked, as PID 1 left them: SIGTERM, which PID 1
//! sends to everything left once the app has ended, is read from a
//! signalfd, and the server then takes no new connection and ends once
//! those it has are done, or [`DRAIN_TIME`] has passed.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use nix::sys::signalfd::SignalFd;

use super::http::{self, Answer, Parsed};
use super::link::{self, Notice};
use super::routes;
use crate::app::supervisor::Request;
use crate::sys::{channel, fd, signal, vsock};

/// How many connections are served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a client has to send its request (head and body).
pub const CLIENT_TIME: Duration = Duration::from_secs(10);
/// How long a write to a client may wait for it to take bytes: a client
/// that stops reading for longer is dropped.
pub const WRITE_TIME: Duration = Duration::from_secs(10);
/// How long the server lets its connections finish once SIGTERM came.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Each connection's thread: the requests are shallow, serde_json's
/// recursion is bounded (128 levels).
const THREAD_STACK: usize = 256 * 1024;

/// What the app is doing, as `/v1/status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    Running,
    Stopping,
    Exited,
}

impl AppState {
    pub fn name(self) -> &'static str {
        match self {
            AppState::Running => "running",
            AppState::Stopping => "stopping",
            AppState::Exited => "exited",
        }
    }
}

/// What does not change while the server runs.
#[derive(Debug)]
pub struct Context {
    pub token: Option<Vec<u8>>,
    pub app_pid: i32,
    pub started_at: SystemTime,
    pub started: Instant,
    /// The server's end of the channel to PID 1.
    pub channel: OwnedFd,
    pub exec: routes::ExecDefaults,
    /// The app's output is captured (`vminit.logs=capture`).
    pub logs: bool,
}

/// What the connections share.
#[derive(Debug)]
pub struct State {
    pub app: AppState,
    /// The exit record, once the app has ended.
    pub record: Option<Value>,
    pub connections: usize,
    pub ending: bool,
    pub execs: routes::Execs,
    /// The app's captured lines, once the first came.
    pub logs: Option<super::logs::Ring>,
    /// The log pump has read all it will.
    pub logs_drained: bool,
    /// The log pump could not go on: the server ends, to be restarted.
    pub logs_failed: bool,
    /// Large bodies being read ([`MAX_BULK_BODIES`]).
    pub bulk_bodies: usize,
}

#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    /// Notified whenever `state` changes.
    pub changed: Condvar,
}

impl Shared {
    /// The state; a thread that panicked with it held ends the whole
    /// server (the panic hook), so a poisoned lock is never seen.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Both, for the life of the server process.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    pub context: &'static Context,
    pub shared: &'static Shared,
}

impl Server {
    /// Asks PID 1 for `request`; false when the channel would not take it.
    pub fn ask(&self, request: Request) -> bool {
        channel::send(&self.context.channel, &link::encode_request(&request)).is_ok()
    }
}

/// Serves until SIGTERM (then drains) or until nothing can be served;
/// with `logs`, the app's stdout and stderr, pumps its output.
pub fn serve(
    listener: Option<&OwnedFd>,
    context: Context,
    initial: AppState,
    logs: Option<(File, File)>,
) {
    let Ok(termination) = signal::termination_file() else {
        return;
    };
    if let Some(server) = set_up(listener, context, initial, logs) {
        run(server, listener, &termination);
    }
}

/// The shared state, the log pump, a listener that never blocks; `None`
/// when any of it fails.
fn set_up(
    listener: Option<&OwnedFd>,
    context: Context,
    initial: AppState,
    logs: Option<(File, File)>,
) -> Option<Server> {
    // Someone must read the app's output: without the pipes, this server
    // ends and PID 1 starts another.
    if context.logs && logs.is_none() {
        return None;
    }
    let server = Server {
        context: Box::leak(Box::new(context)),
        shared: Box::leak(Box::new(Shared {
            state: Mutex::new(State {
                app: initial,
                record: None,
                connections: 0,
                ending: false,
                execs: routes::Execs::default(),
                logs: None,
                logs_drained: false,
                logs_failed: false,
                bulk_bodies: 0,
            }),
            changed: Condvar::new(),
        })),
    };
    if let Some((stdout, stderr)) = logs {
        std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || super::logs::pump(server, stdout, stderr))
            .ok()?;
    }
    // Taken without waiting: a connection gone between poll and accept
    // must not hold up PID 1's notices. (PID 1 never accepts on it.)
    if let Some(listener) = listener {
        fd::set_nonblocking(listener).ok()?;
    }
    Some(server)
}

/// The loop: PID 1's notices, SIGTERM (then the drain), connections.
fn run(server: Server, listener: Option<&OwnedFd>, termination: &SignalFd) {
    let mut drain_until: Option<Instant> = None;
    let mut failures = 0;
    loop {
        let (connections, ending, drained) = {
            let state = server.shared.lock();
            if state.logs_failed {
                return;
            }
            let drained = !server.context.logs || state.logs_drained;
            (state.connections, state.ending, drained)
        };
        if let Some(until) = drain_until
            && ((connections == 0 && drained) || Instant::now() >= until)
        {
            return;
        }
        // Watched in this order: the channel, SIGTERM (until it came),
        // the listener (until then too).
        let mut files = vec![server.context.channel.as_fd()];
        if !ending {
            files.push(termination.as_fd());
            files.extend(listener.map(AsFd::as_fd));
        }
        // While draining: look again soon.
        let timeout = ending.then_some(Duration::from_millis(50));
        let Ok(ready) = fd::wait_readable(&files, timeout) else {
            return;
        };
        if ready[0] && !take_notices(server) {
            return;
        }
        if ready.get(1) == Some(&true) && drain_until.is_none() {
            let _ = termination.read_signal();
            server.shared.lock().ending = true;
            server.shared.changed.notify_all();
            drain_until = Some(Instant::now() + DRAIN_TIME);
            continue;
        }
        if let Some(listener) = listener
            && ready.get(2) == Some(&true)
            && !take_connection(server, listener, connections, &mut failures)
        {
            return;
        }
    }
}

/// Accepts one connection: served, or turned away when [`MAX_CONNECTIONS`]
/// are; false after 100 failures in a row.
fn take_connection(
    server: Server,
    listener: &OwnedFd,
    connections: usize,
    failures: &mut u32,
) -> bool {
    match vsock::accept(listener, CLIENT_TIME) {
        Ok(stream) if connections >= MAX_CONNECTIONS => {
            *failures = 0;
            turn_away(stream);
        }
        Ok(stream) => {
            *failures = 0;
            start_connection(server, stream);
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => {
            // A connection reset before it was taken: on to the next;
            // but not forever.
            *failures += 1;
            if *failures >= 100 {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    true
}

/// Takes what PID 1 sent; false once PID 1's end is gone.
fn take_notices(server: Server) -> bool {
    loop {
        match channel::receive(&server.context.channel, false) {
            Ok(Some(message)) => {
                let mut state = server.shared.lock();
                match link::decode_notice(&message) {
                    Some(Notice::Stopping) if state.app == AppState::Running => {
                        state.app = AppState::Stopping;
                    }
                    Some(Notice::Exited(record)) => {
                        state.app = AppState::Exited;
                        state.record = serde_json::from_slice(record.as_bytes()).ok();
                    }
                    _ => {}
                }
                drop(state);
                server.shared.changed.notify_all();
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// Answers 503 and closes, without waiting for the request or for the
/// client to take the answer (it fits the socket's buffer).
fn turn_away(mut stream: File) {
    let busy = Answer::error(503, "too many connections at once: try again");
    let _ = vsock::set_timeout(&stream, Duration::from_millis(1));
    let _ = stream.write_all(&busy.to_bytes());
}

/// Serves `stream` on a thread of its own (without a thread, it is
/// turned away).
fn start_connection(server: Server, stream: File) {
    let Ok(spare) = stream.try_clone() else {
        return;
    };
    server.shared.lock().connections += 1;
    let spawned = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let _slot = Slot(server);
            connection(server, stream);
        });
    if spawned.is_err() {
        server.shared.lock().connections -= 1;
        turn_away(spare);
    }
}

/// A connection's place, given back when its thread ends.
struct Slot(Server);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.shared.lock().connections -= 1;
        self.0.shared.changed.notify_all();
    }
}

/// One request on `stream`: read within [`CLIENT_TIME`], answered.
fn connection(server: Server, mut stream: File) {
    let deadline = Instant::now() + CLIENT_TIME;
    let (request, mut body) = match read_head(&mut stream, deadline) {
        Ok(Some(read)) => read,
        Ok(None) => return,
        Err(answer) => return send(&mut stream, &answer),
    };
    let endpoint = match http::route(&request, server.context.token.as_deref()) {
        Ok(endpoint) => endpoint,
        Err(answer) => return send(&mut stream, &answer),
    };
    if request.content_length.is_none() && !body.is_empty() && !request.upgrade {
        let why = "a body needs a Content-Length";
        return send(&mut stream, &Answer::error(411, why));
    }
    let length = usize::try_from(request.content_length.unwrap_or(0)).unwrap_or(usize::MAX);
    let bulk = length > http::MAX_BODY;
    if bulk && !take_bulk(server) {
        let why = "too many large bodies at once: try again";
        return send(&mut stream, &Answer::error(503, why));
    }
    let read = read_body(&mut stream, &mut body, length, deadline);
    let early = body.split_off(length.min(body.len()));
    if bulk {
        // Read: its place is free for the next.
        server.shared.lock().bulk_bodies -= 1;
    }
    if !read || vsock::set_timeout(&stream, WRITE_TIME).is_err() {
        return;
    }
    routes::handle(server, endpoint, &body, early, &mut stream);
}

/// How many large bodies ([`http::MAX_BODY`] and more) are read at once:
/// the server's memory stays within a few MiB of them.
const MAX_BULK_BODIES: usize = 4;

/// Takes a place to read a large body; false when all are taken.
fn take_bulk(server: Server) -> bool {
    let mut state = server.shared.lock();
    if state.bulk_bodies >= MAX_BULK_BODIES {
        return false;
    }
    state.bulk_bodies += 1;
    true
}

/// The request's head, and what came after it; `Ok(None)` when the
/// client left or stalled first.
fn read_head(
    stream: &mut File,
    deadline: Instant,
) -> Result<Option<(http::Request, Vec<u8>)>, Answer> {
    let mut head = Vec::with_capacity(1024);
    loop {
        if !read_some(stream, &mut head, deadline) {
            return Ok(None);
        }
        match http::parse(&head) {
            Parsed::Complete(request) => {
                let body = head.split_off(request.head_len);
                return Ok(Some((request, body)));
            }
            Parsed::Bad => {
                let why = "not an HTTP/1.1 request head of at most 16 KiB and 32 headers";
                return Err(Answer::error(400, why));
            }
            Parsed::Partial => {}
        }
    }
}

/// Reads until `body` holds `length` bytes; false when the client left or
/// stalled first. The length was checked against the endpoint's bound.
fn read_body(stream: &mut File, body: &mut Vec<u8>, length: usize, deadline: Instant) -> bool {
    body.reserve(length.saturating_sub(body.len()));
    while body.len() < length {
        if !read_some(stream, body, deadline) {
            return false;
        }
    }
    true
}

/// One read onto `buffer`, given what is left of the client's time; false
/// at its end, the client's end, or an error.
fn read_some(stream: &mut File, buffer: &mut Vec<u8>, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() || vsock::set_timeout(stream, left).is_err() {
        return false;
    }
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(read) => {
            buffer.extend_from_slice(&chunk[..read]);
            true
        }
    }
}

/// Writes `answer`; a client that left is no one's concern.
pub fn send(stream: &mut File, answer: &Answer) {
    let _ = vsock::set_timeout(stream, WRITE_TIME);
    let _ = stream.write_all(&answer.to_bytes());
}
