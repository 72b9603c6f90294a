//! vminit: a small PID 1 that runs one application in a microVM or a container.
//!
//! The pure parts (command-line tokenizer, metadata, validation, merging)
//! are plain functions over data; [`sys`] holds the thin wrappers over the
//! kernel and all of the crate's `unsafe`; [`supervisor`] and [`machine`]
//! put them together; `main.rs` only hands over `argv`.

pub mod cli;
pub mod cmdline;
pub mod config;
pub mod error;
pub mod identity;
pub mod limits;
pub mod log;
pub mod machine;
pub mod metadata;
pub mod modules;
pub mod network;
pub mod oom;
pub mod report;
pub mod run;
pub mod settings;
pub mod setup;
pub mod supervisor;
pub mod sys;
pub mod validate;
