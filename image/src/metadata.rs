//! The image's configuration as vminit's metadata file: `Entrypoint` and
//! `Cmd` become `argv`, `Env` `env`, `WorkingDir` `working_dir`, `User`
//! `vminit.user`, `StopSignal` `vminit.stop_signal`, checked by vminit's own rules so that the boot cannot
//! refuse what the builder wrote.

use oci_spec::image::ImageConfiguration;
use serde_json::{Map, Value, json};
use thiserror::Error;

use vminit::config::validate;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "The image's configuration has no command (no Entrypoint nor Cmd): give one after '--'"
    )]
    NoCommand,
    #[error("The image's Env entry {0} has no '=': it must be KEY=VALUE")]
    EnvWithoutValue(String),
    #[error("The image's Env entry {key}: {rule}")]
    Env { key: String, rule: String },
    #[error("The image's WorkingDir {0} is not an absolute path")]
    WorkingDir(String),
    #[error("The image's config breaks vminit's rules: {0}")]
    Invalid(String),
}

/// The metadata file for `config` (none for a plain directory), with
/// `command` in place of the image's own when given.
pub fn metadata(
    config: Option<&ImageConfiguration>,
    command: &[String],
    setup: &[Value],
) -> Result<Value, ConfigError> {
    let image = config.and_then(|c| c.config().as_ref());
    let mut argv: Vec<String> = command.to_vec();
    if let Some(image) = image.filter(|_| argv.is_empty()) {
        argv.extend(image.entrypoint().iter().flatten().cloned());
        argv.extend(image.cmd().iter().flatten().cloned());
    }
    let mut env = Map::new();
    for entry in image.and_then(|c| c.env().as_ref()).into_iter().flatten() {
        let Some((key, value)) = entry.split_once('=') else {
            // Only the part that can be a name: the rest may be a value.
            let end = validate::foreign_byte(
                entry.as_bytes(),
                0,
                vminit::config::error::NameKind::Variable,
            )
            .unwrap_or(entry.len());
            return Err(ConfigError::EnvWithoutValue(entry[..end].to_owned()));
        };
        validate::env_key(key)
            .and_then(|()| validate::env_value(key, value))
            .map_err(|rule| ConfigError::Env {
                key: vminit::config::error::shorten(key),
                rule: rule.to_string(),
            })?;
        env.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let mut metadata = Map::new();
    if argv.is_empty() {
        if config.is_some() {
            return Err(ConfigError::NoCommand);
        }
    } else {
        metadata.insert("argv".into(), json!(argv));
    }
    if !env.is_empty() {
        metadata.insert("env".into(), Value::Object(env));
    }
    if !setup.is_empty() {
        metadata.insert("setup".into(), Value::Array(setup.to_vec()));
    }
    if let Some(dir) = image
        .and_then(|c| c.working_dir().as_ref())
        .filter(|d| !d.is_empty())
    {
        if !dir.starts_with('/') {
            return Err(ConfigError::WorkingDir(dir.clone()));
        }
        // vminit wants it clean: `/app/` is `/app`.
        let clean = format!(
            "/{}",
            dir.split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect::<Vec<_>>()
                .join("/")
        );
        metadata.insert("working_dir".into(), Value::String(clean));
    }
    let mut settings = Map::new();
    if let Some(user) = image
        .and_then(|c| c.user().as_ref())
        .filter(|u| !u.is_empty())
    {
        settings.insert("user".into(), json!(user));
    }
    // What the power button and a graceful stop send (PostgreSQL: SIGINT,
    // nginx: SIGQUIT), as `docker stop` sends it.
    if let Some(signal) = image
        .and_then(|c| c.stop_signal().as_ref())
        .filter(|s| !s.is_empty())
    {
        settings.insert("stop_signal".into(), json!(signal));
    }
    if !settings.is_empty() {
        metadata.insert("vminit".into(), Value::Object(settings));
    }
    // What vminit would refuse at boot is refused here, by its own parser
    // (whose messages never show a value).
    let metadata = Value::Object(metadata);
    let text = serde_json::to_vec(&metadata).unwrap_or_default();
    let source = vminit::config::error::Source::Metadata("metadata.json".into());
    let (_, errors) = vminit::config::metadata::parse(&text, &source);
    if !errors.is_empty() {
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(ConfigError::Invalid(messages.join("; ")));
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ImageConfiguration {
        ImageConfiguration::from_reader(json.as_bytes()).unwrap()
    }

    const BASE: &str =
        r#""architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}"#;

    #[test]
    fn the_config_becomes_the_metadata_file() {
        let image = config(&format!(
            r#"{{{BASE}, "config": {{"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"],
                "Env": ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.25"], "WorkingDir": "/srv/", "User": "101:101",
                "StopSignal": "SIGQUIT"}}}}"#
        ));
        let metadata = metadata(Some(&image), &[], &[]).unwrap();
        assert_eq!(
            metadata,
            json!({"argv": ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"],
                   "env": {"PATH": "/usr/sbin:/usr/bin", "NGINX_VERSION": "1.25"},
                   "working_dir": "/srv", "vminit": {"user": "101:101", "stop_signal": "SIGQUIT"}})
        );
        // The metadata file is what vminit itself accepts.
        let text = serde_json::to_vec(&metadata).unwrap();
        let (_, errors) = vminit::config::metadata::parse(
            &text,
            &vminit::config::error::Source::Metadata("/m.json".into()),
        );
        assert_eq!(errors, []);
        let command = ["sh".to_owned()];
        assert_eq!(metadata_argv(&image, &command), ["sh"]);
    }

    fn metadata_argv(image: &ImageConfiguration, command: &[String]) -> Vec<String> {
        serde_json::from_value(metadata(Some(image), command, &[]).unwrap()["argv"].clone())
            .unwrap()
    }

    #[test]
    fn bad_configs_are_refused_without_their_values() {
        let none = config(&format!(r#"{{{BASE}, "config": {{}}}}"#));
        assert_eq!(metadata(Some(&none), &[], &[]), Err(ConfigError::NoCommand));
        assert!(
            metadata(None, &[], &[]).is_ok(),
            "a plain directory may leave the command to the boot"
        );
        let bad_env = config(&format!(
            r#"{{{BASE}, "config": {{"Cmd": ["x"], "Env": ["TOKEN:hunter2"]}}}}"#
        ));
        let error = metadata(Some(&bad_env), &[], &[]).unwrap_err().to_string();
        assert!(
            error.contains("TOKEN") && !error.contains("hunter2"),
            "{error}"
        );
        let bad_key = config(&format!(
            r#"{{{BASE}, "config": {{"Cmd": ["x"], "Env": ["1X=hunter2"]}}}}"#
        ));
        let error = metadata(Some(&bad_key), &[], &[]).unwrap_err().to_string();
        assert!(
            error.contains("1X") && !error.contains("hunter2"),
            "{error}"
        );
        let relative = config(&format!(
            r#"{{{BASE}, "config": {{"Cmd": ["x"], "WorkingDir": "app"}}}}"#
        ));
        assert_eq!(
            metadata(Some(&relative), &[], &[]),
            Err(ConfigError::WorkingDir("app".into()))
        );
        let climbing = config(&format!(
            r#"{{{BASE}, "config": {{"Cmd": ["x"], "WorkingDir": "/srv/../etc", "User": "a b"}}}}"#
        ));
        let error = metadata(Some(&climbing), &[], &[]).unwrap_err().to_string();
        assert!(
            error.contains("working_dir: must be a clean path: no '..' component"),
            "{error}"
        );
        assert!(
            error.contains("vminit.user: must be uid[:gid] or name[:group]"),
            "{error}"
        );
        let bad_signal = config(&format!(
            r#"{{{BASE}, "config": {{"Cmd": ["x"], "StopSignal": "SIGNOPE"}}}}"#
        ));
        let error = metadata(Some(&bad_signal), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("vminit.stop_signal: must be a signal name"),
            "{error}"
        );
    }
}
