//! Kernel modules for stock distribution kernels, where everything virtio
//! is a module: which files to load, in which order, for a list of module
//! names, read from `modules.dep` as modprobe(8) reads it, and which
//! parameters the kernel command line gives each (`virtio_mmio.device=…`).
//! Loading itself is [`crate::sys::module`]. See modules.dep(5).

use thiserror::Error;

use crate::config::cmdline::Param;
use crate::config::modules::normalize;

/// A module to load: its name and its file, relative to `/lib/modules/VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    pub name: String,
    pub path: String,
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
        Index { dep, builtin }
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
            for file in deps.split_whitespace().rev().chain([path]) {
                if !plan.iter().any(|load| load.path == file) {
                    plan.push(Load {
                        name: name_of(file),
                        path: file.to_owned(),
                    });
                }
            }
        }
        Ok(plan)
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
