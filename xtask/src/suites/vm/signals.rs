//! The app's processes: orphans reaped, exit statuses, signals forwarded,
//! the grace period, and the kernel log vminit reports them to.

use super::checks::{expect, line, require};
use super::{Case, Image};

/// Reaping, statuses, signals and their lines in the kernel log.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "orphaned_zombies_are_reaped_and_a_signal_death_is_137",
            image: Image::Normal,
            cmdline: "-- /tests/zombies.sh",
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 137)?;
                require(c, &["zombies=0"])
            },
        },
        Case {
            name: "a_missing_command_is_127_logged_to_kmsg",
            image: Image::Normal,
            // A path of 1,100 bytes: quoted whole, the line was more than
            // the kernel keeps of a record, and lost.
            cmdline: line(format!(
                "vminit.log_target=kmsg -- /no/such/app/{}",
                "a".repeat(1100)
            )),
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 127)?;
                // Through the kernel log: the console shows it with a printk stamp.
                let logged = c.lines.iter().any(|l| {
                    l.starts_with('[')
                        && l.contains("] vminit: error: cannot run \"/no/such/app/aaaa")
                        && l.contains("…\": No such file or directory")
                });
                if logged {
                    Ok(())
                } else {
                    Err("the error did not go through /dev/kmsg".into())
                }
            },
        },
        Case {
            name: "kmsg_lines_are_cut_and_not_rate_limited",
            image: Image::Normal,
            // loglevel=8: the console shows kmsg's debug lines too. The app
            // sends 15 signals to PID 1 within a second; the kernel lets a
            // writer of /dev/kmsg have 10 lines per 5 s unless lifted.
            // A 1,500-byte argument makes the debug line with the
            // configuration longer than a kmsg record: it is cut.
            cmdline: line(format!(
                "loglevel=8 vminit.log_target=kmsg vminit.verbosity=debug -- /tests/signal-init.sh {}",
                "y".repeat(1500)
            )),
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                let forwarded = c
                    .lines
                    .iter()
                    .filter(|l| l.starts_with('[') && l.contains("] vminit: forwarding SIGUSR1"))
                    .count();
                // More than the kernel's burst of 10; signals sent faster
                // than PID 1 takes them may coalesce, so not always 15.
                let cut = c.lines.iter().any(|l| {
                    l.starts_with('[')
                        && l.contains("] vminit: started pid")
                        && l.ends_with(" bytes, cut)")
                });
                if !cut {
                    return Err("no kmsg line with the configuration, cut".into());
                }
                if forwarded > 10 && !c.has("suppressed due to ratelimiting") {
                    Ok(())
                } else {
                    Err(format!(
                        "{forwarded} of 15 forwarding lines reached the kernel log"
                    ))
                }
            },
        },
        Case {
            name: "a_background_process_ignoring_sigterm_ends_at_the_grace_period",
            image: Image::Normal,
            // The app leaves only once the background shell has set its trap.
            cmdline: r#"vminit.grace=1 -- sh -c "(trap '' TERM; touch /tmp/bg-ready; exec sleep 1000) & while [ ! -e /tmp/bg-ready ]; do sleep 0.05; done; exit 4""#,
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 4)?;
                require(
                    c,
                    &["processes still running after the grace period: sending SIGKILL"],
                )
            },
        },
    ]
}
