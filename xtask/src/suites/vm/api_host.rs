//! The host's side of the API cases: what a platform does to a running
//! guest, through raw HTTP on Firecracker's hybrid socket and through
//! `vminit-ctl`, each step checked as it goes. A script returns the steps
//! it passed, or the first that failed.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::API_TOKEN;
use crate::vm::vsock::VsockHost;

/// The host's `vminit-ctl`, built once for the suite.
pub(super) static CTL: OnceLock<PathBuf> = OnceLock::new();

/// Builds `vminit-ctl` for the host, before any VM starts.
pub(super) fn build_ctl() -> Result<(), String> {
    crate::cmd::run(crate::cmd::cargo().args(["build", "--quiet", "--package", "vminit-ctl"]))?;
    // For the curl recipe of docs/api.md.
    crate::setup::packages(&[("socat", "socat"), ("curl", "curl")])?;
    let _ = CTL.set(crate::cmd::root().join("target/debug/vminit-ctl"));
    Ok(())
}

/// What the host does while the guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Script {
    /// Every endpoint, the refusals and the hostile clients, then a stop.
    Everything,
    /// `/v1/wait` while the app is OOM-killed.
    WaitForOom,
    /// The logs ring after the app wrote 20 MB with no reader; following.
    Logs,
}

/// The guest's API as the scripts call it.
struct Guest {
    host: Arc<VsockHost>,
    port: u32,
}

type Step = Result<(), String>;
/// A named step of a script.
type Steps = &'static [(&'static str, fn(&Guest) -> Step)];

fn fail<T>(what: &str, got: impl std::fmt::Debug) -> Result<T, String> {
    Err(format!("{what}: got {got:?}"))
}

impl Guest {
    fn stream(&self) -> Result<UnixStream, String> {
        self.host
            .connect(self.port)
            .ok_or_else(|| "cannot connect to the API".to_owned())
    }

    /// Sends raw bytes and reads the answer to the end. A write the
    /// guest cut short is no error: it may answer (400, 413) and close
    /// before it has read all.
    fn raw(&self, request: &[u8]) -> Result<String, String> {
        let mut stream = self.stream()?;
        let _ = stream.write_all(request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// One request with the token; the status and the JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: vm\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = self.raw(request.as_bytes())?;
        parse_answer(&answer)
    }

    /// `vminit-ctl` with the token in its environment: status, stdout, stderr.
    fn ctl(&self, args: &[&str], stdin: &[u8]) -> Result<(i32, String, String), String> {
        self.ctl_as(API_TOKEN, args, stdin)
    }

    fn ctl_as(
        &self,
        token: &str,
        args: &[&str],
        stdin: &[u8],
    ) -> Result<(i32, String, String), String> {
        let ctl = CTL.get().ok_or("vminit-ctl was not built")?;
        let mut child = Command::new(ctl)
            .arg("--uds")
            .arg(&self.host.uds)
            .args(["--port", &self.port.to_string()])
            .args(args)
            .env("VMINIT_API_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", ctl.display()))?;
        let mut input = child.stdin.take().ok_or("no stdin")?;
        input.write_all(stdin).map_err(|e| e.to_string())?;
        drop(input);
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        Ok((
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    /// A buffered exec's answer.
    fn exec(&self, request: Value) -> Result<(u16, Value), String> {
        self.call("POST", "/v1/exec", Some(request))
    }

    /// Starts an interactive exec: the stream after the 101, and its id.
    fn interactive(&self, request: Value) -> Result<(UnixStream, String), String> {
        let body = request.to_string();
        let mut stream = self.stream()?;
        let head = format!(
            "POST /v1/exec HTTP/1.1\r\nHost: vm\r\nAuthorization: Bearer {API_TOKEN}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => got.push(byte[0]),
                _ => return fail("an interactive exec's head", String::from_utf8_lossy(&got)),
            }
        }
        let head = String::from_utf8_lossy(&got).into_owned();
        if !head.starts_with("HTTP/1.1 101 ") {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
            return Err(format!("{head}{}", String::from_utf8_lossy(&rest)));
        }
        let id = head
            .lines()
            .find_map(|l| l.strip_prefix("X-Exec-Id: "))
            .unwrap_or_default()
            .to_owned();
        Ok((stream, id))
    }
}

/// Status and JSON body of a whole HTTP answer.
fn parse_answer(answer: &str) -> Result<(u16, Value), String> {
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn decode(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap_or_default())
        .unwrap_or_default()
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads Docker frames until the exit frame (stream 3); the output by
/// stream and the exit record.
fn read_frames(stream: &mut UnixStream) -> Result<(Vec<u8>, Vec<u8>, Value), String> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let mut header = [0u8; 8];
        stream
            .read_exact(&mut header)
            .map_err(|e| format!("a frame's header: {e}"))?;
        let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; length];
        stream
            .read_exact(&mut payload)
            .map_err(|e| format!("a frame: {e}"))?;
        match header[0] {
            1 => out.extend(payload),
            2 => err.extend(payload),
            3 => {
                let record = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
                return Ok((out, err, record));
            }
            other => return fail("a frame's stream", other),
        }
    }
}

/// Runs `script` once the API answers (up to 60 s); the steps passed.
pub(super) fn run(script: Script, host: Arc<VsockHost>, port: u32) -> Result<Vec<String>, String> {
    let guest = Guest { host, port };
    let start = Instant::now();
    loop {
        if matches!(guest.call("GET", "/v1/status", None), Ok((200, _))) {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err("the API did not answer within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let steps: Steps = match script {
        Script::Everything => EVERYTHING,
        Script::WaitForOom => &[("wait returns the OOM kill's record", wait_for_oom)],
        Script::Logs => &[
            ("20 MB written with no reader", logs_without_a_reader),
            ("following the logs", following_the_logs),
        ],
    };
    let mut passed = Vec::new();
    for (name, step) in steps {
        let started = Instant::now();
        if let Err(e) = step(&guest) {
            // Ends the VM now rather than at the suite's hang guard.
            let _ = guest.call("POST", "/v1/stop", Some(json!({"timeout_s": 1})));
            return Err(format!("{name}: {e} (after {passed:?})"));
        }
        passed.push(format!("{name} ({:.1} s)", started.elapsed().as_secs_f64()));
    }
    Ok(passed)
}

/// The steps of [`Script::Everything`], in order.
const EVERYTHING: Steps = &[
    ("status and its refusals", status_and_refusals),
    ("hostile clients", hostile_clients),
    ("vminit-ctl status and sysinfo", ctl_status_and_sysinfo),
    ("buffered execs", buffered_execs),
    ("interactive execs", interactive_execs),
    ("execs over the limit", execs_over_the_limit),
    ("a client that leaves mid-stream", client_leaves_mid_stream),
    ("a client that stops reading", client_stops_reading),
    ("a shell on a terminal", shell_on_a_terminal),
    ("files", files),
    (
        "curl through the socat bridge of docs/api.md",
        curl_through_socat,
    ),
    ("clock and entropy", clock_and_entropy),
    ("signals and wait's timeout", signals_and_wait_timeout),
    ("the server restarts after it is killed", server_restarts),
    ("stop during an exec, and wait", stop_during_exec_and_wait),
];

fn status_and_refusals(guest: &Guest) -> Step {
    let (status, body) = guest.call("GET", "/v1/status", None)?;
    let app = &body["app"];
    let fine = status == 200
        && app["state"] == "running"
        && app["pid"].as_i64().is_some_and(|pid| pid > 1)
        && app["started_at"].as_str().is_some_and(|t| t.ends_with('Z'))
        && body["exit"].is_null()
        && body["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()));
    if !fine {
        return fail("status", (status, body));
    }
    for (what, request, code) in [
        ("no token", "GET /v1/status HTTP/1.1\r\n\r\n", "401"),
        (
            "a wrong token",
            "GET /v1/status HTTP/1.1\r\nAuthorization: Bearer test-t0ken-9f4\r\n\r\n",
            "401",
        ),
        (
            "no token, an exec",
            "POST /v1/exec HTTP/1.1\r\nContent-Length: 17\r\n\r\n{\"argv\": [\"id\"]}",
            "401",
        ),
        (
            "an unknown endpoint",
            "GET /v1/nothing HTTP/1.1\r\nAuthorization: Bearer test-t0ken-9f3\r\n\r\n",
            "404",
        ),
    ] {
        let answer = guest.raw(request.as_bytes())?;
        if !answer.starts_with(&format!("HTTP/1.1 {code} ")) || answer.contains("\"pid\"") {
            return fail(what, answer);
        }
    }
    let (code, _, err) = guest.ctl_as("wrong", &["status"], b"")?;
    if code != 125 || !err.contains("401") {
        return fail("vminit-ctl with a wrong token", (code, err));
    }
    Ok(())
}

fn hostile_clients(guest: &Guest) -> Step {
    let garbage = guest.raw(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")?;
    if !garbage.starts_with("HTTP/1.1 400 ") {
        return fail("garbage", garbage);
    }
    // A gigabyte announced: refused from its head, before a byte is read.
    let answer = guest.raw(
        format!(
            "PUT /v1/files HTTP/1.1\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Length: 1000000000\r\n\r\n"
        )
        .as_bytes(),
    )?;
    if !answer.starts_with("HTTP/1.1 413 ") {
        return fail("a 1 GB body", answer);
    }
    // And sent for real: the guest stops taking it long before a GB.
    let mut stream = guest.stream()?;
    let head = format!(
        "PUT /v1/files HTTP/1.1\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Length: 1000000000\r\n\r\n"
    );
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut sent = 0usize;
    let chunk = vec![b'A'; 1 << 20];
    if stream.write_all(head.as_bytes()).is_ok() {
        while sent < 1 << 30 && stream.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
    }
    if sent >= 64 << 20 {
        return fail("MiB of a 1 GB body taken", sent >> 20);
    }
    // A client that sends half a head and stalls holds only its own place.
    let mut slow = guest.stream()?;
    slow.write_all(b"GET /v1/sta").map_err(|e| e.to_string())?;
    let (status, _) = guest.call("GET", "/v1/status", None)?;
    if status != 200 {
        return fail("status beside a stalled client", status);
    }
    // A thousand connections at once: the first are served, the rest
    // turned away; none takes the server or the app down.
    let mut held = Vec::new();
    for _ in 0..1000 {
        if let Some(stream) = guest.host.connect(guest.port) {
            held.push(stream);
        }
    }
    let mut turned_away = 0;
    for stream in &mut held[..100] {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        turned_away += usize::from(answer.starts_with("HTTP/1.1 503 "));
    }
    if held.len() < 500 || turned_away < 50 {
        return fail(
            "1000 connections (connected, turned away of the first 100)",
            (held.len(), turned_away),
        );
    }
    drop(held);
    drop(slow);
    // Their places come back as the closes reach the guest, and at the
    // latest when each one's 10 s to send a request run out.
    let start = Instant::now();
    loop {
        let (status, body) = guest.call("GET", "/v1/status", None)?;
        if status == 200 && body["app"]["state"] == "running" {
            return Ok(());
        }
        if status != 503 || start.elapsed() > Duration::from_secs(20) {
            return fail(
                "status after 1000 connections",
                (status, body, start.elapsed()),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ctl_status_and_sysinfo(guest: &Guest) -> Step {
    let (code, out, err) = guest.ctl(&["status"], b"")?;
    let status: Value = serde_json::from_str(&out).unwrap_or_default();
    if code != 0 || status["app"]["state"] != "running" {
        return fail("vminit-ctl status", (code, out, err));
    }
    let (code, out, err) = guest.ctl(&["sysinfo"], b"")?;
    let info: Value = serde_json::from_str(&out).unwrap_or_default();
    let mounts = info["mounts"].as_array().cloned().unwrap_or_default();
    let fine = code == 0
        && info["memory"]["MemTotal"]
            .as_u64()
            .is_some_and(|m| m > 64 << 20)
        && info["memory"]["MemAvailable"].as_u64().is_some()
        && info["load"].as_array().is_some_and(|l| l.len() == 3)
        && info["uptime_s"].as_u64().is_some()
        && info["app"]["rss"].as_u64().is_some_and(|r| r > 0)
        && info["app"]["cpu_s"].as_f64().is_some()
        && mounts
            .iter()
            .any(|m| m["target"] == "/" && m["size"].as_u64().is_some_and(|s| s > 0));
    if !fine {
        return fail("vminit-ctl sysinfo", (code, out, err));
    }
    Ok(())
}

fn buffered_execs(guest: &Guest) -> Step {
    let (status, body) = guest.exec(json!({
        "argv": ["sh", "-c", "echo out; echo err >&2; echo $GREETING; pwd; exit 3"],
        "env": {"GREETING": "hello"},
        "cwd": "/tests",
    }))?;
    if status != 200
        || body["exit_code"] != 3
        || decode(&body["stdout"]) != b"out\nhello\n/tests\n"
        || decode(&body["stderr"]) != b"err\n"
        || body["truncated"] != false
    {
        return fail("an exec's output and status", (status, body));
    }
    let (_, body) = guest.exec(json!({"argv": ["cat"], "stdin": encode(b"from the host")}))?;
    if decode(&body["stdout"]) != b"from the host" || body["exit_code"] != 0 {
        return fail("stdin", body);
    }
    let (status, body) = guest.exec(json!({"argv": ["/no/such/binary"]}))?;
    let stderr = String::from_utf8_lossy(&decode(&body["stderr"])).into_owned();
    if status != 200 || body["exit_code"] != 127 || !stderr.contains("No such file") {
        return fail("a missing binary", (status, body, stderr));
    }
    let (_, body) = guest.exec(json!({"argv": ["/tests/api.json"]}))?;
    if body["exit_code"] != 126 {
        return fail("a file that is not executable", body);
    }
    let started = Instant::now();
    let (_, body) = guest.exec(json!({"argv": ["sleep", "30"], "timeout_s": 1}))?;
    if body["signal"] != "KILL" || body["exit_code"] != 137 || started.elapsed().as_secs() > 20 {
        return fail("a timeout", (body, started.elapsed()));
    }
    let (_, body) =
        guest.exec(json!({"argv": ["sh", "-c", "head -c 3000000 /dev/zero; echo done >&2"]}))?;
    if body["truncated"] != true
        || decode(&body["stdout"]).len() != 1 << 20
        || decode(&body["stderr"]) != b"done\n"
        || body["exit_code"] != 0
    {
        return fail("output over the cap", body["truncated"].clone());
    }
    let (code, out, err) = guest.ctl(
        &[
            "exec",
            "--",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exit 4",
        ],
        b"",
    )?;
    if code != 4 || out != "to-out\n" || err != "to-err\n" {
        return fail("vminit-ctl exec", (code, out, err));
    }
    let (status, body) = guest.exec(json!({"argv": ["id"], "shell": true}))?;
    if status != 400 || !body["error"].as_str().unwrap_or_default().contains("shell") {
        return fail("an unknown field", (status, body));
    }
    Ok(())
}

fn interactive_execs(guest: &Guest) -> Step {
    let (mut stream, id) =
        guest.interactive(json!({"argv": ["sh", "-c", "cat; echo bye >&2; exit 6"]}))?;
    if id.is_empty() {
        return fail("X-Exec-Id", id);
    }
    // The end of stdin asked for first, on another connection: it waits
    // for the 11 bytes still to come on this one.
    let path = format!("/v1/exec/{id}/close-stdin");
    let (status, body) = guest.call("POST", &path, Some(json!({"after_bytes": 11})))?;
    if status != 200 {
        return fail("close-stdin", (status, body));
    }
    stream
        .write_all(b"streamed in")
        .map_err(|e| e.to_string())?;
    let (out, err, record) = read_frames(&mut stream)?;
    if out != b"streamed in" || err != b"bye\n" || record["exit_code"] != 6 {
        return fail("the frames", (out, err, record));
    }
    let (code, out, _) = guest.ctl(&["exec", "-i", "--", "sh", "-c", "tr a-z A-Z"], b"piped\n")?;
    if code != 0 || out != "PIPED\n" {
        return fail("vminit-ctl exec -i", (code, out));
    }
    Ok(())
}

fn execs_over_the_limit(guest: &Guest) -> Step {
    let mut running = Vec::new();
    for _ in 0..8 {
        running.push(guest.interactive(json!({"argv": ["sleep", "3"]}))?.0);
    }
    let (status, body) = guest.exec(json!({"argv": ["true"]}))?;
    if status != 429 {
        return fail("a ninth exec", (status, body));
    }
    for mut stream in running {
        read_frames(&mut stream)?;
    }
    let (status, _) = guest.exec(json!({"argv": ["true"]}))?;
    if status != 200 {
        return fail("an exec once they ended", status);
    }
    Ok(())
}

fn client_leaves_mid_stream(guest: &Guest) -> Step {
    let (mut stream, _) = guest.interactive(json!({
        "argv": ["sh", "-c", "echo $$ > /tmp/loop.pid; while :; do echo output; done"]
    }))?;
    let mut some = [0u8; 4096];
    stream.read_exact(&mut some).map_err(|e| e.to_string())?;
    drop(stream);
    until_gone(guest, "/tmp/loop.pid", "the process of a client that left")
}

/// A client that stops reading, connection open: dropped after the 10 s
/// a write may wait, its process killed, the server serving meanwhile.
fn client_stops_reading(guest: &Guest) -> Step {
    let (stream, _) = guest.interactive(json!({
        "argv": ["sh", "-c", "echo $$ > /tmp/stuck.pid; while :; do echo output; done"]
    }))?;
    std::thread::sleep(Duration::from_secs(2));
    let (status, _) = guest.call("GET", "/v1/status", None)?;
    if status != 200 {
        return fail("status beside a client that stopped reading", status);
    }
    let result = until_gone(
        guest,
        "/tmp/stuck.pid",
        "the process of a client that stopped reading",
    );
    drop(stream);
    result
}

/// Waits (up to 30 s) until the process whose pid is in `file` is gone.
fn until_gone(guest: &Guest, file: &str, what: &str) -> Step {
    let start = Instant::now();
    let check = format!("kill -0 $(cat {file}) 2>/dev/null && echo alive || echo gone");
    loop {
        let (_, body) = guest.exec(json!({"argv": ["sh", "-c", check]}))?;
        if decode(&body["stdout"]) == b"gone\n" {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            return fail(what, body);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn shell_on_a_terminal(guest: &Guest) -> Step {
    let (mut stream, id) = guest.interactive(json!({
        "argv": ["sh", "-c", "read line; stty size; tty; echo got:$line; exit 2"],
        "tty": true, "rows": 10, "cols": 40,
    }))?;
    let (status, body) = guest.call(
        "POST",
        &format!("/v1/exec/{id}/resize"),
        Some(json!({"rows": 33, "cols": 101})),
    )?;
    if status != 200 {
        return fail("a resize", (status, body));
    }
    stream.write_all(b"typed\r").map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    let frame_at = all
        .windows(4)
        .rposition(|w| w == b"\x03\x00\x00\x00")
        .ok_or("no exit frame")?;
    let output = String::from_utf8_lossy(&all[..frame_at]).into_owned();
    let record: Value = serde_json::from_slice(&all[frame_at + 8..]).map_err(|e| e.to_string())?;
    if !output.contains("33 101")
        || !output.contains("/dev/pts/")
        || !output.contains("got:typed")
        || record["exit_code"] != 2
    {
        return fail("the terminal", (output, record));
    }
    let (code, out, _) = guest.ctl(&["exec", "-t", "--", "sh", "-c", "tty; exit 9"], b"")?;
    if code != 9 || !out.contains("/dev/pts/") {
        return fail("vminit-ctl exec -t", (code, out));
    }
    // What a user types, piped: the shell reads it from its terminal.
    let (code, out, _) = guest.ctl(&["shell"], b"echo from-$((6 * 7)); exit 3\n")?;
    if code != 3 || !out.contains("from-42") {
        return fail("vminit-ctl shell", (code, out));
    }
    Ok(())
}

fn files(guest: &Guest) -> Step {
    let local = std::env::temp_dir().join(format!("vminit-cp-{}", std::process::id()));
    std::fs::write(&local, b"key = value\n").map_err(|e| e.to_string())?;
    let local_text = local.to_string_lossy().into_owned();
    let (code, out, err) = guest.ctl(&["cp", &local_text, "guest:/etc/app dir/app.conf"], b"")?;
    let _ = std::fs::remove_file(&local);
    if code != 0 {
        return fail("vminit-ctl cp to the guest", (code, out, err));
    }
    let (status, body) = guest.call("GET", "/v1/files?path=%2Fetc%2Fapp%20dir%2Fapp.conf", None)?;
    if status != 200 || decode(&body["content"]) != b"key = value\n" || body["size"] != 12 {
        return fail("the file read back", (status, body));
    }
    let (code, out, _) = guest.ctl(&["cp", "guest:/etc/app dir/app.conf", "-"], b"")?;
    if code != 0 || out != "key = value\n" {
        return fail("vminit-ctl cp from the guest", (code, out));
    }
    let (status, _) = guest.call(
        "PUT",
        "/v1/files",
        Some(json!({"path": "/etc/secret", "content": encode(b"s"), "mode": "0600", "uid": 1000, "gid": 1000})),
    )?;
    let (_, body) = guest.call("GET", "/v1/files?path=/etc/secret", None)?;
    if status != 200 || body["mode"] != "0600" || body["uid"] != 1000 {
        return fail("mode and owner", body);
    }
    for path in ["/tmp/../etc/passwd", "relative/path", "/etc/"] {
        let (status, body) = guest.call(
            "PUT",
            "/v1/files",
            Some(json!({"path": path, "content": ""})),
        )?;
        if status != 400
            || !body["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("path")
        {
            return fail(&format!("PUT {path}"), (status, body));
        }
    }
    let (status, _) = guest.call("GET", "/v1/files?path=/tmp/../etc/passwd", None)?;
    if status != 400 {
        return fail("GET with ..", status);
    }
    Ok(())
}

fn clock_and_entropy(guest: &Guest) -> Step {
    // 2033-05-18: far from the host's clock, so it cannot pass by chance.
    let set: i64 = 2_000_000_000_000_000_000;
    let (status, body) = guest.call("POST", "/v1/clock", Some(json!({"realtime_ns": set})))?;
    let (_, date) = guest.exec(json!({"argv": ["date", "-u", "+%Y-%m-%d"]}))?;
    if status != 200 || decode(&date["stdout"]) != b"2033-05-18\n" {
        return fail("the clock set and read back", (status, body, date));
    }
    let (status, _) = guest.call("POST", "/v1/clock", Some(json!({"realtime_ns": "soon"})))?;
    if status != 400 {
        return fail("a clock that is not a number", status);
    }
    let (code, out, err) = guest.ctl(&["clock"], b"")?;
    if code != 0 {
        return fail("vminit-ctl clock", (code, out, err));
    }
    let (code, out, err) = guest.ctl(&["entropy", "256"], b"")?;
    if code != 0 || !out.contains("\"added\":256") {
        return fail("vminit-ctl entropy", (code, out, err));
    }
    let (status, _) = guest.call(
        "POST",
        "/v1/entropy",
        Some(json!({"data": encode(&[7u8; 5000])})),
    )?;
    if status != 400 {
        return fail("5000 bytes of entropy", status);
    }
    Ok(())
}

fn signals_and_wait_timeout(guest: &Guest) -> Step {
    let (code, out, err) = guest.ctl(&["signal", "USR1"], b"")?;
    if code != 0 || !out.contains("SIGUSR1") {
        return fail("vminit-ctl signal USR1", (code, out, err));
    }
    let (status, _) = guest.call("POST", "/v1/signal", Some(json!({"signal": "SIGNOPE"})))?;
    if status != 400 {
        return fail("an unknown signal", status);
    }
    let (code, out, _) = guest.ctl(&["wait", "--timeout", "1"], b"")?;
    if code != 124 || !out.contains("\"state\":\"running\"") {
        return fail("wait with a timeout", (code, out));
    }
    Ok(())
}

fn server_restarts(guest: &Guest) -> Step {
    // The exec's parent is the server: killing it cuts this call short.
    let _ = guest.exec(json!({"argv": ["sh", "-c", "kill -9 $PPID; sleep 5"]}));
    let start = Instant::now();
    loop {
        if let Ok((200, body)) = guest.call("GET", "/v1/status", None)
            && body["app"]["state"] == "running"
        {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            return fail("status after the server was killed", start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop_during_exec_and_wait(guest: &Guest) -> Step {
    let waiter = {
        let guest = Guest {
            host: Arc::clone(&guest.host),
            port: guest.port,
        };
        std::thread::spawn(move || guest.call("GET", "/v1/wait", None))
    };
    let (mut exec, _) = guest.interactive(json!({"argv": ["sleep", "100"]}))?;
    let (code, out, err) = guest.ctl(&["stop", "--timeout", "5"], b"")?;
    if code != 0 || !out.contains("stopping") {
        return fail("vminit-ctl stop", (code, out, err));
    }
    let (status, record) = waiter.join().map_err(|_| "the waiter panicked")??;
    if status != 200 || record["exit_code"] != 7 || record["oom_killed"] != false {
        return fail("the waiter's record", (status, record));
    }
    // What is left gets SIGTERM at the end: the exec's stream says so.
    let _ = exec.set_read_timeout(Some(Duration::from_secs(30)));
    match read_frames(&mut exec) {
        Ok((_, _, record)) if record["signal"] == "TERM" => Ok(()),
        other => fail("the exec's end", other),
    }
}

fn wait_for_oom(guest: &Guest) -> Step {
    let (code, out, err) = guest.ctl(&["wait"], b"")?;
    let record: Value = serde_json::from_str(&out).unwrap_or_default();
    if code != 137 || record["oom_killed"] != true || record["signal"] != 9 {
        return fail("vminit-ctl wait", (code, out, err));
    }
    Ok(())
}

/// The whole ring, once it holds `line`: its lines, parsed.
fn logs_holding(guest: &Guest, line: &str, within: Duration) -> Result<Vec<Value>, String> {
    let start = Instant::now();
    loop {
        let (status, body) = guest
            .raw(
                format!("GET /v1/logs HTTP/1.1\r\nAuthorization: Bearer {API_TOKEN}\r\n\r\n")
                    .as_bytes(),
            )
            .map(|answer| {
                let status = answer.get(9..12).unwrap_or_default().to_owned();
                let body = answer
                    .split_once("\r\n\r\n")
                    .map_or(String::new(), |(_, b)| b.to_owned());
                (status, body)
            })?;
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect();
        if status == "200" && lines.iter().any(|l| l["line"] == line) {
            return Ok(lines);
        }
        if start.elapsed() > within {
            let tail: Vec<_> = body.lines().rev().take(3).collect();
            return fail(&format!("the logs holding {line}"), (status, tail));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn logs_without_a_reader(guest: &Guest) -> Step {
    // Nobody reads while it writes: it must still get to its last line.
    let lines = logs_holding(guest, "last-line", Duration::from_secs(150))?;
    let summary = lines.last().cloned().unwrap_or_default();
    let text_bytes: usize = lines
        .iter()
        .filter_map(|l| l["line"].as_str())
        .map(str::len)
        .sum();
    let err_line = lines.iter().any(|l| {
        l["line"] == "err-line" && l["stream"] == "stderr" && l["ts_ns"].as_i64().is_some()
    });
    if !err_line
        || summary["dropped"].as_u64().is_none_or(|d| d < 10_000)
        || summary["console_dropped"].as_u64().is_none()
        || text_bytes > 1 << 20
    {
        return fail("the ring after 20 MB", (err_line, summary, text_bytes));
    }
    // The server's memory stayed bounded: the exec's parent is the server.
    let (_, body) = guest.exec(json!({"argv": ["sh", "-c", "grep VmRSS /proc/$PPID/status"]}))?;
    let status = String::from_utf8_lossy(&decode(&body["stdout"])).into_owned();
    let kb: u64 = status
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    if kb > 16 * 1024 {
        return fail("the server's VmRSS after 20 MB", status);
    }
    Ok(())
}

fn following_the_logs(guest: &Guest) -> Step {
    let ctl = CTL.get().ok_or("vminit-ctl was not built")?;
    let follower = Command::new(ctl)
        .arg("--uds")
        .arg(&guest.host.uds)
        .args(["logs", "-f"])
        .env("VMINIT_API_TOKEN", API_TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(2));
    let (status, _) = guest.call("POST", "/v1/signal", Some(json!({"signal": "USR1"})))?;
    logs_holding(guest, "usr1-line", Duration::from_secs(30))?;
    let (status_stop, _) = guest.call("POST", "/v1/stop", None)?;
    let output = follower.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let last: Value = text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    if status != 200
        || status_stop != 200
        || !output.status.success()
        || !text.contains("\"line\":\"usr1-line\"")
        || last["dropped"].as_u64().is_none()
    {
        let tail: Vec<_> = text.lines().rev().take(3).collect();
        return fail("vminit-ctl logs -f", (output.status, tail));
    }
    Ok(())
}

/// The bridge of docs/api.md, run as written there: `vm-connect` behind
/// `socat UNIX-LISTEN`, and `curl --unix-socket` through it.
fn curl_through_socat(guest: &Guest) -> Step {
    let dir = std::env::temp_dir().join(format!("vminit-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let connect = dir.join("vm-connect");
    std::fs::write(&connect, vm_connect_script()?).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&connect, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let socket = dir.join("vm-api.sock");
    let mut bridge = Command::new("socat")
        .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
        .arg(format!(
            "EXEC:{} {} {}",
            connect.display(),
            guest.host.uds.display(),
            guest.port
        ))
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("socat: {e}"))?;
    let curl = |extra: &[&str], path: &str| -> Result<Value, String> {
        // The bridge's socket appears once socat listens.
        for _ in 0..50 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = Command::new("curl")
            .args(["-s", "--max-time", "30", "--unix-socket"])
            .arg(&socket)
            .args(["-H", &format!("Authorization: Bearer {API_TOKEN}")])
            .args(extra)
            .arg(format!("http://vm{path}"))
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        serde_json::from_slice(&output.stdout)
            .map_err(|_| format!("curl got {:?}", String::from_utf8_lossy(&output.stdout)))
    };
    let sysinfo = curl(&[], "/v1/sysinfo");
    let exec = curl(&["-d", r#"{"argv": ["uname", "-s"]}"#], "/v1/exec");
    let _ = bridge.kill();
    let _ = bridge.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (sysinfo, exec) = (sysinfo?, exec?);
    if sysinfo["memory"]["MemTotal"].as_u64().is_none() || decode(&exec["stdout"]) != b"Linux\n" {
        return fail("curl through the bridge", (sysinfo, exec));
    }
    Ok(())
}

/// `vm-connect`, read from docs/api.md: the test runs what the reader
/// copies.
fn vm_connect_script() -> Result<String, String> {
    let doc = crate::cmd::root().join("docs/api.md");
    let text = std::fs::read_to_string(&doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let start = "cat > /usr/local/bin/vm-connect <<'END'\n";
    let script = text
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("\nEND\n"))
        .map(|(script, _)| format!("{script}\n"))
        .ok_or("docs/api.md has no vm-connect script")?;
    Ok(script)
}
