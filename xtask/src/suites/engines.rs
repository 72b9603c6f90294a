//! `cargo xtask test-engines`: vminit as the init of real container
//! engines, Podman and Docker from Debian, as users run it (`podman run
//! --init --init-path`, `dockerd --init-path` with `docker run --init`).
//!
//! The integration tests run vminit under `unshare`; these check what only a
//! real engine shows: that `podman stop` / `docker stop` reach the app
//! through vminit, that orphans in a real container are reaped, that
//! `run -it` gives a shell job control on the engine's terminal, and that
//! the container's exit code is the app's (128+N for a signal death).
//!
//! The image is a busybox root (Debian's busybox-static, a link per applet)
//! imported offline with `podman import` / `docker import`: no registry, no
//! network. Podman runs rootful with `--runtime runc` (crun refuses this
//! machine's cgroup v1 hybrid set-up) and explicit ulimits (its defaults ask
//! for more than the machine's hard limits). Docker gets a private
//! `dockerd` (own socket, data and exec roots, `--init-path` set to vminit,
//! no iptables, no bridge, the vfs storage driver), stopped at the end.
//! Every engine command has a deadline: a hang fails its test and is
//! killed, it does not block CI. Containers and images are named
//! `vminit-test-*` and removed afterwards.
//!
//! `VMINIT_ENGINES_INIT=PATH` runs the tests with another init in vminit's
//! place (a peer, or a script that lacks a behaviour), to see them fail.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::release::build;
use crate::vm::{kernel, kit};
use crate::{cmd, setup};

/// Commands the engine tests use, and the Debian packages with them.
const PACKAGES: &[(&str, &str)] = &[
    ("podman", "podman"),
    ("runc", "runc"),
    ("dockerd", "docker.io"),
    ("containerd", "containerd"),
    ("docker", "docker.io"),
    ("tar", "tar"),
];

/// The deadline of one engine command (a `run`, a `stop`, an `import`).
const LIMIT: Duration = Duration::from_secs(60);

/// The image both engines import (each into its own store).
const IMAGE: &str = "vminit-test-engines";

/// The private dockerd's socket, and its exec root (short: containerd's
/// socket lives below it, within the 108 bytes of a socket path).
const DOCKER_SOCKET: &str = "unix:///run/vminit-test-docker.sock";
const DOCKER_EXEC_ROOT: &str = "/run/vminit-test-docker";

/// The tests, by the name after the engine's: `engines::podman_NAME`.
const TESTS: &[(&str, Test)] = &[
    (
        "stop_reaches_the_app_as_sigterm_and_its_code_is_the_containers",
        stop,
    ),
    ("orphans_are_reaped", orphans),
    (
        "run_it_gives_a_shell_job_control_and_ctrl_c_reaches_its_job",
        terminal,
    ),
    ("exit_codes_and_signal_deaths_pass_through", exit_codes),
];

type Test = fn(&Engine) -> Result<Outcome, String>;

enum Outcome {
    Passed,
    Skipped(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Podman,
    Docker,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Podman => "podman",
            Kind::Docker => "docker",
        }
    }
}

/// Every test with both engines, as CI runs them.
pub fn run() -> Result<(), String> {
    run_matching(None)
}

/// The tests whose full name (`podman_orphans_are_reaped`) contains `filter`.
pub fn run_matching(filter: Option<&str>) -> Result<(), String> {
    let chosen = |kind: Kind| -> Vec<(String, Test)> {
        TESTS
            .iter()
            .map(|(name, test)| (format!("{}_{name}", kind.name()), *test))
            .filter(|(name, _)| filter.is_none_or(|f| name.contains(f)))
            .collect()
    };
    if [Kind::Podman, Kind::Docker]
        .iter()
        .all(|kind| chosen(*kind).is_empty())
    {
        return Err(format!("no engine test matches {filter:?}"));
    }
    if !setup::is_root() {
        return Err("the engine tests need root (rootful Podman, a private dockerd)".into());
    }
    setup::packages(PACKAGES)?;
    // Another init in vminit's place shows which tests it would fail.
    let vminit = match std::env::var_os("VMINIT_ENGINES_INIT") {
        Some(path) => PathBuf::from(path),
        None => build::static_binary()?,
    };
    let work = cmd::root().join("target/engines");
    let tarball = root_tarball(&kit::static_busybox()?, &work)?;

    let mut results = Vec::new();
    for kind in [Kind::Podman, Kind::Docker] {
        let tests = chosen(kind);
        if tests.is_empty() {
            continue;
        }
        let engine = match Engine::prepare(kind, &vminit, &tarball, &work) {
            Ok(engine) => engine,
            Err(e) => {
                for (name, _) in tests {
                    println!("test engines::{name} ... FAILED\n{e}");
                    results.push(false);
                }
                continue;
            }
        };
        for (name, test) in tests {
            let started = Instant::now();
            let outcome = test(&engine);
            let wall = started.elapsed().as_secs_f64();
            match &outcome {
                Ok(Outcome::Passed) => println!("test engines::{name} ... ok ({wall:.1} s)"),
                Ok(Outcome::Skipped(why)) => {
                    println!("test engines::{name} ... skipped ({why})");
                }
                Err(e) => println!("test engines::{name} ... FAILED ({wall:.1} s)\n{e}"),
            }
            results.push(outcome.is_ok());
        }
        engine.clean_up();
    }
    let failed = results.iter().filter(|ok| !**ok).count();
    println!(
        "engines: {} passed, {failed} failed",
        results.len() - failed
    );
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} engine test(s) failed"))
    }
}

/// The image's root as a tar file: busybox with a link per applet, and the
/// directories a container root has.
fn root_tarball(busybox: &Path, work: &Path) -> Result<PathBuf, String> {
    let dir = work.join("root");
    crate::vm::disk::busybox_tree(&dir, busybox, &[])?;
    let tarball = work.join("root.tar");
    cmd::output(
        Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(tarball)
}

/// One engine, its image imported, ready to run containers with vminit
/// as their init.
struct Engine {
    kind: Kind,
    /// Options before the subcommand (Docker: the private daemon's socket).
    global: Vec<String>,
    /// Options of every `run`: the init, and what this machine needs.
    run: Vec<String>,
    /// Docker's private daemon, held for its `Drop`, which stops it.
    _daemon: Option<Daemon>,
}

impl Engine {
    fn prepare(kind: Kind, vminit: &Path, tarball: &Path, work: &Path) -> Result<Engine, String> {
        let engine = match kind {
            Kind::Podman => Engine {
                kind,
                global: Vec::new(),
                run: [
                    "--runtime",
                    "runc",
                    "--ulimit",
                    "nofile=20000:20000",
                    "--ulimit",
                    "nproc=20000:20000",
                    "--network",
                    "none",
                    "--init",
                ]
                .map(String::from)
                .into_iter()
                .chain([format!("--init-path={}", vminit.display())])
                .collect(),
                _daemon: None,
            },
            Kind::Docker => Engine {
                kind,
                global: vec!["--host".into(), DOCKER_SOCKET.into()],
                // The daemon's --init-path makes vminit the init of `--init`.
                run: ["--network", "none", "--init"].map(String::from).to_vec(),
                _daemon: Some(Daemon::start(vminit, work)?),
            },
        };
        // Leftovers of a run that was killed.
        engine.clean_up();
        let imported = limited(engine.command(&["import"]).arg(tarball).arg(IMAGE), LIMIT)?;
        imported.succeeded()?;
        Ok(engine)
    }

    /// `podman`/`docker` with the global options and `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.kind.name());
        command.args(&self.global).args(args);
        command
    }

    /// `run` with vminit as the init, as container `name` (for the clean-up),
    /// with `options`, running `sh -c script` in the test image.
    fn run_sh(&self, name: &str, options: &[&str], script: &str) -> Command {
        let mut command = self.command(&["run"]);
        command
            .args(&self.run)
            .args(["--name", &self.container(name)])
            .args(options)
            .args([IMAGE, "sh", "-c", script]);
        command
    }

    /// A container's full name: `vminit-test-podman-NAME`.
    fn container(&self, name: &str) -> String {
        format!("vminit-test-{}-{name}", self.kind.name())
    }

    /// Removes the tests' containers (`rm -f`), whatever their state.
    fn remove(&self, names: &[&str]) {
        let full: Vec<String> = names.iter().map(|n| self.container(n)).collect();
        let mut command = self.command(&["rm", "-f"]);
        command.args(&full);
        let _ = limited(&mut command, LIMIT);
    }

    /// Removes every container the tests name, and the image.
    fn clean_up(&self) {
        self.remove(&["stop", "orphans", "tty", "exit3", "term", "kill"]);
        let _ = limited(&mut self.command(&["rmi", "-f", IMAGE]), LIMIT);
    }
}

/// A private `dockerd`, apart from any system one: its own socket, data
/// root (in vminit's cache) and exec root; vminit as its `--init-path`; no
/// iptables rules, no bridge (the tests run with `--network none`), and the
/// vfs storage driver (no overlay mounts needed).
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(vminit: &Path, work: &Path) -> Result<Daemon, String> {
        std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
        let log = work.join("dockerd.log");
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let data_root = kernel::cache_dir().join("docker");
        let mut command = Command::new("dockerd");
        command
            .args(["--host", DOCKER_SOCKET, "--exec-root", DOCKER_EXEC_ROOT])
            .arg("--data-root")
            .arg(&data_root)
            .args(["--pidfile", "/run/vminit-test-docker.pid"])
            .arg("--init-path")
            .arg(vminit)
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver", "vfs"])
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file);
        // SAFETY: prctl is async-signal-safe. A killed xtask (the main
        // thread starts dockerd) takes the daemon down with it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        eprintln!("+ {} (log: {})", cmd::describe(&command), log.display());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start dockerd: {e}"))?;
        let mut daemon = Daemon { child, log };
        let started = Instant::now();
        loop {
            // Ours first: a daemon left by a killed run may hold the socket
            // (ours then ends on its pid file, and the log says so).
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(format!("dockerd ended ({status}) {}", daemon.log_tail()));
            }
            let mut version = Command::new("docker");
            version.args([
                "--host",
                DOCKER_SOCKET,
                "version",
                "--format",
                "{{.Server.Version}}",
            ]);
            if let Ok(ran) = limited(&mut version, Duration::from_secs(10))
                && ran.code == Some(0)
            {
                eprintln!("dockerd {} is up", ran.stdout.trim());
                return Ok(daemon);
            }
            if started.elapsed() > LIMIT {
                return Err(format!(
                    "dockerd did not answer within {} s {}",
                    LIMIT.as_secs(),
                    daemon.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "; the end of {}:\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(15)..].join("\n")
        )
    }
}

impl Drop for Daemon {
    /// SIGTERM (dockerd stops its containerd too), SIGKILL if it lingers.
    fn drop(&mut self) {
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill on the pid of our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("xtask: warning: dockerd did not stop within 30 s; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a command left: its exit code (None: killed by a signal), output,
/// and how long it took.
struct Ran {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    wall: Duration,
}

impl Ran {
    fn succeeded(&self) -> Result<&Ran, String> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            Err(self.unexpected("success"))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        format!(
            "{}: wanted {wanted}, got exit code {:?} after {:.1} s\n--- stdout ---\n{}--- stderr ---\n{}",
            self.what,
            self.code,
            self.wall.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `command` (stdin from /dev/null) to its end, or kills it after
/// `limit`: a hang is an error here, not a stuck CI.
fn limited(command: &mut Command, limit: Duration) -> Result<Ran, String> {
    let what = cmd::describe(command);
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let status = wait_until(&mut child, started + limit)
        .ok_or_else(|| format!("{what} did not end within {} s; killed", limit.as_secs()))?;
    // A helper the engine left running (conmon, a shim) may hold the pipes
    // open: take what arrived within a moment, without waiting for their end.
    let deadline = Instant::now() + Duration::from_secs(2);
    let text = |output: mpsc::Receiver<Vec<u8>>| {
        let mut bytes = Vec::new();
        while let Ok(chunk) =
            output.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            bytes.extend(chunk);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Ran {
        what,
        code: status.code(),
        stdout: text(stdout),
        stderr: text(stderr),
        wall: started.elapsed(),
    })
}

/// Reads a pipe to its end in a thread; what it reads arrives on the
/// channel as it comes, which closes at the end.
fn collect(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (send, receive) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                if send.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    receive
}

/// Waits for `child` until `deadline`; past it, kills it and gives None.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `podman stop` sends SIGTERM to PID 1, vminit: it must reach the app,
/// whose trap exits 42, and the container's code must be that 42. Without
/// the forwarding the app would run on until the engine's SIGKILL after
/// the 10 s timeout (137).
fn stop(engine: &Engine) -> Result<Outcome, String> {
    engine.remove(&["stop"]);
    let result = (|| {
        let script = "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done";
        limited(&mut engine.run_sh("stop", &["-d"], script), LIMIT)?.succeeded()?;
        let name = engine.container("stop");
        let started = Instant::now();
        loop {
            let logs = limited(&mut engine.command(&["logs", &name]), LIMIT)?;
            if logs.stdout.contains("ready") {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(logs.unexpected("\"ready\" within 20 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let stopped = limited(&mut engine.command(&["stop", "-t", "10", &name]), LIMIT)?;
        stopped.succeeded()?;
        if stopped.wall > Duration::from_secs(8) {
            return Err(stopped.unexpected("a stop well within the 10 s before SIGKILL"));
        }
        let code = limited(
            &mut engine.command(&["inspect", "--format", "{{.State.ExitCode}}", &name]),
            LIMIT,
        )?;
        let logs = limited(&mut engine.command(&["logs", &name]), LIMIT)?;
        if code.succeeded()?.stdout.trim() != "42" || !logs.stdout.contains("got TERM") {
            return Err(format!(
                "wanted exit code 42 from the app's TERM trap, got {:?}; logs:\n{}{}",
                code.stdout.trim(),
                logs.stdout,
                logs.stderr
            ));
        }
        Ok(Outcome::Passed)
    })();
    engine.remove(&["stop"]);
    result
}

/// Ten orphans: each `sh -c 'sleep 1 & sleep 1 &'` exits at once, so its
/// two sleeps are reparented to PID 1, vminit. While they run the app sees
/// them with parent 1; after they ended, none may be left, zombie or not.
fn orphans(engine: &Engine) -> Result<Outcome, String> {
    let script = r#"
for i in 1 2 3 4 5; do sh -c 'sleep 1 & sleep 1 &'; done
table() { cat /proc/[0-9]*/stat 2>/dev/null; }
echo "orphans=$(table | awk '$2 == "(sleep)" && $4 == 1' | wc -l)"
sleep 3
table | awk '{ print $1, $2, $3, $4 }'
echo "left=$(table | awk '$2 == "(sleep)" || $3 == "Z"' | wc -l)"
"#;
    let ran = limited(&mut engine.run_sh("orphans", &["--rm"], script), LIMIT);
    engine.remove(&["orphans"]);
    let ran = ran?;
    ran.succeeded()?;
    let value = |key: &str| -> Option<u32> {
        ran.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|n| n.trim().parse().ok())
    };
    match (value("orphans="), value("left=")) {
        (Some(1..), Some(0)) => Ok(Outcome::Passed),
        _ => Err(ran.unexpected("orphans of PID 1 seen, then none left (no zombies)")),
    }
}

/// `run -it` on a pseudo-terminal. The app must lead its own process group
/// (not vminit's, 1) and that group must be the terminal's foreground group:
/// vminit handed the terminal over. The app then becomes an interactive
/// busybox shell, which must have job control (`m` in `$-`; without the
/// hand-over ash would stop itself with SIGTTIN) and see `tty`; Ctrl-C must
/// stop its foreground `sleep 30` (130) and leave the shell, whose `exit 7`
/// is then the container's code.
fn terminal(engine: &Engine) -> Result<Outcome, String> {
    engine.remove(&["tty"]);
    let script = r#"echo "groups=$(cut -d' ' -f5,8 /proc/$$/stat | tr ' ' :)"; exec sh -i"#;
    let mut command = engine.run_sh("tty", &["--rm", "-it"], script);
    let spawned = Pty::spawn(&mut command);
    // Closes the parent's copies of the terminal's slave side.
    drop(command);
    let mut pty = match spawned {
        Ok(pty) => pty,
        Err(PtyError::NoTerminal(why)) => return Ok(Outcome::Skipped(why)),
        Err(PtyError::Other(e)) => return Err(e),
    };
    let result = (|| {
        let groups = pty.line("groups=")?;
        let (group, foreground) = groups["groups=".len()..]
            .split_once(':')
            .unwrap_or_default();
        if group != foreground || group == "1" {
            return Err(format!(
                "wanted the app's own group as the terminal's foreground group, not \
                 vminit's (1): group {group:?}, foreground {foreground:?}"
            ));
        }
        pty.expect("# ")?;
        // Quotes split the markers so that the echoed input does not match.
        pty.send("echo \"t\"\"ty=$(tty)\" \"fl\"\"ags=$-\"\n")?;
        let line = pty.line("tty=")?;
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_default()
                .to_owned()
        };
        if !field("tty=").starts_with("/dev/pts/") || !field("flags=").contains('m') {
            return Err(format!(
                "wanted a tty and job control (m in $-) in the shell: {line:?}"
            ));
        }
        pty.send("printf 'sl%s\\n' eeping; sleep 30\n")?;
        pty.expect("sleeping")?;
        // Let the shell start sleep before the interrupt.
        std::thread::sleep(Duration::from_millis(500));
        pty.send("\x03")?;
        pty.expect("# ")?;
        pty.send("echo \"af\"\"ter=$?\"\n")?;
        let after = pty.line("after=")?;
        if after != "after=130" {
            return Err(format!(
                "wanted 130 after Ctrl-C stopped sleep, got {after:?}"
            ));
        }
        pty.send("exit 7\n")?;
        match wait_until(&mut pty.child, Instant::now() + LIMIT) {
            Some(status) if status.code() == Some(7) => Ok(Outcome::Passed),
            Some(status) => Err(format!("wanted the shell's exit 7, got {status}")),
            None => Err("the container did not end after exit 7".into()),
        }
    })();
    let result = result.map_err(|e| format!("{e}\n--- terminal ---\n{}", pty.seen));
    let _ = pty.child.kill();
    let _ = pty.child.wait();
    engine.remove(&["tty"]);
    result
}

/// `exit 3` is the container's 3; the app's death by SIGTERM and SIGKILL
/// are 143 and 137, with vminit's own line saying so (proof that vminit,
/// not the engine, turned the signal into the code).
fn exit_codes(engine: &Engine) -> Result<Outcome, String> {
    let cases = [
        ("exit3", "exit 3", 3, None),
        ("term", "kill -TERM $$", 143, Some("killed by SIGTERM")),
        ("kill", "kill -KILL $$", 137, Some("killed by SIGKILL")),
    ];
    for (name, script, code, line) in cases {
        let ran = limited(&mut engine.run_sh(name, &["--rm"], script), LIMIT);
        engine.remove(&[name]);
        let ran = ran?;
        if ran.code != Some(code) || line.is_some_and(|l| !ran.stderr.contains(l)) {
            let wanted = match line {
                Some(l) => format!("exit code {code} and vminit's line {l:?}"),
                None => format!("exit code {code}"),
            };
            return Err(ran.unexpected(&wanted));
        }
    }
    Ok(Outcome::Passed)
}

enum PtyError {
    /// No pseudo-terminal to be had here: the test is skipped.
    NoTerminal(String),
    Other(String),
}

/// A command on a new pseudo-terminal (its controlling terminal, in a
/// session of its own), what it printed, and a reader thread.
struct Pty {
    master: File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
    /// Where the next `expect` starts looking in `seen`.
    from: usize,
    child: Child,
}

impl Pty {
    fn spawn(command: &mut Command) -> Result<Pty, PtyError> {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the locals; no name buffer
        // and no termios are passed.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        if opened != 0 {
            let error = std::io::Error::last_os_error();
            return Err(PtyError::NoTerminal(format!("no pseudo-terminal: {error}")));
        }
        // SAFETY: openpty succeeded: both fds are new and ours alone.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let master = File::from(master);
        let slave = File::from(slave);
        let other = |e: std::io::Error| PtyError::Other(format!("pty: {e}"));
        command
            .stdin(slave.try_clone().map_err(other)?)
            .stdout(slave.try_clone().map_err(other)?)
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        eprintln!("+ {} (on a pty)", cmd::describe(command));
        let child = command.spawn().map_err(|e| {
            PtyError::Other(format!("cannot start {}: {e}", cmd::describe(command)))
        })?;
        // The parent's copies of the slave close when the caller drops
        // `command`; the reader then sees EIO once the child's are gone.
        let mut reader = master.try_clone().map_err(other)?;
        let (send, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if send.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(Pty {
            master,
            output,
            seen: String::new(),
            from: 0,
            child,
        })
    }

    fn send(&mut self, text: &str) -> Result<(), String> {
        self.master
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing to the pty: {e}"))
    }

    /// Waits (up to 20 s) for `needle` after the previous match; returns
    /// where it ends.
    fn expect(&mut self, needle: &str) -> Result<usize, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.seen[self.from..].find(needle) {
                self.from += at + needle.len();
                return Ok(self.from);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => return Err(format!("{needle:?} did not appear on the terminal")),
            }
        }
    }

    /// The rest of the line that starts at `marker` (marker included).
    fn line(&mut self, marker: &str) -> Result<String, String> {
        let start = self.expect(marker)? - marker.len();
        let end = self.expect("\n")?;
        Ok(self.seen[start..end].trim_end().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hang_is_killed_at_the_deadline() {
        let started = Instant::now();
        let ran = limited(Command::new("sleep").arg("30"), Duration::from_millis(300));
        assert!(ran.is_err_and(|e| e.contains("did not end within")));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn code_and_output_are_kept_even_when_a_helper_holds_the_pipes() {
        let started = Instant::now();
        let ran = limited(
            Command::new("sh").args(["-c", "sleep 4 & echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            (ran.code, ran.stdout.as_str(), ran.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        // Not until the background sleep closed them (4 s).
        assert!(started.elapsed() < Duration::from_millis(3500));
    }
}
