//! Configuration errors: which source, which key or field, which rule.
//!
//! Every message is one line that names its source and the rule broken, and
//! none ever contains an environment variable's value (values are often
//! secrets). Keys and paths are shown, shortened when absurdly long.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Where a piece of configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// vminit's own command-line options.
    Options,
    /// The kernel command line, `/proc/cmdline`.
    KernelCmdline,
    /// A command line given with `--cmdline`.
    CmdlineOption,
    /// A command line read from the file given with `--cmdline-file`.
    CmdlineFile(PathBuf),
    /// The JSON metadata file.
    Metadata(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Options => f.write_str("option"),
            Source::KernelCmdline => f.write_str("kernel command line"),
            Source::CmdlineOption => f.write_str("--cmdline"),
            Source::CmdlineFile(path) => {
                write!(f, "cmdline file {}", escape(&path.to_string_lossy()))
            }
            Source::Metadata(path) => {
                write!(f, "metadata file {}", escape(&path.to_string_lossy()))
            }
        }
    }
}

/// The rule an input broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("is not a valid variable name: it must match [A-Za-z_][A-Za-z0-9_]*")]
    EnvKeyInvalid,
    #[error("name is {0} bytes long, more than the 256 allowed")]
    EnvKeyTooLong(usize),
    #[error(
        "KEY=VALUE is {0} bytes with its NUL, more than the 131072 the kernel passes to a program (MAX_ARG_STRLEN)"
    )]
    EnvTooLong(usize),
    #[error(
        "the byte {} at position {position} cannot be in {}; the rest is not shown, as it may be a value",
        show_byte(*.byte),
        .kind.description()
    )]
    ForeignByte {
        byte: u8,
        position: usize,
        kind: NameKind,
    },
    #[error("value contains a NUL byte")]
    EnvValueNul,
    #[error("must be an absolute path")]
    PathNotAbsolute,
    #[error("must be a clean path: no trailing '/'")]
    PathTrailingSlash,
    #[error("must be a clean path: no '//'")]
    PathDoubleSlash,
    #[error("must be a clean path: no '{0}' component")]
    PathDotComponent(String),
    #[error("path is {0} bytes long, more than the 4096 allowed")]
    PathTooLong(usize),
    #[error("path contains a NUL byte")]
    PathNul,
    #[error("argument {0} contains a NUL byte")]
    ArgNul(usize),
    #[error(
        "argument {0} is {1} bytes with its NUL, more than the 131072 the kernel passes to a program (MAX_ARG_STRLEN)"
    )]
    ArgTooLong(usize, usize),
    #[error("the program name is empty")]
    ProgramEmpty,
    #[error("needs a value, as in {}=VALUE", shorten(.0))]
    MissingValue(String),
    /// With the names that are known.
    #[error("is not a vminit setting (known: {})", .0.join(", "))]
    UnknownSetting(&'static [&'static str]),
    #[error("{0}")]
    BadSetting(&'static str),
    /// With the resources that are known.
    #[error("is not a resource limit (known: {})", .0.join(", "))]
    UnknownResource(&'static [&'static str]),
    #[error("is not valid UTF-8")]
    NotUtf8,
    #[error("is not valid JSON: {0}")]
    Json(String),
    #[error("is not a known field (known: {0})")]
    UnknownField(&'static str),
    #[error("must be {0}")]
    WrongType(&'static str),
    #[error("is longer than 1 MiB, the most a configuration file may hold")]
    FileTooLarge,
    #[error("is {0}, not a regular file")]
    NotRegularFile(&'static str),
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("no command given: pass one after '--', or set argv in the metadata file")]
    NoCommand,
    #[error(
        "gives init {0} arguments (the bare words without a dot that the kernel does not know, and every word after '--'), more than the 32 the kernel accepts (more panics it: \"Too many boot init vars\"): put argv in the metadata file"
    )]
    TooManyInitArgs(usize),
    #[error(
        "gives init {0} environment variables (one per distinct key=value word without a dot that the kernel does not know, workdir= and metadata= included), more than the 31 the kernel accepts besides HOME and TERM (more panics it: \"Too many boot env vars\"): use env.KEY=VALUE or the metadata file"
    )]
    TooManyInitEnvs(usize),
    #[error(
        "is {0} bytes long, more than the 2047 an x86 kernel keeps (it drops the rest silently): use the metadata file"
    )]
    CmdlineTooLong(usize),
    #[error("{}", escape(.0))]
    Usage(String),
    #[error("{0} is outside every prefix in net.address: the kernel cannot route through it")]
    UnreachableGateway(std::net::IpAddr),
    #[error(
        "argv and env take {size} bytes as the kernel counts them (strings, NULs, pointers), more than the {limit} it allows a program with this stack limit (a quarter of rlimit.stack, at least 128 KiB, at most 6 MiB)"
    )]
    ExecTooLarge { size: usize, limit: usize },
}

/// One invalid input: its source, the key or field it sat in, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}: {place}{sep}{problem}", sep = if place.is_empty() { "" } else { ": " })]
pub struct ConfigError {
    pub origin: Source,
    pub place: String,
    pub problem: Problem,
}

impl ConfigError {
    /// Builds an error; `place` is shortened so that a megabyte-long key
    /// cannot flood the console.
    pub fn new(source: &Source, place: &str, problem: Problem) -> Self {
        ConfigError {
            origin: source.clone(),
            place: shorten(place),
            problem,
        }
    }
}

/// Writes control characters as escapes (`\n`, `\x1b`), so that every
/// message stays on one line and cannot drive the terminal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// What a name written in a word may hold, for [`foreign_byte`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// An environment variable's name: `[A-Za-z0-9_]`.
    Variable,
    /// A vminit setting or a metadata field: also `.` and `-`, which
    /// typos of real names hold (`log-target`, `net.mtu`).
    Setting,
}

impl NameKind {
    /// Whether `byte` may be in a name of this kind.
    pub fn allows(self, byte: u8) -> bool {
        byte.is_ascii_alphanumeric()
            || byte == b'_'
            || (self == NameKind::Setting && matches!(byte, b'.' | b'-'))
    }

    /// The name in a message: "a variable name".
    pub fn description(self) -> &'static str {
        match self {
            NameKind::Variable => "a variable name ([A-Za-z0-9_])",
            NameKind::Setting => "a setting or field name ([A-Za-z0-9_.-])",
        }
    }
}

/// A byte as a message shows it: `':'`, `' '`, or `0xff` when unprintable.
fn show_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() || byte == b' ' {
        format!("'{}'", char::from(byte))
    } else {
        format!("0x{byte:02x}")
    }
}

/// Escapes control characters and cuts `text` to at most 64 characters.
pub fn shorten(text: &str) -> String {
    shorten_to(text, 64)
}

/// Escapes control characters and cuts `text` to at most `max` characters.
pub fn shorten_to(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    let mut out = escape(&cut);
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// A word from the configuration in a log line: quoted, escaped, and cut
/// (a megabyte-long argv[0] would flood the console).
pub fn quote(word: &str) -> String {
    format!("\"{}\"", shorten_to(word, 200))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_source_place_and_rule() {
        let error = ConfigError::new(&Source::KernelCmdline, "env.1A", Problem::EnvKeyInvalid);
        assert_eq!(
            error.to_string(),
            "kernel command line: env.1A: is not a valid variable name: it must match [A-Za-z_][A-Za-z0-9_]*"
        );
        let error = ConfigError::new(&Source::Metadata("/m.json".into()), "", Problem::NoCommand);
        assert!(
            error
                .to_string()
                .starts_with("metadata file /m.json: no command given")
        );
    }

    #[test]
    fn long_and_odd_places_are_shortened() {
        let place = shorten(&"K".repeat(1000));
        assert_eq!(place.chars().count(), 65);
        assert_eq!(shorten("a\nb"), "a\\nb");
        assert_eq!(escape("é\u{1b}[2J\u{85}"), "é\\x1b[2J\\x85");
        let error = ConfigError::new(
            &Source::KernelCmdline,
            "env.A\n",
            Problem::MissingValue("env.A\n".into()),
        );
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}
