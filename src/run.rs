//! vminit from start to end: decide the mode, load the configuration,
//! prepare the machine, run the application, stop what is left, finish.
//!
//! A VM's init must never exit (that is a kernel panic), so in VM mode every
//! path, errors included, ends in [`machine::shutdown`]; in a container,
//! vminit exits with the application's status.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::app::identity::{self, Identity, IdentityError};
use crate::app::supervisor::{Outcome, Scope, Supervisor};
use crate::config::channels::VsockAddr;
use crate::config::cli::{self, CmdlineArg, Mode, Options};
use crate::config::error::{ConfigError, Source, escape};
use crate::config::mounts::DEFAULT_WAIT;
use crate::config::net::NetSettings;
use crate::config::settings::{LogTarget, Shutdown};
use crate::config::signals;
use crate::config::user::UserSpec;
use crate::config::{self, CmdlineInput, Config, FileId, cmdline};
use crate::machine::power_button::PowerButton;
use crate::machine::setup::{self, SetupError};
use crate::record::{
    self, EXIT_CANNOT_RUN, EXIT_CONFIG, EXIT_INTERNAL, EXIT_NOT_FOUND, Report, Timings, oom, steps,
};
use crate::sys::credentials::{self, RawLimit};
use crate::sys::process::{SpawnError, Step};
use crate::sys::{clock, power, process, signal, stdio, tty};
use crate::{debug, error, info, log, machine, warn};

/// The `PATH` a kernel-started init lacks (the kernel sets only HOME and TERM).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Restart rather than power off when vminit panics; set once configured.
static PANIC_RESTARTS: AtomicBool = AtomicBool::new(false);

/// How this run ends.
#[derive(Debug)]
struct Ending {
    vm: bool,
    real_machine: bool,
    /// `machine::prepare` ran (mounts, `/run/vminit`).
    prepared: bool,
    shutdown: Shutdown,
    /// Where the exit record goes besides the console and the status file.
    report_port: Option<String>,
    report_vsock: Option<VsockAddr>,
    /// The kernel log, read for OOM kills once the app ends.
    oom_watch: Option<oom::Watch>,
    timings: Timings,
    /// The record, once made: the host channels get it only once.
    record: Option<Report>,
    /// The metadata file hidden under a bind mount of `/dev/null`.
    hidden_metadata: Option<String>,
}

impl Ending {
    /// Takes the shutdown action and the host channels from `config`.
    fn adopt(&mut self, config: &Config) {
        self.shutdown = config.shutdown;
        self.report_port.clone_from(&config.report_port);
        self.report_vsock = config.report_vsock;
        PANIC_RESTARTS.store(self.shutdown == Shutdown::Reboot, Ordering::Relaxed);
    }

    /// Makes the exit record and, in VM mode, sends it to the host
    /// channels: as soon as the app's status is known, so that neither a
    /// grace period nor a slow sync delays it.
    fn record(&mut self, exit_code: i32, signal: Option<i32>) -> Report {
        if let Some(record) = self.record {
            return record;
        }
        // Also a shell that ran the app without exec: it exits with 137.
        let killed = signal == Some(libc::SIGKILL) || exit_code == 128 + libc::SIGKILL;
        let victims = self
            .oom_watch
            .take()
            .map(|mut w| w.victims(killed))
            .unwrap_or_default();
        for victim in &victims {
            warn!(
                "the kernel's OOM killer killed pid {} ({})",
                victim.pid,
                escape(&victim.command)
            );
        }
        let record = Report {
            exit_code,
            signal,
            oom_killed: !victims.is_empty(),
            timings: self.timings,
        };
        let channels = self.report_port.is_some() || self.report_vsock.is_some();
        if self.vm && !self.real_machine && channels {
            // As modules and the network: the host's vsock and ports
            // are not this namespace's to dial.
            warn!("report.* channels are a machine's: skipped in a PID namespace");
        } else if self.vm {
            if let Some(name) = &self.report_port {
                match record::send_to_port(&record, name) {
                    Ok(()) => debug!("sent the exit record to port {name}"),
                    Err(e) => warn!("{}", log::chain(&e)),
                }
            }
            if let Some(address) = self.report_vsock {
                match record::send_to_vsock(&record, address) {
                    Ok(()) => debug!("sent the exit record to vsock {address}"),
                    Err(e) => warn!("{}", log::chain(&e)),
                }
            }
        }
        self.record = Some(record);
        record
    }

    /// Container: returns the exit code for `main`. VM: never returns.
    fn finish(&mut self, exit_code: i32, signal: Option<i32>) -> i32 {
        log::bound_console();
        if let Some(path) = self.hidden_metadata.take().filter(|_| !self.vm) {
            // The caller's mount namespace outlives a container's vminit.
            if let Err(e) = crate::sys::mount::detach(&path) {
                warn!("cannot remove the mount that hid {path}: {e}");
            }
        }
        if self.vm {
            if !self.prepared {
                // An error before set-up: the channels need /sys, the
                // status file /run.
                machine::prepare(self.real_machine);
                self.prepared = true;
            }
            let record = self.record(exit_code, signal);
            machine::shutdown(record, self.shutdown, self.real_machine);
        }
        exit_code
    }
}

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
        let prepared = prepare_app(ending, &config, pid1, line, from_kernel)?;
        Ok(start_and_supervise(ending, &config, prepared))
    };
    match phases(&mut ending) {
        Ok(code) | Err(code) => code,
    }
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
        install_panic_hook();
    } else if !stdio::closed().is_empty() {
        let _ = stdio::fill_from("/dev/null");
    }
    let ending = Ending {
        vm: auto_vm,
        // Corrected once the mode is known; an auto-detected VM is a machine.
        real_machine: auto_vm,
        prepared: false,
        shutdown: Shutdown::default(),
        report_port: None,
        report_vsock: None,
        oom_watch: None,
        timings: Timings {
            init_start,
            ..Timings::default()
        },
        record: None,
        hidden_metadata: None,
    };
    (ending, pid1)
}

/// Reads the options (unless the kernel started vminit with the app's
/// argv) and settles the mode; in a VM prepares the machine's mounts.
/// Answers `--help` and `--version`. Returns the options and, in VM mode,
/// the kernel command line; `Err` with the exit status once ended.
fn choose_mode(
    ending: &mut Ending,
    words: &[OsString],
    pid1: bool,
) -> Result<(Options, Option<Vec<u8>>), i32> {
    let auto_vm = ending.vm;
    let kernel_line = if auto_vm { read_kernel_cmdline() } else { None };
    // The kernel starts init with the words after `--` as its argv: those
    // are the app's, not options, and the command line says the same.
    let options = if kernel_line
        .as_deref()
        .is_some_and(|line| started_by_kernel(line, words))
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
                ending.adopt(&lenient_config(None, kernel_line.as_deref()));
                return Err(ending.finish(EXIT_CONFIG, None));
            }
        }
    };
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
        ending.adopt(&lenient_config(
            Some(&options.layer),
            kernel_line.as_deref(),
        ));
        return Err(ending.finish(EXIT_CONFIG, None));
    }
    if ending.vm && !pid1 {
        error!("option: --mode vm needs vminit to be PID 1");
        return Err(EXIT_CONFIG);
    }
    let kernel_line = match (ending.vm, kernel_line) {
        (true, None) => read_kernel_cmdline(),
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
        let text = if options.help {
            cli::USAGE.to_owned()
        } else {
            version_line("vminit", env!("CARGO_PKG_VERSION")) + "\n"
        };
        let _ = std::io::stdout().write_all(text.as_bytes());
        return Err(ending.finish(0, None));
    }
    Ok((options, kernel_line))
}

/// Reads and validates the whole configuration (`--check` answers here),
/// sets up logging and acts on what must happen at once (hiding the
/// metadata file). Returns it, and whether it came from the kernel line.
fn load_config(
    ending: &mut Ending,
    options: &Options,
    kernel_line: Option<&[u8]>,
) -> Result<(Config, bool), i32> {
    // Even when the configuration is invalid, end the machine the way it asks.
    let lenient = || lenient_config(Some(&options.layer), kernel_line);
    let cmdline_input = match cmdline_input(options, kernel_line) {
        Ok(input) => input,
        Err(e) => {
            error!("{e}");
            ending.adopt(&lenient());
            return Err(ending.finish(EXIT_CONFIG, None));
        }
    };
    // Which metadata file was read, for delete_metadata.
    let metadata_read = std::cell::Cell::new(None);
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
            ending.hidden_metadata = delete_metadata(path, metadata_read.get());
        }
    }
    let from_kernel = cmdline_input
        .as_ref()
        .is_some_and(|i| i.source == Source::KernelCmdline);
    if let Some(line) = kernel_line.filter(|_| from_kernel) {
        let tokens = cmdline::tokenize(line);
        if tokens.params.iter().any(|p| p.name.starts_with(b"env.")) {
            warn!(
                "env.* values on the kernel command line can be read by every process \
                 in the VM (/proc/cmdline): put secrets in the metadata file"
            );
        }
    }
    Ok((config, from_kernel))
}

/// Prepares the machine and what the app needs (user, environment,
/// limits, working directory), and runs the set-up steps.
fn prepare_app(
    ending: &mut Ending,
    config: &Config,
    pid1: bool,
    line: &[u8],
    from_kernel: bool,
) -> Result<Prepared, i32> {
    if !ending.vm && !pid1 {
        if let Err(e) = process::become_subreaper() {
            warn!("cannot become a child subreaper, orphans will not be reaped: {e}");
        }
    }

    let hostname = name_machine(config, ending.vm, ending.real_machine);
    if let Err(message) = prepare_machine(config, ending, line, hostname.as_deref()) {
        error!("{message}");
        return Err(ending.finish(EXIT_CONFIG, None));
    }
    let identity = match &config.user {
        Some(spec) => match steps::time("user", || resolve_user(spec)) {
            Ok(identity) => Some(identity),
            Err(e) => {
                error!("{e}");
                return Err(ending.finish(EXIT_CONFIG, None));
            }
        },
        None => None,
    };
    let mut env = app_environment(config, ending.vm, from_kernel);
    // As Docker sets it, unless the configuration does.
    if let Some(name) = hostname.filter(|_| !config.env.contains_key("HOSTNAME")) {
        set_var(&mut env, "HOSTNAME", &name);
    }
    // The user's home, unless the configuration says otherwise.
    if let Some(identity) = identity
        .as_ref()
        .filter(|_| !config.env.contains_key("HOME"))
    {
        set_var(&mut env, "HOME", &identity.home);
    }
    // A real VM's kernel gives 1024:4096; a namespace keeps what it has.
    if ending.real_machine && !config.rlimits.contains_key("nofile") {
        machine::set_default_nofile();
    }
    let limits = app_limits(config);
    if let Err(message) = exec_fits(config, &env) {
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
    if let Err(message) = steps::time("setup", || run_setup(config, &env, &limits, scope)) {
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

/// Starts the app, supervises it to its end and ends: returns the status.
fn start_and_supervise(ending: &mut Ending, config: &Config, prepared: Prepared) -> i32 {
    let Prepared {
        identity,
        env,
        limits,
        scope,
    } = prepared;
    if ending.real_machine {
        // From here on: only kills during the app's run count.
        match oom::Watch::start() {
            Ok(watch) => ending.oom_watch = Some(watch),
            Err(e) => warn!("cannot read /dev/kmsg, OOM kills will not be noticed: {e}"),
        }
    }
    // Opened before the app starts, so a press during its start-up is
    // queued for the supervisor; closed on exec, so the app never has it.
    let power_button = (ending.real_machine && config.power_button).then(PowerButton::watch);
    let take_terminal = tty::we_are_foreground();
    let request = process::Spawn {
        argv: &config.argv,
        env: &env,
        workdir: config.workdir.as_deref(),
        take_terminal,
        limits: &limits,
        user: identity
            .as_ref()
            .map(|i| (i.uid, i.gid, i.groups.as_slice())),
        no_new_privs: config.no_new_privs,
    };
    let app = match steps::time("spawn", || process::spawn(&request)) {
        Ok(pid) => pid,
        Err(e) => {
            let code = spawn_failed(&e, config, identity.as_ref(), &limits);
            return ending.finish(code, None);
        }
    };
    ending.timings.app_exec = Some(clock::since_boot());
    // Before any line logged after the start adds to the log's time.
    let steps_line = steps::line();
    // Logged after the start, so that writing to a slow console does not
    // delay the app.
    debug!("started pid {app} with configuration {}", config.redacted());
    debug!("steps: {steps_line}");

    let mut supervisor = Supervisor::new(app, config.grace, scope, tty::stdin_is_terminal())
        .with_stop_signal(config.stop_signal, ending.vm);
    if let Some(button) = power_button {
        supervisor = supervisor.with_power_button(button);
    }
    let outcome = supervisor.wait_for_app();
    ending.timings.app_exit = Some(clock::since_boot());
    // From here to the end, no log line may hold PID 1 up.
    log::bound_console();
    if tty::foreground_group() == Some(app) {
        // Back to vminit's group, so the shell that started it gets it back
        // cleanly (SIGTTOU is blocked, so this works from the background).
        let _ = tty::set_foreground(tty::own_group());
    }
    if let Some(s) = outcome.signal() {
        info!("the application was killed by {}", signals::name(s));
    }
    steps::time("end:record", || {
        ending.record(outcome.exit_code(), outcome.signal());
    });
    steps::time("end:stop_everything", || supervisor.stop_everything());
    ending.finish(outcome.exit_code(), outcome.signal())
}

/// The configuration the options and the kernel command line give, read
/// leniently: used when the configuration as a whole is invalid, so that
/// a Firecracker VM (which ends only on a restart) still ends, and the
/// host channels still get the exit record.
fn lenient_config(options: Option<&crate::config::Layer>, kernel_line: Option<&[u8]>) -> Config {
    let from_kernel = kernel_line
        .map(|line| cmdline::parse(line, &Source::KernelCmdline).0)
        .unwrap_or_default();
    let mut layers = vec![&from_kernel];
    layers.extend(options);
    config::merge(&layers)
}

/// Whether the configuration asks for machine-wide set-up.
fn asks_for_machine(config: &Config) -> bool {
    !config.modules.is_empty()
        || config.net != NetSettings::default()
        || config.root.source.is_some()
}

/// Loads modules, switches to the root, mounts the volumes and configures
/// the network, as the configuration asks, in that order: the root and
/// volumes may need modules, and resolv.conf and hosts belong in the final
/// root. Inside a PID namespace (`--mode vm` in tests) the kernel, the
/// root and the network are the host's: only the volumes are mounted (in
/// the namespace's own mount namespace). `kernel_line` gives the modules
/// their parameters.
fn set_up_machine(
    config: &Config,
    real_machine: bool,
    kernel_line: &[u8],
    hostname: Option<&str>,
) -> Result<(), SetupError> {
    let wait = config.root.wait.unwrap_or(DEFAULT_WAIT);
    if !real_machine {
        if asks_for_machine(config) {
            warn!(
                "modules, root and net.* are applied by a machine's init only: skipped in a PID namespace"
            );
        }
        return Ok(crate::machine::volumes::mount_all(&config.mounts, wait)?);
    }
    if !config.modules.is_empty() {
        setup::load_modules(&config.modules, kernel_line)?;
    }
    crate::machine::root::switch(&config.root)?;
    steps::time("volumes", || {
        crate::machine::volumes::mount_all(&config.mounts, wait)
    })?;
    if config.net.configures_interface() {
        steps::time("network", || setup::configure_network(&config.net))?;
    }
    steps::time("network_files", || {
        setup::write_network_files(&config.net, hostname)
    })
}

/// Says which step of starting the app failed; returns the exit status:
/// 127 when exec did not find the command, 126 for any other failure.
fn spawn_failed(
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
    }
    EXIT_CANNOT_RUN
}

/// A word from the configuration in a log line: quoted, escaped, and cut
/// (a megabyte-long argv[0] would flood the console).
fn quote(word: &str) -> String {
    format!("\"{}\"", crate::config::error::shorten_to(word, 200))
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

/// Resolves a user against the image's `/etc/passwd` and `/etc/group`
/// (a missing file reads as empty: numeric ids still work).
/// Sets `key` in an environment, replacing what it had.
fn set_var(env: &mut Vec<(OsString, OsString)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.into(), value.into()));
}

/// The machine's name: the configured one, else (Docker names a container
/// by its id) the boot's; `None` when none was set.
fn name_machine(config: &Config, vm: bool, real_machine: bool) -> Option<String> {
    config
        .hostname
        .clone()
        .or_else(|| real_machine.then(machine::default_hostname).flatten())
        .filter(|name| machine::set_hostname(name, vm, real_machine))
}

/// VM mode: the machine set up, the volumes given their owners. Elsewhere
/// a warning for the settings that only a VM applies.
fn prepare_machine(
    config: &Config,
    ending: &Ending,
    kernel_line: &[u8],
    hostname: Option<&str>,
) -> Result<(), String> {
    if ending.vm {
        set_up_machine(config, ending.real_machine, kernel_line, hostname)
            .map_err(|e| log::chain(&e))?;
        return give_volumes(config);
    }
    if asks_for_machine(config)
        || !config.mounts.is_empty()
        || config.report_port.is_some()
        || config.report_vsock.is_some()
    {
        warn!("modules, root, mount.*, net.* and report.* apply in VM mode only: ignored");
    }
    Ok(())
}

/// The configured resource limits, ready for setrlimit.
fn app_limits(config: &Config) -> Vec<RawLimit> {
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
fn exec_fits(config: &Config, env: &[(OsString, OsString)]) -> Result<(), String> {
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
fn run_setup(
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
                let identity = resolve_user(user).map_err(|e| format!("volume {name}: {e}"))?;
                Some((identity.uid, identity.gid))
            }
            None => None,
        };
        machine::volumes::give(name, &spec.target, owner, access.mode)
            .map_err(|e| log::chain(&e))?;
    }
    Ok(())
}

fn resolve_user(spec: &UserSpec) -> Result<Identity, IdentityError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    identity::resolve(spec, &passwd, &group)
}

/// Mounts `/proc` if needed and reads the kernel command line.
fn read_kernel_cmdline() -> Option<Vec<u8>> {
    if let Err(message) = machine::mount_proc() {
        warn!("{message}");
    }
    match machine::kernel_cmdline() {
        Ok(line) => Some(line),
        Err(e) => {
            warn!("cannot read /proc/cmdline: {e}");
            None
        }
    }
}

/// Whether vminit's argv is what the kernel gives init: every unknown bare
/// word before `--` (no `=`, no `.`; e.g. Firecracker's default
/// `nomodules`), then the words after `--`. Which bare words the kernel
/// knows (`quiet`, `ro`, …) and keeps cannot be told from here, so any
/// in-order selection of them counts.
fn started_by_kernel(line: &[u8], words: &[OsString]) -> bool {
    let tokens = cmdline::tokenize(line);
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

/// The command line to read: `--cmdline`, `--cmdline-file`, else the kernel's in VM mode.
fn cmdline_input(
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
            let text =
                config::read_config_file(path).map_err(|p| ConfigError::new(&source, "", p))?;
            Some(CmdlineInput { source, text })
        }
        None => kernel_line.map(|text| CmdlineInput {
            source: Source::KernelCmdline,
            text: text.to_vec(),
        }),
    })
}

/// The application's environment: vminit's own, less the kernel words vminit
/// consumed, with the configured variables over it.
fn app_environment(config: &Config, vm: bool, from_kernel: bool) -> Vec<(OsString, OsString)> {
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

/// In VM mode a panic must still end the machine, not the kernel.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        log::always(format_args!("internal error: {info}"));
        crate::sys::mount::sync();
        machine::end_console(EXIT_INTERNAL, true);
        let _ = power::end_machine(PANIC_RESTARTS.load(Ordering::Relaxed));
        loop {
            let _ = signal::wait(None);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

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
