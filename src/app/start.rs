//! What starting the application takes, made before it starts: the user
//! it runs as (resolved in the image's files), its environment and
//! resource limits, the check that its argv and environment fit exec, and
//! the set-up steps that run before it; and, when the start fails, which
//! step failed and the exit status that says so. The start itself is
//! [`crate::sys::process::spawn`], called by [`crate::run`].

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::app::identity::{self, Identity, IdentityError};
use crate::app::supervisor::{Outcome, Scope, Supervisor};
use crate::config::Config;
use crate::config::error::quote;
use crate::config::user::UserSpec;
use crate::record::{EXIT_CANNOT_RUN, EXIT_NOT_FOUND};
use crate::sys::credentials::{self, RawLimit};
use crate::sys::process::{self, SpawnError, Step};
use crate::{error, info};

/// The `PATH` a kernel-started init lacks (the kernel sets only HOME and TERM).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves a user against the image's `/etc/passwd` and `/etc/group`
/// (a missing file reads as empty: numeric ids still work).
pub fn resolve_user(spec: &UserSpec) -> Result<Identity, IdentityError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    identity::resolve(spec, &passwd, &group)
}

/// The application's environment: vminit's own, less the kernel words
/// vminit consumed, with the configured variables over it; then
/// `HOSTNAME` (the machine's name) and `HOME` (the user's), each unless
/// the configuration sets it.
pub fn environment(
    config: &Config,
    vm: bool,
    from_kernel: bool,
    hostname: Option<String>,
    identity: Option<&Identity>,
) -> Vec<(OsString, OsString)> {
    let mut env = inherited_and_configured(config, vm, from_kernel);
    // As Docker sets it, unless the configuration does.
    if let Some(name) = hostname.filter(|_| !config.env.contains_key("HOSTNAME")) {
        set_var(&mut env, "HOSTNAME", &name);
    }
    // The user's home, unless the configuration says otherwise.
    if let Some(identity) = identity.filter(|_| !config.env.contains_key("HOME")) {
        set_var(&mut env, "HOME", &identity.home);
    }
    env
}

/// vminit's own environment, less the kernel words vminit consumed, with
/// the configured variables over it.
fn inherited_and_configured(
    config: &Config,
    vm: bool,
    from_kernel: bool,
) -> Vec<(OsString, OsString)> {
    // Inserted one by one: `collect` into a map sorts first, and that
    // sort's code would cost the binary 3 KB.
    let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
    for (key, value) in crate::sys::args::environment() {
        // The kernel hands init every unknown `key=value` word without a dot
        // as a variable; `workdir=` and `metadata=` are vminit's.
        if !(from_kernel && (key == "workdir" || key == "metadata")) {
            env.insert(key.to_owned(), value.to_owned());
        }
    }
    for (key, value) in &config.env {
        env.insert(key.into(), value.into());
    }
    if vm {
        env.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.into());
    }
    env.into_iter().collect()
}

/// Sets `key` in an environment, replacing what it had.
fn set_var(env: &mut Vec<(OsString, OsString)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.into(), value.into()));
}

/// The configured resource limits, ready for setrlimit.
pub fn limits(config: &Config) -> Vec<RawLimit> {
    config
        .rlimits
        .iter()
        .filter_map(|(name, limit)| {
            Some(RawLimit {
                resource: credentials::resource_number(name)?,
                soft: limit.soft.unwrap_or(credentials::INFINITY),
                hard: limit.hard.unwrap_or(credentials::INFINITY),
            })
        })
        .collect()
}

/// The kernel's E2BIG, told before the fork with its numbers: the
/// inherited environment and the stack limit the app will have count.
pub fn exec_fits(config: &Config, env: &[(OsString, OsString)]) -> Result<(), String> {
    use crate::config::validate::{MAX_ARG_STRLEN, exec_limit, exec_size};
    let exec_size = exec_size(&config.argv, env.iter().map(|(k, v)| (k.len(), v.len())));
    // Any stack limit allows this much: no need to ask for it.
    if exec_size <= MAX_ARG_STRLEN {
        return Ok(());
    }
    let stack = match config.rlimits.get("stack") {
        Some(limit) => limit.soft,
        None => credentials::stack_limit(),
    };
    let exec_limit = exec_limit(stack);
    if exec_size <= exec_limit {
        return Ok(());
    }
    Err(format!(
        "cannot run {}: its argv and environment take {exec_size} bytes as the kernel counts them, more than the {exec_limit} it allows with a stack limit of {} (a quarter of it, at least 128 KiB, at most 6 MiB)",
        quote(&config.argv[0]),
        stack.map_or("unlimited".to_owned(), |s| s.to_string())
    ))
}

/// Runs the set-up steps in order, each to its end and supervised as the
/// app is (signals forwarded, zombies reaped, what it leaves stopped), as
/// root or the user it names, with the app's environment, limits and
/// working directory; the first that fails ends it all: the app never
/// starts. This is where `initdb` or a migration goes (Fly's
/// `release_command`, Kubernetes' init containers).
pub fn run_setup(
    config: &Config,
    env: &[(OsString, OsString)],
    limits: &[RawLimit],
    scope: Scope,
) -> Result<(), String> {
    for (index, step) in config.setup.iter().enumerate() {
        let what = format!("set-up step {} ({})", index + 1, quote(&step.argv[0]));
        let identity = match &step.user {
            Some(user) => Some(resolve_user(user).map_err(|e| format!("{what}: {e}"))?),
            None => None,
        };
        let mut step_env = env.to_vec();
        if let Some(identity) = identity
            .as_ref()
            .filter(|_| !config.env.contains_key("HOME"))
        {
            set_var(&mut step_env, "HOME", &identity.home);
        }
        for (key, value) in &step.env {
            set_var(&mut step_env, key, value);
        }
        let request = process::Spawn {
            argv: &step.argv,
            env: &step_env,
            workdir: config.workdir.as_deref(),
            take_terminal: false,
            limits,
            user: identity
                .as_ref()
                .map(|i| (i.uid, i.gid, i.groups.as_slice())),
            no_new_privs: config.no_new_privs,
            stdio: None,
            new_session: false,
        };
        info!("{what}");
        let pid =
            process::spawn(&request).map_err(|e| format!("{what} cannot start: {}", e.error))?;
        let mut supervisor = Supervisor::new(pid, config.grace, scope, false);
        let outcome = supervisor.wait_for_app();
        supervisor.stop_everything();
        if outcome != Outcome::Exited(0) {
            return Err(format!(
                "{what} failed with status {}: the app is not started",
                outcome.exit_code()
            ));
        }
    }
    Ok(())
}

/// Says which step of starting the app failed; returns the exit status:
/// 127 when exec did not find the command, 126 for any other failure.
pub fn spawn_failed(
    failure: &SpawnError,
    config: &Config,
    identity: Option<&Identity>,
    limits: &[RawLimit],
) -> i32 {
    let e = &failure.error;
    let program = quote(&config.argv[0]);
    let who = identity.map_or(String::new(), |i| {
        format!(" as uid {} gid {}", i.uid, i.gid)
    });
    match failure.step {
        Step::Exec => {
            error!("cannot run {program}{who}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_RUN
            };
        }
        Step::Limit(index) => {
            let name = limits
                .get(index)
                .and_then(|l| {
                    crate::config::limits::RESOURCES
                        .iter()
                        .find(|r| credentials::resource_number(r) == Some(l.resource))
                })
                .copied()
                .unwrap_or("?");
            let limit = config
                .rlimits
                .get(name)
                .map_or(String::new(), |l| format!("={l}"));
            error!("cannot set the resource limit {name}{limit} for {program}: {e}");
        }
        Step::ProcessGroup => error!("cannot give {program} its own process group: {e}"),
        Step::User => error!("cannot switch users for {program}{who}: {e}"),
        Step::Workdir => error!(
            "cannot enter the working directory {} for {program}{who}: {e}",
            quote(config.workdir.as_deref().unwrap_or("?"))
        ),
        Step::NoNewPrivs => error!("cannot set no_new_privs for {program}: {e}"),
        Step::Signals => error!("cannot clear the signal mask for {program}: {e}"),
        // The app keeps vminit's standard streams.
        Step::Stdio => error!("cannot give {program} its standard streams: {e}"),
    }
    EXIT_CANNOT_RUN
}
