//! The release:
//!
//! - [`build`]: the static, size-tuned vminit (`cargo xtask build`), and
//!   xtask's own tools built static for a guest;
//! - [`dist`]: the release artifacts in `target/dist/`, built with the
//!   pinned Rust (`dist`, `publish-dry-run`).

pub mod build;
pub mod dist;
