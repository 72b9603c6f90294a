//! `vminit-ctl`: the host's client of vminit's API (`vminit.api`), over
//! Firecracker's vsock Unix socket or a CID. See `--help`.

mod client;
mod frames;
mod terminal;

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use serde_json::{Value, json};

use client::{Call, Target};
use frames::Piece;

const HELP: &str = "\
vminit-ctl: talks to vminit's API in a running microVM

Usage: vminit-ctl (--uds PATH | --cid N) [--port P] [--token-file FILE] COMMAND [ARGS]

Where the API is:
  --uds PATH          the VM's vsock Unix socket (Firecracker's uds_path,
                      cloud-hypervisor's socket): CONNECT PORT is sent first
  --cid N             the guest's CID, over AF_VSOCK (QEMU's vhost-vsock)
  --port P            the API's vsock port (vminit.api=vsock:P); default 10000
  --token-file FILE   the bearer token; without it, $VMINIT_API_TOKEN

Commands:
  status                         the app's pid, state, start and exit record
  wait [--timeout S]             waits until the app ends; prints its exit record
  signal SIG                     sends SIG (TERM, SIGTERM or 15) to the app's group
  stop [--timeout S]             the graceful stop (stop signal, S seconds' grace, KILL)
  sysinfo                        memory, load, uptime, filesystems, the app's use
  exec [OPTIONS] -- CMD [ARG]... runs CMD in the guest, its output streamed here
      -i, --interactive          passes this standard input to it
      -t, --tty                  gives it a terminal (this one in raw mode)
      -u, --user USER            name|uid[:gid]; default the app's
      -w, --workdir DIR          default the app's
      -e, --env KEY=VALUE        over the app's environment (repeatable)
      --timeout S                kills it with SIGKILL after S seconds
  shell [CMD [ARG]...]           an interactive terminal: exec -i -t, /bin/sh by default
  cp SRC DEST                    copies a file; one side is guest:/PATH, the other a
                                 local path or - (at most 1 MiB)
  logs [-f, --follow]            the app's output, when vminit.logs=capture
  clock                          sets the guest's clock to this host's (after a restore)
  entropy [BYTES]                feeds the guest BYTES (1-4096, default 64) of this
                                 host's randomness, and reseeds it (after a restore)

Exit status: wait, exec and shell exit with the app's or the command's code
(128+N when killed by signal N; wait exits 124 when its timeout passes);
otherwise 0. 125 when vminit-ctl itself fails (no connection, an error
answer), 2 for a wrong command line.

  -h, --help                     this help
  -V, --version                  the version
";

/// Every command `run` knows, as `--help` lists them.
const COMMANDS: &[&str] = &[
    "status", "sysinfo", "wait", "signal", "stop", "exec", "shell", "cp", "logs", "clock",
    "entropy",
];

/// What went wrong, and the status to exit with.
#[derive(Debug)]
struct Failure(u8, String);

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure(125, e.to_string())
    }
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure(2, format!("{message} (see --help)"))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, message)) => {
            eprintln!("vminit-ctl: {message}");
            ExitCode::from(code)
        }
    }
}

/// The command line: where, who, and what.
struct Invocation {
    target: Target,
    token: Option<String>,
    command: String,
    args: Vec<String>,
}

fn parse() -> Result<Option<Invocation>, Failure> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let (mut uds, mut cid, mut port, mut token_file) = (None, None, 10000u32, None);
    let mut words = Vec::new();
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Long("uds") => uds = Some(PathBuf::from(parser.value().map_err(usage)?)),
            Long("cid") => cid = Some(parser.value().map_err(usage)?.parse().map_err(usage)?),
            Long("port") => port = parser.value().map_err(usage)?.parse().map_err(usage)?,
            Long("token-file") => token_file = Some(PathBuf::from(parser.value().map_err(usage)?)),
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(None);
            }
            Short('V') | Long("version") => {
                println!("vminit-ctl {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            Value(word) => {
                words.push(word.string().map_err(usage)?);
                // The command's own options follow it.
                words.extend(
                    parser
                        .raw_args()
                        .map_err(usage)?
                        .map(|a| a.into_string().unwrap_or_default()),
                );
            }
            _ => return Err(usage(arg.unexpected())),
        }
    }
    let target = match (uds, cid) {
        (Some(path), None) => Target::Uds { path, port },
        (None, Some(cid)) => Target::Vsock { cid, port },
        _ => return Err(usage("give one of --uds PATH and --cid N")),
    };
    let token = match token_file {
        Some(file) => Some(
            std::fs::read_to_string(&file)
                .map_err(|e| usage(format!("{}: {e}", file.display())))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("VMINIT_API_TOKEN").ok(),
    };
    let mut words = words.into_iter();
    let command = words.next().ok_or_else(|| usage("give a command"))?;
    Ok(Some(Invocation {
        target,
        token,
        command,
        args: words.collect(),
    }))
}

fn run() -> Result<u8, Failure> {
    let Some(invocation) = parse()? else {
        return Ok(0);
    };
    let args = &invocation.args;
    match invocation.command.as_str() {
        "status" => simple(&invocation, "GET", "/v1/status", None).map(print_json),
        "sysinfo" => simple(&invocation, "GET", "/v1/sysinfo", None).map(print_json),
        "wait" => wait(&invocation),
        "signal" => {
            let [signal] = args.as_slice() else {
                return Err(usage("signal takes one signal, as TERM, SIGTERM or 15"));
            };
            let signal = signal.parse::<u64>().map_or(json!(signal), |n| json!(n));
            let body = json!({ "signal": signal });
            simple(&invocation, "POST", "/v1/signal", Some(body)).map(print_json)
        }
        "stop" => {
            let body = match timeout_option(args)? {
                Some(seconds) => json!({ "timeout_s": seconds }),
                None => json!({}),
            };
            simple(&invocation, "POST", "/v1/stop", Some(body)).map(print_json)
        }
        "exec" => exec(&invocation, false),
        "shell" => exec(&invocation, true),
        "cp" => copy(&invocation),
        "logs" => logs(&invocation),
        "clock" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| Failure(125, e.to_string()))?;
            let body = json!({ "realtime_ns": u64::try_from(now.as_nanos()).unwrap_or(u64::MAX) });
            simple(&invocation, "POST", "/v1/clock", Some(body)).map(print_json)
        }
        "entropy" => {
            let bytes: usize = match args.as_slice() {
                [] => 64,
                [n] => n.parse().map_err(usage)?,
                _ => return Err(usage("entropy takes at most a number of bytes")),
            };
            let mut data = vec![0u8; bytes];
            std::fs::File::open("/dev/urandom")?.read_exact(&mut data)?;
            let body = json!({ "data": base64::engine::general_purpose::STANDARD.encode(&data) });
            simple(&invocation, "POST", "/v1/entropy", Some(body)).map(print_json)
        }
        other => Err(usage(format!(
            "no command {other:?}: the commands are {}",
            COMMANDS.join(", ")
        ))),
    }
}

fn print_json(value: Value) -> u8 {
    println!("{value}");
    0
}

/// One call whose answer must be 2xx JSON.
fn simple(
    invocation: &Invocation,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Failure> {
    let (status, answer) = call(invocation, method, path, body)?;
    if !(200..300).contains(&status) {
        return Err(error_answer(status, &answer));
    }
    Ok(answer)
}

fn call(
    invocation: &Invocation,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), Failure> {
    let body = body.map(|b| b.to_string().into_bytes());
    let (status, answer) = client::call(
        &invocation.target,
        &Call {
            method,
            path,
            token: invocation.token.as_deref(),
            body: body.as_deref(),
            upgrade: false,
        },
    )?;
    let answer = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    Ok((status, answer))
}

fn error_answer(status: u16, answer: &Value) -> Failure {
    let why = answer["error"].as_str().unwrap_or("no reason given");
    Failure(125, format!("the API answered {status}: {why}"))
}

/// `--timeout S` as the only option.
fn timeout_option(args: &[String]) -> Result<Option<f64>, Failure> {
    match args {
        [] => Ok(None),
        [flag, seconds] if flag == "--timeout" => Ok(Some(seconds.parse().map_err(usage)?)),
        _ => Err(usage("the only option here is --timeout SECONDS")),
    }
}

/// The shell's status for an exit record.
fn exit_status(record: &Value) -> u8 {
    record["exit_code"]
        .as_i64()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(125)
}

fn wait(invocation: &Invocation) -> Result<u8, Failure> {
    let path = match timeout_option(&invocation.args)? {
        Some(seconds) => format!("/v1/wait?timeout={seconds}"),
        None => "/v1/wait".to_owned(),
    };
    let (status, answer) = call(invocation, "GET", &path, None)?;
    match status {
        200 => {
            println!("{answer}");
            Ok(exit_status(&answer))
        }
        408 => {
            println!("{answer}");
            Ok(124)
        }
        _ => Err(error_answer(status, &answer)),
    }
}

/// `exec` and `shell`: the interactive exec, its streams here.
fn exec(invocation: &Invocation, shell: bool) -> Result<u8, Failure> {
    let mut body = json!({});
    let (mut interactive, mut tty) = (shell, shell);
    let mut env = serde_json::Map::new();
    let mut args = invocation.args.iter();
    let mut argv: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-i" | "--interactive" if !shell => interactive = true,
            "-t" | "--tty" if !shell => tty = true,
            "-it" | "-ti" if !shell => (interactive, tty) = (true, true),
            "-u" | "--user" => body["user"] = json!(value(arg)?),
            "-w" | "--workdir" => body["cwd"] = json!(value(arg)?),
            "-e" | "--env" => {
                let pair = value(arg)?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| usage("--env takes KEY=VALUE"))?;
                env.insert(key.to_owned(), json!(val));
            }
            "--timeout" => {
                let seconds: f64 = value(arg)?.parse().map_err(usage)?;
                body["timeout_s"] = json!(seconds);
            }
            "--" => {
                argv.extend(args.by_ref().cloned());
            }
            other if other.starts_with('-') && argv.is_empty() => {
                return Err(usage(format!("exec has no option {other}")));
            }
            other => {
                argv.push(other.to_owned());
                argv.extend(args.by_ref().cloned());
            }
        }
    }
    if argv.is_empty() {
        if !shell {
            return Err(usage("exec needs a command: exec -- CMD [ARG]..."));
        }
        argv.push("/bin/sh".to_owned());
    }
    body["argv"] = json!(argv);
    body["tty"] = json!(tty);
    if !interactive {
        // An empty stdin, given whole: as `docker exec` without -i.
        body["stdin"] = json!("");
    }
    if !env.is_empty() {
        body["env"] = Value::Object(env);
    }
    let raw = tty.then(terminal::RawMode::enter).flatten();
    if tty && let Some((rows, cols)) = terminal::size(io::stdin().as_fd()) {
        body["rows"] = json!(rows);
        body["cols"] = json!(cols);
    }
    let result = stream_exec(invocation, &body, interactive, tty);
    drop(raw);
    result
}

fn stream_exec(
    invocation: &Invocation,
    body: &Value,
    interactive: bool,
    tty: bool,
) -> Result<u8, Failure> {
    let bytes = body.to_string().into_bytes();
    let mut stream = client::connect(&invocation.target)?;
    let head = client::send(
        &mut stream,
        &Call {
            method: "POST",
            path: "/v1/exec",
            token: invocation.token.as_deref(),
            body: Some(&bytes),
            upgrade: true,
        },
    )?;
    if head.status != 101 {
        let status = head.status;
        let answer = client::read_body(&mut stream, head)?;
        let answer = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        return Err(error_answer(status, &answer));
    }
    let id = head.header("x-exec-id").map(str::to_owned);
    let record = relay(
        invocation,
        &mut stream,
        head.rest,
        interactive,
        tty,
        id.as_deref(),
    )?;
    match record {
        Some(record) => {
            let record: Value = serde_json::from_slice(&record).unwrap_or(Value::Null);
            Ok(exit_status(&record))
        }
        None => Err(Failure(
            125,
            "the exec's stream ended without its exit".into(),
        )),
    }
}

/// Moves bytes between here and the exec until its exit record comes.
/// Neither way waits on the other: stdin is written as the socket takes
/// it while output is read, so a large input never deadlocks with the
/// output the command writes meanwhile.
fn relay(
    invocation: &Invocation,
    stream: &mut UnixStream,
    mut buffer: Vec<u8>,
    interactive: bool,
    tty: bool,
    id: Option<&str>,
) -> Result<Option<Vec<u8>>, Failure> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let windows = if tty {
        terminal::window_changes().ok()
    } else {
        None
    };
    let stdin = io::stdin();
    let mut stdin_open = interactive;
    // Read from stdin, not yet taken by the socket.
    let mut pending: Vec<u8> = Vec::new();
    let mut sent: u64 = 0;
    let mut chunk = [0u8; 16 * 1024];
    stream.set_nonblocking(true)?;
    loop {
        if let Some(record) = take_output(&mut buffer, tty, false)? {
            return Ok(Some(record));
        }
        let mut stream_events = PollFlags::POLLIN;
        if !pending.is_empty() {
            stream_events |= PollFlags::POLLOUT;
        }
        let mut fds = vec![PollFd::new(stream.as_fd(), stream_events)];
        let read_stdin = stdin_open && pending.is_empty();
        if read_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let Some(windows) = &windows {
            fds.push(PollFd::new(windows.as_fd(), PollFlags::POLLIN));
        }
        if let Err(e) = poll(&mut fds, PollTimeout::NONE)
            && e != nix::errno::Errno::EINTR
        {
            return Err(Failure(125, e.to_string()));
        }
        let events: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        if events[0].intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match stream.read(&mut chunk) {
                Ok(0) => return take_output(&mut buffer, tty, true),
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return take_output(&mut buffer, tty, true),
            }
        }
        if events[0].contains(PollFlags::POLLOUT) {
            match stream.write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                    sent += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The exec is over: what is left of stdin is not wanted.
                Err(_) => {
                    pending.clear();
                    stdin_open = false;
                }
            }
            if pending.is_empty() && !stdin_open {
                end_stdin(invocation, tty, id, sent);
            }
        }
        if read_stdin && events[1].intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            let read = io::stdin().lock().read(&mut chunk).unwrap_or(0);
            if read == 0 {
                stdin_open = false;
                end_stdin(invocation, tty, id, sent);
            } else {
                pending.extend_from_slice(&chunk[..read]);
            }
        }
        if let Some(windows) = &windows
            && events.last().is_some_and(|e| !e.is_empty())
        {
            while let Ok(Some(_)) = windows.read_signal() {}
            if let (Some(id), Some((rows, cols))) = (id, terminal::size(stdin.as_fd())) {
                let path = format!("/v1/exec/{id}/resize");
                let _ = call(
                    invocation,
                    "POST",
                    &path,
                    Some(json!({"rows": rows, "cols": cols})),
                );
            }
        }
    }
}

/// Ends the exec's stdin once the `sent` bytes are in. Not a half-close:
/// Firecracker's socket would end the whole connection. (On a terminal,
/// the end of input is the terminal's own, as Ctrl-D.) An exec that has
/// ended meanwhile is no error.
fn end_stdin(invocation: &Invocation, tty: bool, id: Option<&str>, sent: u64) {
    if let (false, Some(id)) = (tty, id) {
        let path = format!("/v1/exec/{id}/close-stdin");
        let _ = call(
            invocation,
            "POST",
            &path,
            Some(json!({ "after_bytes": sent })),
        );
    }
}

/// Writes what `buffer` holds of the exec's output; its record once come
/// (with a terminal, known only at the stream's end, `eof`).
fn take_output(buffer: &mut Vec<u8>, tty: bool, eof: bool) -> Result<Option<Vec<u8>>, Failure> {
    let (mut stdout, mut stderr) = (io::stdout().lock(), io::stderr().lock());
    if tty {
        let (output, record) = frames::take_raw(buffer, eof);
        stdout.write_all(&output)?;
        stdout.flush()?;
        return Ok(record);
    }
    let mut record = None;
    for piece in frames::take_frames(buffer).map_err(|e| Failure(125, e))? {
        match piece {
            Piece::Stdout(bytes) => stdout.write_all(&bytes)?,
            Piece::Stderr(bytes) => stderr.write_all(&bytes)?,
            Piece::Exit(bytes) => record = Some(bytes),
        }
    }
    stdout.flush()?;
    Ok(record)
}

/// `cp SRC DEST`, one side `guest:/PATH`.
fn copy(invocation: &Invocation) -> Result<u8, Failure> {
    let [from, to] = invocation.args.as_slice() else {
        return Err(usage("cp takes SRC and DEST, one of them guest:/PATH"));
    };
    match (from.strip_prefix("guest:"), to.strip_prefix("guest:")) {
        (Some(path), None) => {
            let query: String = form_query(path);
            let answer = simple(invocation, "GET", &format!("/v1/files?path={query}"), None)?;
            let content = base64::engine::general_purpose::STANDARD
                .decode(answer["content"].as_str().unwrap_or_default())
                .map_err(|e| Failure(125, e.to_string()))?;
            if to == "-" {
                io::stdout().write_all(&content)?;
            } else {
                std::fs::write(to, content)?;
            }
            Ok(0)
        }
        (None, Some(path)) => {
            let content = if from == "-" {
                let mut content = Vec::new();
                io::stdin().read_to_end(&mut content)?;
                content
            } else {
                std::fs::read(from)?
            };
            let mut body = json!({
                "path": path,
                "content": base64::engine::general_purpose::STANDARD.encode(&content),
            });
            if from != "-" {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(from)?.permissions().mode() & 0o7777;
                body["mode"] = json!(format!("{mode:04o}"));
            }
            simple(invocation, "PUT", "/v1/files", Some(body)).map(print_json)
        }
        _ => Err(usage("cp needs exactly one side as guest:/PATH")),
    }
}

/// A path as a query value: what is not unreserved, percent-encoded.
fn form_query(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `logs [-f]`: the app's lines, as they come when following.
fn logs(invocation: &Invocation) -> Result<u8, Failure> {
    let follow = match invocation.args.as_slice() {
        [] => false,
        [flag] if flag == "-f" || flag == "--follow" => true,
        _ => return Err(usage("logs takes only -f")),
    };
    let path = if follow {
        "/v1/logs?follow=1"
    } else {
        "/v1/logs"
    };
    let mut stream = client::connect(&invocation.target)?;
    let head = client::send(
        &mut stream,
        &Call {
            method: "GET",
            path,
            token: invocation.token.as_deref(),
            ..Call::default()
        },
    )?;
    if head.status != 200 {
        let status = head.status;
        let answer = client::read_body(&mut stream, head)?;
        return Err(error_answer(
            status,
            &serde_json::from_slice(&answer).unwrap_or(Value::Null),
        ));
    }
    let mut out = io::stdout().lock();
    let mut print = |bytes: &[u8]| -> io::Result<()> {
        out.write_all(bytes)?;
        out.flush()
    };
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let rest = head.rest.clone();
        client::read_chunked(&mut stream, rest, &mut print)?;
    } else {
        let body = client::read_body(&mut stream, head)?;
        print(&body)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_lists_every_command_and_option() {
        for command in COMMANDS {
            assert!(HELP.contains(&format!("\n  {command}")), "{command}");
        }
        for option in [
            "--uds",
            "--cid",
            "--port",
            "--token-file",
            "--interactive",
            "--tty",
            "--user",
            "--workdir",
            "--env",
            "--timeout",
            "--follow",
        ] {
            assert!(HELP.contains(option), "{option}");
        }
        assert_eq!(form_query("/a b+c/é"), "/a%20b%2Bc/%C3%A9");
    }
}
