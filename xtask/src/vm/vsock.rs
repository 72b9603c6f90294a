//! The host side of a guest's vsock, as Firecracker and cloud-hypervisor
//! give it: rust-vmm's `vhost-device-vsock` serves QEMU's
//! `vhost-user-vsock-device` and exposes Firecracker's hybrid Unix socket.
//! The host writes `CONNECT PORT\n` on `uds` to reach a guest's listener;
//! the guest's connections to CID 2, port P, arrive on the Unix socket
//! `uds_P`, where the host listens.

use std::io::{BufRead as _, BufReader};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::setup;

/// The guest's CID.
pub const GUEST_CID: u32 = 3;

/// A running `vhost-device-vsock` for one VM; stopped when dropped.
pub struct VsockHost {
    process: Child,
    /// The vhost-user socket QEMU connects to.
    socket: PathBuf,
    /// Firecracker's hybrid socket: `CONNECT PORT`, and `uds_P` listeners.
    pub uds: PathBuf,
}

impl VsockHost {
    /// Starts the back-end with its sockets in `dir`, named after `name`,
    /// once it is installed (`cargo install vhost-device-vsock`), and waits
    /// for its vhost-user socket.
    pub fn start(dir: &Path, name: &str) -> Result<VsockHost, String> {
        setup::cargo_tool("vhost-device-vsock", "vhost-device-vsock", "0.3.0")?;
        let socket = dir.join(format!("{name}.vhost.sock"));
        let uds = dir.join(format!("{name}.vsock"));
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&uds);
        let process = Command::new("vhost-device-vsock")
            .arg("--vm")
            .arg(format!(
                "guest-cid={GUEST_CID},socket={},uds-path={}",
                socket.display(),
                uds.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("vhost-device-vsock: {e}"))?;
        let host = VsockHost {
            process,
            socket,
            uds,
        };
        let start = Instant::now();
        while !host.socket.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("vhost-device-vsock made no socket within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
    thread: JoinHandle<String>,
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
            thread,
        })
    }

    /// Stops listening; returns the line read, if any.
    pub fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let line = self.thread.join().unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        line
    }
}
