//! Kernel modules for stock distribution kernels, where everything virtio
//! is a module: which files to load, in which order, for a list of module
//! names, read from `modules.dep` as modprobe(8) reads it, and which
//! parameters the kernel command line gives each (`virtio_mmio.device=…`).
//! Loading itself is [`crate::sys::module`]. See modules.dep(5).

use std::collections::{HashMap, HashSet};

use thiserror::Error;

use crate::cmdline::Param;
use crate::error::Problem;

/// The kernel's `MODULE_NAME_LEN` less the NUL.
const MAX_NAME: usize = 55;

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
    #[error("Module {0} depends on itself in modules.dep")]
    Cycle(String),
}

/// What `modules.dep` and `modules.builtin` say.
#[derive(Debug, Default)]
pub struct Index {
    /// Module name to its file and its dependencies' files.
    entries: HashMap<String, (String, Vec<String>)>,
    builtin: HashSet<String>,
}

/// A module's name as the kernel knows it: `-` and `_` are the same.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a file: `kernel/net/core/failover.ko.xz` → `failover`.
pub fn name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split_once(".ko").map_or(file, |(stem, _)| stem);
    normalize(stem)
}

/// Checks a comma-separated list of module names.
pub fn parse_list(value: &str) -> Result<Vec<String>, Problem> {
    value
        .split(',')
        .map(|name| {
            let ok = !name.is_empty()
                && name.len() <= MAX_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if ok {
                Ok(normalize(name))
            } else {
                Err(Problem::BadSetting(
                    "must be module names separated by ',': letters, digits, '_' and '-', \
                     at most 55 bytes each",
                ))
            }
        })
        .collect()
}

impl Index {
    /// Reads `modules.dep` (`path: dependency paths…` per line) and
    /// `modules.builtin` (one path per line).
    pub fn parse(dep: &str, builtin: &str) -> Index {
        let entries = dep
            .lines()
            .filter_map(|line| {
                let (path, deps) = line.split_once(':')?;
                let path = path.trim();
                let deps = deps.split_whitespace().map(str::to_owned).collect();
                Some((name_of(path), (path.to_owned(), deps)))
            })
            .collect();
        let builtin = builtin
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(name_of)
            .collect();
        Index { entries, builtin }
    }

    /// The files to load for `wanted`, dependencies first, each once;
    /// built-in modules are skipped.
    pub fn plan(&self, wanted: &[String]) -> Result<Vec<Load>, PlanError> {
        let mut plan = Vec::new();
        let mut done = HashSet::new();
        for name in wanted {
            let name = normalize(name);
            if self.builtin.contains(&name) {
                continue;
            }
            if !self.entries.contains_key(&name) {
                return Err(PlanError::NotFound(name));
            }
            self.visit(&name, &mut Vec::new(), &mut done, &mut plan)?;
        }
        Ok(plan)
    }

    fn visit(
        &self,
        name: &str,
        path_so_far: &mut Vec<String>,
        done: &mut HashSet<String>,
        plan: &mut Vec<Load>,
    ) -> Result<(), PlanError> {
        if done.contains(name) {
            return Ok(());
        }
        if path_so_far.iter().any(|n| n == name) {
            return Err(PlanError::Cycle(name.to_owned()));
        }
        let Some((path, deps)) = self.entries.get(name) else {
            return Err(PlanError::NotFound(name.to_owned()));
        };
        path_so_far.push(name.to_owned());
        // modprobe loads the list from its end: the last entry has no
        // dependencies of its own. Visiting each in that order, its own
        // dependencies first, gives the same order and tolerates a
        // hand-written modules.dep that lists only direct dependencies.
        for dep in deps.iter().rev() {
            self.visit(&name_of(dep), path_so_far, done, plan)?;
        }
        path_so_far.pop();
        done.insert(name.to_owned());
        plan.push(Load {
            name: name.to_owned(),
            path: path.clone(),
        });
        Ok(())
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
    use crate::cmdline;

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
    fn only_direct_dependencies_and_cycles() {
        let index = Index::parse("a.ko: b.ko\nb.ko: c.ko\nc.ko:\n", "");
        assert_eq!(names(&index.plan(&["a".into()]).unwrap()), ["c", "b", "a"]);
        let index = Index::parse("a.ko: b.ko\nb.ko: a.ko\n", "");
        assert!(matches!(
            index.plan(&["a".into()]),
            Err(PlanError::Cycle(_))
        ));
        let index = Index::parse("a.ko: gone.ko\n", "");
        assert_eq!(
            index.plan(&["a".into()]),
            Err(PlanError::NotFound("gone".into()))
        );
    }

    #[test]
    fn names_and_lists() {
        assert_eq!(name_of("kernel/x/vsock-loopback.ko.zst"), "vsock_loopback");
        assert_eq!(name_of("a.ko"), "a");
        assert_eq!(
            parse_list("virtio_net,vsock-loopback"),
            Ok(vec!["virtio_net".into(), "vsock_loopback".into()])
        );
        for bad in ["", "a,,b", "a b", "a/b", &"m".repeat(56)] {
            assert!(parse_list(bad).is_err(), "{bad:?}");
        }
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
