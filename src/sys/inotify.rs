//! Waiting for a file to appear, woken by the kernel: inotify(7) on its
//! directory, poll(2) for the deadline. A device node devtmpfs creates
//! (`/dev/vda` once virtio_blk has probed the disk) is seen at once, where
//! polling with a sleep sees it up to a period late.

use std::os::fd::AsFd as _;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// How often to look when the directory cannot be watched (it does not
/// exist yet: `/dev/disk/by-id` without udev).
const FALLBACK_PERIOD: Duration = Duration::from_millis(20);

/// Whether `path` exists by `deadline`: at once if it does, else woken by
/// each entry created in or moved into its directory.
pub fn wait_for(path: &Path, deadline: Instant) -> bool {
    let watch = path.parent().and_then(|dir| {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        let flags = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO;
        inotify.add_watch(dir, flags).ok()?;
        Some(inotify)
    });
    // Looked at after the watch is set: nothing created between is missed.
    loop {
        if path.exists() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match &watch {
            Some(inotify) => {
                let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
                let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                // An error (EINTR) or a timeout: look again either way.
                let _ = poll(&mut fds, timeout);
                // Drain: the events only say "look again".
                while inotify.read_events().is_ok_and(|events| !events.is_empty()) {}
            }
            None => std::thread::sleep(FALLBACK_PERIOD.min(left)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_made_while_waiting_ends_the_wait_and_a_missing_one_times_out() {
        let dir = std::env::temp_dir().join(format!("vminit-inotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vda");
        let maker = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                std::fs::write(path, b"").unwrap();
            })
        };
        let start = Instant::now();
        assert!(wait_for(&path, start + Duration::from_secs(30)));
        maker.join().unwrap();
        assert!(!wait_for(
            &dir.join("never"),
            Instant::now() + Duration::from_millis(50)
        ));
        // No directory to watch: looked for by period, still bounded.
        assert!(!wait_for(
            &dir.join("missing/dir/vdb"),
            Instant::now() + Duration::from_millis(50)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
