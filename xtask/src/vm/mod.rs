//! The launcher: what boots a microVM, for `cargo xtask run`, the suites
//! and the benchmarks.
//!
//! - [`arch`]: the architectures, and what each needs;
//! - [`kernel`]: the stock Debian kernel and its modules;
//! - [`initramfs`]: the initramfs, with vminit as `/init`;
//! - [`disk`]: ext4 disk images;
//! - [`faulty`]: disks that fail or hang on the host's command;
//! - [`qemu`]: QEMU's command line, its serial console and QMP;
//! - [`kit`]: all of these prepared for a boot, and a command put on the
//!   kernel command line;
//! - [`run`]: `cargo xtask run`.

pub mod arch;
pub mod disk;
pub mod faulty;
pub mod initramfs;
pub mod kernel;
pub mod kit;
pub mod qemu;
pub mod run;
pub mod vsock;
