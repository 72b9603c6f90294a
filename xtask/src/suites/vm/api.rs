//! The host API, called from the host as Firecracker users call a guest:
//! `CONNECT PORT` on the hybrid socket of `vhost-device-vsock`, with raw
//! HTTP and with `vminit-ctl` ([`api_host`] holds what the host does).

use super::api_host::Script;
use super::checks::{expect, require};
use super::{API_TOKEN, Case, Device, Image};

/// Every endpoint, its refusals and hostile clients; wait on an OOM kill.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "the_api_serves_the_host_and_survives_hostile_clients",
            image: Image::Normal,
            cmdline: "metadata=/tests/api.json vminit.modules=virtio_mmio,vmw_vsock_virtio_transport \
                      -- sh -c \"trap 'echo got-usr1' USR1; trap 'echo got-term; exit 7' TERM; \
                      echo app-running; while :; do sleep 1; done\"",
            after: &[],
            devices: &[Device::Api {
                port: 10000,
                script: Script::Everything,
            }],
            check: |c, outside| {
                outside.api.clone().ok_or("no API script ran")??;
                expect(c, 7)?;
                require(
                    c,
                    &[
                        "app-running",
                        "API listening on vsock port 10000",
                        "API: sending SIGUSR1",
                        "got-usr1",
                        "the API's server was killed by SIGKILL: starting another",
                        "API: stop: sending SIGTERM",
                        "got-term",
                    ],
                )?;
                if c.has(API_TOKEN) {
                    return Err("the token reached the console".into());
                }
                Ok(())
            },
        },
        Case {
            name: "files_at_boot_refuse_a_traversal",
            image: Image::Normal,
            cmdline: "metadata=/tests/files-traversal.json -- sh -c \"echo app-ran\"",
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 2)?;
                require(
                    c,
                    &["files[0].path: must be a clean path: no '..' component"],
                )?;
                if c.has("app-ran") || c.has("a2V5") {
                    return Err("the app ran, or the content was shown".into());
                }
                Ok(())
            },
        },
        Case {
            name: "the_api_waits_for_an_oom_killed_app",
            image: Image::Normal,
            cmdline: "metadata=/tests/api.json vminit.modules=virtio_mmio,vmw_vsock_virtio_transport \
                      vminit.grace=5 -- sh -c \"sleep 8; exec sort /dev/zero\"",
            after: &[],
            devices: &[Device::Api {
                port: 10000,
                script: Script::WaitForOom,
            }],
            check: |c, outside| {
                outside.api.clone().ok_or("no API script ran")??;
                expect(c, 137)?;
                require(c, &["the kernel's OOM killer killed pid"])
            },
        },
        Case {
            // 20 MB, not the 100 MB a KVM guest takes in seconds: under TCG
            // the emulated UART costs the guest's one CPU an interrupt per
            // 16 bytes, and every line reaches the console (about 0.5 MB/s).
            name: "the_api_keeps_the_logs_of_an_app_writing_20_mb_unread",
            image: Image::Normal,
            cmdline: "metadata=/tests/api.json vminit.modules=virtio_mmio,vmw_vsock_virtio_transport \
                      vminit.logs=capture -- sh -c \"trap 'echo usr1-line' USR1; echo first-line; \
                      yes $(head -c 999 /dev/zero | tr -c x x) | head -c 20000000; \
                      echo err-line >&2; echo last-line; while :; do sleep 1; done\"",
            after: &[],
            devices: &[Device::Api {
                port: 10000,
                script: Script::Logs,
            }],
            check: |c, outside| {
                outside.api.clone().ok_or("no API script ran")??;
                // The shell dies of the stop's SIGTERM.
                expect(c, 143)?;
                require(c, &["first-line"])
            },
        },
    ]
}
