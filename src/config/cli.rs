//! vminit's own options, parsed with `lexopt`.
//!
//! ```text
//! vminit [OPTIONS] [--] COMMAND [ARGS...]
//! vminit --check [--cmdline STRING | --cmdline-file PATH] [--metadata PATH] [OPTIONS] [-- COMMAND...]
//! ```
//!
//! The first word that is not an option starts the command: everything from
//! there on belongs to the application, as with tini and dumb-init.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::config::error::{ConfigError, NameKind, Problem, Source};
use crate::config::layer::Layer;
use crate::config::settings::Verbosity;
use crate::config::validate;

/// The usage text for `--help`.
pub const USAGE: &str = "\
Usage: vminit [OPTIONS] [--] COMMAND [ARGS...]
       vminit --check [--cmdline STRING | --cmdline-file PATH] [--metadata PATH] [OPTIONS] [-- COMMAND...]

Runs COMMAND as the one application of a microVM or a container: forwards
signals to it, reaps every zombie, stops what is left when it ends, and exits
(or, as a VM's init, powers off) with its status.

Options:
  -e, --env KEY=VALUE       set a variable for the application (repeatable)
  -w, --workdir DIR         run the application in DIR (absolute, clean path)
      --metadata PATH       read configuration from this JSON file
      --grace SECONDS       time between the stop signal and SIGKILL (default 10)
      --stop-signal SIG     what a graceful stop sends the application first: the
                            power button, or SIGTERM to vminit as a VM's init
                            (default SIGTERM; e.g. SIGINT, QUIT, 3); Ctrl-Alt-Del
                            sends SIGINT
  -v, --verbose             log at debug level (same as --verbosity debug)
  -q, --quiet               log errors only (same as --verbosity quiet)
      --verbosity LEVEL     quiet, info or debug (default info)
      --log-target TARGET   console or kmsg (default console)
      --shutdown ACTION     poweroff or reboot, at the end of a VM (default poweroff)
  -u, --user USER[:GROUP]   run the application as this user (id or name from
                            the image's /etc/passwd), with its groups and HOME
      --rlimit NAME=SOFT[:HARD]
                            a resource limit for the application (repeatable),
                            e.g. nofile=1024:4096, core=0
      --no-new-privs        set PR_SET_NO_NEW_PRIVS for the application
      --hostname NAME       set the host name (VM mode)
      --mode MODE           auto, vm or container (default auto)
      --check               validate, print the configuration as JSON, exit
      --cmdline STRING      read this kernel command line instead of /proc/cmdline
      --cmdline-file PATH   read the kernel command line from PATH
  -h, --help                print this help
  -V, --version             print the version

VM-only settings, on the kernel command line or in the metadata file:
  vminit.modules=A,B        kernel modules to load (with their dependencies)
  vminit.net.interface, .address, .gateway, .mtu, .nameservers, .hosts
                            a static network for one interface (default eth0)
  vminit.report.port=NAME, vminit.report.vsock=CID:PORT
                            where else the exit record (JSON) goes
  vminit.root=SOURCE, .fstype, .options, .rw, .overlay=tmpfs[:SIZE]|DEVICE, .wait
                            switch from the initramfs to this root before the app
  vminit.mount.NAME=SOURCE,TARGET,TYPE[,OPTIONS]
                            a volume, mounted before the app (parents first)

Exit status: the application's; 128+N if a signal N killed it; 127 if the
command was not found, 126 if it could not be run; 2 for invalid configuration
or a failed set-up step.
";

/// Whether vminit runs as a VM's init or a container's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// VM when PID 1 of the initial PID namespace, container otherwise.
    #[default]
    Auto,
    Vm,
    Container,
}

/// A command line to read in place of the kernel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdlineArg {
    Text(Vec<u8>),
    File(PathBuf),
}

/// The parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub check: bool,
    pub cmdline: Option<CmdlineArg>,
    pub mode: Mode,
    pub help: bool,
    pub version: bool,
    /// The options' configuration: the highest-precedence layer.
    pub layer: Layer,
}

fn usage(message: impl Into<String>) -> ConfigError {
    ConfigError::new(&Source::Options, "", Problem::Usage(message.into()))
}

fn utf8(option: &str, value: OsString) -> Result<String, ConfigError> {
    value
        .into_string()
        .map_err(|_| ConfigError::new(&Source::Options, option, Problem::NotUtf8))
}

/// Options that set the `vminit.*` setting of the same meaning.
const SETTING_OPTIONS: &[(&str, &str)] = &[
    ("--grace", "grace"),
    ("--stop-signal", "stop_signal"),
    ("--verbosity", "verbosity"),
    ("--log-target", "log_target"),
    ("--shutdown", "shutdown"),
    ("--hostname", "hostname"),
    ("--user", "user"),
];

/// Parses vminit's arguments (without `argv[0]`).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, ConfigError> {
    let mut options = Options::default();
    let mut parser = lexopt::Parser::from_args(args);
    let checked = |option: &str, result: Result<(), Problem>| {
        result.map_err(|problem| ConfigError::new(&Source::Options, option, problem))
    };
    loop {
        let arg = parser.next().map_err(|e| usage(lexopt_message(&e)))?;
        let Some(arg) = arg else { break };
        // The options that are one `vminit.*` setting, parsed by its parser.
        let setting = match &arg {
            Short('u') => Some(("--user", "user")),
            Long(name) => SETTING_OPTIONS
                .iter()
                .find(|(option, _)| option.strip_prefix("--") == Some(*name))
                .copied(),
            _ => None,
        };
        if let Some((option, name)) = setting {
            let text = string_value(&mut parser, option)?;
            checked(option, options.layer.settings.set(name, &text))?;
            continue;
        }
        match arg {
            Short('e') | Long("env") => {
                let pair = string_value(&mut parser, "--env")?;
                options.layer.env.push(env_option(&pair)?);
            }
            Short('w') | Long("workdir") => {
                let dir = string_value(&mut parser, "--workdir")?;
                checked("--workdir", validate::clean_absolute_path(&dir))?;
                options.layer.workdir = Some(dir);
            }
            Long("metadata") => {
                let path = string_value(&mut parser, "--metadata")?;
                checked("--metadata", validate::clean_absolute_path(&path))?;
                options.layer.metadata = Some(path);
            }
            Short('v') | Long("verbose") => {
                options.layer.settings.verbosity = Some(Verbosity::Debug)
            }
            Short('q') | Long("quiet") => options.layer.settings.verbosity = Some(Verbosity::Quiet),
            Long("no-new-privs") => options.layer.settings.no_new_privs = Some(true),
            Long("rlimit") => {
                let text = string_value(&mut parser, "--rlimit")?;
                rlimit_option(&text, &mut options.layer.settings)?;
            }
            Long("mode") => options.mode = mode_option(&string_value(&mut parser, "--mode")?)?,
            Long("check") => options.check = true,
            Long("cmdline") => {
                let raw = parser
                    .value()
                    .map_err(|_| usage("--cmdline needs a value"))?;
                set_cmdline(&mut options, CmdlineArg::Text(raw.into_encoded_bytes()))?;
            }
            Long("cmdline-file") => {
                let raw = parser
                    .value()
                    .map_err(|_| usage("--cmdline-file needs a value"))?;
                set_cmdline(&mut options, CmdlineArg::File(raw.into()))?;
            }
            Short('h') | Long("help") => options.help = true,
            Short('V') | Long("version") => options.version = true,
            Value(program) => options.layer.argv = Some(command_option(program, &mut parser)?),
            other => {
                return Err(usage(format!(
                    "{} is not an option of vminit",
                    describe(&other)
                )));
            }
        }
    }
    Ok(options)
}

/// The command, `program` and every word after it, checked.
fn command_option(
    program: OsString,
    parser: &mut lexopt::Parser,
) -> Result<Vec<String>, ConfigError> {
    let mut argv = vec![utf8("the command", program)?];
    for word in parser.raw_args().map_err(|e| usage(lexopt_message(&e)))? {
        argv.push(utf8("the command's arguments", word)?);
    }
    for (index, word) in argv.iter().enumerate() {
        validate::argv_word(index, word)
            .map_err(|problem| ConfigError::new(&Source::Options, "the command", problem))?;
    }
    Ok(argv)
}

/// `--env KEY=VALUE`, checked; no value ever shown.
fn env_option(pair: &str) -> Result<(String, String), ConfigError> {
    // `TOKEN:hunter2=` (a typo for `=`): never show past the ':'.
    let name = pair.split_once('=').map_or(pair, |(key, _)| key);
    name_of("--env", name, NameKind::Variable)?;
    // A word without '=' may be a value alone: not shown either.
    let Some((key, val)) = pair.split_once('=') else {
        return Err(ConfigError::new(
            &Source::Options,
            "--env",
            Problem::MissingValue("KEY".into()),
        ));
    };
    validate::env_key(key)
        .and_then(|()| validate::env_value(key, val))
        .map_err(|problem| ConfigError::new(&Source::Options, &format!("--env {key}"), problem))?;
    Ok((key.to_owned(), val.to_owned()))
}

/// `--rlimit NAME=SOFT[:HARD]`, as `vminit.rlimit.NAME`.
fn rlimit_option(
    text: &str,
    settings: &mut crate::config::settings::Settings,
) -> Result<(), ConfigError> {
    let Some((name, limit)) = text.split_once('=') else {
        return Err(ConfigError::new(
            &Source::Options,
            "--rlimit",
            Problem::MissingValue("NAME".into()),
        ));
    };
    name_of("--rlimit", name, NameKind::Setting)?;
    settings
        .set(&format!("rlimit.{name}"), limit)
        .map_err(|problem| ConfigError::new(&Source::Options, &format!("--rlimit {name}"), problem))
}

/// `--mode auto|vm|container`.
fn mode_option(text: &str) -> Result<Mode, ConfigError> {
    match text {
        "auto" => Ok(Mode::Auto),
        "vm" => Ok(Mode::Vm),
        "container" => Ok(Mode::Container),
        _ => Err(ConfigError::new(
            &Source::Options,
            "--mode",
            Problem::BadSetting("must be auto, vm or container"),
        )),
    }
}

/// The options that take a value as the next word.
const TAKES_VALUE: &[&str] = &[
    "-e",
    "--env",
    "-w",
    "--workdir",
    "--metadata",
    "--grace",
    "--stop-signal",
    "--verbosity",
    "--log-target",
    "--shutdown",
    "-u",
    "--user",
    "--rlimit",
    "--hostname",
    "--mode",
    "--cmdline",
    "--cmdline-file",
];

/// The `--mode` the words ask for, read without parsing the rest: when
/// the options are invalid, `--mode vm` still decides how vminit ends.
/// Stops where the command starts (the first word that is neither an
/// option nor an option's value), so the app's own `--mode` is not read.
pub fn requested_mode(words: &[OsString]) -> Mode {
    let mut mode = Mode::Auto;
    let mut words = words.iter().map(|w| w.as_encoded_bytes());
    while let Some(word) = words.next() {
        let value = match word {
            b"--" => break,
            b"--mode" => words.next(),
            _ if word.starts_with(b"--mode=") => word.strip_prefix(b"--mode="),
            _ if TAKES_VALUE.iter().any(|o| o.as_bytes() == word) => {
                words.next();
                None
            }
            _ if word.starts_with(b"-") => None,
            _ => break,
        };
        mode = match value {
            Some(b"vm") => Mode::Vm,
            Some(b"container") => Mode::Container,
            Some(_) => Mode::Auto,
            None => mode,
        };
    }
    mode
}

/// Checks the name an option's `NAME=VALUE` starts with; the error shows
/// it only up to a byte that cannot be in one (see `validate::name_in_word`).
fn name_of(option: &str, name: &str, kind: NameKind) -> Result<(), ConfigError> {
    validate::name_in_word(name.as_bytes(), 0, kind).map_err(|(shown, problem)| {
        ConfigError::new(&Source::Options, &format!("{option} {shown}"), problem)
    })
}

fn string_value(parser: &mut lexopt::Parser, name: &str) -> Result<String, ConfigError> {
    let raw = parser
        .value()
        .map_err(|_| usage(format!("{name} needs a value")))?;
    utf8(name, raw)
}

fn set_cmdline(options: &mut Options, arg: CmdlineArg) -> Result<(), ConfigError> {
    if options.cmdline.is_some() {
        return Err(usage("give --cmdline or --cmdline-file, once"));
    }
    options.cmdline = Some(arg);
    Ok(())
}

/// An option as a message names it: an unknown `--TOKEN:hunter2` is cut
/// before the first byte that cannot be in an option's name.
fn describe(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        Short(c) if c.is_ascii_alphanumeric() => format!("-{c}"),
        Short(_) => "an option letter that is not a letter or digit".into(),
        Long(name) => {
            let end =
                validate::foreign_byte(name.as_bytes(), 0, NameKind::Setting).unwrap_or(name.len());
            let cut = if end < name.len() { " (cut)" } else { "" };
            format!("--{}{cut}", &name[..end])
        }
        Value(_) => "a value".into(),
    }
}

/// lexopt's error as a message that never quotes a value (its own
/// messages do: `--check=VALUE` is shown whole).
fn lexopt_message(error: &lexopt::Error) -> String {
    match error {
        lexopt::Error::MissingValue {
            option: Some(option),
        } => format!("{option} needs a value"),
        lexopt::Error::UnexpectedValue { option, .. } => {
            format!("{option} does not take a value")
        }
        lexopt::Error::NonUnicodeValue(_) => "an argument is not valid UTF-8".into(),
        _ => "the arguments cannot be parsed".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse_words(words: &[&str]) -> Result<Options, ConfigError> {
        parse(words.iter().map(OsString::from))
    }

    #[test]
    fn command_after_options_is_the_applications() {
        let options = parse_words(&["-e", "A=1", "--grace", "2", "sh", "-c", "--grace"]).unwrap();
        assert_eq!(options.layer.argv.unwrap(), ["sh", "-c", "--grace"]);
        assert_eq!(options.layer.env, [("A".into(), "1".into())]);
        assert_eq!(options.layer.settings.grace, Some(Duration::from_secs(2)));
        let options = parse_words(&["--", "-v", "x"]).unwrap();
        assert_eq!(options.layer.argv.unwrap(), ["-v", "x"]);
        assert_eq!(options.layer.settings.verbosity, None);
    }

    #[test]
    fn identity_and_limit_options() {
        let options = parse_words(&[
            "-u",
            "app:video",
            "--rlimit",
            "nofile=10:20",
            "--no-new-privs",
            "--hostname",
            "h",
            "x",
        ])
        .unwrap();
        let settings = options.layer.settings;
        assert_eq!(settings.user.unwrap().to_string(), "app:video");
        assert_eq!(settings.rlimits["nofile"].to_string(), "10:20");
        assert_eq!(settings.no_new_privs, Some(true));
        assert_eq!(settings.hostname.as_deref(), Some("h"));
        let error = parse_words(&["--rlimit", "files=1", "x"]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("option: --rlimit files: is not a resource limit"),
            "{error}"
        );
        assert!(parse_words(&["--rlimit", "nofile", "x"]).is_err());
        assert!(parse_words(&["--user", "a b", "x"]).is_err());
    }

    #[test]
    fn the_mode_is_found_among_bad_options() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            requested_mode(&words(&["--mode", "vm", "--bogus"])),
            Mode::Vm
        );
        assert_eq!(requested_mode(&words(&["--bogus", "--mode=vm"])), Mode::Vm);
        assert_eq!(requested_mode(&words(&["--", "--mode", "vm"])), Mode::Auto);
        assert_eq!(requested_mode(&words(&["--mode"])), Mode::Auto);
        // The app's own options are not vminit's.
        assert_eq!(
            requested_mode(&words(&["--bogus", "-e", "A=1", "app", "--mode", "vm"])),
            Mode::Auto
        );
    }

    #[test]
    fn check_with_a_cmdline() {
        let options =
            parse_words(&["--check", "--cmdline", "env.A=1", "--metadata", "/m.json"]).unwrap();
        assert!(options.check);
        assert_eq!(options.cmdline, Some(CmdlineArg::Text(b"env.A=1".to_vec())));
        assert_eq!(options.layer.metadata.as_deref(), Some("/m.json"));
        assert!(parse_words(&["--check", "--cmdline", "x", "--cmdline-file", "/f"]).is_err());
    }

    #[test]
    fn bad_options_never_echo_env_values() {
        let error = parse_words(&["--env", "1A=secret", "true"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "option: --env 1A: is not a valid variable name: it must match [A-Za-z_][A-Za-z0-9_]*"
        );
        let error = parse_words(&["--env", "secret"]).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        for (words, shown) in [
            (
                &["--env", "TOKEN:aHVudGVyMg==secret="][..],
                "option: --env TOKEN: the byte ':' at position 5",
            ),
            (
                &["--env", "TOKEN secret=x"],
                "option: --env TOKEN: the byte ' ' at position 5",
            ),
            (
                &["--rlimit", "no file:secret=1"],
                "option: --rlimit no: the byte ' '",
            ),
            (
                &["--TOKEN:secret"],
                "option: --TOKEN (cut) is not an option of vminit",
            ),
            (&["--check=secret"], "option: --check does not take a value"),
        ] {
            let error = parse_words(words).unwrap_err().to_string();
            assert!(error.starts_with(shown), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
        let error = parse_words(&["--bogus"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "option: --bogus is not an option of vminit"
        );
        assert!(parse_words(&["--grace"]).is_err());
        assert!(parse_words(&["--workdir", "rel"]).is_err());
        assert!(parse_words(&["--mode", "vmm"]).is_err());
    }
}
