//! The set-up steps a configuration asks of the machine before the app
//! starts ([`set_up_machine`] takes them in order), each failing the boot
//! with a clear error: loading kernel modules
//! (planned by [`crate::machine::modules`], loaded with finit_module(2)),
//! configuring the network interface ([`crate::config::net`], ioctls in
//! [`crate::sys::net`]),
//! and writing `/etc/resolv.conf` and `/etc/hosts` without silently
//! clobbering the image's own, read-only images included.

use std::io;
use std::net::IpAddr;
use std::path::Path;

use thiserror::Error;

use crate::config::Config;
use crate::config::cmdline;
use crate::config::mounts::DEFAULT_WAIT;
use crate::config::net::NetSettings;
use crate::machine::modules::{self, PlanError};
use crate::machine::network;
use crate::machine::root::{self, RootError};
use crate::machine::volumes::{self, VolumeError};
use crate::record::steps;
use crate::sys::{module, mount, net};
use crate::{debug, info, warn};

/// A step of the machine's set-up that the configuration asked for and
/// that failed: the app does not start without it.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("Cannot read the module index {path}")]
    ModuleIndex {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot plan the modules to load")]
    ModulePlan(#[from] PlanError),
    #[error("Cannot load module {name} from {path}")]
    ModuleLoad {
        name: String,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "Cannot load compressed module {name} from {path} (the kernel must decompress it: Linux 6.4 or later, built with CONFIG_MODULE_DECOMPRESS for this format; a bad {name}.* parameter on the kernel command line fails the same way)"
    )]
    CompressedModule {
        name: String,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot configure network interface {interface} ({step})")]
    Network {
        step: String,
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot write {path}")]
    EtcFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "Cannot write {path}: on this read-only image it links to {target}, which does not exist and is outside the /run that vminit mounts"
    )]
    EtcLink { path: String, target: String },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// Whether the configuration asks for machine-wide set-up.
pub fn asks_for_machine(config: &Config) -> bool {
    !config.modules.is_empty()
        || config.net != NetSettings::default()
        || config.root.source.is_some()
}

/// Loads modules, switches to the root, mounts the volumes and configures
/// the network, as the configuration asks, in that order: the root and
/// volumes may need modules, and resolv.conf and hosts belong in the final
/// root. Inside a PID namespace (`--mode vm` in tests) the kernel, the
/// root and the network are the host's: only the volumes are mounted (in
/// the namespace's own mount namespace). `kernel_line` gives the modules
/// their parameters.
pub fn set_up_machine(
    config: &Config,
    real_machine: bool,
    kernel_line: &[u8],
    hostname: Option<&str>,
) -> Result<(), SetupError> {
    let wait = config.root.wait.unwrap_or(DEFAULT_WAIT);
    if !real_machine {
        if asks_for_machine(config) {
            warn!(
                "modules, root and net.* are applied by a machine's init only: skipped in a PID namespace"
            );
        }
        return Ok(volumes::mount_all(&config.mounts, wait)?);
    }
    if !config.modules.is_empty() {
        load_modules(&config.modules, kernel_line)?;
    }
    root::switch(&config.root)?;
    steps::time("volumes", || volumes::mount_all(&config.mounts, wait))?;
    if config.net.configures_interface() {
        steps::time("network", || configure_network(&config.net))?;
    }
    steps::time("network_files", || {
        write_network_files(&config.net, hostname)
    })
}

/// The module directory of the running kernel, and what to load from it
/// for `names`, read from its `modules.*` files.
fn plan_modules(names: &[String]) -> Result<(String, Vec<modules::Load>), SetupError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(|source| {
        SetupError::ModuleIndex {
            path: "/proc/sys/kernel/osrelease".into(),
            source,
        }
    })?;
    let dir = format!("/lib/modules/{}", release.trim_end());
    let dep_path = format!("{dir}/modules.dep");
    let dep = std::fs::read_to_string(&dep_path).map_err(|source| SetupError::ModuleIndex {
        path: dep_path,
        source,
    })?;
    // Without the list of built-in modules, asking for one fails as "not found".
    let builtin = std::fs::read_to_string(format!("{dir}/modules.builtin")).unwrap_or_default();
    // Soft dependencies need both; without them only the hard ones load.
    let softdep = std::fs::read_to_string(format!("{dir}/modules.softdep")).unwrap_or_default();
    let alias = if softdep.is_empty() {
        String::new()
    } else {
        std::fs::read_to_string(format!("{dir}/modules.alias")).unwrap_or_default()
    };
    let plan = modules::Index::parse(&dep, &builtin)
        .with_soft(&softdep, &alias)
        .plan(names)?;
    Ok((dir, plan))
}

/// Loads `names` and their dependencies from `/lib/modules/$(uname -r)`,
/// each with its parameters from the kernel command line (`kernel_line`),
/// as modprobe would.
pub fn load_modules(names: &[String], kernel_line: &[u8]) -> Result<(), SetupError> {
    let (dir, plan) = steps::time("modules_index", || plan_modules(names))?;
    let kernel_params = cmdline::tokenize(kernel_line).params;
    for load in plan {
        let path = format!("{dir}/{}", load.path);
        let params = modules::params(&load.name, &kernel_params);
        let compressed = [".xz", ".zst", ".gz"].iter().any(|e| path.ends_with(e));
        let loaded = steps::time(format!("module:{}", load.name), || {
            std::fs::File::open(&path).and_then(|file| module::load(&file, &params, compressed))
        });
        if let Err(source) = loaded {
            // An optional variant for hardware this machine lacks
            // (crc32c_intel without SSE 4.2 under TCG): nothing to warn of.
            if load.soft && source.raw_os_error() == Some(libc::ENODEV) {
                debug!(
                    "module {} (a soft dependency) is not for this machine: {source}",
                    load.name
                );
                continue;
            }
            if load.soft {
                warn!(
                    "cannot load module {} (a soft dependency): {source}",
                    load.name
                );
                continue;
            }
            let (name, path) = (load.name, path);
            let refused = matches!(source.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP));
            return Err(if compressed && refused {
                SetupError::CompressedModule { name, path, source }
            } else {
                SetupError::ModuleLoad { name, path, source }
            });
        }
        debug!("loaded module {} ({params})", load.name);
    }
    Ok(())
}

/// Configures the network interface: MTU, up, addresses, default routes.
/// Duplicate address detection is turned off first: the host assigned
/// these addresses, and waiting for it would delay the app by a second.
pub fn configure_network(config: &NetSettings) -> Result<(), SetupError> {
    let name = config.interface();
    let fail = |step: String| {
        move |source| SetupError::Network {
            step,
            interface: name.to_owned(),
            source,
        }
    };
    wait_for_interface(name).map_err(fail("find it".into()))?;
    if let Some(mtu) = config.mtu {
        net::set_mtu(name, mtu).map_err(fail(format!("set MTU {mtu}")))?;
    }
    let addresses = config.addresses.as_deref().unwrap_or_default();
    if addresses.iter().any(|a| a.addr.is_ipv6()) {
        let knob = format!("/proc/sys/net/ipv6/conf/{name}/accept_dad");
        if let Err(e) = std::fs::write(&knob, "0") {
            debug!("cannot turn off duplicate address detection ({knob}): {e}");
        }
    }
    net::interface_up(name).map_err(fail("bring it up".into()))?;
    for cidr in addresses {
        match cidr.addr {
            IpAddr::V4(addr) => net::set_ipv4_address(name, addr, cidr.prefix),
            IpAddr::V6(addr) => net::add_ipv6_address(name, addr, cidr.prefix),
        }
        .map_err(fail(format!("add address {cidr}")))?;
    }
    for gateway in config.gateways.as_deref().unwrap_or_default() {
        match gateway {
            IpAddr::V4(addr) => net::add_ipv4_default_route(name, *addr),
            IpAddr::V6(addr) => net::add_ipv6_default_route(name, *addr),
        }
        .map_err(fail(format!("add a default route through {gateway}")))?;
    }
    debug!("configured network interface {name}");
    Ok(())
}

/// Looks the interface up, giving a driver that probes asynchronously
/// (a hotplugged or slow device) up to a second to register it.
fn wait_for_interface(name: &str) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match net::interface_index(name) {
            Ok(_) => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::ENODEV)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes `/etc/resolv.conf` when nameservers are given, and `/etc/hosts`
/// when host entries are; without them, completes the image's
/// `/etc/hosts` as Docker's always is (see [`network::hosts_completed`]).
pub fn write_network_files(config: &NetSettings, hostname: Option<&str>) -> Result<(), SetupError> {
    if let Some(servers) = &config.nameservers {
        write_etc_file("/etc/resolv.conf", &network::resolv_conf(servers))?;
    }
    if let Some(hosts) = &config.hosts {
        return write_etc_file("/etc/hosts", &network::hosts_file(hosts, hostname));
    }
    // The image's, read to a sane size; a larger one is left alone.
    let existing = match std::fs::metadata("/etc/hosts") {
        Ok(meta) if meta.len() > 1 << 20 => return Ok(()),
        Ok(_) => Some(std::fs::read_to_string("/etc/hosts").unwrap_or_default()),
        Err(_) => None,
    };
    // A default: where it cannot be written (a read-only root without the
    // file, and no /run to put it in), a warning, not a failed boot.
    if let Some(text) = network::hosts_completed(existing.as_deref(), hostname) {
        if let Err(e) = write_etc_file("/etc/hosts", &text) {
            warn!("{}: localhost may not resolve", crate::log::chain(&e));
        }
    }
    Ok(())
}

/// Writes one of the image's configuration files, saying so when it
/// replaces the image's own. A symlink (to a resolver's file in `/run`) is
/// replaced by the file; on a read-only root, a link into `/run` is written
/// through, and a regular file (or a link to one) gets a copy in
/// `/run/vminit` mounted over it.
fn write_etc_file(path: &str, text: &str) -> Result<(), SetupError> {
    let fail = |source| SetupError::EtcFile {
        path: path.to_owned(),
        source,
    };
    let existing = std::fs::symlink_metadata(path).ok();
    if existing.as_ref().is_some_and(|m| m.is_file())
        && std::fs::read_to_string(path).is_ok_and(|old| old == text)
    {
        return Ok(());
    }
    // A minimal image (one static binary) may have no /etc at all.
    let _ = mount::create_dir("/etc", 0o755);
    let mut link_target = None;
    if existing.as_ref().is_some_and(|m| m.is_symlink()) {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::ReadOnlyFilesystem => {
                let target = resolve_link(Path::new(path)).map_err(fail)?;
                if target.starts_with("/run") {
                    return write_in_run(path, &target, text);
                }
                // Elsewhere on the image: written through if that is
                // writable, else the copy below is mounted over the target.
                link_target = Some(target);
            }
            Err(e) => return Err(fail(e)),
        }
    }
    match std::fs::write(path, text) {
        Ok(()) if existing.is_some() => info!("replaced the image's {path}"),
        Ok(()) => debug!("wrote {path}"),
        Err(e) if existing.is_some() && e.kind() == io::ErrorKind::ReadOnlyFilesystem => {
            let name = path.rsplit('/').next().unwrap_or(path);
            let copy = format!("/run/vminit/{name}");
            std::fs::write(&copy, text).map_err(fail)?;
            mount::bind(&copy, path).map_err(fail)?;
            info!("mounted {copy} over the image's read-only {path}");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && link_target.is_some() => {
            return Err(SetupError::EtcLink {
                path: path.to_owned(),
                target: link_target.unwrap_or_default().display().to_string(),
            });
        }
        Err(e) => return Err(fail(e)),
    }
    Ok(())
}

/// Writes `text` to `target` in the `/run` vminit mounted, where the link
/// `path` on a read-only root points (systemd-resolved's
/// `../run/systemd/resolve/stub-resolv.conf`).
fn write_in_run(path: &str, target: &Path, text: &str) -> Result<(), SetupError> {
    let fail = |source| SetupError::EtcFile {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(target, text).map_err(fail)?;
    info!(
        "wrote {}, where the read-only image's {path} points",
        target.display()
    );
    Ok(())
}

/// Where the symlink `link` points, as an absolute path: the deepest part
/// that exists resolved by the kernel (so a symlinked directory such as
/// `/var/run` counts as `/run`), the rest by name.
fn resolve_link(link: &Path) -> io::Result<std::path::PathBuf> {
    let target = link
        .parent()
        .unwrap_or(Path::new("/"))
        .join(std::fs::read_link(link)?);
    let mut existing = target.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(mut resolved) = std::fs::canonicalize(existing) {
            resolved.extend(rest.iter().rev());
            return Ok(lexically_clean(&resolved));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(lexically_clean(&target)),
        }
    }
}

/// `path` with `.` and `..` resolved by name, as a symlink's target reads.
fn lexically_clean(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut clean = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_are_cleaned_by_name() {
        let clean = |p: &str| lexically_clean(Path::new(p)).display().to_string();
        assert_eq!(
            clean("/etc/../run/systemd/resolve/stub-resolv.conf"),
            "/run/systemd/resolve/stub-resolv.conf"
        );
        assert_eq!(clean("/etc/./x/../../../run/a"), "/run/a");
        assert_eq!(clean("/etc/../../etc/hosts"), "/etc/hosts");
    }

    #[test]
    fn links_resolve_through_existing_directories() {
        let root = std::env::temp_dir().join(format!("vminit-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["etc", "run/systemd"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let root = std::fs::canonicalize(&root).unwrap();
        let link = |name: &str, to: &str| {
            let path = root.join("etc").join(name);
            std::os::unix::fs::symlink(to, &path).unwrap();
            path
        };
        std::os::unix::fs::symlink("run", root.join("var-run")).unwrap();
        // Relative, into a directory that does not exist yet.
        let stub = link("resolv.conf", "../run/systemd/resolve/stub-resolv.conf");
        assert_eq!(
            resolve_link(&stub).unwrap(),
            root.join("run/systemd/resolve/stub-resolv.conf")
        );
        // Through a symlinked directory, as /var/run -> /run.
        let via = link("hosts", "../var-run/hosts");
        assert_eq!(resolve_link(&via).unwrap(), root.join("run/hosts"));
        // Absolute.
        let absolute = root.join("run/abs").display().to_string();
        let abs = link("abs", &absolute);
        assert_eq!(resolve_link(&abs).unwrap(), root.join("run/abs"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
