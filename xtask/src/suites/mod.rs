//! The suites beyond `cargo test`, each booting or running vminit for
//! real:
//!
//! - [`test`](mod@test): the whole check, as CI runs it (`cargo xtask test`);
//! - [`vm`]: the VM suite (`test-vm`), real boots in QEMU, its cases in one
//!   file per concern; then [`scenarios`] (with [`postgres`]): real
//!   software in real images, booted from their root disks;
//! - [`engines`]: vminit as the init of Podman and Docker (`test-engines`);
//! - [`qemu_user`]: the unit and integration tests for the other
//!   architecture, under qemu-user (`test-qemu-user`);
//! - [`fuzz`]: the fuzz targets, built and run briefly;
//! - [`soak`]: vminit for minutes under an app that keeps churning.

pub mod engines;
pub mod fuzz;
pub mod postgres;
pub mod qemu_user;
pub mod scenarios;
pub mod soak;
pub mod test;
pub mod vm;
