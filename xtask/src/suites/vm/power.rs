//! Stopping from the host: Ctrl-Alt-Del and the power button.

use super::checks::{expect, line, require};
use super::{Act, Case, Image};
use crate::vm::arch::Arch;
use crate::vm::qemu;

/// Ctrl-Alt-Del and the power button (its modules are `arch`'s).
pub(super) fn cases(arch: Arch) -> Vec<Case> {
    vec![
        Case {
            name: "ctrl_alt_del_from_the_host_reaches_the_app_as_sigint",
            image: Image::Normal,
            cmdline: "vminit.grace=5 -- /tests/wait-for-int.sh",
            after: &[("app ready", Act::Qmp(qemu::CTRL_ALT_DEL))],
            devices: &[],
            check: |c, _| {
                expect(c, 42)?;
                require(c, &["app got SIGINT"])
            },
        },
        Case {
            name: "the_power_button_stops_the_app_once_like_sigterm",
            image: Image::Normal,
            // The second press comes during the grace period: no second TERM.
            cmdline: line(format!(
                "vminit.modules={} vminit.grace=5 -- /bin/sh -c \
                      \"n=0; trap 'n=$((n+1)); echo got-term-$n' TERM; echo button-ready; \
                      while [ $n = 0 ]; do sleep 0.1; done; sleep 2; echo terms=$n; exit $((40+n))\"",
                arch.power_button_modules().join(",")
            )),
            after: &[
                ("button-ready", Act::Qmp(qemu::POWER_BUTTON)),
                ("got-term-1", Act::Qmp(qemu::POWER_BUTTON)),
            ],
            devices: &[],
            check: |c, _| {
                expect(c, 41)?;
                require(c, &["power button pressed: sending SIGTERM", "terms=1"])
            },
        },
        Case {
            name: "the_power_button_sends_the_stop_signal",
            image: Image::Normal,
            // PostgreSQL's StopSignal: SIGINT is its fast shutdown.
            cmdline: line(format!(
                "vminit.modules={} vminit.grace=5 vminit.stop_signal=SIGINT -- /bin/sh -c \
                 \"trap 'echo got-term; exit 43' TERM; trap 'echo got-int; exit 42' INT; \
                 echo button-ready; while :; do sleep 0.1; done\"",
                arch.power_button_modules().join(",")
            )),
            after: &[("button-ready", Act::Qmp(qemu::POWER_BUTTON))],
            devices: &[],
            check: |c, _| {
                expect(c, 42)?;
                require(c, &["power button pressed: sending SIGINT", "got-int"])
            },
        },
        Case {
            name: "power_button_0_leaves_the_button_alone",
            image: Image::Normal,
            cmdline: line(format!(
                "vminit.modules={} vminit.power_button=0 -- /bin/sh -c \
                 \"trap 'echo got-term' TERM; echo button-ready; sleep 3; exit 5\"",
                arch.power_button_modules().join(",")
            )),
            after: &[("button-ready", Act::Qmp(qemu::POWER_BUTTON))],
            devices: &[],
            check: |c, _| {
                expect(c, 5)?;
                if c.has("got-term") || c.has("power button pressed") {
                    return Err("the press reached the app".into());
                }
                Ok(())
            },
        },
    ]
}
