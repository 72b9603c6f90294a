//! What the child changes about itself before exec: resource limits
//! (setrlimit(2)), groups and ids (setgroups(2), setresgid(2),
//! setresuid(2)), and `PR_SET_NO_NEW_PRIVS` (prctl(2)).
//!
//! Everything here runs between fork and exec, so it makes raw syscalls
//! only: no allocation, no lock, and none of libc's multi-thread machinery
//! for set*id (musl broadcasts those to every thread with a signal).

use std::io;

// The raw set*id and setgroups syscalls used here take 32-bit ids only on
// 64-bit targets (32-bit x86 and ARM have separate `*32` calls).
#[cfg(not(target_pointer_width = "64"))]
compile_error!("vminit's credentials module supports 64-bit targets only");

/// A resource limit ready for setrlimit: `RLIMIT_*`, soft, hard
/// (`RLIM_INFINITY` for unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLimit {
    pub resource: libc::c_int,
    pub soft: u64,
    pub hard: u64,
}

/// The `RLIMIT_*` number of a resource named as in `limits::RESOURCES`.
pub fn resource_number(name: &str) -> Option<libc::c_int> {
    let number = match name {
        "as" => libc::RLIMIT_AS,
        "core" => libc::RLIMIT_CORE,
        "cpu" => libc::RLIMIT_CPU,
        "data" => libc::RLIMIT_DATA,
        "fsize" => libc::RLIMIT_FSIZE,
        "locks" => libc::RLIMIT_LOCKS,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "nice" => libc::RLIMIT_NICE,
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "rss" => libc::RLIMIT_RSS,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "rttime" => libc::RLIMIT_RTTIME,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "stack" => libc::RLIMIT_STACK,
        _ => return None,
    };
    // glibc types these as an unsigned enum, musl as int: both small numbers.
    libc::c_int::try_from(number).ok()
}

/// The value meaning "unlimited".
pub const INFINITY: u64 = libc::RLIM_INFINITY;

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// This process's soft stack limit, which the app inherits unless the
/// configuration sets one; `None` when unlimited.
pub fn stack_limit() -> Option<u64> {
    let mut value = [0u64; 2];
    // SAFETY: `value` is a valid `struct rlimit` (two u64s on 64-bit Linux)
    // to write the current limit to; NULL sets nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_STACK,
            std::ptr::null::<u64>(),
            value.as_mut_ptr(),
        )
    };
    (rc == 0 && value[0] != INFINITY).then_some(value[0])
}

/// Sets a resource limit.
pub fn set_limit(limit: &RawLimit) -> io::Result<()> {
    let value = [limit.soft, limit.hard];
    // SAFETY: `value` is a valid `struct rlimit` (two u64s on 64-bit Linux)
    // for the call's duration; NULL asks for no old value.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            limit.resource,
            value.as_ptr(),
            std::ptr::null_mut::<u64>(),
        )
    })
}

/// Drops to `uid`/`gid` with exactly `groups` as supplementary groups.
/// Groups first: once the uid is not root, they can no longer change.
pub fn become_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: `groups` is a valid array of `groups.len()` gid_t (u32).
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })?;
    // SAFETY: setresgid takes three plain ids.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: setresuid takes three plain ids.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
}

/// Changes directory: chdir(2). Again after dropping privileges, so that a
/// directory only root can enter fails here, as the user, not later.
pub fn change_dir(path: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    let rc = unsafe { libc::chdir(path.as_ptr()) };
    check(libc::c_long::from(rc))
}

/// Sets `PR_SET_NO_NEW_PRIVS`: exec can no longer grant privileges
/// (setuid bits, file capabilities).
pub fn no_new_privs() -> io::Result<()> {
    // prctl's arguments are unsigned longs: passed as such through the
    // variadic syscall(), not as ints of undefined upper halves.
    let (yes, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: prctl with integer arguments only.
    check(unsafe {
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_SET_NO_NEW_PRIVS,
            yes,
            unused,
            unused,
            unused,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_resource_has_a_number() {
        for name in crate::config::limits::RESOURCES {
            assert!(resource_number(name).is_some(), "{name}");
        }
        assert_eq!(
            resource_number("nofile"),
            Some(libc::RLIMIT_NOFILE as libc::c_int)
        );
        assert_eq!(resource_number("bogus"), None);
    }
}
