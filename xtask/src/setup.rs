//! Installing what the builds and tests need on a fresh Debian machine:
//! Debian packages (as root, with apt-get) and rustup components.

use std::process::Command;

use crate::cmd;
use crate::vm::arch::Arch;

/// Makes sure every `(command, Debian package)` pair is installed, installing
/// missing packages with apt-get when running as root on Debian.
pub fn packages(needs: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(program, _)| !cmd::exists(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    install(&missing)
}

/// Makes sure the program `program` from the crate `krate` at `version`
/// is installed, with `cargo install --locked` (into `~/.cargo/bin`, kept
/// across runs) when it is missing.
pub fn cargo_tool(program: &str, krate: &str, version: &str) -> Result<(), String> {
    if cmd::exists(program) {
        return Ok(());
    }
    eprintln!("installing {krate} {version} with cargo (a few minutes, once)");
    cmd::run(cmd::cargo().args(["install", "--locked", krate, "--version", version]))
}

/// Installs Debian packages (as root, with apt-get), or says how.
pub fn install(packages: &[&str]) -> Result<(), String> {
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    if !is_root() || !cmd::exists("apt-get") {
        return Err(format!(
            "missing packages; on Debian, run as root: apt-get update && {install}"
        ));
    }
    let _ = cmd::run(Command::new("apt-get").args(["update", "-qq"]));
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Makes sure `arch`'s musl target and the standard library's source (for
/// the size-tuned rebuild of std) are installed.
pub fn rust(arch: Arch) -> Result<(), String> {
    rust_for(arch, None)
}

/// [`rust`] for a rustup toolchain by name (`None`: the current one).
pub fn rust_for(arch: Arch, toolchain: Option<&str>) -> Result<(), String> {
    let rustup = |args: &[&str]| {
        let mut command = Command::new("rustup");
        command.args(args);
        if let Some(name) = toolchain {
            command.args(["--toolchain", name]);
        }
        command
    };
    let targets = cmd::output(&mut rustup(&["target", "list", "--installed"]))?;
    if !targets.lines().any(|t| t.trim() == arch.target()) {
        cmd::run(&mut rustup(&["target", "add", arch.target()]))?;
    }
    let components = cmd::output(&mut rustup(&["component", "list", "--installed"]))?;
    if !components.lines().any(|c| c.starts_with("rust-src")) {
        cmd::run(&mut rustup(&["component", "add", "rust-src"]))?;
    }
    Ok(())
}

/// Makes programs for `arch` run here through qemu-user (binfmt_misc):
/// Debian's `qemu-user-static` registers them with `binfmt-support`; on a
/// machine without a running init for that, the registration is done here.
pub fn binfmt(arch: Arch) -> Result<(), String> {
    let dir = std::path::Path::new("/proc/sys/fs/binfmt_misc");
    let entry = dir.join(format!("qemu-{}", arch.name()));
    if entry.exists() {
        return Ok(());
    }
    packages(&[
        (&format!("qemu-{}-static", arch.name()), "qemu-user-static"),
        ("update-binfmts", "binfmt-support"),
    ])?;
    if !dir.join("register").exists() {
        cmd::run(
            Command::new("mount")
                .args(["-t", "binfmt_misc", "binfmt_misc"])
                .arg(dir),
        )?;
    }
    if !entry.exists() {
        cmd::run(
            Command::new("update-binfmts").args(["--enable", &format!("qemu-{}", arch.name())]),
        )?;
    }
    if entry.exists() {
        Ok(())
    } else {
        Err(format!(
            "{} is not registered with binfmt_misc",
            entry.display()
        ))
    }
}

/// Whether this runs as root.
pub fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}
