//! What the cases check of a boot (its exit line and status, its console
//! lines, a set-up refused before the app ran), and [`line()`] for the
//! command lines they generate.

use crate::vm::qemu::Console;

pub(super) fn expect(console: &Console, code: i32) -> Result<(), String> {
    if console.timed_out {
        return Err("the VM did not stop (hang guard)".into());
    }
    if console.kernel_panicked() {
        return Err("the kernel panicked".into());
    }
    if console.stopped_after_exit_line {
        return Err("the VM did not power off after the exit line".into());
    }
    if console.exit_lines() != 1 {
        return Err(format!("{} exit lines, not one", console.exit_lines()));
    }
    match console.exit_code() {
        Some(found) if found == code => Ok(()),
        found => Err(format!("exit code {found:?}, expected {code}")),
    }
}

pub(super) fn require(console: &Console, needles: &[&str]) -> Result<(), String> {
    match needles.iter().find(|n| !console.has(n)) {
        Some(missing) => Err(format!("no line contains {missing:?}")),
        None => Ok(()),
    }
}

/// Exit 2 with `message`, and the app (which would print `app-ran`) never ran.
pub(super) fn refused_before_the_app(console: &Console, message: &str) -> Result<(), String> {
    expect(console, 2)?;
    require(console, &[message])?;
    if console.has("app-ran") {
        return Err("the app ran although its set-up failed".into());
    }
    Ok(())
}

/// A generated command line for a case (cases live for the whole run).
pub(super) fn line(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}
