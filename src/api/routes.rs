//! What each endpoint does, once [`super::http::route`] has checked the
//! token and chosen it: the app's state and record, requests to PID 1,
//! the guest's figures, its clock and entropy, files and execs.

use std::fs::File;
use std::io::Read as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::http::{Answer, Endpoint};
use super::server::{self, AppState, Server};
use super::{exec, sysinfo};
use crate::app::supervisor::Request;
use crate::config::signals;
use crate::sys::{clock, entropy};

pub use exec::{ExecDefaults, Execs};

/// The most a file read or written through the API may hold.
pub const MAX_FILE: usize = 1024 * 1024;
/// The most entropy one request may add.
pub const MAX_ENTROPY: usize = 4096;
/// How often a waiting request looks whether its client is still there.
const WAIT_SLICE: Duration = Duration::from_secs(1);

/// Answers `endpoint` on `stream`.
/// `early`: what the client sent after the body (an exec's first stdin).
pub fn handle(server: Server, endpoint: Endpoint, body: &[u8], early: Vec<u8>, stream: &mut File) {
    let answer = match endpoint {
        Endpoint::Status => Answer::ok(status(server)),
        Endpoint::Wait(timeout) => wait(server, timeout, stream),
        Endpoint::Signal => signal(server, body),
        Endpoint::Stop => stop(server, body),
        Endpoint::Sysinfo => {
            let pid = server.context.app_pid;
            let running = server.shared.lock().app != AppState::Exited;
            Answer::ok(sysinfo::gather(running.then_some(pid)))
        }
        Endpoint::Clock => set_clock(body),
        Endpoint::Entropy => add_entropy(body),
        Endpoint::PutFile => put_file(body),
        Endpoint::GetFile(path) => get_file(&path),
        Endpoint::Exec(upgrade) => return exec::handle(server, body, early, stream, upgrade),
        Endpoint::Resize(id) => exec::resize(server, id, body),
        Endpoint::CloseStdin(id) => exec::close_stdin(server, id, body),
        Endpoint::Logs(follow) => return super::logs::serve(server, follow, stream),
    };
    server::send(stream, &answer);
}

/// `GET /v1/status`.
fn status(server: Server) -> Value {
    let context = server.context;
    let state = server.shared.lock();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "app": {
            "pid": context.app_pid,
            "state": state.app.name(),
            "started_at": humantime::format_rfc3339_seconds(context.started_at).to_string(),
            "uptime_s": context.started.elapsed().as_secs(),
        },
        "exit": state.record.clone().unwrap_or(Value::Null),
    })
}

/// `GET /v1/wait`: the record once the app has ended; 408 with the state
/// when `timeout` passes first.
fn wait(server: Server, timeout: Option<Duration>, client: &File) -> Answer {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut state = server.shared.lock();
    loop {
        if let Some(record) = &state.record {
            return Answer::ok(record.clone());
        }
        // A client that left holds no place: the answer goes nowhere.
        if crate::sys::vsock::peer_closed(client) {
            return Answer::error(408, "the client left");
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Answer {
                status: 408,
                body: json!({ "state": state.app.name() }),
            };
        }
        let slice = left.map_or(WAIT_SLICE, |l| l.min(WAIT_SLICE));
        state = server
            .shared
            .changed
            .wait_timeout(state, slice)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// The body as a JSON object; an empty body is an empty object.
fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Answer> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(Answer::error(400, "the body must be a JSON object")),
    }
}

/// 409 once the app has ended: there is nothing left to signal or stop.
fn still_running(server: Server) -> Result<(), Answer> {
    let state = server.shared.lock().app;
    if state == AppState::Exited {
        return Err(Answer {
            status: 409,
            body: json!({"error": "the app has exited", "state": state.name()}),
        });
    }
    Ok(())
}

/// Asks PID 1 for `request`; 503 when the channel will not take it.
fn ask(server: Server, request: Request, done: Value) -> Answer {
    if server.ask(request) {
        Answer::ok(done)
    } else {
        Answer::error(503, "PID 1 did not take the request: try again")
    }
}

/// `POST /v1/signal` with `{"signal": "TERM" | "SIGTERM" | 15}`.
fn signal(server: Server, body: &[u8]) -> Answer {
    let fields = match object(body) {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let number = match fields.get("signal") {
        Some(Value::String(name)) => signals::parse(name).ok(),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| (1..=crate::sys::signal::MAX_SIGNAL).contains(n)),
        _ => None,
    };
    let Some(number) = number else {
        return Answer::error(
            400,
            "signal must be a name (TERM or SIGTERM) or a number from 1 to 64",
        );
    };
    if let Err(answer) = still_running(server) {
        return answer;
    }
    ask(
        server,
        Request::Signal(number),
        json!({ "signal": signals::name(number) }),
    )
}

/// `POST /v1/stop`, with `{"timeout_s": N}` for the grace period.
fn stop(server: Server, body: &[u8]) -> Answer {
    let fields = match object(body) {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let grace = match fields.get("timeout_s") {
        None => None,
        Some(v) => match v.as_f64().filter(|s| (0.0..=86_400.0).contains(s)) {
            Some(seconds) => Some(Duration::from_secs_f64(seconds)),
            None => {
                return Answer::error(400, "timeout_s must be seconds from 0 to 86400");
            }
        },
    };
    if let Err(answer) = still_running(server) {
        return answer;
    }
    ask(server, Request::Stop(grace), json!({ "state": "stopping" }))
}

/// `POST /v1/clock` with `{"realtime_ns": N}`.
fn set_clock(body: &[u8]) -> Answer {
    let fields = match object(body) {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let ns = fields
        .get("realtime_ns")
        .and_then(Value::as_i64)
        .filter(|ns| *ns >= 0);
    let (Some(ns), 1) = (ns, fields.len()) else {
        return Answer::error(
            400,
            "the body must be {\"realtime_ns\": N}, nanoseconds since 1970 as a whole number",
        );
    };
    match clock::set_realtime_ns(ns) {
        Ok(()) => Answer::ok(json!({ "realtime_ns": clock::realtime_ns() })),
        Err(e) => Answer::error(500, &format!("cannot set the clock: {e}")),
    }
}

/// `POST /v1/entropy` with `{"data": "<base64>"}`.
fn add_entropy(body: &[u8]) -> Answer {
    let fields = match object(body) {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let data = fields
        .get("data")
        .and_then(Value::as_str)
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .filter(|d| !d.is_empty() && d.len() <= MAX_ENTROPY);
    let (Some(data), 1) = (data, fields.len()) else {
        return Answer::error(
            400,
            "the body must be {\"data\": \"<base64>\"}, 1 to 4096 bytes",
        );
    };
    match entropy::add_and_reseed(&data) {
        Ok(()) => Answer::ok(json!({ "added": data.len() })),
        Err(e) => Answer::error(500, &format!("cannot add entropy: {e}")),
    }
}

/// `PUT /v1/files`, written as the metadata's `files` are.
fn put_file(body: &[u8]) -> Answer {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => return Answer::error(400, "the body must be a JSON object"),
    };
    let file = match crate::config::metadata::parse_file(&value) {
        Ok(file) => file,
        Err(why) => return Answer::error(400, &why),
    };
    if file.content.len() > MAX_FILE {
        return Answer::error(413, "content is over the 1 MiB a file may hold here");
    }
    match crate::machine::files::write_all(std::slice::from_ref(&file)) {
        Ok(()) => Answer::ok(json!({ "path": file.path, "size": file.content.len() })),
        Err(e) => Answer::error(500, &crate::log::chain(&e)),
    }
}

/// `GET /v1/files?path=`: a regular file of at most [`MAX_FILE`].
fn get_file(path: &str) -> Answer {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    if let Err(problem) = crate::config::validate::clean_absolute_path(path) {
        return Answer::error(400, &format!("path {problem}"));
    }
    // Looked at before it is opened: opening a device can act (a watchdog
    // starts counting). Without O_NONBLOCK, opening a FIFO would wait.
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Answer::error(400, "not a regular file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Answer::error(404, "no such file");
        }
        Err(e) => return Answer::error(403, &format!("cannot look at it: {e}")),
    }
    let opened = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Answer::error(404, "no such file");
        }
        Err(e) => return Answer::error(403, &format!("cannot open it: {e}")),
    };
    let Ok(meta) = file.metadata() else {
        return Answer::error(500, "cannot stat it");
    };
    if !meta.is_file() {
        return Answer::error(400, "not a regular file");
    }
    let mut content = Vec::new();
    // One byte more than allowed tells a file that is too big, whatever
    // its size says (a /proc file says 0).
    let limit = u64::try_from(MAX_FILE).unwrap_or(u64::MAX) + 1;
    if let Err(e) = (&mut file).take(limit).read_to_end(&mut content) {
        return Answer::error(500, &format!("cannot read it: {e}"));
    }
    if content.len() > MAX_FILE {
        return Answer::error(413, "the file is over the 1 MiB this endpoint gives");
    }
    Answer::ok(json!({
        "path": path,
        "content": base64::engine::general_purpose::STANDARD.encode(&content),
        "mode": format!("{:04o}", meta.mode() & 0o7777),
        "size": content.len(),
        "uid": meta.uid(),
        "gid": meta.gid(),
    }))
}
