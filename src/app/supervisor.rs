//! PID 1's duties while the application runs, and after it ends.
//!
//! One loop does everything, in one thread: it takes blocked signals one at
//! a time with `sigtimedwait`, forwards them to the application's process
//! group, and after every wake-up reaps all exited children with a
//! `waitpid(-1, WNOHANG)` loop that recognises the application's pid. No
//! handler, no reaper thread, so no exit status can be stolen or missed,
//! however many SIGCHLDs coalesce.

use std::time::{Duration, Instant};

use crate::config::signals;
use crate::machine::power_button::PowerButton;
use crate::sys::process::{self, Reaped};
use crate::sys::{signal, tty};
use crate::{debug, error, info, warn};

/// How the application ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Killed(i32),
    /// Its status cannot be had: it was reaped by someone else (no child
    /// is left), or it did not die within [`KILL_WAIT`] of SIGKILL (a
    /// process in uninterruptible sleep, or traced by a stuck tracer).
    Lost,
}

impl Outcome {
    /// The shell convention: the exit code, or 128 + the signal number;
    /// vminit's own failure status when the app's was lost.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Exited(code) => code,
            Outcome::Killed(signal) => 128 + signal,
            Outcome::Lost => crate::record::EXIT_INTERNAL,
        }
    }

    /// The signal that killed the application, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            Outcome::Killed(signal) => Some(signal),
            Outcome::Exited(_) | Outcome::Lost => None,
        }
    }
}

/// Who vminit is responsible for, which decides how "everything" is signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// PID 1 of its namespace: `kill(-1)` reaches every other process.
    WholeNamespace,
    /// A subreaper: only its own descendants, found through `/proc`.
    Descendants,
}

/// What a helper process of PID 1 (the host API's server) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Send this signal to the app's group, as forwarding does.
    Signal(i32),
    /// The graceful stop a power-button press starts, with this grace
    /// period instead of the configured one when given.
    Stop(Option<Duration>),
}

/// A process PID 1 forked to serve beside the app (the host API): the
/// supervisor reaps it, restarts it when it dies, takes its requests
/// when its channel raises SIGIO, and tells it how the app fares.
pub trait Helper: std::fmt::Debug {
    /// Whether `pid` is the helper (never the app).
    fn owns(&self, pid: i32) -> bool;
    /// It was reaped, with `status` as words for the log.
    fn ended(&mut self, status: &str);
    /// When it is due to start again, after it ended.
    fn restart_due(&self) -> Option<Instant>;
    fn restart(&mut self);
    /// What it asked for since last time.
    fn requests(&mut self) -> Vec<Request>;
    /// A graceful stop began.
    fn stopping(&mut self);
    /// The app ended, with this exit record.
    fn exited(&mut self, record: &serde_json::Value);
    /// Everything left has been stopped: the last of its work.
    fn finish(&mut self);
}

/// Warns of the processes in uninterruptible sleep, when the grace period
/// ends: SIGKILL cannot end them until their call returns (a hung disk).
fn report_uninterruptible_sleep() {
    let pids = process::descendants(process::own_pid()).unwrap_or_default();
    let stuck = process::in_uninterruptible_sleep(&pids);
    if !stuck.is_empty() {
        warn!(
            "in uninterruptible sleep (D), on a hung disk most often, \
             unable to die until their call returns: {}",
            process::describe(&stuck)
        );
    }
}

/// How long to wait for SIGKILLed processes to be reaped before giving up
/// on them (a process in uninterruptible sleep cannot die).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Supervises the application until it ends.
#[derive(Debug)]
pub struct Supervisor {
    app: i32,
    grace: Duration,
    scope: Scope,
    /// Whether standard input is a terminal, so job control applies.
    job_control: bool,
    /// When whatever is alive gets SIGKILL; set by SIGTERM or SIGINT.
    deadline: Option<Instant>,
    /// The grace period already ran out and SIGKILL went to everything.
    killed: bool,
    /// The app has been reaped: its pid (and group id) may be reused.
    app_reaped: bool,
    /// Watched in VM mode: a press stops the app as SIGTERM does.
    power_button: Option<PowerButton>,
    /// The app has had its stop signal (for a SIGTERM, or a press): a
    /// second one is not sent, so that a stop is never doubled.
    terminated: bool,
    /// What a graceful stop sends the app: the image's `StopSignal`.
    stop_signal: i32,
    /// Whether SIGTERM to vminit is a graceful stop that the app gets as
    /// `stop_signal` (VM mode). A container engine sends the image's stop
    /// signal itself, and vminit forwards what it gets.
    sigterm_stops: bool,
    /// The host API's server, when it runs.
    helper: Option<Box<dyn Helper>>,
}

impl Supervisor {
    pub fn new(app: i32, grace: Duration, scope: Scope, job_control: bool) -> Self {
        Supervisor {
            app,
            grace,
            scope,
            job_control,
            deadline: None,
            killed: false,
            app_reaped: false,
            power_button: None,
            terminated: false,
            stop_signal: libc::SIGTERM,
            sigterm_stops: false,
            helper: None,
        }
    }

    /// Stops gracefully with `signal`: a power-button press, and with
    /// `sigterm_stops` a SIGTERM to vminit, send it to the app.
    pub fn with_stop_signal(mut self, signal: i32, sigterm_stops: bool) -> Self {
        self.stop_signal = signal;
        self.sigterm_stops = sigterm_stops;
        self
    }

    /// Watches `button` while the app runs.
    pub fn with_power_button(mut self, button: PowerButton) -> Self {
        self.power_button = Some(button);
        self
    }

    /// Serves `helper` while the app runs.
    pub fn with_helper(mut self, helper: Box<dyn Helper>) -> Self {
        self.helper = Some(helper);
        self
    }

    /// The helper, to tell it how the app ended.
    pub fn helper(&mut self) -> Option<&mut (dyn Helper + 'static)> {
        self.helper.as_deref_mut()
    }

    /// Runs until the application has ended and been reaped, or is lost.
    pub fn wait_for_app(&mut self) -> Outcome {
        // Set once SIGKILL went to the app: how long it has to die.
        let mut kill_wait: Option<Instant> = None;
        // Reap first: the app may have ended before the loop started. Then
        // only after SIGCHLD (which stays pending, blocked, until taken: no
        // child's end goes unseen) or a timeout: a forwarded signal costs
        // no waitpid.
        let mut reap_due = true;
        loop {
            if reap_due && let Some(outcome) = self.reap_all() {
                self.app_reaped = true;
                return outcome;
            }
            if kill_wait.is_some_and(|d| Instant::now() >= d) {
                warn!(
                    "the application did not end within {KILL_WAIT:?} of SIGKILL \
                     (uninterruptible sleep?): its status is lost"
                );
                return Outcome::Lost;
            }
            let restart = (!self.killed)
                .then(|| self.helper.as_ref().and_then(|h| h.restart_due()))
                .flatten();
            let timeout = self
                .deadline
                .into_iter()
                .chain(kill_wait)
                .chain(restart)
                .min()
                .map(|d| d.saturating_duration_since(Instant::now()));
            let received = signal::wait(timeout);
            reap_due = !matches!(received, Ok(Some(r)) if r.signal != libc::SIGCHLD);
            match received {
                // Not the app's (a log write to a closed pipe raises SIGPIPE);
                // and not logged, which could raise it again.
                Ok(Some(received)) if received.from_self => {}
                Ok(Some(received)) if received.io_ready => self.on_input(),
                Ok(Some(received)) => self.on_signal(received.signal),
                Ok(None) => {}
                Err(error) => warn!("waiting for signals failed: {error}"),
            }
            // Not once everything was killed: the app is on its way out.
            if let Some(helper) = &mut self.helper
                && !self.killed
                && helper.restart_due().is_some_and(|d| Instant::now() >= d)
            {
                helper.restart();
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                info!("grace period over: sending SIGKILL");
                report_uninterruptible_sleep();
                self.signal_everything(libc::SIGKILL);
                self.deadline = None;
                self.killed = true;
                kill_wait = Some(Instant::now() + KILL_WAIT);
            }
        }
    }

    /// A watched file has input: a power-button press is a stop request;
    /// the helper's channel holds its requests.
    fn on_input(&mut self) {
        if self.power_button.as_ref().is_some_and(PowerButton::pressed) {
            self.stop("power button pressed", self.grace);
        }
        let requests = self.helper.as_mut().map(|h| h.requests());
        for request in requests.unwrap_or_default() {
            match request {
                Request::Signal(signal) => {
                    info!("API: sending {}", signals::name(signal));
                    self.forward(signal);
                }
                Request::Stop(grace) => self.stop("API: stop", grace.unwrap_or(self.grace)),
            }
        }
    }

    /// The graceful stop: the stop signal now, SIGKILL after `grace`.
    fn stop(&mut self, why: &str, grace: Duration) {
        if self.terminated || self.killed {
            debug!("{why} again: the application is already stopping");
            return;
        }
        info!(
            "{why}: sending {}, then SIGKILL after {grace:?}",
            signals::name(self.stop_signal),
        );
        let now = Instant::now();
        self.deadline
            .get_or_insert(now.checked_add(grace).unwrap_or(now + self.grace));
        self.terminated = true;
        self.forward(self.stop_signal);
        if let Some(helper) = &mut self.helper {
            helper.stopping();
        }
    }

    fn on_signal(&mut self, received: i32) {
        match received {
            libc::SIGCHLD => return,
            // One stop at a time: the app got its stop signal and its grace
            // period runs (a second `docker stop`, or SIGTERM after a press).
            libc::SIGTERM if self.terminated || self.killed => {
                debug!("SIGTERM again: the application is already stopping");
                return;
            }
            libc::SIGTERM | libc::SIGINT if self.deadline.is_none() => {
                debug!(
                    "{} starts the {:?} grace period",
                    signals::name(received),
                    self.grace
                );
                self.deadline = Some(Instant::now() + self.grace);
            }
            libc::SIGCONT if self.job_control && tty::we_are_foreground() => {
                // We were stopped with the app and are back in the foreground.
                let _ = tty::set_foreground(self.app);
            }
            _ => {}
        }
        let signal = if received == libc::SIGTERM && self.sigterm_stops {
            self.stop_signal
        } else {
            received
        };
        if signal == received {
            debug!("forwarding {}", signals::name(signal));
        } else {
            info!(
                "{}: sending the stop signal {}",
                signals::name(received),
                signals::name(signal)
            );
        }
        if received == libc::SIGTERM && !self.terminated {
            self.terminated = true;
            if let Some(helper) = &mut self.helper {
                helper.stopping();
            }
        }
        self.forward(signal);
    }

    /// Sends `signal` to the application's group, or to the application
    /// alone when it has left its group (`setsid`) and the group is gone.
    fn forward(&self, signal: i32) {
        if signal::send(-self.app, signal).is_err() {
            let _ = signal::send(self.app, signal);
        }
    }

    /// Reaps every child that has ended; returns the application's outcome
    /// when it was among them.
    fn reap_all(&mut self) -> Option<Outcome> {
        let mut outcome = None;
        // Stops matter only for job control (see on_app_stopped).
        let stops = self.job_control;
        loop {
            match process::reap(stops) {
                Ok(Reaped::Exited(pid, code)) if pid == self.app => {
                    outcome = Some(Outcome::Exited(code))
                }
                Ok(Reaped::Killed(pid, signal)) if pid == self.app => {
                    outcome = Some(Outcome::Killed(signal))
                }
                Ok(Reaped::Stopped(pid, signal)) if pid == self.app => self.on_app_stopped(signal),
                Ok(Reaped::Exited(pid, code)) if self.is_helper(pid) => {
                    self.helper_ended(&format!("exited with status {code}"));
                }
                Ok(Reaped::Killed(pid, signal)) if self.is_helper(pid) => {
                    self.helper_ended(&format!("was killed by {}", signals::name(signal)));
                }
                Ok(Reaped::Exited(..) | Reaped::Killed(..) | Reaped::Stopped(..)) => {}
                Ok(Reaped::Nothing) => return outcome,
                Ok(Reaped::NoChildren) if outcome.is_none() => {
                    // The kernel or another process reaped it: waiting
                    // on would wait forever.
                    error!("the application is gone without vminit seeing its exit status");
                    return Some(Outcome::Lost);
                }
                Ok(Reaped::NoChildren) => return outcome,
                Err(error) => {
                    warn!("waitpid failed: {error}");
                    return outcome;
                }
            }
        }
    }

    fn is_helper(&self, pid: i32) -> bool {
        self.helper.as_ref().is_some_and(|h| h.owns(pid))
    }

    fn helper_ended(&mut self, status: &str) {
        if let Some(helper) = &mut self.helper {
            helper.ended(status);
        }
    }

    /// The application stopped. When a terminal stopped it (Ctrl-Z, or a
    /// read or write from the background) and vminit is not PID 1, vminit
    /// takes the terminal back and stops too, so the shell that started it
    /// sees its job stop; `fg` or `bg` then sends SIGCONT, which resumes both
    /// (see `on_signal`). dumb-init does the same. As PID 1 (`docker run
    /// -it`), or without a job-control shell above, nobody would ever send
    /// SIGCONT: vminit resumes the app itself.
    fn on_app_stopped(&mut self, signal: i32) {
        debug!("the application stopped on {}", signals::name(signal));
        let by_terminal = matches!(signal, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU);
        if !(by_terminal && self.job_control) {
            return;
        }
        if self.scope == Scope::WholeNamespace || !tty::parent_can_resume_us() {
            self.forward(libc::SIGCONT);
            return;
        }
        if tty::foreground_group() == Some(self.app) {
            let _ = tty::set_foreground(tty::own_group());
        }
        let _ = signal::send(process::own_pid(), libc::SIGSTOP);
    }

    /// After the application ended: SIGTERM (and SIGCONT, so stopped
    /// processes can act on it) to everything left, then SIGKILL to what is
    /// still alive when the grace period ends, then reap it all.
    pub fn stop_everything(mut self) {
        self.stop_the_rest();
        if let Some(helper) = &mut self.helper {
            helper.finish();
        }
    }

    fn stop_the_rest(&mut self) {
        if self.reap_leftovers() {
            return;
        }
        if !self.killed {
            info!("stopping the remaining processes");
            self.signal_everything(libc::SIGTERM);
            self.signal_everything(libc::SIGCONT);
            let deadline = *self.deadline.get_or_insert(Instant::now() + self.grace);
            if self.wait_until_none_left(deadline, None) {
                return;
            }
        }
        warn!("processes still running after the grace period: sending SIGKILL");
        report_uninterruptible_sleep();
        self.signal_everything(libc::SIGKILL);
        if !self.wait_until_none_left(Instant::now() + KILL_WAIT, Some(libc::SIGKILL)) {
            warn!("some processes did not die within {KILL_WAIT:?} of SIGKILL");
        }
    }

    /// Reaps what has ended; true when no child is left.
    fn reap_leftovers(&mut self) -> bool {
        loop {
            match process::reap(false) {
                Ok(Reaped::NoChildren) => return true,
                Ok(Reaped::Nothing) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    }

    /// Reaps until no child is left (true) or `deadline` passes (false),
    /// sending `resend` again after each wake-up to catch late forks.
    fn wait_until_none_left(&mut self, deadline: Instant, resend: Option<i32>) -> bool {
        const RECHECK: Duration = Duration::from_millis(100);
        loop {
            if self.reap_leftovers() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Any signal wakes us. The app is gone: a repeated stop request
            // (a second Ctrl-Alt-Del, SIGTERM) ends the grace period now.
            let received = signal::wait(Some((deadline - now).min(RECHECK)));
            if let Some(signal) = resend {
                self.signal_everything(signal);
            } else if let Ok(Some(r)) = received
                && !r.from_self
                && matches!(r.signal, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
            {
                info!(
                    "{} while the rest stops: no more grace",
                    signals::name(r.signal)
                );
                return false;
            }
        }
    }

    fn signal_everything(&self, signal: i32) {
        match self.scope {
            Scope::WholeNamespace => {
                let _ = signal::send(-1, signal);
            }
            Scope::Descendants => {
                // The app's group members are descendants too: none escapes
                // the tree, as orphans are reparented to vminit.
                let descendants = process::descendants(process::own_pid());
                // While the app is unreaped its pid and group id are its own.
                // After, its bare pid is free for reuse and never signalled;
                // its group is, only when /proc cannot tell the
                // descendants: the kernel keeps a group's id from reuse
                // while any member lives, so kill(-group) reaches only
                // them, or nobody.
                if !self.app_reaped {
                    let _ = signal::send(-self.app, signal);
                    let _ = signal::send(self.app, signal);
                } else if descendants.is_none() {
                    let _ = signal::send(-self.app, signal);
                }
                for pid in descendants.unwrap_or_default() {
                    let _ = signal::send(pid, signal);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(Outcome::Exited(3).exit_code(), 3);
        assert_eq!(Outcome::Killed(9).exit_code(), 137);
        assert_eq!(Outcome::Killed(15).signal(), Some(15));
        assert_eq!(Outcome::Exited(0).signal(), None);
    }
}
