//! `POST /v1/exec`: a command run beside the app, as `docker exec` runs
//! one: by default as the app's user, in its working directory, with its
//! environment (and the request's over it); in a process group of its
//! own, or with a terminal in a session of its own. Never through a shell
//! unless argv names one.
//!
//! Buffered, the answer holds its exit and its output (each stream capped
//! at [`OUTPUT_CAP`], the rest read and dropped). Interactive (`Upgrade:
//! tcp`), the connection becomes its stream: raw bytes on a terminal, or
//! Docker's 8-byte frames without one, and at the end one frame of stream
//! 3 with its exit as JSON.
//!
//! The execs are the server's children: it reaps them, never PID 1 (which
//! could not tell them from the app's), and a timeout or a client that
//! goes away ends their group with SIGKILL. At most [`MAX_EXECS`] run at
//! once; one more is answered 429.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::http::Answer;
use super::server::{self, Server};
use crate::app::identity::Identity;
use crate::config::signals;
use crate::sys::fd::{self, Interest};
use crate::sys::process::{self, Reaped, SpawnError, Step};
use crate::sys::{signal, tty};

/// How many execs run at once, buffered and interactive together.
pub const MAX_EXECS: usize = 8;
/// The most of each output stream a buffered exec's answer holds.
pub const OUTPUT_CAP: usize = 1024 * 1024;
/// The most stdin a buffered exec's request may carry.
pub const MAX_STDIN: usize = 1024 * 1024;
/// How long a process killed with SIGKILL has to be reaped before the
/// exec is answered without its status (uninterruptible sleep).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// What an exec gets unless it asks otherwise: the app's.
#[derive(Debug, Clone, Default)]
pub struct ExecDefaults {
    pub env: Vec<(OsString, OsString)>,
    pub workdir: Option<String>,
    pub user: Option<Identity>,
    pub no_new_privs: bool,
}

/// The running execs.
#[derive(Debug, Default)]
pub struct Execs {
    pub running: usize,
    next_id: u64,
    /// The interactive execs by id, for resizes and the end of stdin: a
    /// few, so a list (a map's code would cost 4 KB of the binary).
    sessions: Vec<(u64, Session)>,
}

/// What other requests may do to an interactive exec.
#[derive(Debug, Clone, Default)]
struct Session {
    /// Its terminal's master, with `"tty": true`.
    terminal: Option<Arc<File>>,
    /// Without a terminal: how to end its stdin.
    stdin: Option<Arc<StdinEnd>>,
}

/// Ends an interactive exec's stdin once it has had so many bytes of the
/// client's: the bytes travel on the exec's connection, the request on
/// another, so the count keeps them in order. (Firecracker's and
/// cloud-hypervisor's hybrid sockets end the whole connection when the
/// host half-closes it, so a half-close cannot say it there.)
#[derive(Debug)]
struct StdinEnd {
    /// Bytes after which stdin ends; `u64::MAX` until asked.
    after: std::sync::atomic::AtomicU64,
    /// Written to wake the exec's pump, which polls its other end.
    wake: File,
}

/// An exec's request, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    /// All of stdin, when given in the request (an interactive exec then
    /// reads none from the connection).
    pub stdin: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    pub tty: bool,
    /// The terminal's first size, rows and columns.
    pub size: Option<(u16, u16)>,
}

/// Reads an exec's body; the error says which field breaks which rule.
pub fn parse_request(body: &[u8]) -> Result<ExecRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the body must be a JSON object".to_owned())?;
    let fields = value
        .as_object()
        .ok_or_else(|| "the body must be a JSON object".to_owned())?;
    let mut request = ExecRequest::default();
    for (field, v) in fields {
        match set_field(&mut request, field, v) {
            Ok(()) => {}
            Err(Some(rule)) => return Err(format!("{field} must be {rule}")),
            Err(None) => {
                return Err(format!(
                    "unknown field {}: known are argv, env, cwd, user, stdin, timeout_s, tty, rows, cols",
                    crate::config::error::escape(field)
                ));
            }
        }
    }
    if request.argv.is_empty() {
        return Err("argv must be given".to_owned());
    }
    Ok(request)
}

/// A string without NUL.
fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.contains('\0')).map(str::to_owned)
}

/// Sets one field of `request`; `Err` with the rule it breaks, or `None`
/// for a field that is not an exec's.
fn set_field(
    request: &mut ExecRequest,
    field: &str,
    v: &Value,
) -> Result<(), Option<&'static str>> {
    match field {
        "argv" => match v
            .as_array()
            .and_then(|a| a.iter().map(text).collect::<Option<Vec<_>>>())
        {
            Some(argv) if !argv.is_empty() && !argv[0].is_empty() => request.argv = argv,
            _ => return Err(Some("a non-empty array of strings without NUL")),
        },
        "env" => {
            request.env = environment(v)
                .ok_or(Some("an object of NAME: \"value\" (no = or NUL in a name)"))?;
        }
        "cwd" => match text(v) {
            Some(cwd) if crate::config::validate::clean_absolute_path(&cwd).is_ok() => {
                request.cwd = Some(cwd);
            }
            _ => return Err(Some("a clean absolute path")),
        },
        "user" => request.user = Some(text(v).ok_or(Some("a string, name|uid[:gid]"))?),
        "stdin" => {
            let data = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .filter(|data| data.len() <= MAX_STDIN);
            request.stdin = Some(data.ok_or(Some("base64 of at most 1 MiB"))?);
        }
        "timeout_s" => match v.as_f64() {
            Some(s) if (0.0..=86_400.0).contains(&s) && s > 0.0 => {
                request.timeout = Some(Duration::from_secs_f64(s));
            }
            _ => return Err(Some("a number of seconds above 0, at most 86400")),
        },
        "tty" => request.tty = v.as_bool().ok_or(Some("true or false"))?,
        "rows" | "cols" => {
            let n = v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(Some("a number from 0 to 65535"))?;
            let (rows, cols) = request.size.unwrap_or((24, 80));
            request.size = Some(if field == "rows" {
                (n, cols)
            } else {
                (rows, n)
            });
        }
        _ => return Err(None),
    }
    Ok(())
}

/// `{"NAME": "value", …}` as pairs; `None` for a name that is empty or
/// holds `=` or NUL, or a value that is not a string without NUL.
fn environment(v: &Value) -> Option<Vec<(String, String)>> {
    v.as_object()?
        .iter()
        .map(|(key, value)| {
            let valid = !key.is_empty() && !key.contains(['=', '\0']);
            valid.then_some(())?;
            Some((key.clone(), text(value)?))
        })
        .collect()
}

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed(i32),
    /// It could not be run: 127 not found, 126 otherwise.
    NotRun(i32),
    /// Killed, and not reaped within [`KILL_WAIT`].
    Lost,
}

impl Ended {
    /// `{"exit_code", "signal"}` as the exit record has them, the signal
    /// by name (`"KILL"`).
    pub fn to_json(self) -> Value {
        let (code, signal) = match self {
            Ended::Exited(code) | Ended::NotRun(code) => (code, None),
            Ended::Killed(signal) => (128 + signal, Some(signal)),
            Ended::Lost => (crate::record::EXIT_INTERNAL, Some(libc::SIGKILL)),
        };
        let name = signal.map(|s| {
            let name = signals::name(s);
            name.strip_prefix("SIG").unwrap_or(&name).to_owned()
        });
        json!({ "exit_code": code, "signal": name })
    }
}

/// The Docker stream header: the stream, three zeros, the length (BE).
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut framed = Vec::with_capacity(8 + payload.len());
    framed.extend_from_slice(&[stream, 0, 0, 0]);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(payload);
    framed
}

/// A place among the running execs, given back on drop.
struct ExecSlot {
    server: Server,
    id: u64,
}

impl Execs {
    fn session(&self, id: u64) -> Option<Session> {
        let found = self.sessions.iter().find(|(i, _)| *i == id);
        found.map(|(_, session)| session.clone())
    }
}

impl Drop for ExecSlot {
    fn drop(&mut self) {
        let mut state = self.server.shared.lock();
        state.execs.running -= 1;
        state.execs.sessions.retain(|(id, _)| *id != self.id);
    }
}

/// Takes a place, or `None` when [`MAX_EXECS`] run.
fn take_slot(server: Server) -> Option<ExecSlot> {
    let mut state = server.shared.lock();
    if state.execs.running >= MAX_EXECS {
        return None;
    }
    state.execs.running += 1;
    state.execs.next_id += 1;
    Some(ExecSlot {
        server,
        id: state.execs.next_id,
    })
}

/// A started process: its pid, and the parent's ends of its streams (no
/// stdin end when a terminal carries all three).
struct Child {
    pid: i32,
    stdin: Option<OwnedFd>,
    stdout: File,
    stderr: Option<File>,
}

/// Serves `POST /v1/exec`.
/// With `upgrade`, `early` holds what the client sent after the request:
/// the first of its stdin.
pub fn handle(server: Server, body: &[u8], early: Vec<u8>, stream: &mut File, upgrade: bool) {
    let request = match parse_request(body) {
        Ok(request) => request,
        Err(why) => return server::send(stream, &Answer::error(400, &why)),
    };
    if request.tty && !upgrade {
        let why = "a terminal needs the interactive exec (Upgrade: tcp)";
        return server::send(stream, &Answer::error(400, why));
    }
    let Some(slot) = take_slot(server) else {
        let why = format!("{MAX_EXECS} execs run already: try again");
        return server::send(stream, &Answer::error(429, &why));
    };
    let identity = match &request.user {
        Some(user) => match resolve(user) {
            Ok(identity) => Some(identity),
            Err(why) => return server::send(stream, &Answer::error(400, &why)),
        },
        None => server.context.exec.user.clone(),
    };
    let started = match start(server, &request, identity.as_ref()) {
        Ok(child) => child,
        Err(failure) => {
            let (code, why) = not_run(&failure, &request);
            if upgrade {
                let _ = stream.write_all(&upgraded(slot.id));
                let _ = stream.write_all(&frame(2, why.as_bytes()));
                let _ = stream.write_all(&frame(
                    3,
                    Ended::NotRun(code).to_json().to_string().as_bytes(),
                ));
                return;
            }
            let mut body = Ended::NotRun(code).to_json();
            body["stdout"] = json!("");
            body["stderr"] = json!(base64::engine::general_purpose::STANDARD.encode(why));
            body["truncated"] = json!(false);
            return server::send(stream, &Answer::ok(body));
        }
    };
    let deadline = request.timeout.map(|t| Instant::now() + t);
    if upgrade {
        interactive(&slot, started, stream, &request, early, deadline);
    } else {
        buffered(started, stream, request.stdin.unwrap_or_default(), deadline);
    }
}

fn resolve(user: &str) -> Result<Identity, String> {
    let spec = crate::config::user::parse_user(user).map_err(|p| format!("user {p}"))?;
    crate::app::start::resolve_user(&spec).map_err(|e| e.to_string())
}

/// Starts the process, with pipes or a terminal for its streams.
fn start(
    server: Server,
    request: &ExecRequest,
    identity: Option<&Identity>,
) -> Result<Child, SpawnError> {
    let failed = |error| SpawnError {
        step: Step::Stdio,
        error,
    };
    let defaults = &server.context.exec;
    let mut env = defaults.env.clone();
    for (key, value) in &request.env {
        env.retain(|(k, _)| k != key.as_str());
        env.push((key.into(), value.into()));
    }
    let spawn = |stdio: [i32; 3], new_session: bool| {
        process::spawn(&process::Spawn {
            argv: &request.argv,
            env: &env,
            workdir: request.cwd.as_deref().or(defaults.workdir.as_deref()),
            take_terminal: false,
            limits: &[],
            user: identity.map(|i| (i.uid, i.gid, i.groups.as_slice())),
            no_new_privs: defaults.no_new_privs,
            stdio: Some(stdio),
            new_session,
        })
    };
    if request.tty {
        let (master, terminal) = tty::open_pty().map_err(failed)?;
        if let Some((rows, cols)) = request.size {
            let _ = tty::set_window_size(&master, rows, cols);
        }
        let raw = terminal.as_raw_fd();
        let pid = spawn([raw, raw, raw], true)?;
        let stderr = None;
        return Ok(Child {
            pid,
            stdin: None,
            stdout: master,
            stderr,
        });
    }
    let (stdin_read, stdin_write) = fd::pipe().map_err(failed)?;
    let (stdout_read, stdout_write) = fd::pipe().map_err(failed)?;
    let (stderr_read, stderr_write) = fd::pipe().map_err(failed)?;
    let pid = spawn(
        [
            stdin_read.as_raw_fd(),
            stdout_write.as_raw_fd(),
            stderr_write.as_raw_fd(),
        ],
        false,
    )?;
    Ok(Child {
        pid,
        stdin: Some(stdin_write),
        stdout: File::from(stdout_read),
        stderr: Some(File::from(stderr_read)),
    })
}

/// The status and words for a process that did not start.
fn not_run(failure: &SpawnError, request: &ExecRequest) -> (i32, String) {
    let program = crate::config::error::quote(&request.argv[0]);
    let e = &failure.error;
    let why = match failure.step {
        Step::Exec => format!("vminit: cannot run {program}: {e}\n"),
        Step::Workdir => format!("vminit: cannot enter the working directory for {program}: {e}\n"),
        Step::User => format!("vminit: cannot switch users for {program}: {e}\n"),
        _ => format!("vminit: cannot start {program}: {e}\n"),
    };
    let not_found = failure.step == Step::Exec && e.kind() == io::ErrorKind::NotFound;
    (if not_found { 127 } else { 126 }, why)
}

/// Output read so far, capped.
#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
    done: bool,
}

impl Captured {
    /// Reads what `from` has; marks the end.
    fn read_from(&mut self, from: &mut File) {
        let mut chunk = [0u8; 16 * 1024];
        match from.read(&mut chunk) {
            Ok(0) => self.done = true,
            Ok(read) => {
                let room = OUTPUT_CAP.saturating_sub(self.bytes.len());
                self.bytes.extend_from_slice(&chunk[..read.min(room)]);
                self.truncated |= read > room;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EIO: a terminal whose last user has gone.
            Err(_) => self.done = true,
        }
    }
}

/// A buffered exec: stdin written, both outputs read until they end (or
/// the deadline, or the client's leaving), the process reaped, and one
/// answer.
fn buffered(mut child: Child, stream: &mut File, stdin: Vec<u8>, deadline: Option<Instant>) {
    let mut stdin_end = child
        .stdin
        .take()
        .map(File::from)
        .filter(|_| !stdin.is_empty());
    if let Some(end) = &stdin_end {
        let _ = fd::set_nonblocking(end);
    }
    let mut unwritten = stdin.as_slice();
    let mut stderr_pipe = child.stderr.take();
    let (mut out, mut err) = (Captured::default(), Captured::default());
    err.done = stderr_pipe.is_none();
    let mut timed_out = false;
    // A client that sends more after its request is not watched: its
    // bytes would wake the loop without end.
    let mut watch_client = true;
    while !(out.done && err.done) {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            timed_out = true;
            break;
        }
        // Watched in this order: stdout, stderr (each until it ends),
        // stdin (while there is some to write), the client (for its end).
        let slots = [
            (!out.done).then(|| (child.stdout.as_fd(), Interest::Read)),
            stderr_pipe
                .as_ref()
                .filter(|_| !err.done)
                .map(|p| (p.as_fd(), Interest::Read)),
            stdin_end.as_ref().map(|e| (e.as_fd(), Interest::Write)),
            watch_client.then(|| (stream.as_fd(), Interest::Read)),
        ];
        let watched: Vec<bool> = slots.iter().map(Option::is_some).collect();
        let files: Vec<_> = slots.into_iter().flatten().collect();
        let Ok(ready) = fd::poll(&files, left) else {
            break;
        };
        let mut ready = ready.into_iter();
        let mut next = |i: usize| watched[i] && ready.next() == Some(true);
        let (stdout_ready, stderr_ready, stdin_ready, client_ready) =
            (next(0), next(1), next(2), next(3));
        if client_ready {
            if crate::sys::vsock::peer_closed(stream) {
                // Nobody will read its answer: it ends now, as on a timeout.
                kill(child.pid);
                return;
            }
            watch_client = false;
        }
        if stdout_ready {
            out.read_from(&mut child.stdout);
        }
        if let Some(pipe) = stderr_pipe.as_mut().filter(|_| stderr_ready) {
            err.read_from(pipe);
        }
        if stdin_ready {
            write_stdin(&mut stdin_end, &mut unwritten);
        }
    }
    drop(stdin_end);
    let ended = finish(
        child.pid,
        if timed_out {
            Some(Instant::now())
        } else {
            deadline
        },
    );
    let mut body = ended.to_json();
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    body["stdout"] = json!(encode(&out.bytes));
    body["stderr"] = json!(encode(&err.bytes));
    body["truncated"] = json!(out.truncated || err.truncated);
    server::send(stream, &Answer::ok(body));
}

/// Writes what stdin takes of `unwritten`, closing it once all is in (or
/// once it is closed: the rest is not wanted).
fn write_stdin(end: &mut Option<File>, unwritten: &mut &[u8]) {
    let Some(file) = end else {
        return;
    };
    match file.write(unwritten) {
        Ok(n) => *unwritten = &unwritten[n..],
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(_) => *unwritten = &[],
    }
    if unwritten.is_empty() {
        *end = None;
    }
}

/// Reaps `pid`, its group killed with SIGKILL once `deadline` passes.
fn finish(pid: i32, deadline: Option<Instant>) -> Ended {
    loop {
        match process::reap_child(pid, false) {
            Ok(Reaped::Exited(_, code)) => return Ended::Exited(code),
            Ok(Reaped::Killed(_, signal)) => return Ended::Killed(signal),
            Ok(Reaped::Nothing | Reaped::Stopped(..)) => {}
            Ok(Reaped::NoChildren) | Err(_) => return Ended::Lost,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return kill(pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills `pid`'s group (and `pid`, should it have left it) and reaps it.
fn kill(pid: i32) -> Ended {
    let _ = signal::send(-pid, libc::SIGKILL);
    let _ = signal::send(pid, libc::SIGKILL);
    let give_up = Instant::now() + KILL_WAIT;
    loop {
        match process::reap_child(pid, false) {
            Ok(Reaped::Exited(_, code)) => return Ended::Exited(code),
            Ok(Reaped::Killed(_, signal)) => return Ended::Killed(signal),
            Ok(Reaped::Nothing | Reaped::Stopped(..)) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => return Ended::Lost,
        }
    }
}

/// The 101 that turns the connection into the exec's stream.
fn upgraded(id: u64) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nX-Exec-Id: {id}\r\n\r\n"
    )
    .into_bytes()
}

/// An interactive exec: the connection carries its streams both ways
/// until its output ends, then its exit in a frame of stream 3.
fn interactive(
    slot: &ExecSlot,
    child: Child,
    stream: &mut File,
    request: &ExecRequest,
    early: Vec<u8>,
    deadline: Option<Instant>,
) {
    let mut session = Session::default();
    let mut wake = None;
    if request.tty {
        session.terminal = child.stdout.try_clone().ok().map(Arc::new);
    } else if request.stdin.is_none()
        && let Ok((read, write)) = fd::pipe()
    {
        session.stdin = Some(Arc::new(StdinEnd {
            after: std::sync::atomic::AtomicU64::new(u64::MAX),
            wake: File::from(write),
        }));
        wake = Some(File::from(read));
    }
    let stdin_end = session.stdin.clone();
    slot.server
        .shared
        .lock()
        .execs
        .sessions
        .push((slot.id, session));
    let pid = child.pid;
    if stream.write_all(&upgraded(slot.id)).is_err() {
        kill(pid);
        return;
    }
    let input = Input {
        given: request.stdin.clone(),
        early,
        end: stdin_end.zip(wake),
    };
    let outcome = pump(child, stream, request.tty, input, deadline);
    let ended = match outcome {
        Pumped::Ended => finish(pid, deadline),
        Pumped::TimedOut | Pumped::ClientGone => kill(pid),
    };
    if outcome != Pumped::ClientGone {
        let _ = stream.write_all(&frame(3, ended.to_json().to_string().as_bytes()));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pumped {
    /// Its output ended.
    Ended,
    TimedOut,
    ClientGone,
}

/// Where an interactive exec's stdin comes from besides the connection.
struct Input {
    /// All of it, given in the request.
    given: Option<Vec<u8>>,
    /// What came on the connection with the request.
    early: Vec<u8>,
    /// The request to end it, and the file that wakes the pump for it.
    end: Option<(Arc<StdinEnd>, File)>,
}

/// The process's side of an interactive exec.
struct Ends {
    /// Its stdout, or the terminal's master.
    output: Option<File>,
    errors: Option<File>,
    /// Where the client's bytes go: its stdin, or the terminal's master;
    /// non-blocking, so a process that does not read holds up only the
    /// client (which is then not read either).
    input: Option<File>,
    /// Client bytes the input has not taken yet.
    pending: Vec<u8>,
    /// Client bytes taken so far, and after how many stdin ends.
    received: u64,
    end_after: u64,
}

impl Ends {
    /// The process's side: its output, and where its input goes (its
    /// stdin, or the terminal's master), non-blocking. `given`: all of
    /// stdin, from the request; else `early`, what came with it.
    fn new(mut child: Child, given: Option<Vec<u8>>, early: Vec<u8>) -> Ends {
        let input = match child.stdin.take() {
            Some(stdin) => Some(File::from(stdin)),
            None => child.stdout.try_clone().ok(),
        };
        if let Some(input) = &input {
            let _ = fd::set_nonblocking(input);
        }
        let whole = given.is_some();
        let early = if whole { Vec::new() } else { early };
        let mut ends = Ends {
            output: Some(child.stdout),
            errors: child.stderr,
            input,
            received: early.len() as u64,
            pending: given.unwrap_or(early),
            // Given whole: it ends once written.
            end_after: if whole { 0 } else { u64::MAX },
        };
        ends.maybe_end_stdin();
        ends
    }

    /// Ends stdin once what came before the end is in.
    fn maybe_end_stdin(&mut self) {
        if self.received >= self.end_after && self.pending.is_empty() {
            self.input = None;
        }
    }
}

/// Moves bytes: the client's to the process (a half-close is EOF on
/// stdin; on a terminal, a hang-up), the process's output to the client,
/// raw on a terminal, else framed by stream; until the output ends.
fn pump(
    child: Child,
    stream: &mut File,
    tty: bool,
    stdin: Input,
    deadline: Option<Instant>,
) -> Pumped {
    let pid = child.pid;
    let given = stdin.given.is_some();
    let mut ends = Ends::new(child, stdin.given, stdin.early);
    let Ok(mut client) = stream.try_clone() else {
        return Pumped::ClientGone;
    };
    let (end, mut wake) = stdin.end.unzip();
    // Given whole, the connection carries none of it.
    let mut client_open = !given;
    while ends.output.is_some() || ends.errors.is_some() {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Pumped::TimedOut;
        }
        // Watched, in this order: output, errors, client, input, wake.
        let watch_client = client_open && ends.pending.is_empty();
        let watch_input = !ends.pending.is_empty();
        let slots = [
            ends.output.as_ref().map(|f| (f.as_fd(), Interest::Read)),
            ends.errors.as_ref().map(|f| (f.as_fd(), Interest::Read)),
            watch_client.then(|| (client.as_fd(), Interest::Read)),
            ends.input
                .as_ref()
                .filter(|_| watch_input)
                .map(|f| (f.as_fd(), Interest::Write)),
            wake.as_ref().map(|f| (f.as_fd(), Interest::Read)),
        ];
        let watched: Vec<bool> = slots.iter().map(Option::is_some).collect();
        let files: Vec<_> = slots.into_iter().flatten().collect();
        let Ok(ready) = fd::poll(&files, left) else {
            return Pumped::ClientGone;
        };
        let mut ready = ready.into_iter();
        let mut next = |i: usize| watched[i] && ready.next() == Some(true);
        let (output, errors, from_client, to_input) = (next(0), next(1), next(2), next(3));
        if next(4) {
            // Asked once: the count is set, the pipe no longer watched.
            wake = None;
            if let Some(end) = &end {
                ends.end_after = end.after.load(std::sync::atomic::Ordering::SeqCst);
                ends.maybe_end_stdin();
            }
        }
        for (is_ready, stream_id) in [(output, 1u8), (errors, 2u8)] {
            if is_ready && !relay(&mut ends, stream_id, stream, tty) {
                return Pumped::ClientGone;
            }
        }
        if from_client {
            client_open = take_client(&mut ends, &mut client, tty, pid);
        }
        if to_input {
            feed(&mut ends);
        }
    }
    Pumped::Ended
}

/// Relays what the process wrote on `stream_id` (1 output, 2 errors);
/// false when the client cannot take it.
fn relay(ends: &mut Ends, stream_id: u8, client: &mut File, tty: bool) -> bool {
    let from = if stream_id == 1 {
        &mut ends.output
    } else {
        &mut ends.errors
    };
    let Some(file) = from else {
        return true;
    };
    let mut chunk = [0u8; 16 * 1024];
    match file.read(&mut chunk) {
        Ok(n) if n > 0 => {
            let bytes = if tty {
                chunk[..n].to_vec()
            } else {
                frame(stream_id, &chunk[..n])
            };
            client.write_all(&bytes).is_ok()
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        // The end, or EIO: a terminal whose last user has gone.
        _ => {
            *from = None;
            true
        }
    }
}

/// Reads the client's bytes for the process; false once the client has
/// closed its side.
fn take_client(ends: &mut Ends, client: &mut File, tty: bool, pid: i32) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match client.read(&mut chunk) {
        Ok(n) if n > 0 => {
            ends.pending.extend_from_slice(&chunk[..n]);
            ends.received += n as u64;
            feed(ends);
            true
        }
        _ => {
            if tty {
                // The terminal's far end is gone, as when a window
                // closes: its session hears SIGHUP.
                let _ = signal::send(-pid, libc::SIGHUP);
            } else {
                ends.input = None;
            }
            false
        }
    }
}

/// Writes what is pending to the process, as far as it takes it.
fn feed(ends: &mut Ends) {
    let Some(input) = &mut ends.input else {
        ends.pending.clear();
        return;
    };
    match input.write(&ends.pending) {
        Ok(n) => {
            ends.pending.drain(..n);
            ends.maybe_end_stdin();
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        // It closed its stdin: the rest is not wanted.
        Err(_) => {
            ends.pending.clear();
            ends.input = None;
        }
    }
}

/// Serves `POST /v1/exec/{id}/close-stdin`, with `{"after_bytes": N}`:
/// the count of bytes the client sent on the exec's connection, which
/// stdin gets before its end (without it, what has arrived so far).
pub fn close_stdin(server: Server, id: u64, body: &[u8]) -> Answer {
    let after = if body.iter().all(u8::is_ascii_whitespace) {
        Some(0)
    } else {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("after_bytes")?.as_u64())
    };
    let Some(after) = after else {
        return Answer::error(400, "the body must be {\"after_bytes\": N} or empty");
    };
    let session = server.shared.lock().execs.session(id);
    let Some(end) = session.and_then(|s| s.stdin) else {
        return Answer::error(
            404,
            "no running exec with its stdin on its connection has that id",
        );
    };
    end.after.store(after, std::sync::atomic::Ordering::SeqCst);
    match (&end.wake).write_all(b"x") {
        Ok(()) => Answer::ok(json!({ "after_bytes": after })),
        Err(e) => Answer::error(500, &format!("cannot reach the exec: {e}")),
    }
}

/// Serves `POST /v1/exec/{id}/resize`.
pub fn resize(server: Server, id: u64, body: &[u8]) -> Answer {
    let size = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let dimension = |key| v.get(key)?.as_u64().and_then(|n| u16::try_from(n).ok());
        Some((dimension("rows")?, dimension("cols")?))
    });
    let Some((rows, cols)) = size else {
        return Answer::error(
            400,
            "the body must be {\"rows\": R, \"cols\": C}, each 0 to 65535",
        );
    };
    let session = server.shared.lock().execs.session(id);
    let terminal = session.and_then(|s| s.terminal);
    match terminal {
        Some(terminal) => match tty::set_window_size(&terminal, rows, cols) {
            Ok(()) => Answer::ok(json!({ "rows": rows, "cols": cols })),
            Err(e) => Answer::error(500, &format!("cannot resize the terminal: {e}")),
        },
        None => Answer::error(404, "no running exec with a terminal has that id"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_field_by_field() {
        let ok = parse_request(
            br#"{"argv": ["sh", "-c", "echo"], "env": {"A": "1"}, "cwd": "/tmp", "stdin": "aGk=", "timeout_s": 1.5, "tty": false}"#,
        )
        .unwrap();
        assert_eq!(ok.argv, ["sh", "-c", "echo"]);
        assert_eq!(ok.env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(ok.stdin.as_deref(), Some(&b"hi"[..]));
        assert_eq!(ok.timeout, Some(Duration::from_millis(1500)));
        for (body, field) in [
            (&br#"{"argv": []}"#[..], "argv"),
            (br#"{"argv": ["a\u0000"]}"#, "argv"),
            (br#"{"argv": ["a"], "cwd": "../x"}"#, "cwd"),
            (br#"{"argv": ["a"], "env": {"A=B": "c"}}"#, "env"),
            (br#"{"argv": ["a"], "stdin": "%%%"}"#, "stdin"),
            (br#"{"argv": ["a"], "timeout_s": -1}"#, "timeout_s"),
            (br#"{"argv": ["a"], "shell": true}"#, "unknown field shell"),
            (br#"{"env": {}}"#, "argv must be given"),
            (br#"[1]"#, "JSON object"),
        ] {
            let error = parse_request(body).unwrap_err();
            assert!(error.contains(field), "{error}");
        }
    }

    #[test]
    fn frames_are_dockers() {
        assert_eq!(frame(2, b"hi"), [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(
            Ended::Killed(9).to_json(),
            json!({"exit_code": 137, "signal": "KILL"})
        );
        assert_eq!(
            Ended::NotRun(127).to_json(),
            json!({"exit_code": 127, "signal": null})
        );
    }
}
