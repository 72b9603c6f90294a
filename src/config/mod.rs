//! The configuration: its sources ([`cli`] options, the kernel
//! [`cmdline`], the [`metadata`] file), each giving a [`layer`], the rules
//! every input obeys ([`validate`], [`settings`] and the parsers of each
//! setting's values, [`value`] for those they share), the errors that name
//! source and rule ([`error`]), and here the effective configuration:
//! layers from each source merged by precedence, defaults < metadata file <
//! kernel command line < options.
//!
//! [`resolve`] is the whole loading procedure as a function of its inputs
//! (the options, the command line's bytes, a way to read files), so it is
//! tested without touching the machine.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

pub mod channels;
pub mod cli;
pub mod cmdline;
pub mod error;
pub mod layer;
pub mod limits;
pub mod metadata;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod settings;
pub mod signals;
pub mod user;
pub mod validate;
pub mod value;

use channels::VsockAddr;
use cli::{CmdlineArg, Options};
use error::{ConfigError, Problem, Source};
use limits::Limits;
use mounts::{RootSettings, Volumes};
use net::NetSettings;
use settings::{DEFAULT_GRACE, LogTarget, Settings, Shutdown, Verbosity};
use user::UserSpec;

pub use layer::{FileSpec, Layer, SetupStep};

/// The configuration vminit runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub argv: Vec<String>,
    pub setup: Vec<SetupStep>,
    pub files: Vec<FileSpec>,
    /// Variables the sources set, applied over the inherited environment.
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub metadata: Option<String>,
    pub grace: Duration,
    /// What a graceful stop (power button, SIGTERM to PID 1 in VM mode)
    /// sends the app first: the image's `StopSignal`, else SIGTERM.
    pub stop_signal: i32,
    pub verbosity: Verbosity,
    pub log_target: LogTarget,
    pub shutdown: Shutdown,
    pub hostname: Option<String>,
    pub user: Option<UserSpec>,
    pub no_new_privs: bool,
    pub delete_metadata: bool,
    /// Watch the power button (VM mode; on unless turned off).
    pub power_button: bool,
    pub rlimits: Limits,
    pub modules: Vec<String>,
    pub net: NetSettings,
    pub report_port: Option<String>,
    pub report_vsock: Option<VsockAddr>,
    pub root: RootSettings,
    pub mounts: Volumes,
    pub api: Option<Api>,
    /// `vminit.logs=capture`: the app's output goes through the API.
    pub logs_capture: bool,
}

/// A command line to read configuration from, and where it came from.
#[derive(Debug, Clone)]
pub struct CmdlineInput {
    pub source: Source,
    pub text: Vec<u8>,
}

/// Merges layers given from lowest to highest precedence.
pub fn merge(layers: &[&Layer]) -> Config {
    let mut argv = Vec::new();
    let mut env = BTreeMap::new();
    let mut workdir = None;
    let mut metadata = None;
    let mut setup = Vec::new();
    let mut files = Vec::new();
    let mut settings = Settings::default();
    for layer in layers {
        if let Some(steps) = &layer.setup {
            setup.clone_from(steps);
        }
        if let Some(given) = &layer.files {
            files.clone_from(given);
        }
        if let Some(words) = &layer.argv {
            argv.clone_from(words);
        }
        env.extend(layer.env.iter().cloned());
        workdir = layer.workdir.clone().or(workdir);
        metadata = layer.metadata.clone().or(metadata);
        settings.overlay(&layer.settings);
    }
    Config {
        argv,
        setup,
        files,
        env,
        workdir,
        metadata,
        grace: settings.grace.unwrap_or(DEFAULT_GRACE),
        stop_signal: settings.stop_signal.unwrap_or(libc::SIGTERM),
        verbosity: settings.verbosity.unwrap_or_default(),
        log_target: settings.log_target.unwrap_or_default(),
        shutdown: settings.shutdown.unwrap_or_default(),
        hostname: settings.hostname,
        user: settings.user,
        no_new_privs: settings.no_new_privs.unwrap_or(false),
        delete_metadata: settings.delete_metadata.unwrap_or(false),
        power_button: settings.power_button.unwrap_or(true),
        rlimits: settings.rlimits,
        modules: settings.modules.unwrap_or_default(),
        net: settings.net,
        report_port: settings.report_port,
        report_vsock: settings.report_vsock,
        root: settings.root,
        mounts: settings.mounts,
        api: settings.api_vsock.map(|port| Api {
            port,
            token: settings.api_token,
            insecure: settings.api_insecure.unwrap_or(false),
        }),
        logs_capture: settings.logs_capture.unwrap_or(false),
    }
}

/// The host API (`vminit.api`): where it listens and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub port: u32,
    pub token: Option<settings::Token>,
    /// Start without a token (`vminit.api.insecure`).
    pub insecure: bool,
}

/// Loads the whole configuration: parses the command line, reads the
/// metadata file it (or an option) names, merges, and checks that there is
/// a command. Returns every error found, not just the first.
pub fn resolve(
    options: &Layer,
    cmdline: Option<&CmdlineInput>,
    read_file: impl Fn(&Path) -> Result<Vec<u8>, Problem>,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let cmdline_layer = match cmdline {
        Some(input) => {
            let (layer, found) = cmdline::parse(&input.text, &input.source);
            errors.extend(found);
            layer
        }
        None => Layer::default(),
    };
    let metadata_path = options
        .metadata
        .as_ref()
        .or(cmdline_layer.metadata.as_ref());
    let metadata_layer = match metadata_path {
        Some(path) => read_metadata(path, read_file, &mut errors),
        None => Layer::default(),
    };
    let config = merge(&[&metadata_layer, &cmdline_layer, options]);
    if config.argv.is_empty() && errors.is_empty() {
        errors.push(ConfigError::new(&Source::Options, "", Problem::NoCommand));
    }
    let metadata_source = metadata_path.map(|path| Source::Metadata(path.into()));
    let sources = [
        (options, Some(Source::Options)),
        (&cmdline_layer, cmdline.map(|input| input.source.clone())),
        (&metadata_layer, metadata_source),
    ];
    errors.extend(whole_rules(&config, &sources, errors.is_empty()));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// The metadata file's layer; what is wrong with it goes to `errors`.
fn read_metadata(
    path: &str,
    read_file: impl Fn(&Path) -> Result<Vec<u8>, Problem>,
    errors: &mut Vec<ConfigError>,
) -> Layer {
    let source = Source::Metadata(path.into());
    match read_file(Path::new(path)) {
        Ok(contents) => {
            let (layer, found) = metadata::parse(&contents, &source);
            errors.extend(found);
            layer
        }
        Err(problem) => {
            errors.push(ConfigError::new(&source, "", problem));
            Layer::default()
        }
    }
}

/// Rules over the merged whole, each named after the highest source that
/// set the setting it reads (`sources`, highest first); the exec size only
/// when nothing else is wrong (`so_far_clean`).
fn whole_rules(
    config: &Config,
    sources: &[(&Layer, Option<Source>)],
    so_far_clean: bool,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let source_of = |set: fn(&Layer) -> bool| {
        sources
            .iter()
            .find(|(layer, _)| set(layer))
            .and_then(|(_, source)| source.clone())
            .unwrap_or(Source::Options)
    };
    if config.root.orphaned() {
        let source = source_of(|layer| layer.settings.root != RootSettings::default());
        errors.push(ConfigError::new(
            &source,
            "vminit.root",
            Problem::BadSetting("root.* settings need vminit.root: the root to mount"),
        ));
    }
    if let Some(volume) = config.mounts.orphaned_access() {
        let source = source_of(|layer| !layer.settings.mounts.is_empty());
        errors.push(ConfigError::new(
            &source,
            &format!("vminit.mount.{}", error::shorten(volume)),
            Problem::BadSetting(
                "an owner or mode needs the volume itself: mount.NAME=SOURCE,TARGET,TYPE",
            ),
        ));
    }
    if let Some(target) = mounts::shared_target(&config.mounts) {
        let source = source_of(|layer| !layer.settings.mounts.is_empty());
        errors.push(ConfigError::new(
            &source,
            &format!("vminit.mount (target {})", error::shorten(target)),
            Problem::BadSetting("two volumes on one target"),
        ));
    }
    if let Some(gateway) = config.net.unreachable_gateway() {
        let source = source_of(|layer| layer.settings.net.gateways.is_some());
        errors.push(ConfigError::new(
            &source,
            "vminit.net.gateway",
            Problem::UnreachableGateway(gateway),
        ));
    }
    if so_far_clean && errors.is_empty() {
        let env = config.env.iter().map(|(k, v)| (k.len(), v.len()));
        let size = validate::exec_size(&config.argv, env);
        // The stack limit the app will have: its own, or a booted init's.
        let stack = config
            .rlimits
            .get("stack")
            .map_or(Some(DEFAULT_STACK), |limit| limit.soft);
        let limit = validate::exec_limit(stack);
        if size > limit {
            let source = source_of(|layer| !layer.env.is_empty() || layer.argv.is_some());
            errors.push(ConfigError::new(
                &source,
                "",
                Problem::ExecTooLarge { size, limit },
            ));
        }
    }
    errors
}

/// The command line to read: `--cmdline`, `--cmdline-file`, else the kernel's in VM mode.
pub fn cmdline_input(
    options: &Options,
    kernel_line: Option<&[u8]>,
) -> Result<Option<CmdlineInput>, ConfigError> {
    Ok(match &options.cmdline {
        Some(CmdlineArg::Text(text)) => Some(CmdlineInput {
            source: Source::CmdlineOption,
            text: text.clone(),
        }),
        Some(CmdlineArg::File(path)) => {
            let source = Source::CmdlineFile(path.clone());
            let text = read_config_file(path).map_err(|p| ConfigError::new(&source, "", p))?;
            Some(CmdlineInput { source, text })
        }
        None => kernel_line.map(|text| CmdlineInput {
            source: Source::KernelCmdline,
            text: text.to_vec(),
        }),
    })
}

/// The configuration the options and the kernel command line give, read
/// leniently: used when the configuration as a whole is invalid, so that
/// a Firecracker VM (which ends only on a restart) still ends, and the
/// host channels still get the exit record.
pub fn lenient(options: Option<&Layer>, kernel_line: Option<&[u8]>) -> Config {
    let from_kernel = kernel_line
        .map(|line| cmdline::parse(line, &Source::KernelCmdline).0)
        .unwrap_or_default();
    let mut layers = vec![&from_kernel];
    layers.extend(options);
    merge(&layers)
}

/// The stack limit the kernel gives init (`_STK_LIM`, 8 MiB), and so the
/// app unless the configuration sets `rlimit.stack`.
const DEFAULT_STACK: u64 = 8 * 1024 * 1024;

/// Which file was read: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// Reads a configuration file (metadata, or a command line for `--check`):
/// a regular file only, refused without opening it otherwise, and refused
/// past [`metadata::MAX_BYTES`] without reading it all.
pub fn read_config_file(path: &Path) -> Result<Vec<u8>, Problem> {
    read_identified(path).map(|(contents, _)| contents)
}

/// [`read_config_file`], also saying which file it read (a path that is a
/// symbolic link may lead elsewhere later).
pub fn read_identified(path: &Path) -> Result<(Vec<u8>, FileId), Problem> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let unreadable = |error: io::Error| Problem::Unreadable(error.to_string());
    // The type first, without opening: opening a device can act (a
    // watchdog arms), and opening a FIFO that has no writer waits forever.
    regular(&std::fs::metadata(path).map_err(unreadable)?)?;
    // O_NONBLOCK: should the path have changed into a FIFO meanwhile.
    // O_NOCTTY: nor may a terminal become PID 1's controlling terminal.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(unreadable)?;
    let opened = file.metadata().map_err(unreadable)?;
    regular(&opened)?;
    let mut contents = Vec::new();
    file.take(metadata::MAX_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(unreadable)?;
    if contents.len() as u64 > metadata::MAX_BYTES {
        return Err(Problem::FileTooLarge);
    }
    let id = FileId {
        dev: opened.dev(),
        ino: opened.ino(),
    };
    Ok((contents, id))
}

/// Refuses anything but a regular file, saying what it is.
fn regular(metadata: &std::fs::Metadata) -> Result<(), Problem> {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(Problem::NotRegularFile(if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }))
}

impl Config {
    /// The configuration as `--check` prints it.
    pub fn to_json(&self) -> Value {
        // Inserted one by one: `collect` into a map sorts first (3 KB of code).
        let mut rlimits = serde_json::Map::new();
        for (name, limit) in self.rlimits.iter() {
            rlimits.insert(name.to_owned(), Value::String(limit.to_string()));
        }
        let setup: Vec<Value> = self
            .setup
            .iter()
            .map(|step| {
                let env: serde_json::Map<String, Value> = step
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                json!({"argv": step.argv, "user": step.user.as_ref().map(ToString::to_string), "env": env})
            })
            .collect();
        // Each file's size, never its content.
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|file| {
                json!({"path": file.path, "size": file.content.len(), "mode": format!("{:04o}", file.mode), "uid": file.uid, "gid": file.gid})
            })
            .collect();
        json!({
            "argv": self.argv,
            "setup": setup,
            "files": files,
            "env": self.env,
            "workdir": self.workdir,
            "metadata": self.metadata,
            "vminit": {
                "grace": self.grace.as_secs_f64(),
                "stop_signal": signals::name(self.stop_signal),
                "verbosity": self.verbosity.name(),
                "log_target": self.log_target.name(),
                "shutdown": self.shutdown.name(),
                "hostname": self.hostname,
                "user": self.user.as_ref().map(ToString::to_string),
                "no_new_privs": self.no_new_privs,
                "delete_metadata": self.delete_metadata,
                "power_button": self.power_button,
                "rlimit": rlimits,
                "modules": self.modules,
                "net": {
                    "interface": self.net.interface(),
                    "address": self.net.addresses.as_deref().map(net::join),
                    "gateway": self.net.gateways.as_deref().map(net::join),
                    "mtu": self.net.mtu,
                    "nameservers": self.net.nameservers.as_deref().map(net::join),
                    "hosts": self.net.hosts.as_ref().map(|hosts| {
                        hosts.iter().map(|(name, addr)| format!("{name}={addr}")).collect::<Vec<_>>().join(",")
                    }),
                },
                "report": {
                    "port": self.report_port,
                    "vsock": self.report_vsock.map(|a| a.to_string()),
                },
                // The token is never shown: only whether there is one.
                "api": self.api.as_ref().map(|api| json!({
                    "vsock": api.port,
                    "token": api.token.as_ref().map(|_| "<redacted>"),
                    "insecure": api.insecure,
                })),
                "logs": if self.logs_capture { "capture" } else { "console" },
                "root": {
                    "source": self.root.source,
                    "fstype": self.root.fstype,
                    "options": self.root.options,
                    "rw": self.root.rw.unwrap_or(false),
                    "overlay": self.root.overlay.as_ref().map(ToString::to_string),
                    "wait": self.root.wait.unwrap_or(mounts::DEFAULT_WAIT).as_secs_f64(),
                },
                "mounts": self.volumes_json(),
            },
        })
    }

    /// The volumes for `--check`, by name.
    fn volumes_json(&self) -> Value {
        let mut volumes = serde_json::Map::new();
        for (name, spec) in self.mounts.iter() {
            let access = self.mounts.access(name).cloned().unwrap_or_default();
            let volume = json!({
                "source": spec.source,
                "target": spec.target,
                "type": spec.fstype,
                "options": spec.options,
                "owner": access.owner.as_ref().map(ToString::to_string),
                "mode": access.mode.map(|m| format!("{m:04o}")),
            });
            volumes.insert(name.to_owned(), volume);
        }
        Value::Object(volumes)
    }

    /// The configuration for a debug log line: env values redacted.
    pub fn redacted(&self) -> String {
        let mut value = self.to_json();
        let redact = |env: Option<&mut Value>| {
            for (_, v) in env.and_then(Value::as_object_mut).into_iter().flatten() {
                *v = Value::String("<redacted>".into());
            }
        };
        redact(value.get_mut("env"));
        for step in value
            .get_mut("setup")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            redact(step.get_mut("env"));
        }
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmdline(text: &str) -> CmdlineInput {
        CmdlineInput {
            source: Source::KernelCmdline,
            text: text.as_bytes().to_vec(),
        }
    }

    fn files(path: &Path) -> Result<Vec<u8>, Problem> {
        match path.to_str() {
            Some("/m.json") => Ok(
                br#"{"argv": ["meta-app"], "env": {"A": "meta", "B": "meta"},
                "working_dir": "/meta", "vminit": {"grace": 7, "verbosity": "quiet"}}"#
                    .to_vec(),
            ),
            Some("/bad.json") => Ok(b"{\"env\": 1}".to_vec()),
            _ => Err(Problem::Unreadable(
                "No such file or directory (os error 2)".into(),
            )),
        }
    }

    #[test]
    fn precedence_is_metadata_then_cmdline_then_options() {
        let options = Layer {
            env: vec![("C".into(), "option".into())],
            settings: Settings {
                grace: Some(Duration::from_secs(1)),
                ..Settings::default()
            },
            ..Layer::default()
        };
        let line =
            cmdline("metadata=/m.json env.B=cmdline env.C=cmdline workdir=/cmd vminit.grace=3");
        let config = resolve(&options, Some(&line), files).unwrap();
        assert_eq!(config.argv, ["meta-app"]);
        assert_eq!(config.env["A"], "meta");
        assert_eq!(config.env["B"], "cmdline");
        assert_eq!(config.env["C"], "option");
        assert_eq!(config.workdir.as_deref(), Some("/cmd"));
        assert_eq!(config.grace, Duration::from_secs(1));
        assert_eq!(config.verbosity, Verbosity::Quiet);
        assert_eq!(config.metadata.as_deref(), Some("/m.json"));

        let with_argv = cmdline("metadata=/m.json -- cmd-app x");
        let config = resolve(&Layer::default(), Some(&with_argv), files).unwrap();
        assert_eq!(config.argv, ["cmd-app", "x"]);
    }

    #[test]
    fn defaults() {
        let options = Layer {
            argv: Some(vec!["true".into()]),
            ..Layer::default()
        };
        let config = resolve(&options, None, files).unwrap();
        assert_eq!(config.grace, DEFAULT_GRACE);
        assert_eq!(config.workdir, None);
        assert!(config.env.is_empty());
        assert_eq!(config.shutdown, Shutdown::Poweroff);
    }

    #[test]
    fn errors_from_every_source_are_collected() {
        let line = cmdline("env.1=x metadata=/bad.json");
        let errors = resolve(&Layer::default(), Some(&line), files).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[1].origin, Source::Metadata("/bad.json".into()));
        let line = cmdline("metadata=/missing.json -- true");
        let errors = resolve(&Layer::default(), Some(&line), files).unwrap_err();
        assert!(
            errors[0]
                .to_string()
                .starts_with("metadata file /missing.json: cannot be read")
        );
        let errors = resolve(&Layer::default(), None, files).unwrap_err();
        assert_eq!(errors[0].problem, Problem::NoCommand);
    }

    #[test]
    fn the_merged_whole_is_checked_like_a_boot() {
        // A gateway outside the address's prefix, or with no address.
        for line in [
            "vminit.net.address=10.0.2.15/24 vminit.net.gateway=10.0.3.1 -- true",
            "vminit.net.gateway=10.0.2.2 -- true",
        ] {
            let errors = resolve(&Layer::default(), Some(&cmdline(line)), files).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0]
                    .to_string()
                    .starts_with("kernel command line: vminit.net.gateway: 10.0."),
                "{}",
                errors[0]
            );
        }
        let ok = "vminit.net.address=10.0.2.15/24 vminit.net.gateway=10.0.2.2 -- true";
        assert!(resolve(&Layer::default(), Some(&cmdline(ok)), files).is_ok());
        // argv and env over a quarter of the stack limit (at least 128 KiB).
        let options = Layer {
            argv: Some(vec!["x".repeat(100_000), "y".repeat(100_000)]),
            ..Layer::default()
        };
        assert!(resolve(&options, None, files).is_ok(), "8 MiB stack: 2 MiB");
        let mut small_stack = options.clone();
        small_stack.settings.set("rlimit.stack", "65536").unwrap();
        let problems: Vec<Problem> = match resolve(&small_stack, None, files) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.problem).collect(),
        };
        assert_eq!(
            problems,
            [Problem::ExecTooLarge {
                // Each word and its NUL, the program once more, two pointers.
                size: 3 * 100_001 + 16,
                limit: 131_072
            }]
        );
    }

    #[test]
    fn redacted_hides_values_only() {
        let config = merge(&[&Layer {
            env: vec![("TOKEN".into(), "hunter2".into())],
            ..Layer::default()
        }]);
        let text = config.redacted();
        assert!(
            text.contains("TOKEN") && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn oversized_metadata_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("vminit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.json");
        std::fs::write(&path, vec![b' '; metadata::MAX_BYTES as usize + 10]).unwrap();
        assert_eq!(read_config_file(&path), Err(Problem::FileTooLarge));
        // Endless files: no length to state, and no hang.
        assert_eq!(
            read_config_file(Path::new("/dev/zero")),
            Err(Problem::NotRegularFile("a character device"))
        );
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            read_config_file(&fifo),
            Err(Problem::NotRegularFile("a FIFO"))
        );
        assert_eq!(
            read_config_file(&dir),
            Err(Problem::NotRegularFile("a directory"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
