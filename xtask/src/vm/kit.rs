//! Guest images: what every boot needs (the static vminit, busybox, a
//! kernel, QEMU), and how a command and its environment are put on a kernel
//! command line, or in a metadata file when the command line cannot hold them.

use std::path::{Path, PathBuf};

use super::arch::Arch;
use super::initramfs::{self, Console, Contents};
use super::qemu::Boot;
use super::{kernel, qemu};
use crate::release::build;
use crate::{cmd, setup};

/// Where the guest finds a metadata file that xtask wrote for it.
pub const GUEST_METADATA: &str = "/etc/vminit/metadata.json";

/// Everything a boot needs, prepared once.
#[derive(Debug, Clone)]
pub struct Kit {
    pub arch: Arch,
    pub vminit: PathBuf,
    pub busybox: PathBuf,
    pub kernel: PathBuf,
}

impl Kit {
    /// Builds vminit for this machine and fetches or installs the rest.
    pub fn prepare(kernel: Option<&Path>) -> Result<Kit, String> {
        Kit::prepare_for(kernel, Arch::host())
    }

    /// Builds vminit for `arch` and fetches or installs the rest: its QEMU,
    /// busybox and kernel.
    pub fn prepare_for(kernel: Option<&Path>, arch: Arch) -> Result<Kit, String> {
        qemu::ensure_installed(arch)?;
        // The host's busybox also lists the applets for another arch's.
        let host_busybox = static_busybox()?;
        let busybox = if arch == Arch::host() {
            host_busybox
        } else {
            kernel::foreign_busybox(arch)?
        };
        let vminit = build::static_binary_for(arch)?;
        let kernel = kernel::kernel(kernel, arch)?;
        Ok(Kit {
            arch,
            vminit,
            busybox,
            kernel,
        })
    }

    /// A boot of `initrd` with `cmdline`: 256 MiB, no extra devices, and the
    /// accelerator [`Kit::accel`] chose with that image.
    pub fn boot(&self, initrd: &Path, cmdline: String) -> Boot {
        Boot {
            arch: self.arch,
            kernel: self.kernel.clone(),
            initrd: initrd.to_path_buf(),
            cmdline,
            accel: self.accel(initrd),
            qmp: None,
            memory_mb: 256,
            cpus: 1,
            devices: Vec::new(),
            own_group: false,
            faults: qemu::HostFaults::default(),
        }
    }

    /// KVM if a probe boot of `initrd` (vminit as `/init`, running `true`)
    /// finishes under it, else TCG; decided once per process.
    pub fn accel(&self, initrd: &Path) -> qemu::Accel {
        if self.arch != Arch::host() {
            return qemu::Accel::Tcg;
        }
        qemu::accel(|| {
            Some(Boot {
                arch: self.arch,
                kernel: self.kernel.clone(),
                initrd: initrd.to_path_buf(),
                cmdline: "-- true".into(),
                accel: qemu::Accel::Tcg,
                qmp: None,
                memory_mb: 256,
                cpus: 1,
                devices: Vec::new(),
                own_group: false,
                faults: qemu::HostFaults::default(),
            })
        })
    }

    /// Writes an initramfs with `files` to `target/vm/NAME.cpio.gz`.
    pub fn image(
        &self,
        name: &str,
        console: Console,
        files: Vec<(String, Vec<u8>, u32)>,
    ) -> Result<PathBuf, String> {
        self.image_with_init(name, None, console, files)
    }

    /// Like [`Kit::image`], with a script as `/init` instead of vminit.
    pub fn image_with_init(
        &self,
        name: &str,
        init_script: Option<&str>,
        console: Console,
        files: Vec<(String, Vec<u8>, u32)>,
    ) -> Result<PathBuf, String> {
        let contents = Contents {
            vminit: &self.vminit,
            init_script,
            busybox: &self.busybox,
            console,
            files,
        };
        let bytes = initramfs::build(&contents)?;
        let dir = cmd::root().join("target/vm");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join(format!("{name}.cpio.gz"));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

/// Debian's busybox-static, checked to be static (the plain `busybox`
/// package is dynamic and useless in an initramfs without libc).
pub fn static_busybox() -> Result<PathBuf, String> {
    let path = PathBuf::from(initramfs::BUSYBOX);
    let is_static = std::fs::read(&path).is_ok_and(|elf| build::has_interpreter(&elf) == Ok(false));
    if !is_static {
        setup::install(&["busybox-static"])?;
    }
    let elf = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if build::has_interpreter(&elf)? {
        return Err(format!(
            "{} is not static: apt-get install busybox-static",
            path.display()
        ));
    }
    Ok(path)
}

/// `word` as the kernel will hand it back, or `None` if no quoting can
/// carry it (a `"`, NBSP bytes that the kernel treats as spaces, a `--`).
pub fn quote(word: &str) -> Option<String> {
    if word.contains('"') || word.as_bytes().contains(&0xa0) || word == "--" || word.contains('\0')
    {
        return None;
    }
    if word.is_empty() || word.bytes().any(|b| b.is_ascii_whitespace()) {
        Some(format!("\"{word}\""))
    } else {
        Some(word.to_owned())
    }
}

/// The kernel command-line words for env and argv, or `None` when they do
/// not fit (unquotable words, more than 32 init args, over ~1.5 KiB).
pub fn cmdline_for(env: &[(String, String)], argv: &[String]) -> Option<String> {
    let mut words = Vec::new();
    for (key, value) in env {
        words.push(format!("env.{key}={}", quote(value)?));
    }
    if !argv.is_empty() {
        if argv.len() > vminit::config::cmdline::MAX_INIT_ARGS {
            return None;
        }
        words.push("--".into());
        for word in argv {
            words.push(quote(word)?);
        }
    }
    let line = words.join(" ");
    (line.len() < 1500).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_the_vminit_tokenizer() {
        let env = vec![
            ("A".to_owned(), "x y".to_owned()),
            ("B".to_owned(), "a=b".to_owned()),
        ];
        let argv: Vec<String> = ["sh", "-c", "echo hello; uname -a", ""]
            .map(String::from)
            .to_vec();
        let line = cmdline_for(&env, &argv).unwrap();
        assert_eq!(
            line,
            "env.A=\"x y\" env.B=a=b -- sh -c \"echo hello; uname -a\" \"\""
        );
        assert_eq!(quote("say \"hi\""), None);
        assert_eq!(cmdline_for(&[], &vec!["a".to_owned(); 33]), None);
    }
}
