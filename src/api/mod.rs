//! The host API (`vminit.api=vsock:PORT`): HTTP/1.1 with JSON on a vsock
//! port, which the host reaches as Firecracker users do (`CONNECT PORT` on
//! the hybrid Unix socket). Off unless configured; with no token in the
//! metadata file it stays off unless `vminit.api.insecure` says otherwise.
//!
//! **Why a child process.** The server runs in a child of PID 1, forked
//! once the app has started ([`server`]). Nothing a client sends can then
//! block, panic or grow PID 1: a panic, a leak or a stuck thread ends or
//! bloats the child alone, and PID 1, which reaps it like any child,
//! starts a new one ([`RESTART_FIRST`], doubling to [`RESTART_MOST`]). The
//! app's status never passes through it. PID 1 keeps the listening
//! socket, so connections queue while a new child starts. The other
//! design, serving in PID 1's own loop, would need every read, write and
//! parse proven never to block or panic, and threads could not be used.
//!
//! PID 1 and the child talk over a [`crate::sys::channel`] pair: the child
//! asks for signals and stops ([`link`]), which the supervisor acts on when
//! the channel raises SIGIO; PID 1 tells the child when a stop begins and,
//! once the app has ended, its exit record, which answers `/v1/wait`. Then
//! PID 1's end of run stops everything left, the child among it.

pub mod exec;
pub mod http;
pub mod link;
pub mod logs;
pub mod routes;
pub mod server;
pub mod sysinfo;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant, SystemTime};

use crate::app::supervisor::{Helper, Request};
use crate::config::Api as ApiConfig;
use crate::sys::{channel, fd, process, vsock};
use crate::{info, warn};
use link::Notice;
use server::{AppState, Context};

/// How soon a server that died is started again, at first.
pub const RESTART_FIRST: Duration = Duration::from_millis(100);
/// The longest wait before a restart, after repeated deaths.
pub const RESTART_MOST: Duration = Duration::from_secs(30);
/// The longest wait with the app's output captured: its pipes hold 1 MiB.
pub const RESTART_MOST_WITH_LOGS: Duration = Duration::from_secs(1);
/// A server that lived this long has its backoff forgotten.
const HEALTHY: Duration = Duration::from_secs(60);

/// PID 1's side of the API: the listener, what each server child is
/// given, and the child of the moment.
#[derive(Debug)]
pub struct Service {
    /// `None` when it could not listen, yet pumps the app's output.
    listener: Option<OwnedFd>,
    port: u32,
    token: Option<Vec<u8>>,
    app_pid: i32,
    started_at: SystemTime,
    started: Instant,
    exec: exec::ExecDefaults,
    /// The read ends of the app's stdout and stderr, when captured: kept
    /// here, so that the app never writes to a pipe with no reader.
    logs: Option<(OwnedFd, OwnedFd)>,
    state: AppState,
    /// The running child and PID 1's end of its channel.
    child: Option<(i32, OwnedFd)>,
    child_started: Instant,
    /// Deaths in a row, for the backoff.
    deaths: u32,
    restart_at: Option<Instant>,
}

/// Whether the API will start, as `config` asks, on a machine or not
/// (`machine`), with the warning that says why not.
pub fn will_start(config: &ApiConfig, machine: bool) -> bool {
    if config.token.is_none() && !config.insecure {
        warn!(
            "vminit.api is set but the metadata file gives no token (\"api\": {{\"token\": …}}): the API stays off (vminit.api.insecure=1 starts it without one)"
        );
        return false;
    }
    if !machine {
        warn!("vminit.api is a machine's: skipped in a PID namespace");
        return false;
    }
    true
}

/// Starts the API for the app `app`, as `config` asks ([`will_start`]
/// said yes): listens on its port (in PID 1, so a failure is logged with
/// the rest), then forks the child that serves it, which also pumps the
/// app's output when `logs` holds it. On any failure the app runs on
/// without the API, and one warning says why.
pub fn start(
    config: &ApiConfig,
    app: i32,
    exec: exec::ExecDefaults,
    logs: Option<(OwnedFd, OwnedFd)>,
) -> Option<Service> {
    if config.token.is_none() {
        warn!(
            "vminit.api.insecure: the API on vsock port {} answers anyone",
            config.port
        );
    }
    let listener = match vsock::listen(config.port) {
        Ok(listener) => Some(listener),
        Err(e) => {
            warn!(
                "cannot listen on vsock port {} for the API: {e}",
                config.port
            );
            // Someone must still read the app's output.
            logs.as_ref()?;
            None
        }
    };
    let mut api = Service {
        listener,
        port: config.port,
        token: config.token.as_ref().map(|t| t.0.clone().into_bytes()),
        app_pid: app,
        started_at: SystemTime::now(),
        started: Instant::now(),
        exec,
        logs,
        state: AppState::Running,
        child: None,
        child_started: Instant::now(),
        deaths: 0,
        restart_at: None,
    };
    if !api.fork() {
        // Tried again as after a death: PID 1 holds the app's pipes, which
        // someone must read.
        api.restart_at = Some(Instant::now() + RESTART_FIRST);
    }
    Some(api)
}

impl Service {
    /// Forks a server child; false (with a warning) when it cannot.
    fn fork(&mut self) -> bool {
        let (ours, theirs) = match channel::pair() {
            Ok(pair) => pair,
            Err(e) => {
                warn!("cannot start the API: no channel to it: {e}");
                return false;
            }
        };
        if let Err(e) = fd::signal_when_ready(&ours) {
            warn!("cannot start the API: its channel cannot signal: {e}");
            return false;
        }
        let context = Context {
            token: self.token.clone(),
            app_pid: self.app_pid,
            started_at: self.started_at,
            started: self.started,
            channel: theirs,
            exec: self.exec.clone(),
            logs: self.logs.is_some(),
        };
        let (listener, state, logs) = (self.listener.as_ref(), self.state, self.logs.as_ref());
        let work = move || {
            // The child's own copies, for its pump thread to own.
            let logs = logs.and_then(|(out, err)| {
                Some((
                    File::from(out.try_clone().ok()?),
                    File::from(err.try_clone().ok()?),
                ))
            });
            server::serve(listener, context, state, logs);
        };
        // SAFETY: PID 1 is single-threaded.
        match unsafe { process::fork_and_run(work) } {
            Ok(child) => {
                match listener {
                    Some(_) => info!("API listening on vsock port {} (pid {child})", self.port),
                    None => info!("the app's output is captured (pid {child})"),
                }
                self.child = Some((child, ours));
                self.child_started = Instant::now();
                true
            }
            Err(e) => {
                warn!("cannot start the API: {e}");
                false
            }
        }
    }

    fn tell(&self, notice: &Notice) {
        if let Some((_, channel)) = &self.child {
            let _ = channel::send(channel, &link::encode_notice(notice));
        }
    }
}

impl Helper for Service {
    fn owns(&self, pid: i32) -> bool {
        self.child.as_ref().is_some_and(|(child, _)| *child == pid)
    }

    fn ended(&mut self, status: &str) {
        self.child = None;
        if self.child_started.elapsed() >= HEALTHY {
            self.deaths = 0;
        }
        // The app's output waits in its pipes meanwhile: with it
        // captured, never more than a second.
        let most = if self.logs.is_some() {
            RESTART_MOST_WITH_LOGS
        } else {
            RESTART_MOST
        };
        let delay = RESTART_FIRST
            .saturating_mul(1 << self.deaths.min(16))
            .min(most);
        self.deaths += 1;
        warn!("the API's server {status}: starting another in {delay:?}");
        self.restart_at = Some(Instant::now() + delay);
    }

    fn restart_due(&self) -> Option<Instant> {
        self.restart_at
    }

    fn restart(&mut self) {
        self.restart_at = None;
        if !self.fork() {
            self.restart_at = Some(Instant::now() + RESTART_MOST);
        }
    }

    fn requests(&mut self) -> Vec<Request> {
        let mut requests = Vec::new();
        let Some((_, channel)) = &self.child else {
            return requests;
        };
        // Bounded: a child that floods the channel is read no further.
        while requests.len() < 64 {
            match channel::receive(channel, false) {
                Ok(Some(message)) => requests.extend(link::decode_request(&message)),
                _ => break,
            }
        }
        requests
    }

    fn stopping(&mut self) {
        self.state = AppState::Stopping;
        self.tell(&Notice::Stopping);
    }

    fn exited(&mut self, record: &serde_json::Value) {
        self.state = AppState::Exited;
        self.restart_at = None;
        self.tell(&Notice::Exited(record.to_string()));
    }

    fn finish(&mut self) {
        // What the app wrote last and no server read (it was restarting,
        // or killed with the rest): to the console, within a second.
        if let Some((stdout, stderr)) = &self.logs {
            let deadline = Instant::now() + Duration::from_secs(1);
            for pipe in [stdout, stderr] {
                crate::sys::stdio::drain_to_stderr(pipe, deadline);
            }
        }
    }
}
