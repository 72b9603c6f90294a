//! vminit-image: turns a container image into what boots it as a microVM
//! with vminit: a root disk, vminit's metadata file, an initramfs with
//! vminit as `/init`, the kernel command line, and a Firecracker
//! configuration.
//!
//! The flow is [`source`] (find the image and check every blob), [`layers`]
//! (apply them to a root directory, through [`zstd`] for zstd layers), [`metadata`] (the image's config as
//! vminit's metadata), then [`build`] (the disk, the initramfs through
//! [`cpio`], and the boot files).

pub mod build;
pub mod cpio;
pub mod layers;
pub mod metadata;
pub mod source;
pub mod zstd;
