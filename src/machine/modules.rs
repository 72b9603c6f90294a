//! Kernel modules for stock distribution kernels, where everything virtio
//! is a module: which files to load, in which order, for a list of module
//! names, read from `modules.dep` as modprobe(8) reads it, and which
//! parameters the kernel command line gives each (`virtio_mmio.device=…`).
//! Soft dependencies (`modules.softdep`, `pre:` modules, named directly
//! or through `modules.alias`) are loaded first, as modprobe does: ext4
//! and jbd2 need `crc32c`, which nothing else loads in an initramfs.
//! Loading itself is [`crate::sys::module`]. See modules.dep(5),
//! modprobe.d(5).

use thiserror::Error;

use crate::config::cmdline::Param;
use crate::config::modules::normalize;

/// A module to load: its name and its file, relative to `/lib/modules/VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    pub name: String,
    pub path: String,
    /// Wanted as another's soft dependency: its failure is not fatal.
    pub soft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("Module {0} is neither in modules.dep nor built into the kernel")]
    NotFound(String),
}

/// What `modules.dep` and `modules.builtin` say, read only as far as a plan
/// needs: Debian's `modules.dep` has 4,000 lines, and indexing them all
/// would cost more than loading the few modules a VM wants.
#[derive(Debug, Clone, Copy)]
pub struct Index<'a> {
    dep: &'a str,
    builtin: &'a str,
    softdep: &'a str,
    alias: &'a str,
}

/// The file name without directory and `.ko` suffixes, as written.
/// (Byte searches only: this runs on every line of `modules.dep`.)
fn stem(path: &str) -> &str {
    let file = path.rfind('/').map_or(path, |slash| &path[slash + 1..]);
    let mut from = 0;
    while let Some(dot) = file[from..].find('.') {
        let at = from + dot;
        if file[at..].starts_with(".ko") {
            return &file[..at];
        }
        from = at + 1;
    }
    file
}

/// Whether a file's `stem` is the module `name` (normalized).
fn is_named(stem: &str, name: &str) -> bool {
    stem.len() == name.len()
        && stem
            .bytes()
            .zip(name.bytes())
            .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
}

/// The module name of a file: `kernel/net/core/failover.ko.xz` → `failover`.
pub fn name_of(path: &str) -> String {
    normalize(stem(path))
}

impl<'a> Index<'a> {
    /// Takes `modules.dep` (`path: dependency paths…` per line) and
    /// `modules.builtin` (one path per line).
    pub fn parse(dep: &'a str, builtin: &'a str) -> Index<'a> {
        Index {
            dep,
            builtin,
            softdep: "",
            alias: "",
        }
    }

    /// Adds `modules.softdep` (`softdep NAME pre: A B post: C`) and
    /// `modules.alias` (`alias ALIAS NAME`), for soft dependencies.
    pub fn with_soft(self, softdep: &'a str, alias: &'a str) -> Index<'a> {
        Index {
            softdep,
            alias,
            ..self
        }
    }

    /// The modules `name` wants loaded before it (`pre:`), each named
    /// directly or as an alias, as module names.
    fn soft_pre(&self, name: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in self.softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep")
                || words.next().map(normalize).as_deref() != Some(name)
            {
                continue;
            }
            let mut pre = false;
            for word in words {
                match word {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    wanted if pre => found.extend(self.resolve_alias(wanted)),
                    _ => {}
                }
            }
        }
        found
    }

    /// A soft dependency's name as the modules that provide it: itself
    /// when `modules.dep` has it, else every module with that alias.
    fn resolve_alias(&self, wanted: &str) -> Vec<String> {
        let name = normalize(wanted);
        let is_module = self.dep.lines().any(|line| {
            line.split_once(':')
                .is_some_and(|(path, _)| is_named(stem(path.trim()), &name))
        });
        if is_module || self.is_builtin(&name) {
            return vec![name];
        }
        self.alias
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("alias") && words.next() == Some(wanted))
                    .then(|| words.next().map(normalize))
                    .flatten()
            })
            .collect()
    }

    fn is_builtin(&self, name: &str) -> bool {
        self.builtin
            .lines()
            .any(|line| is_named(stem(line.trim()), name))
    }

    /// The `modules.dep` lines of `names` (path, dependency paths), in one
    /// pass that stops once all are found.
    fn lines_of(&self, names: &[String]) -> Vec<Option<(&'a str, &'a str)>> {
        let mut found = vec![None; names.len()];
        let mut missing = names.len();
        for line in self.dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            let file_stem = stem(path);
            for (slot, name) in found.iter_mut().zip(names) {
                if slot.is_none() && is_named(file_stem, name) {
                    *slot = Some((path, deps));
                    missing -= 1;
                }
            }
            if missing == 0 {
                break;
            }
        }
        found
    }

    /// The files to load for `wanted`, in modprobe's order: each module's
    /// dependencies as its line lists them, from the end (depmod lists
    /// every dependency, the ones with none of their own last), then the
    /// module; each file once, built-in modules skipped.
    pub fn plan(&self, wanted: &[String]) -> Result<Vec<Load>, PlanError> {
        let wanted: Vec<String> = wanted
            .iter()
            .map(|name| normalize(name))
            .filter(|name| !self.is_builtin(name))
            .collect();
        let mut plan: Vec<Load> = Vec::new();
        for (name, line) in wanted.iter().zip(self.lines_of(&wanted)) {
            let Some((path, deps)) = line else {
                return Err(PlanError::NotFound(name.clone()));
            };
            self.add(&mut plan, path, deps, false, 0);
        }
        Ok(plan)
    }

    /// Adds a module's dependencies as its line lists them, from the end
    /// (depmod lists every dependency, the ones with none of their own
    /// last), then the module; each file once, and before each the modules
    /// it softly depends on (`crc32c` before `libcrc32c`, `jbd2` and
    /// `ext4`), as kmod does. A soft dependency that is missing or built in
    /// is no error.
    fn add(&self, plan: &mut Vec<Load>, path: &str, deps: &str, soft: bool, depth: usize) {
        // Soft dependencies of soft dependencies, but no loops.
        const MAX_DEPTH: usize = 3;
        for file in deps.split_whitespace().rev().chain([path]) {
            if let Some(planned) = plan.iter_mut().find(|load| load.path == file) {
                // Needed for real now: its failure is fatal after all.
                planned.soft &= soft;
                continue;
            }
            let name = name_of(file);
            if depth < MAX_DEPTH && !self.softdep.is_empty() {
                let pre: Vec<String> = self
                    .soft_pre(&name)
                    .into_iter()
                    .filter(|pre| !self.is_builtin(pre))
                    .collect();
                for (pre_path, pre_deps) in self.lines_of(&pre).into_iter().flatten() {
                    self.add(plan, pre_path, pre_deps, true, depth + 1);
                }
            }
            if !plan.iter().any(|load| load.path == file) {
                plan.push(Load {
                    name,
                    path: file.to_owned(),
                    soft,
                });
            }
        }
    }
}

/// The parameters for `module` among the kernel command line's words
/// (`module.param=value`), as finit_module(2) takes them:
/// `param=value` separated by spaces, values with spaces in quotes.
pub fn params(module: &str, kernel_params: &[Param]) -> String {
    let prefix = format!("{}.", normalize(module));
    let mut out = String::new();
    for param in kernel_params {
        let name = normalize(&String::from_utf8_lossy(param.name));
        let Some(key) = name.strip_prefix(&prefix) else {
            continue;
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(key);
        if let Some(value) = param.value {
            let value = String::from_utf8_lossy(value);
            if value.contains(char::is_whitespace) {
                out.push_str(&format!("=\"{value}\""));
            } else {
                out.push('=');
                out.push_str(&value);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cmdline;

    /// From Debian's 6.1 kernel, after `depmod`.
    const DEP: &str = "\
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/vmw_vsock/vsock_loopback.ko.xz: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
kernel/net/vmw_vsock/vsock.ko:
";

    fn names(plan: &[Load]) -> Vec<&str> {
        plan.iter().map(|l| l.name.as_str()).collect()
    }

    #[test]
    fn dependencies_first_each_once() {
        let index = Index::parse(DEP, "kernel/drivers/block/loop.ko\n");
        let plan = index
            .plan(&["virtio-mmio".into(), "virtio_net".into(), "loop".into()])
            .unwrap();
        assert_eq!(
            names(&plan),
            [
                "virtio_ring",
                "virtio",
                "virtio_mmio",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        assert_eq!(plan[2].path, "kernel/drivers/virtio/virtio_mmio.ko");
        let plan = index.plan(&["vsock_loopback".into()]).unwrap();
        assert_eq!(
            names(&plan),
            [
                "vsock",
                "vmw_vsock_virtio_transport_common",
                "vsock_loopback"
            ]
        );
        assert_eq!(
            index.plan(&["virtio_nett".into()]),
            Err(PlanError::NotFound("virtio_nett".into()))
        );
    }

    #[test]
    fn the_order_is_modprobes_and_each_file_comes_once() {
        // Dependencies from the end of the list, then the module.
        let index = Index::parse("a.ko: b.ko c.ko\nd.ko: c.ko\nc.ko:\nb.ko: c.ko\n", "");
        let plan = index.plan(&["a".into(), "d".into()]).unwrap();
        assert_eq!(names(&plan), ["c", "b", "a", "d"]);
        // A wanted module's dependencies are its line's, found or not.
        let index = Index::parse("a.ko: gone.ko\n", "");
        assert_eq!(names(&index.plan(&["a".into()]).unwrap()), ["gone", "a"]);
        assert_eq!(
            Index::parse("", "").plan(&["a".into()]),
            Err(PlanError::NotFound("a".into()))
        );
    }

    #[test]
    fn names_of_files() {
        assert_eq!(name_of("kernel/x/vsock-loopback.ko.zst"), "vsock_loopback");
        assert_eq!(name_of("a.ko"), "a");
        assert_eq!(name_of("dir.d/x.y.ko.gz"), "x.y");
        assert_eq!(name_of("plain"), "plain");
    }

    #[test]
    fn soft_dependencies_come_first_through_their_aliases() {
        let dep = "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko\n\
                   kernel/fs/jbd2/jbd2.ko:\nkernel/lib/crc16.ko:\n\
                   kernel/crypto/crc32c_generic.ko:\n\
                   kernel/arch/x86/crypto/crc32c-intel.ko:\n";
        let softdep = "# comment\nsoftdep ext4 pre: crc32c\nsoftdep jbd2 pre: crc32c\n";
        let alias = "alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\n\
                     alias crc32c crc32c_intel\nalias pci:v* other\n";
        let plan = Index::parse(dep, "")
            .with_soft(softdep, alias)
            .plan(&["ext4".into()])
            .unwrap();
        // crc32c before jbd2, a dependency that wants it too.
        assert_eq!(
            names(&plan),
            ["crc16", "crc32c_generic", "crc32c_intel", "jbd2", "ext4"]
        );
        assert!(!plan[0].soft && plan[1].soft && plan[2].soft && !plan[4].soft);
        // A soft dependency nobody provides, or a built-in one, is no error.
        // Wanted for itself too: no longer soft.
        let plan = Index::parse(dep, "")
            .with_soft(softdep, alias)
            .plan(&["ext4".into(), "crc32c_generic".into()])
            .unwrap();
        assert!(!plan[1].soft, "{plan:?}");
        let plan = Index::parse(dep, "kernel/crypto/crc32c_generic.ko\n")
            .with_soft("softdep ext4 pre: nothing crc32c_generic\n", "")
            .plan(&["ext4".into()])
            .unwrap();
        assert_eq!(names(&plan), ["crc16", "jbd2", "ext4"]);
        // A dependency's own soft dependency (erofs needs libcrc32c, which
        // needs crc32c).
        let plan = Index::parse(
            "kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko\nkernel/lib/libcrc32c.ko:\n\
             kernel/crypto/crc32c_generic.ko:\n",
            "",
        )
        .with_soft(
            "softdep libcrc32c pre: crc32c\n",
            "alias crc32c crc32c_generic\n",
        )
        .plan(&["erofs".into()])
        .unwrap();
        assert_eq!(names(&plan), ["crc32c_generic", "libcrc32c", "erofs"]);
    }

    #[test]
    fn parameters_come_from_the_kernel_command_line() {
        let line = br#"quiet virtio-mmio.device=512@0xfeb00000:12 virtio_mmio.device=512@0xfeb00200:13 vsock.x="a b" virtio_net.napi_tx virtio_netx.y=1"#;
        let tokens = cmdline::tokenize(line);
        assert_eq!(
            params("virtio_mmio", &tokens.params),
            "device=512@0xfeb00000:12 device=512@0xfeb00200:13"
        );
        assert_eq!(params("vsock", &tokens.params), "x=\"a b\"");
        assert_eq!(params("virtio_net", &tokens.params), "napi_tx");
        assert_eq!(params("loop", &tokens.params), "");
    }
}
