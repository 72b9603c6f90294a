//! The exit record sent to the host: over virtio-serial and over vsock
//! (its host side as Firecracker's, through `vhost-device-vsock`), and a
//! vsock host that never closes.

use super::checks::{expect, require};
use super::{Case, Device, Image};

/// The exit record's channels and their deadline.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "oom_kill_reported_over_virtio_serial_and_vsock",
            image: Image::Normal,
            cmdline: "vminit.modules=virtio_mmio,virtio_console,vmw_vsock_virtio_transport \
                      vminit.report.port=org.vminit.exit vminit.report.vsock=2:5000 \
                      vminit.grace=5 -- sort /dev/zero",
            after: &[],
            devices: &[
                Device::ExitPort,
                Device::Vsock {
                    port: 5000,
                    hold: false,
                },
            ],
            check: |c, outside| {
                expect(c, 137)?;
                require(c, &["the kernel's OOM killer killed pid"])?;
                // The host closed after one line: a receipt, not a timeout.
                if c.has("Cannot send to vsock") || c.has("did not close the connection") {
                    return Err("the vsock channel reported a failure".into());
                }
                let record = r#"{"exit_code":137,"oom_killed":true,"signal":9,"timings":{"#;
                for (channel, got) in [
                    ("the port", &outside.port_record),
                    ("the host's vsock listener", &outside.vsock_record),
                ] {
                    if !got.starts_with(record) || !got.ends_with("}\n") || got.lines().count() != 1
                    {
                        return Err(format!("{channel} got {got:?}"));
                    }
                }
                Ok(())
            },
        },
        Case {
            name: "a_vsock_host_that_never_closes_costs_the_deadline_not_the_status",
            image: Image::Normal,
            cmdline: "vminit.modules=virtio_mmio,vmw_vsock_virtio_transport \
                      vminit.report.vsock=2:5001 vminit.grace=1 -- sh -c \"exit 7\"",
            after: &[],
            devices: &[Device::Vsock {
                port: 5001,
                hold: true,
            }],
            check: |c, outside| {
                expect(c, 7)?;
                require(
                    c,
                    &[
                        "Sent the exit record to vsock 2:5001, but the host did not close the connection within 2 s",
                    ],
                )?;
                let record = r#"{"exit_code":7,"oom_killed":false,"signal":null,"#;
                if !outside.vsock_record.starts_with(record) {
                    return Err(format!(
                        "the host's vsock listener got {:?}",
                        outside.vsock_record
                    ));
                }
                Ok(())
            },
        },
    ]
}
