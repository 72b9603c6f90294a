//! The host API (`vminit.api=vsock:PORT`): HTTP/1.1 with JSON on a vsock
//! port, which the host reaches as Firecracker users do (`CONNECT PORT` on
//! the hybrid Unix socket). Off unless configured; with no token in the
//! metadata file it stays off unless `vminit.api.insecure` says otherwise.
//!
//! It runs in a child process of PID 1, forked once the app has started:
//! nothing it reads from a client can block, panic or grow PID 1, and its
//! own end (a panic ends only the child) never reaches the app's status.
//! The child answers one connection at a time, each given 10 s in all to
//! send its head (at most 16 KiB) and take its answer. It ends with the
//! app: PID 1 kills it once the app is reaped, before the exit record.
//!
//! This first step answers `GET /v1/status`; [`http`] parses and answers.

pub mod http;

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::config::Api;
use crate::sys::{process, signal, vsock};
use crate::{info, warn};

/// How long a client has to send its request and take its answer.
const CLIENT_TIME: Duration = Duration::from_secs(10);

/// What the API says of the app.
#[derive(Debug, Clone)]
struct AppStatus {
    pid: i32,
    started_at: SystemTime,
    started: Instant,
}

impl AppStatus {
    fn to_json(&self) -> Value {
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "app": {
                "pid": self.pid,
                "state": "running",
                "started_at": humantime::format_rfc3339_seconds(self.started_at).to_string(),
                "uptime_s": self.started.elapsed().as_secs(),
            },
            "exit": Value::Null,
        })
    }
}

/// Starts the API for the app `app`, as `api` asks: listens on its port
/// (in PID 1, so a failure is logged with the rest), then forks the child
/// that serves it. Returns the child's pid; on any failure the app runs
/// on without the API, and one warning says why. Only on a machine
/// (`machine`): vsock is not a PID namespace's.
pub fn start(api: &Api, app: i32, machine: bool) -> Option<i32> {
    if api.token.is_none() && !api.insecure {
        warn!(
            "vminit.api is set but the metadata file gives no token (\"api\": {{\"token\": …}}): the API stays off (vminit.api.insecure=1 starts it without one)"
        );
        return None;
    }
    if !machine {
        warn!("vminit.api is a machine's: skipped in a PID namespace");
        return None;
    }
    if api.token.is_none() {
        warn!(
            "vminit.api.insecure: the API on vsock port {} answers anyone",
            api.port
        );
    }
    let listener = match vsock::listen(api.port) {
        Ok(listener) => listener,
        Err(e) => {
            warn!("cannot listen on vsock port {} for the API: {e}", api.port);
            return None;
        }
    };
    let token = api.token.as_ref().map(|t| t.0.clone().into_bytes());
    let status = AppStatus {
        pid: app,
        started_at: SystemTime::now(),
        started: Instant::now(),
    };
    // SAFETY: vminit is single-threaded.
    match unsafe { process::fork_and_run(|| serve(&listener, token.as_deref(), &status)) } {
        Ok(child) => {
            info!("API listening on vsock port {} (pid {child})", api.port);
            Some(child)
        }
        Err(e) => {
            warn!("cannot start the API: {e}");
            None
        }
    }
}

/// Ends the API's child and reaps it: once the app has ended, before its
/// record is made, so that no caller is told it still runs.
pub fn stop(child: i32) {
    let _ = signal::send(child, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(1);
    while process::running(child) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The child: answers connections until it is ended. Signals are a
/// program's again (the stop signal ends it), but for SIGPIPE, which stays
/// blocked: a client that leaves early is an error on the write, not the
/// child's death.
fn serve(listener: &std::os::fd::OwnedFd, token: Option<&[u8]>, status: &AppStatus) {
    // With PID 1's mask kept, the stop's SIGTERM could not end it.
    if signal::reset_for_exec(signal::ignored().unwrap_or(0)).is_err()
        || signal::block(nix::sys::signal::Signal::SIGPIPE).is_err()
    {
        return;
    }
    let mut failures = 0;
    while failures < 100 {
        let Ok(mut stream) = vsock::accept(listener, CLIENT_TIME) else {
            // A connection reset before it was taken: the next one; but
            // not forever.
            failures += 1;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        failures = 0;
        let deadline = Instant::now() + CLIENT_TIME;
        if let Some(answer) = read_and_answer(&mut stream, token, status, deadline) {
            let left = deadline.saturating_duration_since(Instant::now());
            if vsock::set_timeout(&stream, left).is_ok() {
                let _ = stream.write_all(&answer);
            }
        }
    }
}

/// Reads one request's head (at most [`http::MAX_HEAD`]) and answers it;
/// `None` when the client left or stalled first.
fn read_and_answer(
    stream: &mut std::fs::File,
    token: Option<&[u8]>,
    status: &AppStatus,
    deadline: Instant,
) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        // Each read gets what is left of the client's time, no more.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || vsock::set_timeout(stream, left).is_err() {
            return None;
        }
        let read = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        head.extend_from_slice(&chunk[..read]);
        match http::parse(&head) {
            http::Parsed::Complete(request) => {
                return Some(http::answer(&request, token, || status.to_json()).to_bytes());
            }
            http::Parsed::Bad => {
                let why = "not an HTTP/1.1 request head of at most 16 KiB and 32 headers";
                return Some(http::Answer::error(400, why).to_bytes());
            }
            http::Parsed::Partial => {}
        }
    }
}
