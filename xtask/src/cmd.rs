//! Running commands with their command line echoed, and failures as errors.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `command`, echoing it first; an unsuccessful exit is an error.
pub fn run(command: &mut Command) -> Result<(), String> {
    eprintln!("+ {}", describe(command));
    let status = command
        .status()
        .map_err(|e| format!("cannot start {}: {e}", describe(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {status}", describe(command)))
    }
}

/// Runs `command` quietly and returns its stdout, or an error with its stderr.
pub fn output(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot start {}: {e}", describe(command)))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed: {}\n{}",
            describe(command),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Where `program` is on the PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether `program` is on the PATH.
pub fn exists(program: &str) -> bool {
    which(program).is_some()
}

/// `unshare` set to run its command as PID 1 of new PID and mount
/// namespaces (with their own `/proc`), killed with the caller.
pub fn pid1_namespace() -> Command {
    let mut command = Command::new("unshare");
    command.args(["--fork", "--pid", "--mount-proc", "--kill-child"]);
    command
}

/// The count after an option such as `--runs`: at least `min`.
pub fn count<'a>(
    words: &mut impl Iterator<Item = &'a String>,
    option: &str,
    min: usize,
) -> Result<usize, String> {
    words
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= min)
        .ok_or_else(|| format!("{option} takes a count of at least {min}"))
}

/// `cargo`, as the one running xtask.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

/// `command` as a shell line, for messages.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}
