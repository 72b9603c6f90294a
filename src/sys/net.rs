//! Network interfaces and routes through the classic ioctls on a datagram
//! socket: flags, MTU and index (netdevice(7)), addresses (`SIOCSIFADDR`,
//! `SIOCSIFNETMASK`, and `in6_ifreq` for IPv6, see ipv6(7)) and default
//! routes (`SIOCADDRT` with `rtentry` or `in6_rtmsg`, see route(8)). They
//! cover one statically configured interface with no netlink code at all.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// The request argument is `c_ulong` in glibc and `c_int` in musl: `as _` fits both.

/// `struct rtentry` from `<linux/route.h>`; libc has it for musl only.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

/// `struct in6_rtmsg` from `<linux/ipv6_route.h>`; libc's fields are private.
#[repr(C)]
struct In6RtMsg {
    dst: libc::in6_addr,
    src: libc::in6_addr,
    gateway: libc::in6_addr,
    kind: u32,
    dst_len: u16,
    src_len: u16,
    metric: u32,
    info: libc::c_ulong,
    flags: u32,
    ifindex: libc::c_int,
}

const RTF_UP: u16 = 0x0001;
const RTF_GATEWAY: u16 = 0x0002;
/// The metric `ip -6 route add` gives a route (`IP6_RT_PRIO_USER`).
const IPV6_USER_METRIC: u32 = 1024;

fn socket(family: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket has no memory-safety preconditions.
    let raw = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Runs one ioctl whose argument is `arg`.
fn ioctl<T>(socket: &OwnedFd, request: libc::c_ulong, arg: &mut T) -> io::Result<()> {
    // SAFETY: every caller passes the struct the request reads or writes,
    // fully initialised, and it outlives the call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), request as _, arg as *mut T) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `name` NUL-padded to `IFNAMSIZ`, as the kernel reads interface names.
fn interface_name(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    let mut buffer = [0; libc::IFNAMSIZ];
    if name.is_empty() || name.len() >= buffer.len() || name.contains('\0') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (slot, byte) in buffer.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    Ok(buffer)
}

/// A zeroed `ifreq` naming the interface `name`.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data for which all zeroes is valid.
    let mut request: libc::ifreq = unsafe { MaybeUninit::zeroed().assume_init() };
    request.ifr_name = interface_name(name)?;
    Ok(request)
}

fn sockaddr_v4(addr: Ipv4Addr) -> libc::sockaddr {
    let inet = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size, and the kernel
    // reads the generic form by its family.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(inet) }
}

fn in6_addr(addr: Ipv6Addr) -> libc::in6_addr {
    libc::in6_addr {
        s6_addr: addr.octets(),
    }
}

/// Sets `IFF_UP` on the interface `name` (e.g. `lo`).
pub fn interface_up(name: &str) -> io::Result<()> {
    let socket = socket(libc::AF_INET)?;
    let mut request = ifreq(name)?;
    ioctl(&socket, libc::SIOCGIFFLAGS as _, &mut request)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(&socket, libc::SIOCSIFFLAGS as _, &mut request)
}

/// Sets the interface's MTU.
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let socket = socket(libc::AF_INET)?;
    let mut request = ifreq(name)?;
    request.ifr_ifru.ifru_mtu =
        libc::c_int::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    ioctl(&socket, libc::SIOCSIFMTU as _, &mut request)
}

/// The interface's index; fails with `ENODEV` when there is none by that name.
pub fn interface_index(name: &str) -> io::Result<libc::c_int> {
    let socket = socket(libc::AF_INET)?;
    let mut request = ifreq(name)?;
    ioctl(&socket, libc::SIOCGIFINDEX as _, &mut request)?;
    // SAFETY: SIOCGIFINDEX filled the `ifru_ifindex` member.
    Ok(unsafe { request.ifr_ifru.ifru_ifindex })
}

/// Sets the interface's IPv4 address and netmask.
pub fn set_ipv4_address(name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let socket = socket(libc::AF_INET)?;
    let mut request = ifreq(name)?;
    request.ifr_ifru.ifru_addr = sockaddr_v4(addr);
    ioctl(&socket, libc::SIOCSIFADDR as _, &mut request)?;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    request.ifr_ifru.ifru_netmask = sockaddr_v4(Ipv4Addr::from(mask));
    ioctl(&socket, libc::SIOCSIFNETMASK as _, &mut request)
}

/// Adds an IPv6 address to the interface.
pub fn add_ipv6_address(name: &str, addr: Ipv6Addr, prefix: u8) -> io::Result<()> {
    let index = interface_index(name)?;
    let socket = socket(libc::AF_INET6)?;
    let mut request = libc::in6_ifreq {
        ifr6_addr: in6_addr(addr),
        ifr6_prefixlen: u32::from(prefix),
        ifr6_ifindex: index,
    };
    ioctl(&socket, libc::SIOCSIFADDR as _, &mut request)
}

/// Adds an IPv4 default route through `gateway` on the interface.
pub fn add_ipv4_default_route(name: &str, gateway: Ipv4Addr) -> io::Result<()> {
    let socket = socket(libc::AF_INET)?;
    // The kernel copies IFNAMSIZ - 1 bytes whatever the name's length: a
    // zeroed buffer of that size, not a string of the name's.
    let mut device = interface_name(name)?;
    let mut route = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr_v4(Ipv4Addr::UNSPECIFIED),
        rt_gateway: sockaddr_v4(gateway),
        rt_genmask: sockaddr_v4(Ipv4Addr::UNSPECIFIED),
        rt_flags: RTF_UP | RTF_GATEWAY,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        // The kernel only reads the name.
        rt_dev: device.as_mut_ptr(),
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    ioctl(&socket, libc::SIOCADDRT as _, &mut route)
}

/// Adds an IPv6 default route through `gateway` on the interface.
pub fn add_ipv6_default_route(name: &str, gateway: Ipv6Addr) -> io::Result<()> {
    let index = interface_index(name)?;
    let socket = socket(libc::AF_INET6)?;
    let mut route = In6RtMsg {
        dst: in6_addr(Ipv6Addr::UNSPECIFIED),
        src: in6_addr(Ipv6Addr::UNSPECIFIED),
        gateway: in6_addr(gateway),
        kind: 0,
        dst_len: 0,
        src_len: 0,
        metric: IPV6_USER_METRIC,
        info: 0,
        flags: u32::from(RTF_UP | RTF_GATEWAY),
        ifindex: index,
    };
    ioctl(&socket, libc::SIOCADDRT as _, &mut route)
}
