//! vminit-image: turns a container image into what boots it as a microVM
//! with vminit: a root disk, vminit's metadata file, an initramfs with
//! vminit as `/init`, the kernel command line, and a Firecracker
//! configuration.
//!
//! The flow is [`source`] (find the image and check every blob, each
//! opened through [`files`]), [`layers`] (apply them to a root directory,
//! their streams decompressed, hashed and bounded by [`stream`], through
//! [`zstd`] for zstd layers), [`metadata`] (the image's config as vminit's
//! metadata), then [`build`] (the disk, the initramfs through [`cpio`],
//! and the boot files). [`stop`] turns Ctrl-C and SIGTERM into a clean
//! failure.

pub mod build;
pub mod cpio;
pub mod depmod;
pub mod files;
pub mod layers;
pub mod metadata;
pub mod source;
pub mod stop;
pub mod stream;
pub mod zstd;
