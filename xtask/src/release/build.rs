//! The release binary: static (musl), and small.
//!
//! Besides the size profile in Cargo.toml (`opt-level = "z"`, LTO, one
//! codegen unit, `panic = "abort"`, stripped), the standard library is
//! rebuilt from source with the same settings and without its `backtrace`
//! feature (`-Zbuild-std`, enabled on stable with `RUSTC_BOOTSTRAP=1`):
//! the prebuilt std carries a DWARF symbolizer (gimli, addr2line, miniz)
//! for panic backtraces, about 40% of the binary, which a PID 1 never uses.
//! Panics still run vminit's hook, which powers the VM off cleanly.
//! Static relocation (no PIE) saves the start-up self-relocation, and
//! rust-lld links both architectures from this machine. The machine's paths
//! are remapped out of the binary, so that a build is reproducible; `dist`
//! builds with a pinned toolchain through [`Release`].

use std::path::PathBuf;
use std::process::Command;

use crate::vm::arch::Arch;
use crate::{cmd, setup};

/// Builds the static binary for this machine and returns its path.
pub fn static_binary() -> Result<PathBuf, String> {
    static_binary_for(Arch::host())
}

/// Builds the static binary for `arch` into
/// `target/static/TARGET/release/vminit`, with the current toolchain.
pub fn static_binary_for(arch: Arch) -> Result<PathBuf, String> {
    static_binary_with(arch, &Release::default())
}

/// How a release build is made: with which toolchain, into which target
/// directory, from which revision.
#[derive(Debug, Clone)]
pub struct Release {
    /// A rustup toolchain (`rustup run NAME cargo`); `None`: the current one.
    pub toolchain: Option<String>,
    pub target_dir: PathBuf,
    /// For `--version` (see the root `build.rs`); `None`: `git rev-parse`.
    pub revision: Option<String>,
}

impl Default for Release {
    fn default() -> Release {
        Release {
            toolchain: None,
            target_dir: cmd::root().join("target/static"),
            revision: None,
        }
    }
}

/// Builds vminit for `arch` into `TARGET_DIR/TARGET/release/vminit`,
/// linked by `rust-lld` (no cross toolchain needed, and smaller than GNU
/// ld's page-aligned output). When the small build fails (`-Zbuild-std` is
/// unstable, and a new stable Rust may break it), says so and builds the
/// plain way instead: a bigger binary, the same behaviour.
pub fn static_binary_with(arch: Arch, release: &Release) -> Result<PathBuf, String> {
    setup::rust_for(arch, release.toolchain.as_deref())?;
    let small = cmd::run(
        release_build(arch, "vminit", release)?
            .args([
                "-Z",
                "build-std=std,panic_abort",
                "-Z",
                "build-std-features=optimize_for_size",
            ])
            .env("RUSTC_BOOTSTRAP", "1"),
    );
    if let Err(e) = small {
        eprintln!(
            "xtask: warning: the size-tuned build (-Zbuild-std) failed ({e}); \
             building with the prebuilt std instead: about 250 KB larger"
        );
        cmd::run(&mut release_build(arch, "vminit", release)?)?;
        return checked_static(release, arch, "vminit");
    }
    let binary = checked_static(release, arch, "vminit")?;
    let size = std::fs::metadata(&binary).map_or(0, |m| m.len());
    if size > SIZE_BUDGET {
        return Err(format!(
            "{} is {size} bytes: over vminit's budget of {SIZE_BUDGET} (512 KiB, the host API compiled in)",
            binary.display()
        ));
    }
    Ok(binary)
}

/// The most the size-tuned static binary may take.
const SIZE_BUDGET: u64 = 512 * 1024;

/// Builds another of the workspace's programs (`vminit-image`) static for
/// `arch`, the plain way (its size matters less than PID 1's).
pub fn static_tool_with(arch: Arch, package: &str, release: &Release) -> Result<PathBuf, String> {
    setup::rust_for(arch, release.toolchain.as_deref())?;
    cmd::run(&mut release_build(arch, package, release)?)?;
    checked_static(release, arch, package)
}

/// The built `name` for `arch`, after checking it asks for no dynamic loader.
fn checked_static(release: &Release, arch: Arch, name: &str) -> Result<PathBuf, String> {
    let binary = release
        .target_dir
        .join(arch.target())
        .join("release")
        .join(name);
    let bytes = std::fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    if has_interpreter(&bytes)? {
        return Err(format!("{} is dynamically linked", binary.display()));
    }
    eprintln!(
        "static binary: {} ({} bytes)",
        binary.display(),
        bytes.len()
    );
    Ok(binary)
}

/// `cargo build --release` of `package` for `arch`, static, linked by
/// rust-lld. The machine's paths (the checkout, the target directory, the
/// cargo registry, the toolchain's std sources) are remapped so that they
/// appear in no panic message: the binary is the same wherever it is built.
fn release_build(arch: Arch, package: &str, release: &Release) -> Result<Command, String> {
    let mut command = match &release.toolchain {
        Some(name) => {
            let mut rustup = Command::new("rustup");
            rustup.args(["run", name, "cargo"]).current_dir(cmd::root());
            rustup
        }
        None => cmd::cargo(),
    };
    let mut flags = vec![
        "-C".to_owned(),
        "relocation-model=static".to_owned(),
        "-C".to_owned(),
        "target-feature=+crt-static".to_owned(),
        // With panic=abort nothing unwinds: the tables (.eh_frame) were 14%
        // of the binary, and all of them mapped in every vminit's memory.
        "-C".to_owned(),
        "force-unwind-tables=no".to_owned(),
    ];
    // rustc applies the last matching prefix: the most specific ones last.
    let remaps = [
        (cmd::root(), "/vminit"),
        (cargo_home(), "/cargo"),
        (sysroot(release.toolchain.as_deref())?, "/rust"),
        (release.target_dir.clone(), "/target"),
    ];
    for (from, to) in remaps {
        let from = from.to_str().ok_or("a build path is not UTF-8")?;
        flags.push(format!("--remap-path-prefix={from}={to}"));
    }
    command
        .args(["build", "--release", "--package", package])
        .args(["--target", arch.target()])
        .arg("--target-dir")
        .arg(&release.target_dir)
        .env(linker_variable(arch), "rust-lld")
        // Unit separators: the paths may hold spaces.
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .env_remove("RUSTFLAGS");
    if let Some(revision) = &release.revision {
        command.env("VMINIT_GIT_REVISION", revision);
    }
    Ok(command)
}

/// Cargo's home (the registry's sources are under it).
fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

/// The toolchain's sysroot (std's sources for `-Zbuild-std` are under it).
fn sysroot(toolchain: Option<&str>) -> Result<PathBuf, String> {
    let mut rustc = match toolchain {
        Some(name) => {
            let mut rustup = Command::new("rustup");
            rustup.args(["run", name, "rustc"]);
            rustup
        }
        None => Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())),
    };
    let path = cmd::output(rustc.args(["--print", "sysroot"]))?;
    Ok(PathBuf::from(path.trim()))
}

/// Cargo's variable that names `arch`'s linker.
pub fn linker_variable(arch: Arch) -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        arch.target().to_uppercase().replace('-', "_")
    )
}

/// Whether a 64-bit little-endian ELF file asks for a dynamic loader (has `PT_INTERP`).
pub fn has_interpreter(elf: &[u8]) -> Result<bool, String> {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return Err("not a 64-bit ELF file".into());
    }
    let bad = || "truncated ELF header".to_string();
    let table = usize::try_from(u64_at(0x20).ok_or_else(bad)?).map_err(|_| bad())?;
    let entry_size = usize::from(u16_at(0x36).ok_or_else(bad)?);
    let entries = usize::from(u16_at(0x38).ok_or_else(bad)?);
    for index in 0..entries {
        if u32_at(table + index * entry_size).ok_or_else(bad)? == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic() {
        let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // Test binaries are built for the host (glibc): dynamic.
        assert_eq!(has_interpreter(&own), Ok(true));
        assert!(has_interpreter(b"#!/bin/sh").is_err());
    }
}
