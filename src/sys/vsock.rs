//! AF_VSOCK stream sockets, the host channel of Firecracker, cloud-hypervisor
//! and QEMU's vhost-vsock, with timeouts on connecting, sending and
//! receiving so that a host that never answers cannot hang PID 1; and a
//! listening socket, for the API the host calls. See vsock(7).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD` from `<linux/vm_sockets.h>`: a
/// `timeval` (the 64-bit one on 64-bit targets); libc lacks it.
const CONNECT_TIMEOUT: libc::c_int = 6;

fn timeval(timeout: Duration) -> libc::timeval {
    // A zero timeval means "no timeout": never pass one.
    let timeout = timeout.max(Duration::from_millis(1));
    libc::timeval {
        tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
        tv_usec: timeout.subsec_micros().into(),
    }
}

fn set_option(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    timeout: Duration,
) -> io::Result<()> {
    let time = timeval(timeout);
    // SAFETY: `time` is a valid timeval of the size given.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const time).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new vsock stream socket, closed on exec.
fn stream_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket has no memory-safety preconditions.
    let raw = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The address of `port` on context `cid`.
fn address(cid: u32, port: u32) -> libc::sockaddr_vm {
    // SAFETY: sockaddr_vm is plain old data for which all zeroes is valid.
    let mut address: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    address.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    address.svm_cid = cid;
    address.svm_port = port;
    address
}

/// Connects to `port` on context `cid`, giving up after `timeout`.
pub fn connect(cid: u32, port: u32, timeout: Duration) -> io::Result<File> {
    let socket = stream_socket()?;
    set_option(&socket, libc::AF_VSOCK, CONNECT_TIMEOUT, timeout)?;
    let address = address(cid, port);
    // SAFETY: `address` is a valid sockaddr_vm of the length given.
    let result = unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&raw const address).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(File::from(socket))
}

/// Makes each later send and receive on `stream` give up after `timeout`.
pub fn set_timeout(stream: &File, timeout: Duration) -> io::Result<()> {
    set_option(stream, libc::SOL_SOCKET, libc::SO_SNDTIMEO, timeout)?;
    set_option(stream, libc::SOL_SOCKET, libc::SO_RCVTIMEO, timeout)
}

/// Closes the sending side: the peer reads end-of-file.
pub fn shutdown_write(stream: &File) -> io::Result<()> {
    // SAFETY: shutdown only acts on the descriptor, which `stream` owns.
    if unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_WR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A socket listening on `port` for any context's connections (the host's
/// through Firecracker's hybrid socket, `CONNECT PORT`).
pub fn listen(port: u32) -> io::Result<OwnedFd> {
    let socket = stream_socket()?;
    let address = address(libc::VMADDR_CID_ANY, port);
    // SAFETY: `address` is a valid sockaddr_vm of the length given.
    let bound = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const address).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    // SAFETY: listen has no memory-safety preconditions.
    if bound < 0 || unsafe { libc::listen(socket.as_raw_fd(), 64) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// The next connection on `listener`, with sends and receives giving up
/// after `timeout`.
pub fn accept(listener: &OwnedFd, timeout: Duration) -> io::Result<File> {
    // SAFETY: null address pointers are allowed: the peer is not asked for.
    let raw = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let stream = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    set_timeout(&stream, timeout)?;
    Ok(stream)
}

/// Whether the peer of `stream` has closed it (or shut its sending side),
/// without waiting or taking any byte it sent.
pub fn peer_closed(stream: &File) -> bool {
    let mut byte = 0u8;
    // SAFETY: `byte` is valid for a write of one byte.
    let rc = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&raw mut byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    rc == 0
        || (rc < 0
            && !matches!(
                io::Error::last_os_error().kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ))
}
