//! A stock kernel to boot: Debian's `linux-image-amd64` (or `-arm64`, with
//! `dpkg --add-architecture arm64`), fetched with `apt-get download` and
//! unpacked with `dpkg -x` (no root needed when the package lists are
//! present), cached under `~/.cache/vminit/kernel/` (`kernel-arm64/`).
//! The arm64 `busybox-static` comes the same way.
//!
//! On other systems, pass `--kernel PATH`: any x86-64 bzImage (or arm64
//! Image) with devtmpfs, the serial console and gzip initramfs support.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::arch::Arch;
use crate::cmd;

/// vminit's cache directory (`$XDG_CACHE_HOME/vminit` or `~/.cache/vminit`).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("vminit")
}

/// The path of a bootable kernel: `explicit` if given, else the cached
/// Debian kernel, downloading it on first use.
pub fn kernel(explicit: Option<&Path>, arch: Arch) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("--kernel {}: no such file", path.display()))
        };
    }
    let dir = cache_dir().join(match arch {
        Arch::X86_64 => "kernel".to_owned(),
        other => format!("kernel-{}", other.debian()),
    });
    if let Some(found) = find_vmlinuz(&dir) {
        return Ok(found);
    }
    if !cmd::exists("apt-get") || !cmd::exists("dpkg") {
        return Err(
            "no kernel: pass --kernel PATH (an x86-64 bzImage with devtmpfs, \
                    serial 8250 and gzip initramfs support built in); on Debian or Ubuntu \
                    vminit fetches linux-image-amd64 itself"
                .into(),
        );
    }
    fetch(&dir, arch)?;
    find_vmlinuz(&dir).ok_or_else(|| format!("no vmlinuz under {}", dir.display()))
}

fn find_vmlinuz(dir: &Path) -> Option<PathBuf> {
    first_named(&dir.join("root/boot"), "vmlinuz-")
}

/// The first entry of `dir` whose name starts with `prefix`.
fn first_named(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
}

/// Downloads Debian's `package` for `arch` into `dir` and returns the file
/// (adding the architecture to dpkg and updating the lists when needed).
fn download(dir: &Path, package: &str, arch: Arch) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let qualified = if arch == Arch::host() {
        package.to_owned()
    } else {
        format!("{package}:{}", arch.debian())
    };
    let get = || {
        cmd::run(
            Command::new("apt-get")
                .args(["download", "-q", &qualified])
                .current_dir(dir),
        )
    };
    if get().is_err() {
        if arch != Arch::host() {
            let foreign = cmd::output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
            if !foreign.lines().any(|a| a.trim() == arch.debian()) {
                cmd::run(Command::new("dpkg").args(["--add-architecture", arch.debian()]))?;
            }
        }
        // Fresh machines (or a new architecture) have no package lists yet.
        cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
        get()?;
    }
    deb_named(dir, package)
}

/// Debian's static busybox for `arch`: the host's own from the package
/// `busybox-static`, another architecture's unpacked into the cache.
pub fn foreign_busybox(arch: Arch) -> Result<PathBuf, String> {
    let dir = cache_dir().join(format!("busybox-{}", arch.debian()));
    let binary = dir.join("root/bin/busybox");
    if binary.is_file() {
        return Ok(binary);
    }
    let deb = download(&dir.join("debs"), "busybox-static", arch)?;
    cmd::run(
        Command::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(dir.join("root")),
    )?;
    let _ = std::fs::remove_dir_all(dir.join("debs"));
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "busybox-static:{} has no bin/busybox",
            arch.debian()
        ))
    }
}

fn fetch(dir: &Path, arch: Arch) -> Result<(), String> {
    let downloads = dir.join("debs");
    let metapackage = format!("linux-image-{}", arch.debian());
    let meta = download(&downloads, &metapackage, arch)?;
    let depends = cmd::output(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&meta)
            .arg("Depends"),
    )?;
    let image = depends
        .split([',', ' '])
        .find(|word| word.starts_with("linux-image-"))
        .ok_or_else(|| format!("{metapackage} depends on no linux-image package: {depends}"))?
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let deb = download(&downloads, &image, arch)?;
    let root = dir.join("root");
    cmd::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    // Keep the unpacked tree (modules too); drop the archives.
    let _ = std::fs::remove_dir_all(&downloads);
    Ok(())
}

fn deb_named(dir: &Path, package: &str) -> Result<PathBuf, String> {
    first_named(dir, &format!("{package}_")).ok_or_else(|| {
        format!(
            "apt-get download left no {package} package in {}",
            dir.display()
        )
    })
}

/// The kernel's `/lib/modules/RELEASE` in its unpacked package, with a
/// `modules.dep` (made with `depmod` when the package left it out).
pub fn modules_dir(vmlinuz: &Path) -> Result<PathBuf, String> {
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .ok_or_else(|| format!("{}: not named vmlinuz-RELEASE", vmlinuz.display()))?;
    let root = vmlinuz
        .parent()
        .and_then(Path::parent)
        .ok_or("the kernel has no tree around it")?;
    let dir = root.join("lib/modules").join(release);
    if !dir.is_dir() {
        return Err(format!(
            "no modules for {release} in {}: the module tests need the Debian kernel",
            dir.display()
        ));
    }
    let dep_path = dir.join("modules.dep");
    if !dep_path.is_file() {
        // In /usr/sbin, which a non-login PATH may lack.
        let find = || {
            ["/usr/sbin/depmod", "/sbin/depmod"]
                .into_iter()
                .find(|p| Path::new(p).is_file())
        };
        if find().is_none() {
            crate::setup::install(&["kmod"])?;
        }
        let depmod = find().ok_or("no depmod after installing kmod")?;
        cmd::run(Command::new(depmod).arg("-b").arg(root).arg(release))?;
    }
    Ok(dir)
}

/// The files an image needs to load `names` with the stock kernel at
/// `vmlinuz`: each module with its dependencies, `modules.dep` (made with
/// depmod(8), which the package leaves to its install script) and
/// `modules.builtin`, as (guest path, contents, mode).
pub fn module_files(vmlinuz: &Path, names: &[&str]) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    let dir = modules_dir(vmlinuz)?;
    let release = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dep_path = dir.join("modules.dep");
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let dep = String::from_utf8(read(&dep_path)?).map_err(|e| e.to_string())?;
    let guest = format!("/lib/modules/{release}");
    let mut files = vec![
        (
            format!("{guest}/modules.dep"),
            dep.clone().into_bytes(),
            0o644,
        ),
        (
            format!("{guest}/modules.builtin"),
            read(&dir.join("modules.builtin"))?,
            0o644,
        ),
    ];
    let mut wanted = std::collections::BTreeSet::new();
    for name in names {
        let file = format!("/{name}.ko");
        // modules.dep lists every dependency, not only direct ones.
        let line = dep
            .lines()
            .find(|l| l.split(':').next().is_some_and(|p| p.ends_with(&file)))
            .ok_or_else(|| format!("module {name} is not in {}", dep_path.display()))?;
        wanted.extend(line.split([':', ' ']).filter(|w| !w.is_empty()));
    }
    for path in wanted {
        files.push((format!("{guest}/{path}"), read(&dir.join(path))?, 0o644));
    }
    Ok(files)
}
