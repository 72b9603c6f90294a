//! A vsock listener for the VM tests, built static and put in the test
//! image: `vsock-listen PORT MARKER` listens on PORT (any CID), creates the
//! file MARKER once listening, accepts one connection, reads one line,
//! closes (which vminit takes as the receipt) and prints
//! `vsock-listen: received LINE`. With a third argument `hold`, it keeps
//! the connection open instead, as a host that never answers would. It blocks SIGTERM so that vminit's clean-up, which starts as
//! soon as the record is sent, cannot kill it before it has printed.

use std::io::BufRead;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(marker)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: vsock-listen PORT MARKER [hold]");
        std::process::exit(2);
    };
    let port: u32 = port.parse().expect("PORT is a number");
    // SAFETY: an empty set with SIGTERM added is a valid mask; the old mask is not wanted.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    // SAFETY: socket has no memory-safety preconditions.
    let raw = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let listener = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_vm is plain old data; all zeroes is valid.
    let mut address: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    address.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    address.svm_cid = libc::VMADDR_CID_ANY;
    address.svm_port = port;
    let length = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
    // SAFETY: `address` is a valid sockaddr_vm of `length` bytes.
    let bound = unsafe { libc::bind(listener.as_raw_fd(), (&raw const address).cast(), length) };
    assert!(bound == 0, "bind: {}", std::io::Error::last_os_error());
    // SAFETY: listen only acts on the descriptor.
    let listening = unsafe { libc::listen(listener.as_raw_fd(), 1) };
    assert!(
        listening == 0,
        "listen: {}",
        std::io::Error::last_os_error()
    );
    std::fs::write(marker, b"").expect("marker file");
    // SAFETY: null address arguments are allowed: the peer is not wanted.
    let raw = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    assert!(raw >= 0, "accept: {}", std::io::Error::last_os_error());
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let stream = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    // One line, then close: the protocol vminit documents for hosts.
    let mut line = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut line)
        .expect("read");
    println!("vsock-listen: received {}", line.trim_end());
    if args.get(3).is_some_and(|a| a == "hold") {
        // Until vminit's clean-up ends it with SIGKILL.
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    drop(stream);
}
