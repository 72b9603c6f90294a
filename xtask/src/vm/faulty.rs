//! Disks that fail or hang on the host's command, with QEMU's own tools and
//! no special kernel:
//!
//! - [`failing_disk`]: QEMU's `blkdebug` driver between the disk and its
//!   image file, failing every write that touches one sector with EIO;
//! - [`DiskServer`]: the image exported over NBD by `qemu-storage-daemon`,
//!   which the host stops with SIGSTOP: every request the guest makes then
//!   waits, as on a hung disk, until SIGCONT.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tools, for `setup::packages`.
pub const TOOLS: &[(&str, &str)] = &[("qemu-storage-daemon", "qemu-system-common")];

/// A virtio-blk device for `image` whose writes that touch `sector` (of
/// 512 bytes) fail with EIO, its rules written to `rules`. Everything else
/// reads and writes the image as usual.
pub fn failing_disk(
    image: &Path,
    id: &str,
    sector: u64,
    rules: &Path,
) -> Result<Vec<String>, String> {
    // The raw format driver above blkdebug raises the `write_aio` event
    // that arms the rule, for every write; the sector limits which fail.
    let text =
        format!("[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\nsector = \"{sector}\"\n");
    std::fs::write(rules, text).map_err(|e| format!("{}: {e}", rules.display()))?;
    Ok(vec![
        "-drive".into(),
        format!(
            "driver=raw,file.driver=blkdebug,file.config={},file.image.filename={},if=none,id={id}",
            rules.display(),
            image.display()
        ),
        "-device".into(),
        format!("virtio-blk-device,drive={id}"),
    ])
}

/// `qemu-storage-daemon` serving one image over NBD on a Unix socket.
#[derive(Debug)]
pub struct DiskServer {
    daemon: Child,
    socket: PathBuf,
}

impl DiskServer {
    /// Serves `image` writable on the socket `socket`, once it listens.
    pub fn start(image: &Path, socket: &Path) -> Result<DiskServer, String> {
        let _ = std::fs::remove_file(socket);
        let daemon = Command::new("qemu-storage-daemon")
            .arg("--blockdev")
            .arg(format!(
                "driver=file,node-name=disk,filename={}",
                image.display()
            ))
            .arg("--nbd-server")
            .arg(format!("addr.type=unix,addr.path={}", socket.display()))
            .args([
                "--export",
                "type=nbd,id=export,node-name=disk,name=disk,writable=on",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start qemu-storage-daemon: {e}"))?;
        let mut server = DiskServer {
            daemon,
            socket: socket.to_path_buf(),
        };
        let start = Instant::now();
        while !socket.exists() {
            if let Ok(Some(status)) = server.daemon.try_wait() {
                return Err(format!("qemu-storage-daemon exited: {status}"));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "qemu-storage-daemon never listened on {}",
                    socket.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The drive and its virtio-blk device, as [`super::qemu::disk`] gives.
    pub fn disk(&self, id: &str) -> Vec<String> {
        vec![
            "-drive".into(),
            format!(
                "driver=nbd,server.type=unix,server.path={},export=disk,if=none,id={id}",
                self.socket.display()
            ),
            "-device".into(),
            format!("virtio-blk-device,drive={id}"),
        ]
    }

    /// Stops the server (SIGSTOP): the disk hangs.
    pub fn hang(&self) -> Result<(), String> {
        self.signal(libc::SIGSTOP)
    }

    /// Resumes the server (SIGCONT).
    pub fn resume(&self) -> Result<(), String> {
        self.signal(libc::SIGCONT)
    }

    fn signal(&self, signal: i32) -> Result<(), String> {
        let pid = i32::try_from(self.daemon.id()).map_err(|e| e.to_string())?;
        // SAFETY: kill(2) on our own child, which is not reaped before drop.
        if unsafe { libc::kill(pid, signal) } == 0 {
            Ok(())
        } else {
            Err(format!("kill {pid}: {}", std::io::Error::last_os_error()))
        }
    }
}

impl Drop for DiskServer {
    fn drop(&mut self) {
        let _ = self.resume();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
