//! The `vminit-image` command: see `USAGE`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lexopt::prelude::*;
use nix::sys::signal::Signal;
use vminit_image::build::{self, Format, Options};
use vminit_image::source::Source;

const USAGE: &str = "\
Usage: vminit-image build SOURCE --output DIR [OPTIONS] [-- COMMAND [ARGS...]]

Turns a container image into what boots it as a microVM with vminit as PID 1.

SOURCE names its transport, as skopeo does:
  oci:DIR[:TAG]            an OCI image layout (TAG: org.opencontainers.image.ref.name)
  oci-archive:FILE         an OCI image layout as a tar file
  docker-archive:FILE      what `docker save` or `podman save` writes
  dir:DIR                  a plain root directory (no config: give the command)

The layers are applied in order, whiteouts (.wh.NAME) and opaque
directories (.wh..wh..opq) honoured, owners, modes, links and extended
attributes kept (owners need root); gzip, zstd and plain layers; from a
multi-platform index, the image for linux and --arch. Every blob is
checked against its digest and size.

DIR then holds:
  rootfs.ext4 | rootfs.erofs   the root disk (read-only; vminit puts a tmpfs overlay over it)
  metadata.json                the image's config as vminit's metadata: Entrypoint + Cmd
                               (or COMMAND) as argv, Env as env, WorkingDir, User,
                               StopSignal (what the power button sends the app)
  initramfs.cpio.gz            vminit as /init, the metadata file, and with
                               --kernel-modules the modules the root needs
  cmdline                      the kernel command line that boots it
  vm-config.json               a Firecracker configuration: firecracker --no-api --config-file DIR/vm-config.json

Options:
  -o, --output DIR           where to write (created if missing)
      --kernel-modules DIR   the booting kernel's /lib/modules/VERSION (its modules.dep, or
                             without one the modules' own .modinfo, as depmod reads them):
                             its virtio_mmio, virtio_blk, filesystem and overlay modules,
                             and the power button's (button or gpio_keys, and evdev),
                             go into the initramfs, for a stock distribution kernel
      --modules A,B          with --kernel-modules, these modules too, loaded at boot
                             (e.g. virtio_net for a network)
      --format FORMAT        ext4 (default) or erofs (needs mkfs.erofs: erofs-utils)
      --size SIZE            the root disk's size, in MiB, or with M or G (ext4 only;
                             default: its contents and half again, plus 64 MiB)
      --max-size SIZE        the most the layers together may unpack to, in MiB, or with
                             M or G (default: --size when given, else ten times the
                             compressed layers and five times the uncompressed ones, at
                             least 1G); past it the build stops
      --vminit PATH          the vminit binary for /init, for --arch (default: vminit-ARCH,
                             else a vminit for ARCH, beside this program, else on PATH;
                             the release tarball carries vminit-x86_64 and vminit-aarch64)
      --kernel PATH          the kernel to name in vm-config.json (default: vmlinux)
      --arch ARCH            x86_64 or aarch64 (default: this machine's)
      --setup-step JSON      a set-up step vminit runs before the app, in order
                             (repeatable): {\"argv\": [...], \"user\": \"...\", \"env\": {...}},
                             e.g. '{\"argv\": [\"initdb\", \"-D\", \"/data/pg\"], \"user\": \"postgres\"}'
      --reuse                keep the root disk already in DIR when it was built from the
                             same image digest, --format and --size and is unchanged since
                             (never for dir:)
  -h, --help                 print this help
  -V, --version              print the version

A hostile image cannot make it write outside DIR, follow a link out of the
image, read past a blob's size, or unpack more than --max-size; the staging
tree is open to no other user. On failure, Ctrl-C or SIGTERM, what this
build wrote to DIR is removed.

Exit status: 0 built; 2 bad input or a failed step (one line on stderr);
128+N stopped by signal N.

Needs mkfs.ext4 (e2fsprogs) or mkfs.erofs (erofs-utils), and cp.
";

fn main() -> ExitCode {
    if let Err(e) = vminit_image::stop::install() {
        eprintln!("vminit-image: cannot handle signals: {e}");
        return ExitCode::from(2);
    }
    match run(std::env::args_os().skip(1).collect()) {
        // A signal after the build was whole changes nothing.
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if vminit_image::stop::requested().is_some() => {
            let signal = vminit_image::stop::requested().unwrap_or(Signal::SIGTERM);
            eprintln!(
                "vminit-image: stopped by {}; the partial build was removed",
                signal.as_str()
            );
            ExitCode::from(128 + signal as u8)
        }
        Err(message) => {
            eprintln!("vminit-image: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<OsString>) -> Result<(), String> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut command_word = None;
    let mut source = None;
    let mut output = None;
    let mut kernel_modules = None;
    let mut format = Format::Ext4;
    let mut size_mib = None;
    let mut max_size_mib = None;
    let mut vminit = None;
    let mut kernel = None;
    let mut arch = std::env::consts::ARCH.to_owned();
    let mut command = Vec::new();
    let mut extra_modules = Vec::new();
    let mut reuse = false;
    let mut setup = Vec::new();
    let value = |parser: &mut lexopt::Parser, name: &str| -> Result<String, String> {
        parser
            .value()
            .map_err(|_| format!("{name} needs a value"))?
            .into_string()
            .map_err(|_| format!("{name}: not valid UTF-8"))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => {
                print!("{USAGE}");
                return Ok(());
            }
            Short('V') | Long("version") => {
                println!(
                    "{}",
                    vminit::run::version_line("vminit-image", env!("CARGO_PKG_VERSION"))
                );
                return Ok(());
            }
            Short('o') | Long("output") => {
                output = Some(PathBuf::from(value(&mut parser, "--output")?))
            }
            Long("reuse") => reuse = true,
            Long("setup-step") => {
                let text = value(&mut parser, "--setup-step")?;
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(step @ serde_json::Value::Object(_)) => setup.push(step),
                    _ => {
                        return Err(
                            "--setup-step: must be a JSON object such as {\"argv\": [\"initdb\"]}"
                                .into(),
                        );
                    }
                }
            }
            Long("kernel-modules") => {
                kernel_modules = Some(PathBuf::from(value(&mut parser, "--kernel-modules")?))
            }
            Long("modules") => {
                let list = value(&mut parser, "--modules")?;
                extra_modules = vminit::config::modules::parse_list(&list)
                    .map_err(|e| format!("--modules: {e}"))?;
            }
            Long("format") => {
                format = match value(&mut parser, "--format")?.as_str() {
                    "ext4" => Format::Ext4,
                    "erofs" => Format::Erofs,
                    other => return Err(format!("--format {other}: must be ext4 or erofs")),
                }
            }
            Long("size") => size_mib = Some(parse_size("--size", &value(&mut parser, "--size")?)?),
            Long("max-size") => {
                let text = value(&mut parser, "--max-size")?;
                max_size_mib = Some(parse_size("--max-size", &text)?)
            }
            Long("vminit") => vminit = Some(PathBuf::from(value(&mut parser, "--vminit")?)),
            Long("kernel") => kernel = Some(PathBuf::from(value(&mut parser, "--kernel")?)),
            Long("arch") => {
                arch = value(&mut parser, "--arch")?;
                if !["x86_64", "aarch64"].contains(&arch.as_str()) {
                    return Err(format!("--arch {arch}: must be x86_64 or aarch64"));
                }
            }
            Value(word) if command_word.is_none() => {
                command_word = Some(word.into_string().map_err(|_| "the command is not UTF-8")?)
            }
            Value(word) if source.is_none() => {
                let text = word
                    .into_string()
                    .map_err(|_| "SOURCE is not valid UTF-8")?;
                source = Some(Source::parse(&text).map_err(|e| e.to_string())?);
            }
            // After SOURCE (and `--`, which lexopt takes): the command.
            Value(word) => command.push(
                word.into_string()
                    .map_err(|_| "COMMAND is not valid UTF-8")?,
            ),
            Long(other) => return Err(format!("--{other} is not an option (see --help)")),
            Short(other) => return Err(format!("-{other} is not an option (see --help)")),
        }
    }
    match command_word.as_deref() {
        Some("build") => {}
        Some(other) => {
            return Err(format!(
                "{other}: not a command; the command is `build` (see --help)"
            ));
        }
        None => return Err(format!("no command given\n{USAGE}")),
    }
    let source = source.ok_or("no SOURCE given (see --help)")?;
    let output = output.ok_or("no --output DIR given")?;
    let vminit = match vminit {
        Some(path) => path,
        None => find_vminit(&arch).ok_or_else(|| {
            format!(
                "cannot find vminit-{arch} or a vminit for {arch} beside this program or on \
                 PATH: give --vminit"
            )
        })?,
    };
    let options = Options {
        source,
        output,
        kernel_modules,
        format,
        size_mib,
        max_size_mib,
        vminit,
        kernel,
        arch,
        command,
        setup,
        extra_modules,
        reuse,
    };
    let built = build::build(&options).map_err(|e| vminit::log::chain(&e))?;
    let kept = if built.reused {
        " (kept: same image)"
    } else {
        ""
    };
    println!("root disk:   {}{kept}", built.rootfs.display());
    println!("metadata:    {}", built.metadata.display());
    println!("initramfs:   {}", built.initramfs.display());
    println!("firecracker: {}", built.vm_config.display());
    println!("cmdline:     {}", built.cmdline);
    Ok(())
}

/// `512`, `512M`, `2G` → MiB.
fn parse_size(option: &str, text: &str) -> Result<u64, String> {
    let (number, unit) = match text.strip_suffix(['G', 'g']) {
        Some(n) => (n, 1024),
        None => (text.strip_suffix(['M', 'm']).unwrap_or(text), 1),
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{option} {text}: must be a size in MiB, or with M or G"))
}

/// The vminit for `arch`: `vminit-ARCH` (the release tarball carries one
/// for each architecture), then `vminit` if it is for `arch`, each first
/// beside this program, then on PATH.
fn find_vminit(arch: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = beside
        .into_iter()
        .chain(std::env::split_paths(&path))
        .collect();
    let named = format!("vminit-{arch}");
    [named.as_str(), "vminit"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| {
            candidate.is_file()
                && std::fs::read(candidate)
                    .is_ok_and(|binary| build::check_vminit(&binary, arch).is_ok())
        })
}
