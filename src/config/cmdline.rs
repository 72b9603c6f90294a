//! The kernel command line: a tokenizer that splits it exactly as the kernel
//! does, and the parser that turns its words into a configuration [`Layer`].
//!
//! The tokenizer follows `next_arg()` in the kernel's `lib/cmdline.c` and the
//! `--` rule of `parse_args()` in `kernel/params.c`: whitespace separates
//! words; a double quote at the start of a word, or right after its first
//! `=`, hides whitespace until the next quote and is removed together with a
//! quote ending the word; a value may contain `=`. The first standalone `--`
//! ends the kernel's parameters: what follows is init's argv, up to a second
//! standalone `--`, after which the kernel drops everything.
//! See <https://docs.kernel.org/admin-guide/kernel-parameters.html>.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use crate::config::error::{ConfigError, NameKind, Problem, Source};
use crate::config::layer::Layer;
use crate::config::validate;

/// The most words the kernel gives init after `argv[0]` (`MAX_INIT_ARGS`
/// in `init/main.c`, `CONFIG_INIT_ENV_ARG_LIMIT`, 32 on x86 and arm64):
/// the bare words it does not know and every word after `--`, together.
/// One more panics it: "Too many boot init vars".
pub const MAX_INIT_ARGS: usize = 32;
/// The most variables the kernel gives init besides `HOME` and `TERM`
/// (`MAX_INIT_ENVS` is 32 slots and the check lets one more in): one per
/// distinct name among the `key=value` words it does not know. One more
/// panics it: "Too many boot env vars".
pub const MAX_INIT_ENVS: usize = 31;
/// The kernel's own parameters without a dot that platforms and
/// distributions put on the line (Firecracker's, cloud-hypervisor's and
/// QEMU's defaults, root and console set-up), in the form the kernel
/// takes them: `name=` only with a value (a `__setup("name=")`, a core
/// parameter), a bare `name` only without one (a flag `__setup`), `name~`
/// either way (an `early_param`). The kernel consumes these; they never
/// reach init. Only parameters every kernel configuration has are listed
/// (no `selinux=`, `ip=`, `initrd=`: without their option those reach
/// init), plus the architecture's own for the one vminit is built for. Any
/// other word without a dot is counted as the kernel counts an unknown
/// one, so `--check` errs on the side of refusing.
const KERNEL_PARAMS: &[&str] = &[
    "console=",
    "debug~",
    "ignore_loglevel~",
    "init=",
    "keep_bootcon~",
    "log_buf_len~",
    "loglevel~",
    "maxcpus~",
    "mem~",
    "mitigations~",
    "nosmp~",
    "nr_cpus~",
    "panic=",
    "panic_on_oops=",
    "quiet~",
    "rdinit=",
    "reboot=",
    "ro",
    "root=",
    "rootdelay=",
    "rootflags=",
    "rootfstype=",
    "rootwait",
    "rw",
    "swiotlb~",
];
#[cfg(target_arch = "x86_64")]
const ARCH_PARAMS: &[&str] = &[
    "acpi~",
    "earlyprintk~",
    "lapic~",
    "memmap~",
    "no_timer_check",
    "noapic~",
    "nolapic~",
    "nopti~",
    "pci=",
    "pti~",
    "tsc=",
    "tsc_early_khz~",
];
#[cfg(not(target_arch = "x86_64"))]
const ARCH_PARAMS: &[&str] = &["earlycon~"];

/// x86's `COMMAND_LINE_SIZE` less the NUL: the kernel silently cuts the rest.
pub const MAX_CMDLINE_BYTES: usize = 2047;

/// Whether the kernel consumes `param` itself (see [`KERNEL_PARAMS`]).
fn kernel_consumes(param: &Param<'_>) -> bool {
    KERNEL_PARAMS.iter().chain(ARCH_PARAMS).any(|known| {
        let (name, form) = match known.as_bytes().split_last() {
            Some((b'=', name)) => (name, Some(true)),
            Some((b'~', name)) => (name, None),
            _ => (known.as_bytes(), Some(false)),
        };
        name == param.name && form.is_none_or(|with_value| with_value == param.value.is_some())
    })
}

/// One kernel parameter: `name` or `name=value`, quotes removed as the kernel does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
}

impl Param<'_> {
    /// The parameter as the kernel hands it to init: `name=value` or `name`.
    pub fn word(&self) -> Vec<u8> {
        let mut word = self.name.to_vec();
        if let Some(value) = self.value {
            word.push(b'=');
            word.extend_from_slice(value);
        }
        word
    }
}

/// A command line split into the kernel's parameters and init's argv.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tokens<'a> {
    /// Every parameter before the first standalone `--`.
    pub params: Vec<Param<'a>>,
    /// The words after it (up to a second `--`), or `None` without one.
    pub init_args: Option<Vec<Param<'a>>>,
}

/// The kernel's `isspace()`: ASCII whitespace and, in its Latin-1 table, NBSP.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Takes one parameter off the front of `args` (which starts at a
/// non-space), returning it and the rest with leading spaces skipped.
/// A line-for-line model of the kernel's `next_arg()`.
fn next_param(args: &[u8]) -> (Param<'_>, &[u8]) {
    let quoted = args.first() == Some(&b'"');
    let args = if quoted { &args[1..] } else { args };
    let mut in_quote = quoted;
    // As in the kernel, 0 means "no '='": a '=' at index 0 does not count.
    let mut equals = 0;
    let mut i = 0;
    while i < args.len() {
        let c = args[i];
        if is_space(c) && !in_quote {
            break;
        }
        if equals == 0 && c == b'=' {
            equals = i;
        }
        if c == b'"' {
            in_quote = !in_quote;
        }
        i += 1;
    }
    // The kernel cuts strings by writing NULs; here each part keeps an end.
    let ends_in_quote = i > 0 && args[i - 1] == b'"';
    let param = if equals == 0 {
        let end = if quoted && ends_in_quote { i - 1 } else { i };
        Param {
            name: &args[..end],
            value: None,
        }
    } else {
        let mut start = equals + 1;
        let mut end = i;
        if start < i && args[start] == b'"' {
            start += 1;
            if ends_in_quote {
                end = i - 1;
            }
        }
        if quoted && ends_in_quote {
            end = i - 1;
        }
        Param {
            name: &args[..equals],
            value: Some(&args[start.min(end)..end]),
        }
    };
    let rest = if i < args.len() {
        &args[i + 1..]
    } else {
        &args[i..]
    };
    (param, skip_spaces(rest))
}

/// Splits `args` into parameters until a standalone `--` (returned as the rest).
fn parse_params(mut args: &[u8]) -> (Vec<Param<'_>>, Option<&[u8]>) {
    let mut params = Vec::new();
    args = skip_spaces(args);
    while !args.is_empty() {
        let (param, rest) = next_param(args);
        args = rest;
        if param.value.is_none() && param.name == b"--" {
            return (params, Some(args));
        }
        params.push(param);
    }
    (params, None)
}

/// Splits a command line the way the kernel does. A NUL ends the line, as
/// it ends the kernel's C string.
pub fn tokenize(line: &[u8]) -> Tokens<'_> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let (params, after_dashes) = parse_params(line);
    // The kernel parses init's words with the same `parse_args()`, which
    // stops again at a second `--`.
    let init_args = after_dashes.map(|rest| parse_params(rest).0);
    Tokens { params, init_args }
}

/// Turns a kernel command line into a configuration layer: `env.KEY=VALUE`,
/// `workdir=`, `metadata=`, `vminit.NAME=VALUE` and the argv after `--`.
/// Every other parameter belongs to the kernel and is ignored.
pub fn parse(line: &[u8], source: &Source) -> (Layer, Vec<ConfigError>) {
    let mut layer = Layer::default();
    let mut errors = Vec::new();
    let mut fail = |place: &str, problem| errors.push(ConfigError::new(source, place, problem));

    if !matches!(source, Source::KernelCmdline) && line.len() > MAX_CMDLINE_BYTES {
        fail("", Problem::CmdlineTooLong(line.len()));
    }
    let tokens = tokenize(line);
    for param in &tokens.params {
        let Some(start) = ours(param.name) else {
            continue;
        };
        let kind = if param.name.starts_with(b"env.") {
            NameKind::Variable
        } else {
            NameKind::Setting
        };
        // Before anything that could show the name: `env.TOKEN:hunter2=`
        // (a typo for `=`) carries a secret after the ':'.
        if let Err((shown, problem)) = validate::name_in_word(param.name, start, kind) {
            fail(&shown, problem);
            continue;
        }
        // Only name bytes (ASCII) are left.
        let name = String::from_utf8_lossy(param.name);
        let Some(value) = param.value else {
            fail(&name, Problem::MissingValue(name.clone().into_owned()));
            continue;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            fail(&name, Problem::NotUtf8);
            continue;
        };
        let checked = if let Some(key) = name.strip_prefix("env.") {
            validate::env_key(key)
                .and_then(|()| validate::env_value(key, value))
                .map(|()| layer.env.push((key.to_owned(), value.to_owned())))
        } else if let Some(setting) = name.strip_prefix("vminit.") {
            layer.settings.set(setting, value)
        } else {
            validate::clean_absolute_path(value).map(|()| {
                let slot = if name == "workdir" {
                    &mut layer.workdir
                } else {
                    &mut layer.metadata
                };
                *slot = Some(value.to_owned());
            })
        };
        if let Err(problem) = checked {
            fail(&name, problem);
        }
    }

    // The running kernel booted with its own line: it would have panicked
    // already. A line checked before a boot must not make it panic.
    if !matches!(source, Source::KernelCmdline) {
        let (envs, args) = init_slots(&tokens);
        if envs > MAX_INIT_ENVS {
            fail("", Problem::TooManyInitEnvs(envs));
        }
        if args > MAX_INIT_ARGS {
            fail("", Problem::TooManyInitArgs(args));
        }
    }
    if let Some(words) = tokens.init_args.filter(|words| !words.is_empty()) {
        layer.argv = Some(init_argv(&words, &mut fail));
    }
    (layer, errors)
}

/// The app's argv: init's words after `--`, each valid UTF-8 and a valid
/// argv word; the others go to `fail`.
fn init_argv(words: &[Param<'_>], fail: &mut impl FnMut(&str, Problem)) -> Vec<String> {
    let mut argv = Vec::with_capacity(words.len());
    for (index, word) in words.iter().enumerate() {
        match String::from_utf8(word.word()) {
            Ok(word) => match validate::argv_word(index, &word) {
                Ok(()) => argv.push(word),
                Err(problem) => fail("--", problem),
            },
            Err(_) => fail(&format!("argument {index}"), Problem::NotUtf8),
        }
    }
    argv
}

/// The most environment slots and init arguments the kernel needs for
/// this line, as `unknown_bootoption()` and `set_init_arg()` in
/// `init/main.c` fill them: a parameter with a dot is a module's and never
/// reaches init; one the kernel knows neither; the others go to init, as a
/// variable (`key=value`, replacing an earlier one with its key, `HOME`
/// and `TERM` included) or as an argument (a bare word). Every word after
/// `--` is an argument. The kernel's own test is modelled step by step: it
/// checks for a full table before it compares keys, so even a repeated key
/// panics it when that key stands in the last slot.
/// Returns (variables besides HOME and TERM, arguments besides argv[0]);
/// more than [`MAX_INIT_ENVS`] or [`MAX_INIT_ARGS`] means a panic.
pub fn init_slots(tokens: &Tokens<'_>) -> (usize, usize) {
    let mut envs: Vec<&[u8]> = vec![b"HOME", b"TERM"];
    let mut env_panic = false;
    let mut bare = 0;
    let for_init = tokens
        .params
        .iter()
        .filter(|p| !p.name.contains(&b'.') && !kernel_consumes(p));
    for param in for_init {
        if param.value.is_none() {
            bare += 1;
            continue;
        }
        // for (i = 0; envp_init[i]; i++) {
        //     if (i == MAX_INIT_ENVS) panic; if (same key) break; }
        // envp_init[i] = param;
        let full_before_match = envs
            .iter()
            .position(|key| *key == param.name)
            .unwrap_or(envs.len())
            > MAX_INIT_ENVS;
        let at_the_limit = envs.len() > MAX_INIT_ENVS + 1;
        if full_before_match && at_the_limit {
            env_panic = true;
            break;
        }
        if !envs.contains(&param.name) {
            envs.push(param.name);
        }
    }
    let variables = if env_panic {
        MAX_INIT_ENVS + 1
    } else {
        envs.len() - 2
    };
    let after = tokens.init_args.as_ref().map_or(0, Vec::len);
    (variables, bare + after)
}

/// Where the name starts in a parameter vminit consumes (after `env.` or
/// `vminit.`), or `None` for the kernel's own parameters.
fn ours(name: &[u8]) -> Option<usize> {
    if name.starts_with(b"env.") {
        Some(4)
    } else if name.starts_with(b"vminit.") {
        Some(7)
    } else if name == b"workdir" || name == b"metadata" {
        Some(0)
    } else {
        None
    }
}

/// Whether vminit's argv is what the kernel gives init: every unknown bare
/// word before `--` (no `=`, no `.`; e.g. Firecracker's default
/// `nomodules`), then the words after `--`. Which bare words the kernel
/// knows (`quiet`, `ro`, …) and keeps cannot be told from here, so any
/// in-order selection of them counts.
pub fn started_by_kernel(line: &[u8], words: &[OsString]) -> bool {
    let tokens = tokenize(line);
    let init_args = tokens.init_args.unwrap_or_default();
    let Some(split) = words.len().checked_sub(init_args.len()) else {
        return false;
    };
    let (prefix, rest) = words.split_at(split);
    let rest_matches = init_args
        .iter()
        .zip(rest)
        .all(|(param, word)| param.word() == word.as_bytes());
    let mut bare = tokens
        .params
        .iter()
        .filter(|p| p.value.is_none() && !p.name.contains(&b'.'))
        .map(|p| p.name);
    // Each prefix word must be the next bare word, or a later one.
    let prefix_matches = prefix.iter().all(|word| bare.any(|b| b == word.as_bytes()));
    rest_matches && prefix_matches
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn words(line: &str) -> (Vec<String>, Option<Vec<String>>) {
        let tokens = tokenize(line.as_bytes());
        let text = |p: &Param| String::from_utf8(p.word()).unwrap();
        (
            tokens.params.iter().map(text).collect(),
            tokens.init_args.map(|a| a.iter().map(text).collect()),
        )
    }

    #[test]
    fn kernel_quoting_rules() {
        let (params, args) = words(
            "console=ttyS0  quiet env.GREETING=\"hello world\" \"env.A=x y\" env.EQ=a=b=c \n",
        );
        assert_eq!(
            params,
            [
                "console=ttyS0",
                "quiet",
                "env.GREETING=hello world",
                "env.A=x y",
                "env.EQ=a=b=c"
            ]
        );
        assert_eq!(args, None);
        // Quotes inside a word stay; only a leading one (of word or value) hides spaces.
        assert_eq!(words("a\"b c\"d").0, ["a\"b c\"d"]);
        assert_eq!(words("a=\"b c").0, ["a=b c"]);
        assert_eq!(words("\"").0, [""]);
        assert_eq!(words("a=\"").0, ["a="]);
        assert_eq!(words("=a=b").0, ["=a=b"]);
        assert_eq!(tokenize(b"=a=b").params[0].name, b"=a");
        // The kernel's ctype table is Latin-1: byte 0xA0 (NBSP) separates
        // words, even inside UTF-8 text such as "à" (C3 A0).
        let nbsp = tokenize(b"x\xa0y");
        assert_eq!(
            nbsp.params.iter().map(|p| p.name).collect::<Vec<_>>(),
            [b"x", b"y"]
        );
        assert_eq!(words("a\0b c").0, ["a"]);
    }

    #[test]
    fn dashes_split_init_args() {
        let (params, args) = words("quiet -- sh -c \"echo hi\" -- dropped");
        assert_eq!(params, ["quiet"]);
        assert_eq!(args.unwrap(), ["sh", "-c", "echo hi"]);
        // `--=x` and `"--"`: only a value-less `--` splits, quoted or not.
        assert_eq!(words("--=x").1, None);
        assert_eq!(words("\"--\" a").1.unwrap(), ["a"]);
        assert_eq!(words("a --").1.unwrap(), Vec::<String>::new());
    }

    #[test]
    fn parse_picks_our_keys_and_ignores_the_kernels() {
        let line = b"root=/dev/vda console=ttyS0 env.A=1 env.B=\"x y\" workdir=/app \
            metadata=/m.json vminit.grace=2 env.A=2 -- /bin/app --flag";
        let (layer, errors) = parse(line, &Source::KernelCmdline);
        assert_eq!(errors, []);
        assert_eq!(
            layer.env,
            [
                ("A".into(), "1".into()),
                ("B".into(), "x y".into()),
                ("A".into(), "2".into())
            ]
        );
        assert_eq!(layer.workdir.as_deref(), Some("/app"));
        assert_eq!(layer.metadata.as_deref(), Some("/m.json"));
        assert_eq!(
            layer.settings.grace,
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(layer.argv.unwrap(), ["/bin/app", "--flag"]);
    }

    #[test]
    fn parse_errors_name_the_key_never_the_value() {
        let line = b"env.1X=secret1 env.OK:secret2 env.N=a\xffb workdir=app/ metadata=/a/../b \
            vminit.nope=1 vminit.grace=soon";
        let (_, errors) = parse(line, &Source::KernelCmdline);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 7, "{messages:#?}");
        for (message, needle) in messages.iter().zip([
            "env.1X: is not a valid variable name",
            "env.OK: the byte ':' at position 6 cannot be in a variable name",
            "env.N: is not valid UTF-8",
            "workdir: must be an absolute path",
            "metadata: must be a clean path: no '..' component",
            "vminit.nope: is not a vminit setting",
            "vminit.grace: must be a number of seconds",
        ]) {
            assert!(message.starts_with("kernel command line: "), "{message}");
            assert!(message.contains(needle), "{message} lacks {needle}");
            assert!(!message.contains("secret"), "{message}");
        }
    }

    fn problems(line: &str) -> Vec<Problem> {
        let (_, errors) = parse(line.as_bytes(), &Source::CmdlineOption);
        errors.into_iter().map(|e| e.problem).collect()
    }

    #[test]
    fn the_kernels_init_limits_are_checked_on_both_sides() {
        let words = |n: usize, word: &str| vec![word; n].join(" ");
        // After `--`: 32 words boot, 33 panic.
        assert_eq!(problems(&format!("-- {}", words(32, "x"))), []);
        assert_eq!(
            problems(&format!("-- {}", words(33, "x"))),
            [Problem::TooManyInitArgs(33)]
        );
        // Bare words the kernel does not know share that limit; its own
        // (`quiet`) and dotted ones (`i8042.noaux`) do not.
        let mixed = format!("quiet ro i8042.noaux nomodules foo -- {}", words(30, "x"));
        assert_eq!(problems(&mixed), []);
        let over = format!("nomodules foo bar -- {}", words(30, "x"));
        assert_eq!(problems(&over), [Problem::TooManyInitArgs(33)]);
        // Variables: 31 distinct unknown keys boot, 32 panic; repeats,
        // HOME and TERM take no new slot, nor do env.* and console=.
        let keys = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let line = format!(
            "{} k0=again HOME=/root TERM=vt100 env.A=1 console=ttyS0 ro -- true",
            keys(31)
        );
        assert_eq!(problems(&line), []);
        // The kernel checks a full table before the key: repeating the key
        // in the last slot panics it too.
        let line = format!("{} k30=again -- true", keys(31));
        assert_eq!(problems(&line), [Problem::TooManyInitEnvs(32)]);
        // Its flags without a value only, its settings with one only.
        let line = format!("console -- {}", words(32, "x"));
        assert_eq!(problems(&line), [Problem::TooManyInitArgs(33)]);
        let line = format!("{} ro=1 -- true", keys(31));
        assert_eq!(problems(&line), [Problem::TooManyInitEnvs(32)]);
        assert_eq!(
            problems(&format!("{} -- true", keys(32))),
            [Problem::TooManyInitEnvs(32)]
        );
        // workdir= and metadata= are such variables to the kernel.
        let line = format!("{} workdir=/a -- true", keys(31));
        assert_eq!(problems(&line), [Problem::TooManyInitEnvs(32)]);
        // The running kernel's own line is never refused for them.
        let (_, errors) = parse(keys(40).as_bytes(), &Source::KernelCmdline);
        assert_eq!(errors, []);
    }

    #[test]
    fn too_long_lines_are_refused_before_boot() {
        let long = format!("env.A={}", "x".repeat(2100));
        let (_, errors) = parse(long.as_bytes(), &Source::CmdlineOption);
        assert_eq!(errors[0].problem, Problem::CmdlineTooLong(2106));
        // The running kernel already cut its own line: nothing to refuse there.
        assert_eq!(parse(long.as_bytes(), &Source::KernelCmdline).1, []);
    }

    /// A word as a person would write it, and what the kernel makes of it.
    #[derive(Debug, Clone)]
    enum Word {
        /// `name` or `name=value` with no quote or space.
        Plain(String),
        /// `name="value with spaces"`.
        QuotedValue(String, String),
        /// `"name=value with spaces"`.
        QuotedWhole(String),
    }

    impl Word {
        fn render(&self) -> String {
            match self {
                Word::Plain(w) => w.clone(),
                Word::QuotedValue(n, v) => format!("{n}=\"{v}\""),
                Word::QuotedWhole(w) => format!("\"{w}\""),
            }
        }
        fn expected(&self) -> String {
            match self {
                Word::Plain(w) | Word::QuotedWhole(w) => w.clone(),
                Word::QuotedValue(n, v) => format!("{n}={v}"),
            }
        }
    }

    fn word() -> impl Strategy<Value = Word> {
        let bare = "[a-zA-Z0-9_.,/:-]{1,8}";
        let name = "[a-zA-Z_.][a-zA-Z0-9_.]{0,8}";
        let spaced = "[a-zA-Z0-9 \t=,/-]{0,12}";
        prop_oneof![
            (bare, proptest::option::of(bare)).prop_map(|(n, v)| Word::Plain(match v {
                Some(v) => format!("{n}={v}"),
                None => n,
            })),
            (name, spaced).prop_map(|(n, v)| Word::QuotedValue(n, v)),
            (name, spaced).prop_map(|(n, v)| Word::QuotedWhole(format!("{n}={v}"))),
        ]
        .prop_filter("a bare -- is the separator", |w| w.expected() != "--")
    }

    proptest! {
        /// Rendering words with any whitespace between them and tokenizing
        /// gives the words back, with quotes removed as the kernel removes them.
        #[test]
        fn tokenizer_recovers_written_words(
            before in proptest::collection::vec(word(), 0..6),
            after in proptest::option::of(proptest::collection::vec(word(), 0..6)),
            gap in "[ \t\n]{1,3}",
        ) {
            let mut line = before.iter().map(Word::render).collect::<Vec<_>>();
            if let Some(after) = &after {
                line.push("--".into());
                line.extend(after.iter().map(Word::render));
            }
            let line = format!("{gap}{}{gap}", line.join(&gap));
            let (params, args) = words(&line);
            prop_assert_eq!(params, before.iter().map(Word::expected).collect::<Vec<_>>());
            prop_assert_eq!(args, after.map(|a| a.iter().map(Word::expected).collect()));
        }

        /// Any bytes at all: no panic, and no unquoted word holds whitespace.
        #[test]
        fn tokenizer_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let tokens = tokenize(&line);
            for param in tokens.params.iter().chain(tokens.init_args.iter().flatten()) {
                if !line.contains(&b'"') {
                    prop_assert!(!param.word().iter().any(|&b| is_space(b)));
                }
            }
            let _ = parse(&line, &Source::CmdlineOption);
        }
    }

    #[test]
    fn kernel_argv_is_recognised() {
        let words: Vec<OsString> = ["sh", "-c", "echo hi"].iter().map(OsString::from).collect();
        assert!(started_by_kernel(b"quiet -- sh -c \"echo hi\"\n", &words));
        assert!(!started_by_kernel(b"quiet -- sh -c echo hi", &words));
        assert!(!started_by_kernel(b"quiet", &words));
        assert!(started_by_kernel(b"quiet", &[]));
        // Unknown bare words before `--` reach init first (Firecracker's
        // `nomodules`); the kernel keeps the ones it knows (`quiet`).
        let mut with_bare: Vec<OsString> = vec!["nomodules".into()];
        with_bare.extend(words.iter().cloned());
        let line = b"quiet nomodules pci=off 8250.nr_uarts=0 -- sh -c \"echo hi\"";
        assert!(started_by_kernel(line, &with_bare));
        assert!(started_by_kernel(b"nomodules", &["nomodules".into()]));
        assert!(!started_by_kernel(
            line,
            &["--grace".into(), "1".into(), "sh".into()]
        ));
    }
}
