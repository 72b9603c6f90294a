//! How a run ends, whichever path it takes: the [`Ending`] that makes the
//! exit record once (with the OOM kills seen while the app ran), sends it
//! to the host's channels, and ends: in a container with the exit code
//! for `main`, in a VM with [`machine::shutdown`]; and the panic hook that
//! still ends the machine when vminit itself panics.
//!
//! A VM's init must never exit (that is a kernel panic), so every path of
//! [`crate::run`], errors included, goes through [`Ending::finish`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::Config;
use crate::config::channels::VsockAddr;
use crate::config::error::escape;
use crate::config::settings::Shutdown;
use crate::record::{self, EXIT_INTERNAL, Report, Timings, oom};
use crate::sys::{power, signal};
use crate::{debug, log, machine, warn};

/// Restart rather than power off when vminit panics; set once configured.
static PANIC_RESTARTS: AtomicBool = AtomicBool::new(false);

/// How this run ends.
#[derive(Debug)]
pub struct Ending {
    pub vm: bool,
    pub real_machine: bool,
    /// `machine::prepare` ran (mounts, `/run/vminit`).
    pub prepared: bool,
    pub shutdown: Shutdown,
    /// Where the exit record goes besides the console and the status file.
    pub report_port: Option<String>,
    pub report_vsock: Option<VsockAddr>,
    /// The kernel log, read for OOM kills once the app ends.
    pub oom_watch: Option<oom::Watch>,
    pub timings: Timings,
    /// The record, once made: the host channels get it only once.
    pub record: Option<Report>,
    /// The metadata file hidden under a bind mount of `/dev/null`.
    pub hidden_metadata: Option<String>,
    /// The mounts the end tells of lost writes on (a machine's).
    pub watched_mounts: machine::WatchedMounts,
}

impl Ending {
    /// The ending known at the start: a VM's (which is also a machine's)
    /// when `vm`, with nothing configured yet.
    pub fn new(vm: bool, init_start: Duration) -> Ending {
        Ending {
            vm,
            // Corrected once the mode is known; an auto-detected VM is a machine.
            real_machine: vm,
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
            watched_mounts: Vec::new(),
        }
    }

    /// Takes the shutdown action and the host channels from `config`.
    pub fn adopt(&mut self, config: &Config) {
        self.shutdown = config.shutdown;
        self.report_port.clone_from(&config.report_port);
        self.report_vsock = config.report_vsock;
        PANIC_RESTARTS.store(self.shutdown == Shutdown::Reboot, Ordering::Relaxed);
    }

    /// Makes the exit record and, in VM mode, sends it to the host
    /// channels: as soon as the app's status is known, so that neither a
    /// grace period nor a slow sync delays it.
    pub fn record(&mut self, exit_code: i32, signal: Option<i32>) -> Report {
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
    pub fn finish(&mut self, exit_code: i32, signal: Option<i32>) -> i32 {
        log::bound_console(self.vm);
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
            let watched = std::mem::take(&mut self.watched_mounts);
            machine::shutdown(record, self.shutdown, self.real_machine, watched);
        }
        exit_code
    }
}

/// In VM mode a panic must still end the machine, not the kernel.
pub fn install_panic_hook() {
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
