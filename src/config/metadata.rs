//! The JSON metadata file: the configuration that does not fit on a kernel
//! command line (long argv, many or large env values, vminit settings).
//!
//! ```json
//! {"argv": ["/bin/app", "--port", "80"], "env": {"K": "V"}, "working_dir": "/app",
//!  "setup": [{"argv": ["/bin/migrate"], "user": "app", "env": {"K": "V"}}],
//!  "files": [{"path": "/etc/app.conf", "content": "aGk=", "mode": "0640", "uid": 0, "gid": 0}],
//!  "vminit": {"grace": 5, "verbosity": "debug", "log_target": "console", "shutdown": "poweroff"}}
//! ```
//!
//! The file is parsed into a `serde_json::Value` and walked by hand rather
//! than deserialised into a struct: serde's type errors quote the offending
//! value, and values here are often secrets. Every error names the field.

use serde_json::Value;

use crate::config::error::{ConfigError, NameKind, Problem, Source};
use crate::config::layer::{DEFAULT_FILE_MODE, FileSpec, Layer, MAX_FILES, SetupStep};
use crate::config::mounts;
use crate::config::settings::{self, Settings};
use crate::config::validate;

/// Largest metadata file accepted.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// The top-level fields, for the "unknown field" message.
const FIELDS: &str = "argv, env, working_dir, setup, files, vminit";

/// Parses a metadata file's contents into a configuration layer.
pub fn parse(contents: &[u8], source: &Source) -> (Layer, Vec<ConfigError>) {
    let mut layer = Layer::default();
    let mut errors = Vec::new();
    let mut fail = |place: &str, problem| errors.push(ConfigError::new(source, place, problem));

    let root = match serde_json::from_slice::<Value>(contents) {
        Ok(Value::Object(root)) => root,
        Ok(_) => {
            fail("", Problem::WrongType("a JSON object"));
            return (layer, errors);
        }
        Err(error) => {
            // Syntax errors say what was expected and where, never the text.
            fail("", Problem::Json(error.to_string()));
            return (layer, errors);
        }
    };

    for (field, value) in &root {
        match field.as_str() {
            "argv" => layer.argv = parse_argv(value, "", &mut fail),
            "env" => layer.env = parse_env(value, "", &mut fail),
            "setup" => layer.setup = Some(parse_setup(value, &mut fail)),
            "files" => layer.files = Some(parse_files(value, &mut fail)),
            "working_dir" => match value {
                Value::Null => {}
                Value::String(path) => match validate::clean_absolute_path(path) {
                    Ok(()) => layer.workdir = Some(path.clone()),
                    Err(problem) => fail("working_dir", problem),
                },
                _ => fail("working_dir", Problem::WrongType("a string or null")),
            },
            "vminit" => parse_settings(value, &mut layer.settings, &mut fail),
            _ => match setting_name(field) {
                Ok(()) => fail(field, Problem::UnknownField(FIELDS)),
                Err((shown, problem)) => fail(&shown, problem),
            },
        }
    }
    (layer, errors)
}

/// The `"vminit"` object: each setting in the JSON type natural to it.
fn parse_settings(value: &Value, settings: &mut Settings, fail: &mut impl FnMut(&str, Problem)) {
    let Some(object) = value.as_object() else {
        fail("vminit", Problem::WrongType("an object"));
        return;
    };
    for (name, value) in object {
        if let Err((shown, problem)) = setting_name(name) {
            fail(&format!("vminit.{shown}"), problem);
            continue;
        }
        // `"net": {"mtu": 1400}` is `net.mtu`.
        let members = match value.as_object() {
            Some(members) if name == "mounts" => {
                for (volume, spec) in members {
                    let place = format!("vminit.mounts.{}", shorten_name(volume));
                    if let Err(problem) = set_mount(settings, volume, spec) {
                        fail(&place, problem);
                    }
                }
                continue;
            }
            // `"root": {"source": "/dev/vda"}` is `root`.
            Some(members) if GROUPS.contains(&name.as_str()) => members
                .iter()
                .map(|(member, value)| match (name.as_str(), member.as_str()) {
                    ("root", "source") => ("root".to_owned(), value),
                    _ => (format!("{name}.{member}"), value),
                })
                .collect(),
            _ => vec![(name.clone(), value)],
        };
        for (name, value) in members {
            if let Err((shown, problem)) = setting_name(&name) {
                fail(&format!("vminit.{shown}"), problem);
                continue;
            }
            if let Err(problem) = set_setting(settings, &name, value) {
                fail(&format!("vminit.{name}"), problem);
            }
        }
    }
}

/// An `argv` array (`place` before its name: `setup[0].`).
fn parse_argv(
    value: &Value,
    place: &str,
    fail: &mut impl FnMut(&str, Problem),
) -> Option<Vec<String>> {
    let Some(words) = value.as_array() else {
        fail(
            &format!("{place}argv"),
            Problem::WrongType("an array of strings"),
        );
        return None;
    };
    if words.is_empty() {
        fail(&format!("{place}argv"), Problem::NoCommand);
        return None;
    }
    let mut argv = Vec::with_capacity(words.len());
    for (index, word) in words.iter().enumerate() {
        let at = format!("{place}argv[{index}]");
        match word.as_str() {
            Some(word) => match validate::argv_word(index, word) {
                Ok(()) => argv.push(word.to_owned()),
                Err(problem) => fail(&at, problem),
            },
            None => fail(&at, Problem::WrongType("a string")),
        }
    }
    Some(argv)
}

/// An `env` object of strings, each checked, no value ever shown.
fn parse_env(
    value: &Value,
    place: &str,
    fail: &mut impl FnMut(&str, Problem),
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let Some(object) = value.as_object() else {
        fail(
            &format!("{place}env"),
            Problem::WrongType("an object of strings"),
        );
        return env;
    };
    for (key, value) in object {
        // `"TOKEN:hunter2": ""`: never show past the ':'.
        if let Err((shown, problem)) = validate::name_in_word(key.as_bytes(), 0, NameKind::Variable)
        {
            fail(&format!("{place}env.{shown}"), problem);
            continue;
        }
        let checked = validate::env_key(key).and_then(|()| match value.as_str() {
            Some(value) => validate::env_value(key, value).map(|()| value),
            None => Err(Problem::WrongType("a string")),
        });
        match checked {
            Ok(value) => env.push((key.clone(), value.to_owned())),
            Err(problem) => fail(&format!("{place}env.{key}"), problem),
        }
    }
    env
}

/// `"setup": [{"argv": [...], "user": "...", "env": {...}}, ...]`: the
/// steps run in order before the app.
fn parse_setup(value: &Value, fail: &mut impl FnMut(&str, Problem)) -> Vec<SetupStep> {
    const SHAPE: Problem = Problem::WrongType("an array of objects with argv, and user and env");
    let Some(steps) = value.as_array() else {
        fail("setup", SHAPE);
        return Vec::new();
    };
    let mut parsed = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let place = format!("setup[{index}].");
        let Some(fields) = step.as_object() else {
            fail(&format!("setup[{index}]"), SHAPE);
            continue;
        };
        let mut setup = SetupStep::default();
        for (field, value) in fields {
            match field.as_str() {
                "argv" => setup.argv = parse_argv(value, &place, fail).unwrap_or_default(),
                "env" => setup.env = parse_env(value, &place, fail),
                "user" => match value.as_str().map(crate::config::user::parse_user) {
                    Some(Ok(user)) => setup.user = Some(user),
                    Some(Err(problem)) => fail(&format!("{place}user"), problem),
                    None => fail(&format!("{place}user"), Problem::WrongType("a string")),
                },
                _ => match setting_name(field) {
                    Ok(()) => fail(
                        &format!("{place}{field}"),
                        Problem::UnknownField("argv, user, env"),
                    ),
                    Err((shown, problem)) => fail(&format!("{place}{shown}"), problem),
                },
            }
        }
        if !fields.contains_key("argv") {
            fail(&format!("{place}argv"), Problem::NoCommand);
        }
        parsed.push(setup);
    }
    parsed
}

/// `"files": [{"path": "/abs", "content": "<base64>", "mode": "0640",
/// "uid": 0, "gid": 0}, ...]`: written in order before the set-up steps.
/// A content that is not base64 is named, never shown.
fn parse_files(value: &Value, fail: &mut impl FnMut(&str, Problem)) -> Vec<FileSpec> {
    const SHAPE: Problem =
        Problem::WrongType("an array of objects with path and content, and mode, uid and gid");
    let Some(files) = value.as_array() else {
        fail("files", SHAPE);
        return Vec::new();
    };
    if files.len() > MAX_FILES {
        fail("files", Problem::WrongType("at most 1024 files"));
        return Vec::new();
    }
    let mut parsed = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let Some(fields) = file.as_object() else {
            fail(&format!("files[{index}]"), SHAPE);
            continue;
        };
        let mut spec = FileSpec {
            mode: DEFAULT_FILE_MODE,
            ..FileSpec::default()
        };
        for (field, value) in fields {
            if let Err((shown, problem)) = set_file_field(&mut spec, field, value) {
                fail(&format!("files[{index}].{shown}"), problem);
            }
        }
        for required in ["path", "content"] {
            if !fields.contains_key(required) {
                fail(
                    &format!("files[{index}].{required}"),
                    Problem::WrongType("given"),
                );
            }
        }
        parsed.push(spec);
    }
    parsed
}

/// One file as the metadata's `files` hold it (the API's `PUT /v1/files`
/// takes the same); the error names the field and the rule broken.
pub fn parse_file(value: &Value) -> Result<FileSpec, String> {
    let mut problems = Vec::new();
    let mut files = parse_files(
        &Value::Array(vec![value.clone()]),
        &mut |name: &str, problem| {
            let name = name.strip_prefix("files[0].").unwrap_or(name);
            problems.push(format!("{name}: {problem}"));
        },
    );
    match (problems.into_iter().next(), files.pop()) {
        (None, Some(file)) => Ok(file),
        (problem, _) => Err(problem.unwrap_or_else(|| "not a file".to_owned())),
    }
}

/// One field of a `files` entry; the error names the field (as shown).
fn set_file_field(
    spec: &mut FileSpec,
    field: &str,
    value: &Value,
) -> Result<(), (String, Problem)> {
    use base64::Engine as _;
    let wrong = |what| Err((field.to_owned(), Problem::WrongType(what)));
    match (field, value) {
        ("path", Value::String(path)) if path.chars().any(char::is_control) => {
            wrong("a path without control characters")
        }
        ("path", Value::String(path)) => match validate::clean_absolute_path(path) {
            Ok(()) if path != "/" => {
                spec.path = path.clone();
                Ok(())
            }
            Ok(()) => wrong("a file's path, not /"),
            Err(problem) => Err((field.to_owned(), problem)),
        },
        ("path", _) => wrong("a string"),
        ("content", Value::String(text)) => {
            // Line breaks as `base64` writes them are allowed.
            let text: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(text) {
                Ok(bytes) => {
                    spec.content = bytes;
                    Ok(())
                }
                Err(_) => wrong("base64 (RFC 4648, with padding)"),
            }
        }
        ("content", _) => wrong("a base64 string"),
        ("mode", Value::String(mode)) => {
            spec.mode = mounts::parse_mode(mode).map_err(|problem| (field.to_owned(), problem))?;
            Ok(())
        }
        ("mode", _) => wrong("an octal string, as \"0640\""),
        ("uid" | "gid", value) => {
            let id = value
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .filter(|id| *id != u32::MAX);
            match id {
                Some(id) if field == "uid" => spec.uid = Some(id),
                Some(id) => spec.gid = Some(id),
                None => return wrong("a number from 0 to 4294967294"),
            }
            Ok(())
        }
        _ => match setting_name(field) {
            Ok(()) => Err((
                field.to_owned(),
                Problem::UnknownField("path, content, mode, uid, gid"),
            )),
            Err(shown) => Err(shown),
        },
    }
}

/// Checks a field or setting name for a byte that cannot be in one, which
/// would start a value typed into the name (`"user:root"`).
fn setting_name(name: &str) -> Result<(), (String, Problem)> {
    validate::name_in_word(name.as_bytes(), 0, NameKind::Setting)
}

/// A volume name as a place in a message: cut before a byte that cannot
/// be in a name.
fn shorten_name(name: &str) -> String {
    let end = validate::foreign_byte(name.as_bytes(), 0, NameKind::Setting).unwrap_or(name.len());
    crate::config::error::shorten(&name[..end])
}

/// `"mounts": {"data": {"source": "/dev/vdb", "target": "/data", "type":
/// "ext4", "options": "noatime", "owner": "postgres", "mode": "0700"}}`:
/// one volume.
fn set_mount(settings: &mut Settings, volume: &str, spec: &Value) -> Result<(), Problem> {
    mounts::parse_mount_name(volume)?;
    let Some(fields) = spec.as_object() else {
        return Err(Problem::WrongType(
            "an object with source, target, type and options",
        ));
    };
    let field = |name: &str| -> Result<&str, Problem> {
        match fields.get(name) {
            Some(Value::String(text)) => Ok(text),
            None if name == "options" => Ok(""),
            _ => Err(Problem::WrongType(
                "an object with strings source, target, type (and options)",
            )),
        }
    };
    let known = ["source", "target", "type", "options", "owner", "mode"];
    if let Some(unknown) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(
            if validate::foreign_byte(unknown.as_bytes(), 0, NameKind::Setting).is_some() {
                Problem::WrongType(
                    "an object with source, target, type, options, owner and mode only",
                )
            } else {
                Problem::UnknownField("source, target, type, options, owner, mode")
            },
        );
    }
    for member in ["owner", "mode"] {
        match fields.get(member) {
            Some(Value::String(text)) => settings.mounts.set_access(volume, member, text)?,
            None => {}
            Some(_) => {
                return Err(Problem::WrongType(
                    "an object whose owner and mode are strings",
                ));
            }
        }
    }
    let spec = mounts::mount_spec(
        field("source")?,
        field("target")?,
        field("type")?,
        field("options")?,
    )?;
    settings.mounts.set(volume, spec);
    Ok(())
}

/// The settings that take `true`/`false`.
const FLAGS: &[&str] = &[
    "no_new_privs",
    "delete_metadata",
    "power_button",
    "root.rw",
    "api.insecure",
];
/// The settings that take numbers as well as strings.
const NUMBERS: &[&str] = &["grace", "stop_signal", "net.mtu", "root.wait", "api.vsock"];
/// The settings that take lists: an array of strings, or one string with ','.
const LISTS: &[&str] = &[
    "modules",
    "net.address",
    "net.gateway",
    "net.nameservers",
    "net.hosts",
];
/// The groups written as nested objects: `"rlimit": {"nofile": "1024:4096"}`.
const GROUPS: &[&str] = &["rlimit", "net", "report", "root", "api"];

/// Applies one `"vminit"` entry, in the JSON types natural to it.
fn set_setting(settings: &mut Settings, name: &str, value: &Value) -> Result<(), Problem> {
    if name == "mounts" {
        return Err(Problem::WrongType("an object of volumes"));
    }
    // `"root": "/dev/vda"` is the root alone.
    if GROUPS.contains(&name) && name != "root" {
        return Err(Problem::WrongType("an object"));
    }
    let named = |prefix: &str| name.starts_with(prefix);
    if !settings::NAMES.contains(&name) && !named("rlimit.") && !named("mount.") {
        return Err(Problem::UnknownSetting(settings::NAMES));
    }
    let numeric = NUMBERS.contains(&name) || name.starts_with("rlimit.");
    match value {
        // The one setting the metadata file alone may hold.
        Value::String(token) if name == "api.token" => {
            // It travels in a header: visible ASCII, no space.
            if token.is_empty()
                || token.len() > 4096
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(Problem::WrongType(
                    "a token of 1 to 4096 visible ASCII characters, without spaces",
                ));
            }
            settings.api_token = Some(settings::Token(token.clone()));
            Ok(())
        }
        Value::String(text) => settings.set(name, text),
        // `Number`'s Display writes the shortest form that reads back the same.
        Value::Number(number) if numeric => settings.set(name, &number.to_string()),
        Value::Bool(flag) if FLAGS.contains(&name) => {
            settings.set(name, if *flag { "true" } else { "false" })
        }
        Value::Array(items) if LISTS.contains(&name) => {
            let items: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            match items {
                Some(items) => settings.set(name, &items.join(",")),
                None => Err(Problem::WrongType("an array of strings")),
            }
        }
        // `"hosts": {"db": "10.0.2.20"}`.
        Value::Object(entries) if name == "net.hosts" => {
            let entries: Option<Vec<String>> = entries
                .iter()
                .map(|(host, addr)| Some(format!("{host}={}", addr.as_str()?)))
                .collect();
            match entries {
                Some(entries) => settings.set(name, &entries.join(",")),
                None => Err(Problem::WrongType("an object of address strings")),
            }
        }
        _ if numeric => Err(Problem::WrongType("a number or a string")),
        _ if FLAGS.contains(&name) => Err(Problem::WrongType("true or false")),
        _ if LISTS.contains(&name) => Err(Problem::WrongType("an array of strings or a string")),
        _ => Err(Problem::WrongType("a string")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn source() -> Source {
        Source::Metadata("/meta.json".into())
    }

    #[test]
    fn the_api_token_is_taken_from_the_file_and_never_shown() {
        let (layer, errors) = parse(
            br#"{"vminit": {"api": {"vsock": 10000, "token": "t0k3n"}}}"#,
            &source(),
        );
        assert_eq!(errors, []);
        assert_eq!(layer.settings.api_vsock, Some(10000));
        assert!(!format!("{:?}", layer.settings).contains("t0k3n"));
        let (_, errors) = parse(
            br#"{"vminit": {"api": {"token": "has space s3cret"}}}"#,
            &source(),
        );
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "metadata file /meta.json: vminit.api.token: must be a token of 1 to 4096 visible ASCII characters, without spaces"
            ]
        );
    }

    #[test]
    fn files_are_decoded_with_defaults_and_never_shown() {
        let json = br#"{"files": [{"path": "/etc/a", "content": "czNjcmV0"},
            {"path": "/etc/b", "content": "", "mode": "4755", "uid": 1, "gid": 2},
            {"path": "/", "content": "", "uid": 4294967295, "extra": 1}]}"#;
        let (layer, errors) = parse(json, &source());
        let files = layer.files.unwrap();
        assert_eq!(files[0].content, b"s3cret");
        assert_eq!(
            (files[0].mode, files[0].uid, files[0].gid),
            (0o644, None, None)
        );
        assert_eq!(
            (files[1].mode, files[1].uid, files[1].gid),
            (0o4755, Some(1), Some(2))
        );
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "metadata file /meta.json: files[2].extra: is not a known field (known: path, content, mode, uid, gid)",
                "metadata file /meta.json: files[2].path: must be a file's path, not /",
                "metadata file /meta.json: files[2].uid: must be a number from 0 to 4294967294",
            ]
        );
        let debug = format!("{:?}", files[0]);
        assert!(
            !debug.contains("s3cret") && debug.contains("size: 6"),
            "{debug}"
        );
    }

    #[test]
    fn full_file() {
        let json = br#"{"argv": ["/bin/app", "a b", ""], "env": {"K": "V", "_x": "1=2"},
            "working_dir": "/app", "vminit": {"grace": 1.5, "verbosity": "debug", "shutdown": "reboot",
            "hostname": "box", "user": "1000:1000", "no_new_privs": true,
            "rlimit": {"nofile": "64:128", "core": 0}, "modules": ["virtio_net", "vsock"],
            "net": {"address": ["10.0.2.15/24"], "gateway": "10.0.2.2", "mtu": 1400,
                    "hosts": {"db": "10.0.2.20"}, "nameservers": ["10.0.2.3"]},
            "report": {"port": "org.vminit.exit", "vsock": "2:5000"}}}"#;
        let (layer, errors) = parse(json, &source());
        assert_eq!(errors, []);
        assert_eq!(layer.argv.unwrap(), ["/bin/app", "a b", ""]);
        assert_eq!(
            layer.env,
            [("K".into(), "V".into()), ("_x".into(), "1=2".into())]
        );
        assert_eq!(layer.workdir.as_deref(), Some("/app"));
        assert_eq!(layer.settings.grace, Some(Duration::from_millis(1500)));
        let settings = &layer.settings;
        assert_eq!(
            settings.modules.as_deref().unwrap(),
            ["virtio_net", "vsock"]
        );
        assert_eq!(settings.net.mtu, Some(1400));
        assert_eq!(settings.net.hosts.as_ref().unwrap()[0].0, "db");
        assert_eq!(settings.net.gateways.as_ref().unwrap().len(), 1);
        assert_eq!(settings.report_port.as_deref(), Some("org.vminit.exit"));
        assert_eq!(settings.report_vsock.map(|a| a.port), Some(5000));
        assert_eq!(
            layer.settings.shutdown,
            Some(crate::config::settings::Shutdown::Reboot)
        );
    }

    #[test]
    fn minimal_files() {
        assert_eq!(parse(b"{}", &source()), (Layer::default(), vec![]));
        assert_eq!(parse(br#"{"working_dir": null}"#, &source()).1, []);
    }

    #[test]
    fn errors_name_file_and_field_never_the_value() {
        let json = br#"{"env": {"1BAD": "secret1", "N": 7, "Z": "a\u0000secret2"},
            "working_dir": "rel/secret3", "argv": [], "extra": "secret4",
            "vminit": {"grace": "forever", "colour": "red", "net": {"mtu": true, "address": [1]},
                       "report": "x"}}"#;
        let (_, errors) = parse(json, &source());
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected = [
            "env.1BAD: is not a valid variable name",
            "env.N: must be a string",
            "env.Z: value contains a NUL byte",
            "working_dir: must be an absolute path",
            "argv: no command given",
            "extra: is not a known field (known: argv, env, working_dir, setup, files, vminit)",
            "vminit.grace: must be a number of seconds",
            "vminit.colour: is not a vminit setting",
            "vminit.net.mtu: must be a number or a string",
            "vminit.net.address: must be an array of strings",
            "vminit.report: must be an object",
        ];
        for needle in expected {
            let hit = messages.iter().find(|m| m.contains(needle));
            assert!(hit.is_some(), "no message contains {needle}: {messages:#?}");
        }
        assert_eq!(messages.len(), expected.len(), "{messages:#?}");
        for message in &messages {
            assert!(
                message.starts_with("metadata file /meta.json: "),
                "{message}"
            );
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[test]
    fn root_and_volumes() {
        let json = br#"{"argv": ["x"], "vminit": {
            "root": {"source": "/dev/vda", "fstype": "ext4", "rw": true, "overlay": "tmpfs:1g", "wait": 3},
            "mounts": {"data": {"source": "/dev/vdb", "target": "/data", "type": "ext4", "options": "noatime"},
                       "tmp": {"source": "tmpfs", "target": "/data/tmp", "type": "tmpfs"}}}}"#;
        let (layer, errors) = parse(json, &source());
        assert_eq!(errors, []);
        let root = &layer.settings.root;
        assert_eq!(root.source.as_deref(), Some("/dev/vda"));
        assert_eq!(root.rw, Some(true));
        assert_eq!(root.wait, Some(Duration::from_secs(3)));
        assert_eq!(
            layer.settings.mounts.get("data").unwrap().options,
            "noatime"
        );
        assert_eq!(layer.settings.mounts.get("tmp").unwrap().options, "");
        // Owner and mode, in the volume's object or as settings of their own.
        let json = br#"{"vminit": {"mounts": {"pg": {"source": "/dev/vdb", "target": "/var/lib/postgresql",
            "type": "ext4", "owner": "postgres", "mode": "0700"}}, "mount.logs.mode": "0750"}}"#;
        let (layer, errors) = parse(json, &source());
        assert_eq!(errors, []);
        let access = layer.settings.mounts.access("pg").unwrap();
        assert_eq!(access.owner.as_ref().unwrap().to_string(), "postgres");
        assert_eq!(access.mode, Some(0o700));
        assert_eq!(
            layer.settings.mounts.access("logs").unwrap().mode,
            Some(0o750)
        );
        let (layer, errors) = parse(br#"{"vminit": {"root": "/dev/vdc"}}"#, &source());
        assert_eq!(errors, []);
        assert_eq!(layer.settings.root.source.as_deref(), Some("/dev/vdc"));
        let bad = br#"{"vminit": {"mounts": {"d": {"source": "/dev/vdb", "target": "rel", "type": "ext4"},
            "e": {"source": "/dev/vdb", "type": "ext4"}, "f": "x", "g h": {}}, "root": {"colour": 1}}}"#;
        let (_, errors) = parse(bad, &source());
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for needle in [
            "vminit.mounts.d: must be an absolute path",
            "vminit.mounts.e: must be an object with strings source, target, type",
            "vminit.mounts.f: must be an object with source, target, type and options",
            "vminit.mounts.g: needs a volume name",
            "vminit.root.colour: is not a vminit setting",
        ] {
            assert!(
                messages.iter().any(|m| m.contains(needle)),
                "no {needle}: {messages:#?}"
            );
        }
    }

    #[test]
    fn names_holding_a_value_are_cut_before_it() {
        let json = br#"{"env": {"TOKEN:secret1=": "x", "TOKEN secret2": "y"},
            "vminit": {"user:secret3": "x", "net": {"mtu=secret4": 1}},
            "token=secret5": 1, "working-dir": "/a"}"#;
        let (_, errors) = parse(json, &source());
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for needle in [
            "env.TOKEN: the byte ':' at position 5 cannot be in a variable name",
            "env.TOKEN: the byte ' ' at position 5",
            "vminit.user: the byte ':' at position 4 cannot be in a setting or field name",
            "vminit.net.mtu: the byte '=' at position 7",
            "token: the byte '=' at position 5",
            "working-dir: is not a known field",
        ] {
            let hit = messages.iter().find(|m| m.contains(needle));
            assert!(hit.is_some(), "no message contains {needle}: {messages:#?}");
        }
        for message in &messages {
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[test]
    fn malformed_json_gets_one_error_without_the_text() {
        for bad in [
            &b"{\"env\": {\"K\": \"secret"[..],
            b"[1]",
            b"",
            b"\xff",
            b"{\"a\":1} x",
        ] {
            let (_, errors) = parse(bad, &source());
            assert_eq!(errors.len(), 1, "{bad:?}");
            assert!(!errors[0].to_string().contains("secret"));
        }
    }
}
