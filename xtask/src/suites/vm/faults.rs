//! The machine failing under the guest, with QEMU's own fault injection:
//! a volume whose writes fail with EIO (`blkdebug`), a root or volume that
//! hangs (an NBD server stopped with SIGSTOP), a volume and an overlay
//! that fill up, and a serial console the host stops reading. Each end
//! must come within its documented bound: the flush's 10 s without
//! progress, the console's 10 s, the grace period and the 5 s after
//! SIGKILL. x86-64 only: the injection is QEMU's, the same on every
//! architecture.

use std::time::Duration;

use super::checks::{expect, line, require};
use super::{Act, Case, Device, Image};
use crate::vm::qemu::{self, Console};

/// The modules a root or volume on a virtio disk needs on Debian's kernel.
const DISK_MODULES: &str = "vminit.modules=virtio_mmio,virtio_blk,crc32c_generic,ext4";

/// Added to every bound: a loaded machine under TCG is slow, and only a
/// hang, which would last for ever, must fail.
const MARGIN: Duration = Duration::from_secs(20);

/// vminit's bounds, as docs/reliability.md gives them.
const FLUSH_STALL: Duration = Duration::from_secs(10);
const CONSOLE_STALL: Duration = Duration::from_secs(10);
const KILL_WAIT: Duration = Duration::from_secs(5);

pub(super) fn cases() -> Vec<Case> {
    let mut cases = disk_cases();
    cases.extend(full_disk_cases());
    cases.extend(console_cases());
    cases
}

fn disk_cases() -> Vec<Case> {
    vec![
        Case {
            name: "eio_on_a_volume_reaches_the_app_and_the_end_names_the_mount",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES},virtio_console vminit.root=/dev/vda \
                 vminit.mount.data=/dev/vdb,/data,ext4 vminit.report.port=org.vminit.exit \
                 -- /bin/sh -c \"dd if=/dev/zero of=/data/f bs=1M count=22 conv=fsync; echo dd=$?; exit 5\""
            )),
            after: &[],
            devices: &[Device::RootDisk, Device::FailingDataDisk, Device::ExitPort],
            check: |c, o| {
                expect(c, 5)?;
                require(
                    c,
                    &[
                        "Input/output error",
                        "dd=1",
                        "/data: its disk failed writes",
                    ],
                )?;
                record_has(&o.port_record, r#""exit_code":5,"#)?;
                ended_within(c, "dd=1", FLUSH_STALL)
            },
        },
        Case {
            name: "a_hung_volume_at_the_end_costs_the_flush_bound_then_the_vm_powers_off",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.mount.data=/dev/vdb,/data,ext4 \
                 -- /bin/sh -c \"dd if=/dev/zero of=/data/big bs=1M count=16 2>/dev/null; echo written; sleep 2; exit 4\""
            )),
            after: &[
                ("written", Act::HangDisks),
                ("vminit: exit_code=", Act::ResumeDisks),
            ],
            devices: &[Device::RootDisk, Device::NbdDataDisk],
            check: |c, _| flush_given_up_in_bound(c),
        },
        Case {
            name: "a_hung_root_at_the_end_costs_the_flush_bound_then_the_vm_powers_off",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.root.rw=1 \
                 -- /bin/sh -c \"dd if=/dev/zero of=/big bs=1M count=16 2>/dev/null; echo written; sleep 2; exit 4\""
            )),
            after: &[
                ("written", Act::HangDisks),
                ("vminit: exit_code=", Act::ResumeDisks),
            ],
            devices: &[Device::NbdRootDisk],
            check: |c, _| flush_given_up_in_bound(c),
        },
        Case {
            name: "a_volume_that_hangs_while_the_app_runs_blocks_nothing_in_pid_1",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES},button,evdev vminit.root=/dev/vda \
                 vminit.mount.data=/dev/vdb,/data,ext4 vminit.grace=2 \
                 -- /bin/sh -c \"while :; do dd if=/dev/zero of=/data/f bs=1M count=4 conv=fsync 2>/dev/null; done & \
                 sleep 1; echo writing; sleep 3; echo press; wait\""
            )),
            after: &[
                ("writing", Act::HangDisks),
                ("press", Act::Qmp(qemu::POWER_BUTTON)),
                ("vminit: exit_code=", Act::ResumeDisks),
            ],
            devices: &[Device::RootDisk, Device::NbdDataDisk],
            check: |c, _| {
                // The shell, waiting, dies of the power button's SIGTERM.
                expect(c, 143)?;
                require(
                    c,
                    &[
                        "power button pressed: sending SIGTERM",
                        "in uninterruptible sleep (D)",
                        " (dd)",
                        "some processes did not die within 5s of SIGKILL",
                        "sync and unmount made no progress for 10s",
                    ],
                )?;
                let grace = Duration::from_secs(2);
                exit_line_within(c, "press", grace + KILL_WAIT + FLUSH_STALL)
            },
        },
    ]
}

fn full_disk_cases() -> Vec<Case> {
    vec![
        Case {
            name: "a_full_volume_gives_the_app_enospc_and_the_end_is_clean",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.mount.data=/dev/vdb,/data,ext4 \
                 -- /bin/sh -c \"dd if=/dev/zero of=/data/fill bs=1M count=64; echo dd=$?; exit 6\""
            )),
            after: &[],
            devices: &[Device::RootDisk, Device::DataDisk],
            check: |c, o| {
                expect(c, 6)?;
                require(c, &["No space left on device", "dd=1"])?;
                o.disks_clean()
            },
        },
        Case {
            name: "a_full_tmpfs_overlay_leaves_the_record_saying_why_the_app_ended",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES},overlay,virtio_console vminit.root=/dev/vda vminit.root.overlay=tmpfs:8m \
                 vminit.report.port=org.vminit.exit \
                 -- /bin/sh -c \"dd if=/dev/zero of=/fill bs=1M count=64; echo dd=$?; \
                 echo more > /more || echo no-room; kill -TERM $$\""
            )),
            after: &[],
            devices: &[Device::RootDisk, Device::ExitPort],
            check: |c, o| {
                expect(c, 143)?;
                require(c, &["No space left on device", "dd=1", "no-room"])?;
                record_has(&o.port_record, r#""signal":15,"#)?;
                o.disks_clean()
            },
        },
    ]
}

/// The app fills the console (a writer in the background, killed at the
/// end) and exits 3 two seconds after the cue, while the host is not
/// reading.
const FILLS_THE_CONSOLE: &str = "vminit.modules=virtio_mmio,virtio_console \
     vminit.report.port=org.vminit.exit \
     -- /bin/sh -c \"yes console-filler-console-filler-console-filler | head -c 3000000 & \
     echo stall-now; sleep 2; exit 3\"";

fn console_cases() -> Vec<Case> {
    vec![
        Case {
            name: "the_exit_line_waits_for_a_console_that_stalls_then_drains",
            image: Image::Normal,
            cmdline: FILLS_THE_CONSOLE,
            after: &[],
            devices: &[
                Device::StalledConsole {
                    after: "stall-now",
                    seconds: 8,
                },
                Device::ExitPort,
            ],
            check: |c, o| {
                // It used to be given up after 2 s.
                expect(c, 3)?;
                record_has(&o.port_record, r#""exit_code":3,"#)
            },
        },
        Case {
            name: "a_console_that_never_drains_holds_the_end_for_its_bound_only",
            image: Image::Normal,
            cmdline: FILLS_THE_CONSOLE,
            after: &[],
            devices: &[
                Device::StalledConsole {
                    after: "stall-now",
                    seconds: 45,
                },
                Device::ExitPort,
            ],
            check: |c, o| {
                // The host reads nothing for 45 s: QEMU must have exited
                // long before, with the record sent on the port.
                record_has(&o.port_record, r#""exit_code":3,"#)?;
                if c.exit_lines() != 0 {
                    return Err("the exit line came through a console never read".into());
                }
                ended_within(c, "stall-now", Duration::from_secs(2) + CONSOLE_STALL)
            },
        },
    ]
}

/// The app wrote to a disk that then hung and exited 4 two seconds later:
/// the flush was given up, and the exit line came within its bound.
fn flush_given_up_in_bound(console: &Console) -> Result<(), String> {
    expect(console, 4)?;
    require(console, &["sync and unmount made no progress for 10s"])?;
    exit_line_within(console, "written", Duration::from_secs(2) + FLUSH_STALL)
}

/// The exit record a host channel received contains `needle`.
fn record_has(record: &str, needle: &str) -> Result<(), String> {
    if record.contains(needle) {
        Ok(())
    } else {
        Err(format!("the port's record {record:?} lacks {needle}"))
    }
}

/// When the first line containing `cue` arrived.
fn arrival(console: &Console, cue: &str) -> Result<Duration, String> {
    console
        .lines
        .iter()
        .position(|l| l.contains(cue))
        .map(|i| console.arrived[i])
        .ok_or_else(|| format!("no line contains {cue:?}"))
}

/// QEMU exited within `bound` (plus [`MARGIN`]) of the line `cue`.
fn ended_within(console: &Console, cue: &str, bound: Duration) -> Result<(), String> {
    let from = arrival(console, cue)?;
    let took = console.exited.unwrap_or(console.wall).saturating_sub(from);
    if took <= bound + MARGIN {
        Ok(())
    } else {
        Err(format!(
            "the end took {took:?} after {cue:?}, over {bound:?} and the margin"
        ))
    }
}

/// The exit line came within `bound` (plus [`MARGIN`]) of the line `cue`.
fn exit_line_within(console: &Console, cue: &str, bound: Duration) -> Result<(), String> {
    let took = arrival(console, "vminit: exit_code=")?.saturating_sub(arrival(console, cue)?);
    if took <= bound + MARGIN {
        Ok(())
    } else {
        Err(format!(
            "the exit line came {took:?} after {cue:?}, over {bound:?} and the margin"
        ))
    }
}
