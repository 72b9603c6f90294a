//! The host side of a guest's vsock, as Firecracker and cloud-hypervisor
//! give it: rust-vmm's `vhost-device-vsock` serves QEMU's
//! `vhost-user-vsock-device` and exposes Firecracker's hybrid Unix socket.
//! The host writes `CONNECT PORT\n` on `uds` to reach a guest's listener;
//! the guest's connections to CID 2, port P, arrive on the Unix socket
//! `uds_P`, where the host listens.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{cmd, setup};

/// The guest's CID.
pub const GUEST_CID: u32 = 3;

const PROGRAM: &str = "vhost-device-vsock";

/// The back-end: on PATH, else where `cargo install` put it.
fn program() -> std::path::PathBuf {
    if cmd::exists(PROGRAM) {
        return PROGRAM.into();
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_default();
    cargo_home.join("bin").join(PROGRAM)
}

/// A running `vhost-device-vsock` for one VM; stopped when dropped.
pub struct VsockHost {
    process: Child,
    /// The vhost-user socket QEMU connects to.
    socket: PathBuf,
    /// Firecracker's hybrid socket: `CONNECT PORT`, and `uds_P` listeners.
    pub uds: PathBuf,
}

impl VsockHost {
    /// Installs the back-end when missing (`cargo install`, once, before
    /// any VM starts: a build beside a TCG boot would slow it).
    pub fn install() -> Result<(), String> {
        setup::cargo_tool(PROGRAM, "vhost-device-vsock", "0.3.0")
    }

    /// Starts the back-end with its sockets in `dir`, named after `name`,
    /// and waits for its vhost-user socket. It dies with xtask.
    pub fn start(dir: &Path, name: &str) -> Result<VsockHost, String> {
        Self::install()?;
        let socket = dir.join(format!("{name}.vhost.sock"));
        let uds = dir.join(format!("{name}.vsock"));
        let log = dir.join(format!("{name}.vhost.log"));
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&uds);
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(program());
        command
            .arg("--vm")
            .arg(format!(
                "guest-cid={GUEST_CID},socket={},uds-path={}",
                socket.display(),
                uds.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: prctl is async-signal-safe. A killed xtask takes the
        // back-end down with it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let process = command.spawn().map_err(|e| format!("{PROGRAM}: {e}"))?;
        let mut host = VsockHost {
            process,
            socket,
            uds,
        };
        let start = Instant::now();
        while !host.socket.exists() {
            let said = || std::fs::read_to_string(&log).unwrap_or_default();
            if let Ok(Some(status)) = host.process.try_wait() {
                return Err(format!("{PROGRAM} ended ({status}): {}", said()));
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("{PROGRAM} made no socket within 10 s: {}", said()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&log);
        Ok(host)
    }

    /// QEMU's arguments for the device.
    pub fn devices(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=vsock,path={}", self.socket.display()),
            "-device".into(),
            "vhost-user-vsock-device,chardev=vsock".into(),
        ]
    }

    /// A connection to the guest's listener on `port` (`CONNECT PORT` on
    /// the hybrid socket, as a Firecracker host does); `None` while
    /// nothing listens there. Reads time out after 15 s.
    pub fn connect(&self, port: u32) -> Option<UnixStream> {
        let mut stream = UnixStream::connect(&self.uds).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .ok()?;
        stream
            .write_all(format!("CONNECT {port}\n").as_bytes())
            .ok()?;
        // Byte by byte: what follows the line is the guest's.
        let mut line = Vec::new();
        let mut byte = [0u8];
        while byte[0] != b'\n' && line.len() < 64 {
            if stream.read(&mut byte).ok()? == 0 {
                return None;
            }
            line.push(byte[0]);
        }
        line.starts_with(b"OK ").then_some(stream)
    }

    /// Listens for the guest's connections to CID 2, `port`.
    pub fn listen(&self, port: u32, hold: bool) -> Result<LineListener, String> {
        LineListener::start(
            &PathBuf::from(format!("{}_{port}", self.uds.display())),
            hold,
        )
    }
}

impl Drop for VsockHost {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.uds);
    }
}

/// A host listener that takes one connection and reads one line from it;
/// then closes it, or, with `hold`, keeps it open until stopped.
pub struct LineListener {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<String>>,
}

impl LineListener {
    fn start(path: &Path, hold: bool) -> Result<LineListener, String> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(_) if stopped.load(Ordering::Relaxed) => return String::new(),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            let _ = reader.read_line(&mut line);
            while hold && !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            line
        });
        Ok(LineListener {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// Stops listening; returns the line read, if any.
    pub fn stop(mut self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let line = self
            .thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        line
    }
}

impl Drop for LineListener {
    /// Dropped without [`LineListener::stop`] (a case that failed to
    /// start): the thread ends and the socket goes.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
