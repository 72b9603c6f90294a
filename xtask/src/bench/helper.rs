//! Processes the peer benchmark runs under each init (`cargo xtask
//! bench-helper …`, called by `bench` as the init's child).
//!
//! - `orphans N`: forks a process that forks N children, which exit at
//!   once, and exits without waiting: the N zombies pass to PID 1. Prints
//!   how long PID 1 took to reap them all (`reap_ms=`) and how many it left
//!   (`left=`, after a 60 s cap).
//! - `echo-signal FIFO`: writes one byte to FIFO when ready and then one for
//!   each SIGUSR1 it receives, from the signal handler.

use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

pub fn run(args: &[String]) -> Result<(), String> {
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["orphans", count] => orphans(count.parse().map_err(|_| "orphans takes a count")?),
        ["echo-signal", fifo] => echo_signal(fifo),
        _ => Err("bench-helper orphans N | echo-signal FIFO".into()),
    }
}

fn orphans(count: u32) -> Result<(), String> {
    // SAFETY: the child only calls fork and _exit before exiting.
    let parent = unsafe { libc::fork() };
    if parent == 0 {
        for _ in 0..count {
            // SAFETY: async-signal-safe calls only, in a single-threaded child.
            if unsafe { libc::fork() } == 0 {
                // SAFETY: ends the grandchild at once, running nothing else.
                unsafe { libc::_exit(0) };
            }
        }
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    if parent < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    unsafe { libc::waitpid(parent, &mut status, 0) };
    // Now every grandchild, exited or about to, is PID 1's to reap.
    let start = Instant::now();
    let me = std::process::id().to_string();
    let mut left = usize::MAX;
    while start.elapsed() < Duration::from_secs(60) {
        let children =
            std::fs::read_to_string("/proc/1/task/1/children").map_err(|e| e.to_string())?;
        left = children.split_whitespace().filter(|pid| *pid != me).count();
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!(
        "reap_ms={:.3} left={left}",
        start.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

static ACK_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_usr1(_: libc::c_int) {
    let fd = ACK_FD.load(Ordering::Relaxed);
    // SAFETY: write is async-signal-safe; the buffer is a valid static byte.
    unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
}

fn echo_signal(fifo: &str) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .map_err(|e| format!("{fifo}: {e}"))?;
    use std::os::fd::AsRawFd;
    ACK_FD.store(file.as_raw_fd(), Ordering::Relaxed);
    // SAFETY: installs a handler that only calls write(2).
    unsafe { libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t) };
    file.write_all(b"r").map_err(|e| e.to_string())?;
    loop {
        // SAFETY: pause has no preconditions; it returns after each handler.
        unsafe { libc::pause() };
    }
}
