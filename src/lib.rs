//! vminit: a small PID 1 that runs one application in a microVM or a container.
//!
//! The folders follow a boot:
//! - [`config`]: the configuration's sources (options, kernel command
//!   line, metadata file), their validation and their merge: plain
//!   functions over data;
//! - [`machine`]: the machine around the app: mounts, console, modules,
//!   network, and its end (flush, power-off);
//! - [`app`]: the application: who it runs as, and the supervisor that
//!   forwards signals, reaps, and stops what is left;
//! - [`record`]: how the run ended: the exit status, the exit record and
//!   its channels to the host, OOM kills;
//! - [`sys`]: the thin wrappers over the kernel, one module per syscall
//!   family, and all of the crate's `unsafe`.
//!
//! [`run`] puts them together from start to end, and [`end`] is how every
//! path of it ends (the exit record, then the exit code or the machine's
//! end); `main.rs` only hands over `argv`; [`log`] is the `vminit:` log.

pub mod api;
pub mod app;
pub mod config;
pub mod end;
pub mod log;
pub mod machine;
pub mod record;
pub mod run;
pub mod sys;
