//! Ctrl-C, SIGTERM and SIGHUP during a build: the build stops where it is
//! and removes what it made, as on any failure.
//!
//! [`install`] blocks the three signals and waits for them in a thread of
//! its own. A signal is recorded ([`requested`]), every read of the image
//! fails at once (through [`check`]), and the tool running (`mkfs.ext4`,
//! `cp`) gets the same signal. The build then unwinds through its error
//! path, which removes the staging tree and the partial outputs. Should
//! the build not come back within [`GRACE`] (a read that blocks), the
//! thread removes what was registered ([`leave`]) and exits itself.
//!
//! Without [`install`] (the library in `cargo xtask`) nothing is blocked
//! and [`requested`] stays `None`.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::sys::signal::{self, SigSet, Signal};
use nix::unistd::Pid;

/// How long the build has to unwind after a signal before the thread
/// removes what was registered and exits.
pub const GRACE: Duration = Duration::from_secs(3);

const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The signal received, 0 for none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The tool running now, 0 for none.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// What to remove if the build does not come back in time.
static LEFTOVERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Blocks the signals in this thread (call it before any other thread
/// starts, so every thread inherits the mask) and waits for them in one of
/// its own. Children get an empty mask from `std::process::Command`.
pub fn install() -> io::Result<()> {
    let mut set = SigSet::empty();
    for signal in SIGNALS {
        set.add(signal);
    }
    set.thread_block().map_err(io::Error::from)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            SIGNAL.store(signal as i32, Ordering::SeqCst);
            let child = CHILD.load(Ordering::SeqCst);
            if child > 0 {
                let _ = signal::kill(Pid::from_raw(child), signal);
            }
            std::thread::sleep(GRACE);
            remove_leftovers();
            eprintln!(
                "vminit-image: stopped by {}; the partial build was removed",
                signal.as_str()
            );
            std::process::exit(128 + signal as i32);
        })?;
    Ok(())
}

/// The signal that asked the build to stop, if one did.
pub fn requested() -> Option<Signal> {
    Signal::try_from(SIGNAL.load(Ordering::SeqCst)).ok()
}

/// An error once a signal has asked the build to stop.
pub fn check() -> io::Result<()> {
    match requested() {
        Some(signal) => Err(io::Error::other(format!("stopped by {}", signal.as_str()))),
        None => Ok(()),
    }
}

/// Registers paths for the signal thread to remove should the build not
/// unwind in time; the build removes them itself on its error path.
pub fn leave(paths: impl IntoIterator<Item = PathBuf>) {
    if let Ok(mut leftovers) = LEFTOVERS.lock() {
        leftovers.extend(paths);
    }
}

/// Forgets the registered paths: the build is done with them.
pub fn forget() {
    if let Ok(mut leftovers) = LEFTOVERS.lock() {
        leftovers.clear();
    }
}

fn remove_leftovers() {
    let paths = LEFTOVERS.lock().map(|l| l.clone()).unwrap_or_default();
    for path in paths {
        crate::files::remove_tree(&path);
    }
}

/// Runs a tool to its end, its output captured; a signal that stops the
/// build is passed on to it.
pub fn output(command: &mut Command) -> io::Result<Output> {
    check()?;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    // A signal that came between the check and the store.
    if let Some(signal) = requested() {
        let _ = signal::kill(Pid::from_raw(child.id() as i32), signal);
    }
    let output = child.wait_with_output();
    CHILD.store(0, Ordering::SeqCst);
    output
}
