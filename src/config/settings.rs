//! vminit's own settings: the `vminit.NAME=VALUE` kernel command-line keys,
//! the `"vminit"` object of the metadata file, and the matching options.
//!
//! One parser per setting, shared by every source, so that `vminit.grace=5`,
//! `{"vminit": {"grace": 5}}` and `--grace 5` mean exactly the same thing.

use std::time::Duration;

use crate::config::channels::{self, VsockAddr};
use crate::config::error::Problem;
use crate::config::limits::{self, Limits};
use crate::config::modules;
use crate::config::mounts::{self, RootSettings, Volumes};
use crate::config::net::NetSettings;
use crate::config::signals;
use crate::config::user::{self, UserSpec};
use crate::config::validate;
use crate::config::value::{parse_flag, parse_grace};

/// Every setting name, as written after `vminit.` or inside `"vminit"`.
pub const NAMES: &[&str] = &[
    "grace",
    "stop_signal",
    "verbosity",
    "log_target",
    "shutdown",
    "hostname",
    "user",
    "no_new_privs",
    "delete_metadata",
    "power_button",
    "rlimit.NAME",
    "modules",
    "net.interface",
    "net.address",
    "net.gateway",
    "net.mtu",
    "net.nameservers",
    "net.hosts",
    "report.port",
    "report.vsock",
    "root",
    "root.fstype",
    "root.options",
    "root.rw",
    "root.overlay",
    "root.wait",
    "mount.NAME",
    "mount.NAME.owner",
    "mount.NAME.mode",
    "api",
    "api.vsock",
    "api.token",
    "api.insecure",
    "logs",
];

/// The API's bearer token: never shown, by `Debug` or in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// `vsock:PORT` (`vminit.api`), or the port alone (`"api": {"vsock": PORT}`).
fn parse_api_port(value: &str) -> Result<u32, Problem> {
    const RULE: Problem =
        Problem::BadSetting("must be vsock:PORT, PORT from 1 to 4294967294 (e.g. vsock:10000)");
    let port = value.strip_prefix("vsock:").unwrap_or(value);
    port.parse::<u32>()
        .ok()
        .filter(|port| (1..u32::MAX).contains(port))
        .ok_or(RULE)
}

/// Default time between SIGTERM and SIGKILL: `docker stop`'s default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How much vminit says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verbosity {
    /// Errors and the final exit line only.
    Quiet,
    /// Also warnings and the main steps.
    #[default]
    Info,
    /// Also the resolved configuration (values redacted) and timings.
    Debug,
}

/// Where vminit's log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogTarget {
    /// Standard error: the console in a VM, the terminal in a container.
    #[default]
    Console,
    /// The kernel log, `/dev/kmsg` (read with `dmesg`).
    Kmsg,
}

/// What vminit asks the kernel for at the end of a VM's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shutdown {
    /// `reboot(RB_POWER_OFF)`: ends QEMU and cloud-hypervisor.
    #[default]
    Poweroff,
    /// `reboot(RB_AUTOBOOT)`: what ends a Firecracker VM on x86.
    Reboot,
}

/// Settings as one source gave them; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub grace: Option<Duration>,
    /// What a graceful stop sends the app first (default SIGTERM).
    pub stop_signal: Option<i32>,
    pub verbosity: Option<Verbosity>,
    pub log_target: Option<LogTarget>,
    pub shutdown: Option<Shutdown>,
    pub hostname: Option<String>,
    pub user: Option<UserSpec>,
    pub no_new_privs: Option<bool>,
    /// Delete the metadata file once read, so the app cannot read back
    /// secrets it was not handed.
    pub delete_metadata: Option<bool>,
    /// Watch the power button (VM mode): a press stops the app as SIGTERM does.
    pub power_button: Option<bool>,
    /// Per resource; a higher layer replaces a resource's limit whole.
    pub rlimits: Limits,
    /// Kernel modules to load before the app starts (VM mode).
    pub modules: Option<Vec<String>>,
    pub net: NetSettings,
    /// The virtio-serial port that receives the exit record.
    pub report_port: Option<String>,
    /// The vsock address that receives the exit record.
    pub report_vsock: Option<VsockAddr>,
    /// The root to switch to, and its overlay.
    pub root: RootSettings,
    /// Volumes by name; a higher layer replaces a volume whole.
    pub mounts: Volumes,
    /// The vsock port the host API listens on (`vminit.api=vsock:PORT`).
    pub api_vsock: Option<u32>,
    /// Its bearer token: from the metadata file only.
    pub api_token: Option<Token>,
    /// Start the API without a token.
    pub api_insecure: Option<bool>,
    /// `vminit.logs=capture`: the app's output through pipes, into a ring
    /// the API serves (`true`), or straight to the console (`false`).
    pub logs_capture: Option<bool>,
}

impl Settings {
    /// Parses and stores `name=value`; `name` is one of [`NAMES`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        match name {
            "grace" => self.grace = Some(parse_grace(value)?),
            "stop_signal" => self.stop_signal = Some(signals::parse(value)?),
            "verbosity" => self.verbosity = Some(parse_verbosity(value)?),
            "log_target" => {
                self.log_target = Some(match value {
                    "console" => LogTarget::Console,
                    "kmsg" => LogTarget::Kmsg,
                    _ => return Err(Problem::BadSetting("must be console or kmsg")),
                })
            }
            "shutdown" => {
                self.shutdown = Some(match value {
                    "poweroff" => Shutdown::Poweroff,
                    "reboot" => Shutdown::Reboot,
                    _ => return Err(Problem::BadSetting("must be poweroff or reboot")),
                })
            }
            "hostname" => self.hostname = Some(validate::hostname(value)?),
            "user" => self.user = Some(user::parse_user(value)?),
            "no_new_privs" => self.no_new_privs = Some(parse_flag(value)?),
            "delete_metadata" => self.delete_metadata = Some(parse_flag(value)?),
            "power_button" => self.power_button = Some(parse_flag(value)?),
            "modules" => self.modules = Some(modules::parse_list(value)?),
            "root" => self.root.set("", value)?,
            "report.port" => self.report_port = Some(channels::parse_port_name(value)?),
            "report.vsock" => self.report_vsock = Some(channels::parse_vsock(value)?),
            "api" | "api.vsock" => self.api_vsock = Some(parse_api_port(value)?),
            "api.insecure" => self.api_insecure = Some(parse_flag(value)?),
            "logs" => {
                self.logs_capture = Some(match value {
                    "console" => false,
                    "capture" => true,
                    _ => return Err(Problem::BadSetting("must be console or capture")),
                })
            }
            "api.token" => {
                return Err(Problem::BadSetting(
                    "is read from the metadata file only: every process can read the kernel command line",
                ));
            }
            _ => {
                if let Some(resource) = name.strip_prefix("rlimit.") {
                    let resource = limits::resource(resource)?;
                    self.rlimits.insert(resource, limits::parse_limit(value)?);
                } else if let Some(member) = name.strip_prefix("root.") {
                    self.root.set(member, value)?;
                } else if let Some(volume) = name.strip_prefix("mount.") {
                    match volume.split_once('.') {
                        Some((volume, member)) => {
                            mounts::parse_mount_name(volume)?;
                            self.mounts.set_access(volume, member, value)?;
                        }
                        None => {
                            mounts::parse_mount_name(volume)?;
                            self.mounts.set(volume, mounts::parse_mount(value)?);
                        }
                    }
                } else if let Some(net) = name.strip_prefix("net.") {
                    self.net.set(net, value)?;
                } else {
                    return Err(Problem::UnknownSetting(NAMES));
                }
            }
        }
        Ok(())
    }

    /// Overlays `other` (higher precedence) on `self`.
    pub fn overlay(&mut self, other: &Settings) {
        self.grace = other.grace.or(self.grace);
        self.stop_signal = other.stop_signal.or(self.stop_signal);
        self.verbosity = other.verbosity.or(self.verbosity);
        self.log_target = other.log_target.or(self.log_target);
        self.shutdown = other.shutdown.or(self.shutdown);
        self.hostname = other.hostname.clone().or(self.hostname.take());
        self.user = other.user.clone().or(self.user.take());
        self.no_new_privs = other.no_new_privs.or(self.no_new_privs);
        self.delete_metadata = other.delete_metadata.or(self.delete_metadata);
        self.power_button = other.power_button.or(self.power_button);
        self.rlimits.overlay(&other.rlimits);
        self.modules = other.modules.clone().or(self.modules.take());
        self.net.overlay(&other.net);
        self.report_port = other.report_port.clone().or(self.report_port.take());
        self.report_vsock = other.report_vsock.or(self.report_vsock);
        self.root.overlay(&other.root);
        self.mounts.overlay(&other.mounts);
        self.api_vsock = other.api_vsock.or(self.api_vsock);
        self.api_token = other.api_token.clone().or(self.api_token.take());
        self.api_insecure = other.api_insecure.or(self.api_insecure);
        self.logs_capture = other.logs_capture.or(self.logs_capture);
    }
}

/// Parses `quiet`, `info` or `debug`.
pub fn parse_verbosity(value: &str) -> Result<Verbosity, Problem> {
    match value {
        "quiet" => Ok(Verbosity::Quiet),
        "info" => Ok(Verbosity::Info),
        "debug" => Ok(Verbosity::Debug),
        _ => Err(Problem::BadSetting("must be quiet, info or debug")),
    }
}

impl Verbosity {
    pub fn name(self) -> &'static str {
        match self {
            Verbosity::Quiet => "quiet",
            Verbosity::Info => "info",
            Verbosity::Debug => "debug",
        }
    }
}

impl LogTarget {
    pub fn name(self) -> &'static str {
        match self {
            LogTarget::Console => "console",
            LogTarget::Kmsg => "kmsg",
        }
    }
}

impl Shutdown {
    pub fn name(self) -> &'static str {
        match self {
            Shutdown::Poweroff => "poweroff",
            Shutdown::Reboot => "reboot",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::limits::Limit;

    #[test]
    fn identity_and_limit_settings() {
        let mut low = Settings::default();
        low.set("hostname", "web-1.example").unwrap();
        low.set("user", "app:video").unwrap();
        low.set("no_new_privs", "true").unwrap();
        low.set("rlimit.nofile", "1024:4096").unwrap();
        low.set("rlimit.core", "0").unwrap();
        let mut high = Settings::default();
        high.set("rlimit.nofile", "10").unwrap();
        high.set("no_new_privs", "0").unwrap();
        low.overlay(&high);
        assert_eq!(low.hostname.as_deref(), Some("web-1.example"));
        assert_eq!(low.no_new_privs, Some(false));
        assert_eq!(
            low.rlimits["nofile"],
            Limit {
                soft: Some(10),
                hard: Some(10)
            }
        );
        assert_eq!(
            low.rlimits["core"],
            Limit {
                soft: Some(0),
                hard: Some(0)
            }
        );
        for bad in ["", "-a", "a-", "a..b", "a_b", &"a".repeat(65)] {
            assert!(validate::hostname(bad).is_err(), "{bad:?}");
        }
        assert!(low.set("no_new_privs", "maybe").is_err());
    }

    #[test]
    fn set_and_overlay() {
        let mut low = Settings::default();
        low.set("grace", "3").unwrap();
        low.set("shutdown", "reboot").unwrap();
        let mut high = Settings::default();
        high.set("grace", "1").unwrap();
        high.set("verbosity", "debug").unwrap();
        low.overlay(&high);
        assert_eq!(low.grace, Some(Duration::from_secs(1)));
        assert_eq!(low.shutdown, Some(Shutdown::Reboot));
        assert_eq!(low.verbosity, Some(Verbosity::Debug));
        assert_eq!(
            low.set("colour", "red"),
            Err(Problem::UnknownSetting(NAMES))
        );
        assert_eq!(low.set("rlimit", "1"), Err(Problem::UnknownSetting(NAMES)));
        assert!(low.set("rlimit.files", "1").is_err());
        assert!(low.set("log_target", "file").is_err());
    }
}
