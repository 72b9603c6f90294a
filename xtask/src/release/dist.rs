//! `cargo xtask dist`: the release artifacts, in `target/dist/`.
//!
//! Per architecture (x86_64, aarch64): a tarball with the static vminit,
//! the README, the licences and docs/; a Debian package installing
//! `/usr/sbin/vminit`, its man page (made from `--help`'s very text,
//! `vminit::config::cli::USAGE`) and its copyright file; a tarball of
//! `vminit-image`. Then `SHA256SUMS` over all of them.
//!
//! The release is built with a pinned toolchain, [`RELEASE_TOOLCHAIN`]:
//! the size-tuned build uses `-Zbuild-std` (unstable, allowed on stable by
//! `RUSTC_BOOTSTRAP=1`), which a new stable Rust may break. When that
//! toolchain is neither installed nor installable, `dist` warns and uses
//! the current one (and [`build`] falls back to the plain build if the
//! small one fails).
//!
//! The artifacts are reproducible: the binaries carry no path of this
//! machine (see [`build`]'s remapping) and no time; the archives take
//! their times from `SOURCE_DATE_EPOCH` (default: the commit's time), list
//! their entries sorted, owned by 0:0, and the gzip headers name no file
//! and no time. `--check-reproducible` proves it for vminit: it builds
//! x86_64 again into another target directory and compares the bytes.

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::build::{self, Release};
use crate::vm::arch::Arch;
use crate::vm::kernel;
use crate::{cmd, setup};

/// The toolchain releases are built with. A new stable Rust may break
/// `-Zbuild-std`; moving this is a deliberate step, checked by `dist`.
pub const RELEASE_TOOLCHAIN: &str = "1.95.0";

/// The Debian packages' maintainer field.
const MAINTAINER: &str = "vminit maintainers <maintainers@users.noreply.r-seed-617e55d8.example>";

/// The licence files every archive carries, from the repository's root.
const LICENCES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];

pub const USAGE: &str = "dist [--check-reproducible]";

/// What one `dist` run knows about the release it makes.
struct Dist {
    version: String,
    image_version: String,
    ctl_version: String,
    /// `SOURCE_DATE_EPOCH`: every time in the archives.
    epoch: u64,
    release: Release,
    out: PathBuf,
    work: PathBuf,
}

/// `cargo xtask dist [--check-reproducible]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let check_reproducible = match args {
        [] => false,
        [flag] if flag == "--check-reproducible" => true,
        _ => return Err(format!("usage: cargo xtask {USAGE}")),
    };
    setup::packages(&[
        ("dpkg-deb", "dpkg"),
        ("tar", "tar"),
        ("gzip", "gzip"),
        ("sha256sum", "coreutils"),
        ("cpio", "cpio"),
        ("mkfs.ext4", "e2fsprogs"),
    ])?;
    let root = cmd::root();
    let dist = Dist {
        version: crate_field(&root.join("Cargo.toml"), "version")?,
        image_version: crate_field(&root.join("image/Cargo.toml"), "version")?,
        ctl_version: crate_field(&root.join("ctl/Cargo.toml"), "version")?,
        epoch: source_date_epoch()?,
        release: Release {
            toolchain: release_toolchain(),
            ..Release::default()
        },
        out: root.join("target/dist"),
        work: root.join("target/dist-work"),
    };
    for dir in [&dist.out, &dist.work] {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut warnings = Vec::new();
    let mut debs = Vec::new();
    let mut vminits = Vec::new();
    for arch in Arch::ALL {
        let binary = build::static_binary_with(arch, &dist.release)?;
        let name = format!("vminit-{}-{}-linux-musl", dist.version, arch.name());
        tarball(&dist, &name, &[("vminit", &binary)])?;
        debs.push((arch, deb(&dist, arch, &binary)?));
        vminits.push((format!("vminit-{}", arch.name()), binary));
    }
    // A target directory of its own: vminit's build sets RUSTC_BOOTSTRAP,
    // which build scripts (proc-macro2, thiserror) watch; sharing one would
    // rebuild them, and relink vminit, on every switch.
    let tools = Release {
        target_dir: root.join("target/static-tools"),
        ..dist.release.clone()
    };
    for arch in Arch::ALL {
        // A host tool: one architecture failing is worth a warning, not the release.
        match build::static_tool_with(arch, "vminit-image", &tools) {
            Ok(binary) => {
                let name = format!(
                    "vminit-image-{}-{}-linux-musl",
                    dist.image_version,
                    arch.name()
                );
                // With vminit for every architecture: it works from its
                // tarball alone, for either.
                let mut programs = vec![("vminit-image", binary.as_path())];
                programs.extend(vminits.iter().map(|(n, b)| (n.as_str(), b.as_path())));
                tarball(&dist, &name, &programs)?;
                check_image_tarball(&dist, arch, &name)?;
            }
            Err(e) => {
                let warning = format!("vminit-image for {} was not built: {e}", arch.name());
                eprintln!("xtask: warning: {warning}");
                warnings.push(warning);
            }
        }
    }
    for arch in Arch::ALL {
        // The host's client of the API, alone in its tarball.
        match build::static_tool_with(arch, "vminit-ctl", &tools) {
            Ok(binary) => {
                let name = format!("vminit-ctl-{}-{}-linux-musl", dist.ctl_version, arch.name());
                tarball(&dist, &name, &[("vminit-ctl", binary.as_path())])?;
                check_ctl_tarball(&dist, arch, &name)?;
            }
            Err(e) => {
                let warning = format!("vminit-ctl for {} was not built: {e}", arch.name());
                eprintln!("xtask: warning: {warning}");
                warnings.push(warning);
            }
        }
    }
    sha256sums(&dist.out)?;

    for (arch, deb) in &debs {
        check_deb(&dist, *arch, deb)?;
    }
    if check_reproducible {
        reproducible(&dist)?;
    }
    eprintln!("\nrelease artifacts in {}:", dist.out.display());
    for entry in sorted_entries(&dist.out)? {
        let size = fs::metadata(dist.out.join(&entry)).map_or(0, |m| m.len());
        eprintln!("  {entry} ({size} bytes)");
    }
    for warning in &warnings {
        eprintln!("xtask: warning: {warning}");
    }
    Ok(())
}

/// The pinned toolchain's rustup name if it can be used: `stable` when
/// stable is that release, or installed under its number, or installed
/// now. `None` (with a warning): the current toolchain.
fn release_toolchain() -> Option<String> {
    let is_release = |name: &str| {
        cmd::output(Command::new("rustup").args(["run", name, "rustc", "--version"]))
            .is_ok_and(|v| v.starts_with(&format!("rustc {RELEASE_TOOLCHAIN} ")))
    };
    if !cmd::exists("rustup") {
        eprintln!(
            "xtask: warning: no rustup to pin Rust {RELEASE_TOOLCHAIN}; \
             the release is built with the current toolchain"
        );
        return None;
    }
    // `stable` first: when it is the release, builds share their
    // fingerprints with `cargo xtask build`'s.
    for name in ["stable", RELEASE_TOOLCHAIN] {
        if is_release(name) {
            return Some(name.to_owned());
        }
    }
    let mut install = Command::new("rustup");
    install
        .args([
            "toolchain",
            "install",
            RELEASE_TOOLCHAIN,
            "--profile",
            "minimal",
        ])
        .args(["--component", "rust-src"]);
    for arch in Arch::ALL {
        install.args(["--target", arch.target()]);
    }
    match cmd::run(&mut install) {
        Ok(()) if is_release(RELEASE_TOOLCHAIN) => Some(RELEASE_TOOLCHAIN.to_owned()),
        outcome => {
            eprintln!(
                "xtask: warning: Rust {RELEASE_TOOLCHAIN}, the release toolchain, is not \
                 available ({}); the release is built with the current toolchain",
                outcome
                    .err()
                    .unwrap_or_else(|| "installed but not found".into())
            );
            None
        }
    }
}

/// A string field of a manifest's `[package]` table (`version`,
/// `description`): the first `KEY = "VALUE"` line, enough for ours.
fn crate_field(manifest: &Path, key: &str) -> Result<String, String> {
    let text = fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim() == key)
        .and_then(|(_, value)| value.trim().strip_prefix('"')?.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no {key} = \"...\"", manifest.display()))
}

/// `SOURCE_DATE_EPOCH` if set, else the time of the commit being built.
fn source_date_epoch() -> Result<u64, String> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"));
    }
    let time = cmd::output(Command::new("git").arg("-C").arg(cmd::root()).args([
        "log",
        "-1",
        "--format=%ct",
    ]))
    .map_err(|e| format!("no SOURCE_DATE_EPOCH and no commit time: {e}"))?;
    time.trim()
        .parse()
        .map_err(|_| format!("git log gave {time:?} for the commit time"))
}

/// The revision `vminit --version` names when built here (as `build.rs`
/// reads it), or `None` outside git.
fn git_revision() -> Option<String> {
    cmd::output(Command::new("git").arg("-C").arg(cmd::root()).args([
        "rev-parse",
        "--short=12",
        "HEAD",
    ]))
    .ok()
    .map(|r| r.trim().to_owned())
    .filter(|r| !r.is_empty())
}

/// Writes `bytes` to `path` (parents made) with permission bits `mode`.
fn put(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(fail)?;
    }
    fs::write(path, bytes).map_err(fail)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(fail)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Directories 0755 and every time `epoch`, children before parents (a
/// child's change would touch its directory's time again).
fn normalize_tree(dir: &Path, epoch: u64) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", dir.display());
    for entry in sorted_entries(dir)? {
        let path = dir.join(entry);
        if path.is_dir() {
            normalize_tree(&path, epoch)?;
        } else {
            set_time(&path, epoch)?;
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(fail)?;
    set_time(dir, epoch)
}

fn set_time(path: &Path, epoch: u64) -> Result<(), String> {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
    File::open(path)
        .and_then(|file| file.set_times(FileTimes::new().set_accessed(time).set_modified(time)))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A directory's entry names, sorted.
fn sorted_entries(dir: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// `gzip -9n` of `input` into `output`: no name and no time in the header.
fn gzip(input: &Path, output: &Path) -> Result<(), String> {
    let file = File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
    cmd::run(
        Command::new("gzip")
            .args(["-9", "-n", "-c"])
            .arg(input)
            .stdout(file),
    )
}

/// `out/NAME.tar.gz`: `NAME/` holding `programs` (name, binary), the
/// README, the licences and the documentation.
fn tarball(dist: &Dist, name: &str, programs: &[(&str, &Path)]) -> Result<PathBuf, String> {
    let root = cmd::root();
    let stage = dist.work.join("tar");
    let _ = fs::remove_dir_all(&stage);
    let top = stage.join(name);
    for (program, binary) in programs {
        put(&top.join(program), &read(binary)?, 0o755)?;
    }
    for doc in ["README.md"].iter().chain(&LICENCES) {
        put(&top.join(doc), &read(&root.join(doc))?, 0o644)?;
    }
    // The README's links lead into docs/: all of it goes along.
    for page in docs("docs")? {
        let relative = page.strip_prefix(&root).map_err(|e| e.to_string())?;
        put(&top.join(relative), &read(&page)?, 0o644)?;
    }
    normalize_tree(&stage, dist.epoch)?;
    let tar = dist.work.join(format!("{name}.tar"));
    cmd::run(
        Command::new("tar")
            .args(["--create", "--format=gnu", "--sort=name"])
            .arg(format!("--mtime=@{}", dist.epoch))
            .args(["--owner=0", "--group=0", "--numeric-owner"])
            .arg("--file")
            .arg(&tar)
            .arg("--directory")
            .arg(&stage)
            .arg(name)
            .env("LC_ALL", "C"),
    )?;
    let archive = dist.out.join(format!("{name}.tar.gz"));
    gzip(&tar, &archive)?;
    Ok(archive)
}

/// The files git tracks under `dir` (`docs`), sorted: no editor backup
/// or untracked file makes two clones' tarballs differ.
fn docs(dir: &str) -> Result<Vec<PathBuf>, String> {
    let listed = cmd::output(
        Command::new("git")
            .arg("-C")
            .arg(cmd::root())
            .args(["ls-files", "-z", "--", dir]),
    )?;
    let mut found: Vec<PathBuf> = listed
        .split('\0')
        .filter(|name| !name.is_empty())
        .map(|name| cmd::root().join(name))
        .collect();
    found.sort();
    Ok(found)
}

/// The tarball `name` unpacked into a fresh `dist.work/scratch`.
fn unpack(dist: &Dist, name: &str, scratch: &str) -> Result<PathBuf, String> {
    let scratch = dist.work.join(scratch);
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    cmd::run(
        Command::new("tar")
            .arg("-xzf")
            .arg(dist.out.join(format!("{name}.tar.gz")))
            .arg("-C")
            .arg(&scratch),
    )?;
    Ok(scratch)
}

/// For this machine's architecture: the `vminit-ctl` tarball `name`,
/// unpacked, runs and answers `--help` and `--version`.
fn check_ctl_tarball(dist: &Dist, arch: Arch, name: &str) -> Result<(), String> {
    if arch != Arch::host() {
        return Ok(());
    }
    let scratch = unpack(dist, name, "ctl-tarball")?;
    let ctl = scratch.join(name).join("vminit-ctl");
    let help = cmd::output(Command::new(&ctl).arg("--help"))?;
    let version = cmd::output(Command::new(&ctl).arg("--version"))?;
    if !help.contains("--uds PATH") || version.trim() != format!("vminit-ctl {}", dist.ctl_version)
    {
        return Err(format!(
            "{name}: vminit-ctl answers {version:?} and a help without --uds"
        ));
    }
    eprintln!("{name}: runs from its tarball alone");
    Ok(())
}

/// For this machine's architecture: the `vminit-image` tarball `name`,
/// unpacked, builds an image for each architecture with nothing beside
/// it, and each initramfs's `/init` is the vminit shipped for that one.
fn check_image_tarball(dist: &Dist, arch: Arch, name: &str) -> Result<(), String> {
    if arch != Arch::host() {
        return Ok(());
    }
    let scratch = unpack(dist, name, "image-tarball")?;
    fs::create_dir_all(scratch.join("root/bin")).map_err(|e| e.to_string())?;
    let top = scratch.join(name);
    for target in Arch::ALL {
        let out = scratch.join(format!("out-{}", target.name()));
        cmd::run(
            Command::new(top.join("vminit-image"))
                .arg("build")
                .arg(format!("dir:{}", scratch.join("root").display()))
                .arg("--output")
                .arg(&out)
                .args(["--arch", target.name(), "--", "/bin/app"])
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        )?;
        let init = out.join("init");
        cmd::run(
            Command::new("sh")
                .arg("-c")
                .arg("gzip -dc \"$1\" | cpio --quiet -i --to-stdout init > \"$2\"")
                .arg("sh")
                .arg(out.join("initramfs.cpio.gz"))
                .arg(&init),
        )?;
        let init = read(&init)?;
        let shipped = read(&top.join(format!("vminit-{}", target.name())))?;
        if init != shipped {
            return Err(format!(
                "{name}: the initramfs built for {} has no vminit-{} as /init",
                target.name(),
                target.name()
            ));
        }
    }
    eprintln!("{name}: builds an image for each architecture from its tarball alone");
    Ok(())
}

/// `out/vminit_VERSION_ARCH.deb`: `/usr/sbin/vminit`, its man page and
/// its copyright file.
fn deb(dist: &Dist, arch: Arch, binary: &Path) -> Result<PathBuf, String> {
    let root = cmd::root();
    let stage = dist.work.join(format!("deb-{}", arch.debian()));
    let _ = fs::remove_dir_all(&stage);
    put(&stage.join("usr/sbin/vminit"), &read(binary)?, 0o755)?;
    let summary = crate_field(&root.join("Cargo.toml"), "description")?;
    let page = man_page(
        vminit::config::cli::USAGE,
        &dist.version,
        &summary,
        dist.epoch,
    );
    let roff = dist.work.join("vminit.8");
    put(&roff, page.as_bytes(), 0o644)?;
    let man = stage.join("usr/share/man/man8/vminit.8.gz");
    put(&man, b"", 0o644)?;
    gzip(&roff, &man)?;
    put(
        &stage.join("usr/share/doc/vminit/copyright"),
        copyright(&root)?.as_bytes(),
        0o644,
    )?;
    let installed_kib = tree_size(&stage)?.div_ceil(1024);
    let control = format!(
        "Package: vminit\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {MAINTAINER}\n\
         Installed-Size: {installed_kib}\n\
         Section: admin\n\
         Priority: optional\n\
         Description: {summary_lower}\n \
         vminit runs one application as PID 1 of a microVM (Firecracker, QEMU\n \
         microvm, cloud-hypervisor) or a container: it forwards signals, reaps\n \
         zombies, stops what is left when the application ends, and exits (or\n \
         powers the VM off) with its status. As a VM's init it reads its\n \
         configuration from the kernel command line and a JSON metadata file.\n \
         .\n \
         The binary is static (musl) and needs no other package.\n",
        version = dist.version,
        arch = arch.debian(),
        summary_lower = lower_first(&summary),
    );
    put(&stage.join("DEBIAN/control"), control.as_bytes(), 0o644)?;
    normalize_tree(&stage, dist.epoch)?;
    let deb = dist
        .out
        .join(format!("vminit_{}_{}.deb", dist.version, arch.debian()));
    cmd::run(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group", "-Zxz"])
            .arg(&stage)
            .arg(&deb)
            .env("SOURCE_DATE_EPOCH", dist.epoch.to_string()),
    )?;
    Ok(deb)
}

/// The bytes of every file under `dir`.
fn tree_size(dir: &Path) -> Result<u64, String> {
    let mut total = 0;
    for entry in sorted_entries(dir)? {
        let path = dir.join(entry);
        total += if path.is_dir() {
            tree_size(&path)?
        } else {
            fs::metadata(&path).map_or(0, |m| m.len())
        };
    }
    Ok(total)
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The Debian copyright file (machine-readable format), with the MIT text
/// in full and Apache-2.0 by reference to Debian's common licences.
fn copyright(root: &Path) -> Result<String, String> {
    let mit = String::from_utf8(read(&root.join("LICENSE-MIT"))?)
        .map_err(|_| "LICENSE-MIT is not UTF-8".to_string())?;
    let mit: String = mit
        .lines()
        .skip_while(|line| !line.starts_with("Permission"))
        .map(|line| {
            if line.is_empty() {
                " .\n".to_owned()
            } else {
                format!(" {line}\n")
            }
        })
        .collect();
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: vminit\n\
         Comment: vminit is a static binary: it contains musl libc (MIT) and\n \
         Rust's standard library and crates (MIT or Apache-2.0, MIT), all\n \
         under the licences below.\n\
         \n\
         Files: *\n\
         Copyright: The vminit contributors\n\
         License: MIT or Apache-2.0\n\
         \n\
         License: MIT\n{mit}\
         \n\
         License: Apache-2.0\n \
         On Debian systems, the complete text of the Apache License, Version 2.0\n \
         can be found in /usr/share/common-licenses/Apache-2.0.\n"
    ))
}

/// vminit(8) in roff, from the `--help` text itself (`cli::USAGE`), so the
/// two cannot drift: the `Usage:` lines are the synopsis, the first
/// paragraph the description, every `Heading:` block a section kept line
/// for line (no fill), and a `Heading: text` paragraph a section of prose.
pub fn man_page(help: &str, version: &str, summary: &str, epoch: u64) -> String {
    let (year, month, day) = civil_date(epoch);
    let mut page = format!(
        ".TH VMINIT 8 \"{year:04}-{month:02}-{day:02}\" \"vminit {version}\" \"System Administration\"\n\
         .SH NAME\n\
         vminit \\- {}\n",
        escape(&lower_first(summary))
    );
    let mut described = false;
    for block in help.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let lines: Vec<&str> = block.lines().collect();
        let first = lines[0];
        if let Some(usage) = first.strip_prefix("Usage: ") {
            page.push_str(".SH SYNOPSIS\n.nf\n");
            for line in std::iter::once(usage).chain(lines[1..].iter().map(|l| l.trim_start())) {
                page.push_str(&escape(line));
                page.push('\n');
            }
            page.push_str(".fi\n");
        } else if let Some(heading) = first.strip_suffix(':').filter(|_| !first.starts_with(' ')) {
            let (title, rest) = heading.split_once(", ").unwrap_or((heading, ""));
            page.push_str(&format!(".SH {}\n", escape(&title.to_uppercase())));
            if !rest.is_empty() {
                page.push_str(&format!(".PP\n{}:\n", escape(&upper_first(rest))));
            }
            page.push_str(".PP\n.nf\n");
            for line in &lines[1..] {
                page.push_str(&escape(line));
                page.push('\n');
            }
            page.push_str(".fi\n");
        } else {
            // Prose: "Heading: text" opens a section; else the description.
            let (title, first) = match first.split_once(": ") {
                Some((title, text)) if title.split(' ').count() <= 3 => {
                    (title.to_uppercase(), upper_first(text))
                }
                _ if !described => ("DESCRIPTION".to_owned(), first.to_owned()),
                _ => (String::new(), first.to_owned()),
            };
            described = true;
            if !title.is_empty() {
                page.push_str(&format!(".SH {}\n", escape(&title)));
            }
            page.push_str(".PP\n");
            for line in std::iter::once(first.as_str()).chain(lines[1..].iter().copied()) {
                page.push_str(&escape(line));
                page.push('\n');
            }
        }
    }
    page
}

/// Text as roff reads it literally: backslashes and hyphens escaped, and a
/// line starting with `.` or `'` not taken for a request.
fn escape(line: &str) -> String {
    let text = line.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

/// The (year, month, day) of a Unix time, in UTC (days to civil date,
/// after Howard Hinnant's algorithm).
fn civil_date(epoch: u64) -> (i64, u32, u32) {
    let days = i64::try_from(epoch / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `SHA256SUMS` (`sha256sum`'s format) over every file in `out`.
fn sha256sums(out: &Path) -> Result<(), String> {
    let names: Vec<String> = sorted_entries(out)?
        .into_iter()
        .filter(|name| name != "SHA256SUMS")
        .collect();
    let sums = cmd::output(Command::new("sha256sum").args(&names).current_dir(out))?;
    put(&out.join("SHA256SUMS"), sums.as_bytes(), 0o644)
}

/// What the package holds, checked: its control fields and file list
/// (owned by root), then its files unpacked into a scratch root: the man
/// page renders with every option of `--help`, and on this machine's
/// architecture the binary runs and names this version and revision.
fn check_deb(dist: &Dist, arch: Arch, deb: &Path) -> Result<(), String> {
    let bad = |what: String| format!("{}: {what}", deb.display());
    let info = cmd::output(Command::new("dpkg-deb").arg("--info").arg(deb))?;
    for field in [
        "Package: vminit".to_owned(),
        format!("Version: {}", dist.version),
        format!("Architecture: {}", arch.debian()),
        "Section: admin".to_owned(),
        "Priority: optional".to_owned(),
    ] {
        if !info.lines().any(|line| line.trim() == field) {
            return Err(bad(format!("no {field:?} in dpkg-deb --info:\n{info}")));
        }
    }
    let contents = cmd::output(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    for path in [
        "./usr/sbin/vminit",
        "./usr/share/man/man8/vminit.8.gz",
        "./usr/share/doc/vminit/copyright",
    ] {
        if !contents
            .lines()
            .any(|line| line.ends_with(&format!(" {path}")))
        {
            return Err(bad(format!("{path} is missing:\n{contents}")));
        }
    }
    if let Some(line) = contents.lines().find(|line| !line.contains(" root/root ")) {
        return Err(bad(format!("not owned by root: {line}")));
    }
    let scratch = dist.work.join(format!("unpacked-{}", arch.debian()));
    let _ = fs::remove_dir_all(&scratch);
    cmd::run(Command::new("dpkg").arg("-x").arg(deb).arg(&scratch))?;

    let man = scratch.join("usr/share/man/man8/vminit.8.gz");
    if cmd::exists("man") {
        let page = cmd::output(
            Command::new("man")
                .args(["-l", "-P", "cat"])
                .arg(&man)
                .env("LC_ALL", "C")
                .env("MANWIDTH", "200")
                .env("MAN_DISABLE_SECCOMP", "1"),
        )?;
        let help = vminit::config::cli::USAGE;
        let options = help
            .split_whitespace()
            .filter(|word| word.starts_with("--") && word.len() > 2);
        for option in options.chain(["NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS"]) {
            let option = option.trim_end_matches([',', ')']);
            if !page.contains(option) {
                return Err(bad(format!("the man page lacks {option:?}:\n{page}")));
            }
        }
    } else {
        eprintln!("xtask: note: no man(1) here; the man page was not rendered");
    }
    if arch == Arch::host() {
        let vminit = scratch.join("usr/sbin/vminit");
        let line = cmd::output(Command::new(&vminit).arg("--version"))?;
        let expected = match git_revision() {
            Some(revision) => format!("vminit {} (git {revision})\n", dist.version),
            None => format!("vminit {}\n", dist.version),
        };
        if line != expected {
            return Err(bad(format!("--version says {line:?}, not {expected:?}")));
        }
        let help = cmd::output(Command::new(&vminit).arg("--help"))?;
        if help != vminit::config::cli::USAGE {
            return Err(bad("--help is not the text the man page is made of".into()));
        }
        check_deb_in_container(deb)?;
    }
    eprintln!("checked {}", deb.display());
    Ok(())
}

/// The image [`check_deb_in_container`] installs the package into.
const CHECK_IMAGE: &str = "localhost/vminit-dist-check:bookworm";

/// Installs the package with `dpkg -i` in a clean Debian container (a
/// minbase bookworm with man-db, made once with `mmdebstrap` and kept in
/// the cache), then runs `vminit --version` and finds its man page there.
/// Without podman, says that it is skipped.
pub fn check_deb_in_container(deb: &Path) -> Result<(), String> {
    if !cmd::exists("podman") {
        eprintln!(
            "xtask: skipped: installing {} in a Debian container: podman is not installed",
            deb.display()
        );
        return Ok(());
    }
    let deb = deb
        .canonicalize()
        .map_err(|e| format!("{}: {e}", deb.display()))?;
    check_image()?;
    cmd::run(
        Command::new("podman")
            .args(["run", "--rm", "--network=none", "--runtime", "runc"])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=20000:20000",
            ])
            .arg("-v")
            .arg(format!("{}:/tmp/vminit.deb:ro", deb.display()))
            .arg(CHECK_IMAGE)
            .args([
                "sh",
                "-c",
                "dpkg -i /tmp/vminit.deb && vminit --version && man -w vminit",
            ]),
    )
}

/// [`CHECK_IMAGE`], imported into podman from a cached `mmdebstrap`
/// tarball unless podman has it already.
fn check_image() -> Result<(), String> {
    let exists = Command::new("podman")
        .args(["image", "exists", CHECK_IMAGE])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        return Ok(());
    }
    let tarball = kernel::cache_dir().join("debian-minbase-man.tar");
    if !tarball.exists() {
        setup::packages(&[("mmdebstrap", "mmdebstrap")])?;
        let partial = tarball.with_extension("tar.partial");
        fs::create_dir_all(kernel::cache_dir()).map_err(|e| format!("cache: {e}"))?;
        cmd::run(
            Command::new("mmdebstrap")
                .args(["--variant=minbase", "--include=man-db", "--format=tar"])
                .args(["bookworm"])
                .arg(&partial),
        )?;
        fs::rename(&partial, &tarball).map_err(|e| format!("{}: {e}", tarball.display()))?;
    }
    cmd::run(
        Command::new("podman")
            .arg("import")
            .arg(&tarball)
            .arg(CHECK_IMAGE),
    )
}

/// Builds vminit for x86_64 again, into another target directory, and
/// compares it byte for byte with the one in the release; also checks that
/// it names no path of this machine.
fn reproducible(dist: &Dist) -> Result<(), String> {
    let arch = Arch::X86_64;
    let shipped = dist
        .release
        .target_dir
        .join(arch.target())
        .join("release/vminit");
    let second = Release {
        target_dir: cmd::root().join("target/dist-reproduce"),
        ..dist.release.clone()
    };
    let again = build::static_binary_with(arch, &second)?;
    let hash = |path: &Path| {
        cmd::output(Command::new("sha256sum").arg(path))
            .map(|line| line.split_whitespace().next().unwrap_or("").to_owned())
    };
    let (first_hash, second_hash) = (hash(&shipped)?, hash(&again)?);
    eprintln!("sha256 {first_hash}  {}", shipped.display());
    eprintln!("sha256 {second_hash}  {}", again.display());
    if read(&shipped)? != read(&again)? {
        return Err(format!(
            "not reproducible: {} and {} differ",
            shipped.display(),
            again.display()
        ));
    }
    let bytes = read(&again)?;
    let home = std::env::var("HOME").unwrap_or_default();
    let root = cmd::root().to_string_lossy().into_owned();
    for needle in [root.as_str(), home.as_str()]
        .into_iter()
        .filter(|n| n.len() > 1)
    {
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            return Err(format!("{} names the path {needle}", again.display()));
        }
    }
    eprintln!("reproducible: the x86_64 vminit built twice is the same, and names no local path");
    Ok(())
}

/// `cargo publish --dry-run` of the published crates, vminit first
/// (vminit-image depends on it; cargo packs both and verifies
/// vminit-image against the vminit just packed). `--allow-dirty` only when
/// the checkout has uncommitted changes, and said.
pub fn publish_dry_run() -> Result<(), String> {
    let status = cmd::output(
        Command::new("git")
            .arg("-C")
            .arg(cmd::root())
            .args(["status", "--porcelain"]),
    )
    .unwrap_or_default();
    let mut publish = cmd::cargo();
    publish.args([
        "publish",
        "--dry-run",
        "--package",
        "vminit",
        "--package",
        "vminit-image",
        "--package",
        "vminit-ctl",
    ]);
    if !status.trim().is_empty() {
        eprintln!("xtask: note: uncommitted changes: packing them too (--allow-dirty)");
        publish.arg("--allow-dirty");
    }
    cmd::run(&mut publish)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape(roff: &str) -> String {
        roff.replace("\\&", "")
            .replace("\\-", "-")
            .replace("\\e", "\\")
    }

    #[test]
    fn the_man_page_holds_every_line_of_the_help() {
        let help = vminit::config::cli::USAGE;
        let page = man_page(help, "0.1.0", "A static PID 1", 0);
        let text = unescape(&page).to_lowercase();
        for line in help.lines().filter(|l| !l.trim().is_empty()) {
            let line = line.strip_prefix("Usage: ").unwrap_or(line).trim_start();
            // Headings become sections, upper-cased, and the text after
            // them is capitalized: compare without case.
            let words: Vec<&str> = line.split(": ").collect();
            let tail = words.last().unwrap().trim_end_matches(':');
            let tail = tail.split_once(", ").map_or(tail, |(_, rest)| rest);
            assert!(
                text.contains(&tail.to_lowercase()),
                "{tail:?} is not in\n{page}"
            );
        }
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS"] {
            assert!(
                page.contains(&format!("\n.SH {section}\n")),
                "{section}\n{page}"
            );
        }
        assert!(page.starts_with(".TH VMINIT 8 \"1970-01-01\" \"vminit 0.1.0\""));
    }

    #[test]
    fn no_help_line_is_read_as_a_request() {
        let page = man_page(".dot\n'quote\n\nOptions:\n.x -y \\z\n", "1", "s", 0);
        assert!(page.contains("\\&.dot\n\\&'quote\n"), "{page}");
        assert!(page.contains("\\&.x \\-y \\ez\n"), "{page}");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_764_460_800), (2025, 11, 30));
    }

    #[test]
    fn reads_the_manifest() {
        let root = cmd::root();
        let version = crate_field(&root.join("Cargo.toml"), "version").unwrap();
        assert!(version.split('.').count() == 3, "{version}");
        assert!(crate_field(&root.join("Cargo.toml"), "no-such-key").is_err());
    }
}
