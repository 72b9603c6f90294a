//! vminit from start to end, as its phases: `begin` (signals, stdio, the
//! panic hook), the mode (`choose_mode`), the configuration
//! (`load_config`), the machine (`prepare_machine`), the app (`prepare_app`:
//! user, environment, limits, set-up steps; then `start_app`), its
//! supervision (`supervise`), and the end ([`crate::end`]).
//!
//! A VM's init must never exit (that is a kernel panic), so in VM mode every
//! path, errors included, ends in [`machine::shutdown`]; in a container,
//! vminit exits with the application's status.

use std::cell::Cell;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use crate::app::identity::Identity;
use crate::app::start;
use crate::app::supervisor::{Scope, Supervisor};
use crate::config::cli::{self, Mode, Options};
use crate::config::error::{Source, quote};
use crate::config::settings::LogTarget;
use crate::config::{self, Config, FileId, cmdline, signals};
use crate::end::{self, Ending};
use crate::machine::power_button::PowerButton;
use crate::machine::setup;
use crate::record::{EXIT_CANNOT_RUN, EXIT_CONFIG, oom, steps};
use crate::sys::credentials::RawLimit;
use crate::sys::{clock, process, signal, stdio, tty};
use crate::{debug, error, info, log, machine, warn};

/// The revision vminit was built from (see `build.rs`): a short commit
/// hash, or `unknown` outside git.
pub const GIT_REVISION: &str = env!("VMINIT_GIT_REVISION");

/// `--version`'s line, shared with `vminit-image`: `NAME VERSION (git
/// REVISION)`, or `NAME VERSION` when built outside git.
pub fn version_line(name: &str, version: &str) -> String {
    if GIT_REVISION == "unknown" {
        format!("{name} {version}")
    } else {
        format!("{name} {version} (git {GIT_REVISION})")
    }
}

/// Runs vminit with its whole argv (argv[0] included); returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let (mut ending, pid1) = begin();
    let words = args.get(1..).unwrap_or_default();
    let phases = |ending: &mut Ending| -> Result<i32, i32> {
        let (options, kernel_line) = choose_mode(ending, words, pid1)?;
        let (config, from_kernel) = load_config(ending, &options, kernel_line.as_deref())?;
        let line = kernel_line.as_deref().unwrap_or_default();
        let hostname = prepare_machine(ending, &config, pid1, line)?;
        let prepared = prepare_app(ending, &config, pid1, hostname, from_kernel)?;
        let started = start_app(ending, &config, &prepared)?;
        Ok(supervise(ending, &config, prepared.scope, started))
    };
    match phases(&mut ending) {
        Ok(code) | Err(code) => code,
    }
}

/// What runs once the app has started: the app, the power button, the
/// API's child.
struct Started {
    app: i32,
    power_button: Option<PowerButton>,
    api: Option<crate::api::Service>,
}

/// What starting the app needs, made before it starts.
struct Prepared {
    identity: Option<Identity>,
    env: Vec<(OsString, OsString)>,
    limits: Vec<RawLimit>,
    scope: Scope,
}

/// The first steps, before anything can fail: every signal blocked,
/// SIGCHLD's disposition reset, fds 0-2 open, and in a VM the panic hook.
/// Returns the ending (a VM's as far as is known yet) and whether vminit
/// is PID 1.
fn begin() -> (Ending, bool) {
    let init_start = clock::since_boot();
    // Before anything else, so that no signal is lost: the supervisor loop
    // takes them from the pending set later.
    if let Err(e) = signal::block_all() {
        error!("cannot block signals: {e}");
    }
    // An inherited "ignore" of SIGCHLD would let the kernel reap the app.
    signal::reset_sigchld();
    let pid1 = process::own_pid() == 1;
    // PID 1 with no /proc to tell is a kernel-started init as well: any
    // container runtime mounts /proc.
    let auto_vm = pid1 && process::in_initial_pid_namespace() != Some(false);
    if auto_vm {
        machine::open_console_if_closed();
        end::install_panic_hook();
    } else if !stdio::closed().is_empty() {
        let _ = stdio::fill_from("/dev/null");
    }
    (Ending::new(auto_vm, init_start), pid1)
}

/// The mode: reads the options (unless the kernel started vminit with the
/// app's argv) and settles the mode ([`settle_mode`]); in a VM prepares
/// the machine's mounts.
/// Answers `--help` and `--version`. Returns the options and, in VM mode,
/// the kernel command line; `Err` with the exit status once ended.
fn choose_mode(
    ending: &mut Ending,
    words: &[OsString],
    pid1: bool,
) -> Result<(Options, Option<Vec<u8>>), i32> {
    let auto_vm = ending.vm;
    let kernel_line = if auto_vm {
        machine::read_kernel_cmdline()
    } else {
        None
    };
    // The kernel starts init with the words after `--` as its argv: those
    // are the app's, not options, and the command line says the same.
    let options = if kernel_line
        .as_deref()
        .is_some_and(|line| cmdline::started_by_kernel(line, words))
    {
        Options::default()
    } else {
        match cli::parse(words.iter().cloned()) {
            Ok(options) => options,
            Err(e) => {
                error!("{e}");
                // `--mode vm --bogus` in a PID namespace: still the VM's end.
                if pid1 && cli::requested_mode(words) == Mode::Vm {
                    ending.vm = true;
                }
                ending.adopt(&config::lenient(None, kernel_line.as_deref()));
                return Err(ending.finish(EXIT_CONFIG, None));
            }
        }
    };
    settle_mode(ending, &options, auto_vm, pid1, kernel_line.as_deref())?;
    let kernel_line = match (ending.vm, kernel_line) {
        (true, None) => machine::read_kernel_cmdline(),
        (vm, line) => line.filter(|_| vm),
    };
    // Without /proc to tell, PID 1 in VM mode is the machine's (as for auto).
    ending.real_machine = ending.vm && process::in_initial_pid_namespace() != Some(false);
    if ending.vm {
        // Before the configuration, which does not change it: an invalid
        // configuration still leaves a status file in /run.
        steps::time("mounts", || machine::prepare(ending.real_machine));
        ending.prepared = true;
    }
    if options.help || options.version {
        print_help_or_version(options.help);
        return Err(ending.finish(0, None));
    }
    Ok((options, kernel_line))
}

/// Settles the mode the options ask for against what vminit is: a
/// machine's PID 1 (`auto_vm`) cannot be a container's, and VM mode needs
/// PID 1. `Err` with the exit status once ended.
fn settle_mode(
    ending: &mut Ending,
    options: &Options,
    auto_vm: bool,
    pid1: bool,
    kernel_line: Option<&[u8]>,
) -> Result<(), i32> {
    ending.vm = match options.mode {
        Mode::Auto => auto_vm,
        Mode::Vm => true,
        Mode::Container => false,
    };
    if auto_vm && !ending.vm {
        // Returning from main here would be the kernel's "Attempted to kill init".
        ending.vm = true;
        error!(
            "option: --mode container cannot be used by a machine's PID 1 (its exit panics the kernel)"
        );
        ending.adopt(&config::lenient(Some(&options.layer), kernel_line));
        return Err(ending.finish(EXIT_CONFIG, None));
    }
    if ending.vm && !pid1 {
        error!("option: --mode vm needs vminit to be PID 1");
        return Err(EXIT_CONFIG);
    }
    Ok(())
}

/// Writes `--help`'s text (`help`), else `--version`'s line, to stdout.
fn print_help_or_version(help: bool) {
    let text = if help {
        cli::USAGE.to_owned()
    } else {
        version_line("vminit", env!("CARGO_PKG_VERSION")) + "\n"
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// The configuration: reads and validates all of it (`--check` answers
/// here), then acts on what must happen at once. Returns it, and whether
/// it came from the kernel line.
fn load_config(
    ending: &mut Ending,
    options: &Options,
    kernel_line: Option<&[u8]>,
) -> Result<(Config, bool), i32> {
    // Even when the configuration is invalid, end the machine the way it asks.
    let lenient = || config::lenient(Some(&options.layer), kernel_line);
    let cmdline_input = match config::cmdline_input(options, kernel_line) {
        Ok(input) => input,
        Err(e) => {
            error!("{e}");
            ending.adopt(&lenient());
            return Err(ending.finish(EXIT_CONFIG, None));
        }
    };
    // Which metadata file was read, for delete_metadata.
    let metadata_read = Cell::new(None);
    let read_metadata = |path: &Path| {
        config::read_identified(path).map(|(contents, id)| {
            metadata_read.set(Some(id));
            contents
        })
    };
    let config = match config::resolve(&options.layer, cmdline_input.as_ref(), read_metadata) {
        Ok(config) => config,
        Err(errors) => {
            for e in errors {
                error!("{e}");
            }
            ending.adopt(&lenient());
            return Err(ending.finish(EXIT_CONFIG, None));
        }
    };
    ending.adopt(&config);

    if options.check {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{}", config.to_json()).and_then(|()| out.flush());
        return Err(ending.finish(0, None));
    }
    let from_kernel = cmdline_input
        .as_ref()
        .is_some_and(|i| i.source == Source::KernelCmdline);
    act_on_config(
        ending,
        &config,
        metadata_read.get(),
        kernel_line.filter(|_| from_kernel),
    );
    Ok((config, from_kernel))
}

/// What a valid configuration asks at once: the log set up, the metadata
/// file (`metadata_read`) deleted; and a warning for `env.*` values on the
/// kernel command line (`kernel_line`, when the configuration came from
/// it), which every process can read.
fn act_on_config(
    ending: &mut Ending,
    config: &Config,
    metadata_read: Option<FileId>,
    kernel_line: Option<&[u8]>,
) {
    log::configure(config.verbosity, config.log_target);
    if config.log_target == LogTarget::Kmsg && ending.real_machine {
        if let Err(e) = log::lift_kmsg_rate_limit() {
            warn!(
                "cannot lift the kernel's rate limit on /dev/kmsg ({e}): errors and warnings also go to the console"
            );
        }
    }
    if config.delete_metadata {
        if let Some(path) = &config.metadata {
            ending.hidden_metadata = delete_metadata(path, metadata_read);
        }
    }
    if let Some(line) = kernel_line {
        let tokens = cmdline::tokenize(line);
        if tokens.params.iter().any(|p| p.name.starts_with(b"env.")) {
            warn!(
                "env.* values on the kernel command line can be read by every process \
                 in the VM (/proc/cmdline): put secrets in the metadata file"
            );
        }
    }
}

/// The machine: vminit made the subreaper when it is neither PID 1 nor a
/// VM's init, the host name set; in VM mode the machine set up (modules,
/// root, volumes, network) and the volumes given their owners, elsewhere a
/// warning for the settings that only a VM applies. `line` (the kernel
/// command line) gives modules their parameters. Returns the host name,
/// if one was set.
fn prepare_machine(
    ending: &mut Ending,
    config: &Config,
    pid1: bool,
    line: &[u8],
) -> Result<Option<String>, i32> {
    if !ending.vm && !pid1 {
        if let Err(e) = process::become_subreaper() {
            warn!("cannot become a child subreaper, orphans will not be reaped: {e}");
        }
    }
    let hostname = machine::name_machine(config, ending.vm, ending.real_machine);
    if !ending.vm {
        if setup::asks_for_machine(config)
            || !config.mounts.is_empty()
            || config.report_port.is_some()
            || config.report_vsock.is_some()
            || config.api.is_some()
        {
            warn!("modules, root, mount.*, net.*, report.* and api apply in VM mode only: ignored");
        }
        return Ok(hostname);
    }
    let set_up = setup::set_up_machine(config, ending.real_machine, line, hostname.as_deref())
        .map_err(|e| log::chain(&e))
        .and_then(|()| give_volumes(config));
    if let Err(message) = set_up {
        error!("{message}");
        return Err(ending.finish(EXIT_CONFIG, None));
    }
    Ok(hostname)
}

/// The app, before it starts: the metadata's files; its user,
/// environment and limits (checked to fit exec), its working directory;
/// then the set-up steps, run with them.
fn prepare_app(
    ending: &mut Ending,
    config: &Config,
    pid1: bool,
    hostname: Option<String>,
    from_kernel: bool,
) -> Result<Prepared, i32> {
    // First: a file may be the image's /etc/passwd, which the user's
    // lookup reads.
    if let Err(e) = steps::time("files", || machine::files::write_all(&config.files)) {
        error!("{}", log::chain(&e));
        return Err(ending.finish(EXIT_CONFIG, None));
    }
    let identity = match &config.user {
        Some(spec) => match steps::time("user", || start::resolve_user(spec)) {
            Ok(identity) => Some(identity),
            Err(e) => {
                error!("{e}");
                return Err(ending.finish(EXIT_CONFIG, None));
            }
        },
        None => None,
    };
    let env = start::environment(config, ending.vm, from_kernel, hostname, identity.as_ref());
    // A real VM's kernel gives 1024:4096; a namespace keeps what it has.
    if ending.real_machine && !config.rlimits.contains_key("nofile") {
        machine::set_default_nofile();
    }
    let limits = start::limits(config);
    if let Err(message) = start::exec_fits(config, &env) {
        error!("{message}");
        return Err(ending.finish(EXIT_CANNOT_RUN, None));
    }
    if let Some(dir) = &config.workdir {
        let there = Path::new(dir).is_dir() || (ending.vm && machine::create_workdir(dir));
        if !there {
            error!("workdir {}: no such directory", quote(dir));
            return Err(ending.finish(EXIT_CONFIG, None));
        }
    }
    let scope = if pid1 {
        Scope::WholeNamespace
    } else {
        Scope::Descendants
    };
    if let Err(message) = steps::time("setup", || start::run_setup(config, &env, &limits, scope)) {
        error!("{message}");
        return Err(ending.finish(EXIT_CONFIG, None));
    }
    Ok(Prepared {
        identity,
        env,
        limits,
        scope,
    })
}

/// The app's start: the OOM watch and the power button first, then the
/// spawn. Returns the app's pid and the power button, for the supervisor;
/// `Err` with the exit status once ended when the app could not start.
fn start_app(ending: &mut Ending, config: &Config, prepared: &Prepared) -> Result<Started, i32> {
    if ending.real_machine {
        // From here on: only kills during the app's run count.
        match oom::Watch::start() {
            Ok(watch) => ending.oom_watch = Some(watch),
            Err(e) => warn!("cannot read /dev/kmsg, OOM kills will not be noticed: {e}"),
        }
        ending.watched_mounts = machine::watch_mounts();
    }
    // Opened before the app starts, so a press during its start-up is
    // queued for the supervisor; closed on exec, so the app never has it.
    let power_button = (ending.real_machine && config.power_button).then(PowerButton::watch);
    let take_terminal = tty::we_are_foreground();
    let api = config
        .api
        .as_ref()
        .filter(|api| crate::api::will_start(api, ending.real_machine));
    let (stdio, logs) = capture_logs(config, api.is_some(), take_terminal);
    let identity = prepared.identity.as_ref();
    let request = process::Spawn {
        argv: &config.argv,
        env: &prepared.env,
        workdir: config.workdir.as_deref(),
        take_terminal,
        limits: &prepared.limits,
        user: identity.map(|i| (i.uid, i.gid, i.groups.as_slice())),
        no_new_privs: config.no_new_privs,
        stdio,
        new_session: false,
    };
    let spawned = steps::time("spawn", || process::spawn(&request));
    // The app has its ends: PID 1 keeps only the readers'.
    let logs = logs.map(|pipes| pipes.readers);
    let app = match spawned {
        Ok(pid) => pid,
        Err(e) => {
            let code = start::spawn_failed(&e, config, identity, &prepared.limits);
            return Err(ending.finish(code, None));
        }
    };
    ending.timings.app_exec = Some(clock::since_boot());
    // Before any line logged after the start adds to the log's time.
    let steps_line = steps::line();
    // After the app's start, which it must not delay.
    let api = api.and_then(|api| {
        let exec = crate::api::exec::ExecDefaults {
            env: prepared.env.clone(),
            workdir: config.workdir.clone(),
            user: prepared.identity.clone(),
            no_new_privs: config.no_new_privs,
        };
        crate::api::start(api, app, exec, logs)
    });
    // Logged after the start, so that writing to a slow console does not
    // delay the app.
    debug!("started pid {app} with configuration {}", config.redacted());
    debug!("steps: {steps_line}");
    Ok(Started {
        app,
        power_button,
        api,
    })
}

/// The app's stdout and stderr as pipes, when `vminit.logs=capture` asks
/// and the API will run to read them: the descriptors the app gets, and
/// the pipes.
fn capture_logs(
    config: &Config,
    api: bool,
    job_control: bool,
) -> (Option<[i32; 3]>, Option<LogPipes>) {
    if !config.logs_capture {
        return (None, None);
    }
    if !api {
        warn!("vminit.logs=capture needs the API (vminit.api): the app writes to the console");
        return (None, None);
    }
    if job_control {
        info!("vminit.logs=capture: the app is on a terminal with job control, and keeps it");
        return (None, None);
    }
    match LogPipes::new() {
        Ok(pipes) => (Some(pipes.app_stdio()), Some(pipes)),
        Err(e) => {
            warn!("cannot make pipes for the app's output ({e}): it writes to the console");
            (None, None)
        }
    }
}

/// The pipes of `vminit.logs=capture`.
struct LogPipes {
    /// stdout's, then stderr's.
    readers: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
    writers: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
}

impl LogPipes {
    fn new() -> std::io::Result<LogPipes> {
        let (out_read, out_write) = crate::sys::fd::pipe()?;
        let (err_read, err_write) = crate::sys::fd::pipe()?;
        // Room for a MiB each while the API's server restarts; the
        // default (64 KiB) when the kernel refuses.
        let _ = crate::sys::fd::set_pipe_size(&out_read, LOG_PIPE_BYTES);
        let _ = crate::sys::fd::set_pipe_size(&err_read, LOG_PIPE_BYTES);
        Ok(LogPipes {
            readers: (out_read, err_read),
            writers: (out_write, err_write),
        })
    }

    /// The app's fds 0, 1 and 2: vminit's stdin, the pipes' write ends.
    fn app_stdio(&self) -> [i32; 3] {
        use std::os::fd::AsRawFd;
        [0, self.writers.0.as_raw_fd(), self.writers.1.as_raw_fd()]
    }
}

/// How much of the app's output its pipes hold, unread.
const LOG_PIPE_BYTES: usize = 1024 * 1024;

/// The supervision: waits for the app (signals forwarded, zombies
/// reaped), then ends: the record made and sent at once, what is left
/// stopped. Returns the app's status.
fn supervise(ending: &mut Ending, config: &Config, scope: Scope, started: Started) -> i32 {
    let Started {
        app,
        power_button,
        api,
    } = started;
    let mut supervisor = Supervisor::new(app, config.grace, scope, tty::stdin_is_terminal())
        .with_stop_signal(config.stop_signal, ending.vm);
    if let Some(button) = power_button {
        supervisor = supervisor.with_power_button(button);
    }
    if let Some(api) = api {
        supervisor = supervisor.with_helper(Box::new(api));
    }
    let outcome = supervisor.wait_for_app();
    ending.timings.app_exit = Some(clock::since_boot());
    // From here to the end, no log line may hold PID 1 up.
    log::bound_console(ending.vm);
    if tty::foreground_group() == Some(app) {
        // Back to vminit's group, so the shell that started it gets it back
        // cleanly (SIGTTOU is blocked, so this works from the background).
        let _ = tty::set_foreground(tty::own_group());
    }
    if let Some(s) = outcome.signal() {
        info!("the application was killed by {}", signals::name(s));
    }
    let record = steps::time("end:record", || {
        ending.record(outcome.exit_code(), outcome.signal())
    });
    // Its waiters get the record; it ends with what is left, below.
    if let Some(api) = supervisor.helper() {
        api.exited(&record.to_json());
    }
    steps::time("end:stop_everything", || supervisor.stop_everything());
    ending.finish(outcome.exit_code(), outcome.signal())
}

/// Gives each volume that asks its owner (resolved in the image's
/// `/etc/passwd` and `/etc/group`, as `vminit.user` is) and mode, once
/// all are mounted and before anything runs as that user.
fn give_volumes(config: &Config) -> Result<(), String> {
    for (name, spec) in config.mounts.iter() {
        let Some(access) = config.mounts.access(name) else {
            continue;
        };
        let owner = match &access.owner {
            Some(user) => {
                let identity =
                    start::resolve_user(user).map_err(|e| format!("volume {name}: {e}"))?;
                Some((identity.uid, identity.gid))
            }
            None => None,
        };
        machine::volumes::give(name, &spec.target, owner, access.mode)
            .map_err(|e| log::chain(&e))?;
    }
    Ok(())
}

/// Deletes the metadata file (it was read already), or on a read-only
/// image hides it under a bind mount of `/dev/null`, which root cannot
/// read through either. When `path` is a symbolic link, the file it leads
/// to is what was read and what goes (the link with it). Returns the path
/// hidden under a mount, if it came to that.
fn delete_metadata(path: &str, read: Option<FileId>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real.to_string_lossy().into_owned(),
        Err(e) => {
            warn!("cannot find {path} again to delete it ({e}): the app may read it");
            return None;
        }
    };
    let now = std::fs::metadata(&real).ok().map(|m| FileId {
        dev: m.dev(),
        ino: m.ino(),
    });
    if now.is_none() || now != read {
        warn!("{path} leads to another file than the one read: nothing deleted");
        return None;
    }
    let through = if real == path {
        String::new()
    } else {
        format!(" (where {path} leads)")
    };
    let links = std::fs::metadata(&real).map_or(1, |m| m.nlink());
    match std::fs::remove_file(&real) {
        Ok(()) => {
            debug!("deleted {real}{through}");
            if !through.is_empty() {
                let _ = std::fs::remove_file(path);
            }
            if links > 1 {
                warn!(
                    "deleted {real}, but {} more hard links to it remain readable",
                    links - 1
                );
            }
            None
        }
        Err(remove) => match crate::sys::mount::bind("/dev/null", &real) {
            Ok(()) => {
                debug!("cannot delete {real}{through} ({remove}): hid it under /dev/null");
                Some(real)
            }
            Err(hide) => {
                warn!(
                    "cannot delete {real}{through} ({remove}) nor hide it ({hide}): the app can read it"
                );
                None
            }
        },
    }
}
