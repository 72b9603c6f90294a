//! The exit record sent to the host: over virtio-serial and over vsock,
//! and a vsock host that never closes.

use super::checks::{expect, require};
use super::{Case, Device, Image};

/// The exit record's channels and their deadline.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "oom_kill_reported_over_virtio_serial_and_vsock",
            image: Image::Normal,
            cmdline: "vminit.modules=virtio_mmio,virtio_console,vsock_loopback \
                      vminit.report.port=org.vminit.exit vminit.report.vsock=1:5000 \
                      vminit.grace=5 -- /tests/oom.sh",
            qmp_after: &[],
            devices: &[Device::ExitPort],
            check: |c, outside| {
                expect(c, 137)?;
                let record = r#"{"exit_code":137,"oom_killed":true,"signal":9,"timings":{"#;
                require(
                    c,
                    &[
                        "listener ready",
                        "the kernel's OOM killer killed pid",
                        &format!("vsock-listen: received {record}"),
                    ],
                )?;
                // The host closed after one line: a receipt, not a timeout.
                if c.has("Cannot send to vsock") || c.has("did not close the connection") {
                    return Err("the vsock channel reported a failure".into());
                }
                if !outside.port_record.starts_with(record)
                    || !outside.port_record.ends_with("}\n")
                    || outside.port_record.lines().count() != 1
                {
                    return Err(format!("the port got {:?}", outside.port_record));
                }
                Ok(())
            },
        },
        Case {
            name: "a_vsock_host_that_never_closes_costs_the_deadline_not_the_status",
            image: Image::Normal,
            cmdline: "vminit.modules=vsock_loopback vminit.report.vsock=1:5001 vminit.grace=1 \
                      -- /tests/vsock-hold.sh",
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 7)?;
                require(
                    c,
                    &[
                        r#"vsock-listen: received {"exit_code":7,"oom_killed":false,"signal":null,"#,
                        "Sent the exit record to vsock 1:5001, but the host did not close the connection within 2 s",
                    ],
                )
            },
        },
    ]
}
