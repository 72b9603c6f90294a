//! Thin wrappers over the kernel, one module per syscall family.
//!
//! This is the only place with `unsafe`; each block says why it is sound.
//! The rest of the crate decides *what* to do; these modules only do it.

pub mod args;
pub mod channel;
pub mod clock;
pub mod credentials;
pub mod entropy;
pub mod fd;
pub mod inotify;
pub mod input;
pub mod module;
pub mod mount;
pub mod net;
pub mod power;
pub mod process;
pub mod signal;
pub mod stdio;
pub mod tty;
pub mod vsock;
