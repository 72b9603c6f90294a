//! The host API, called from the host as Firecracker users call a guest:
//! `CONNECT PORT` on the hybrid socket of `vhost-device-vsock`.

use super::checks::{expect, require};
use super::{API_TOKEN, Case, Device, Image};

/// The API's status, and its refusals.
pub(super) fn cases() -> Vec<Case> {
    vec![Case {
        name: "the_api_answers_its_status_to_the_token_alone",
        image: Image::Normal,
        cmdline: "metadata=/tests/api.json vminit.modules=virtio_mmio,vmw_vsock_virtio_transport \
                  -- sh -c \"echo app-running; sleep 20; exit 5\"",
        qmp_after: &[],
        devices: &[Device::Api { port: 10000 }],
        check: |c, outside| {
            expect(c, 5)?;
            require(c, &["app-running", "API listening on vsock port 10000"])?;
            if c.has(API_TOKEN) {
                return Err("the token reached the console".into());
            }
            let answers = &outside.api_answers;
            let [status, anonymous, wrong, missing] = answers.as_slice() else {
                return Err(format!("the API answered {answers:?}"));
            };
            let body = status.split_once("\r\n\r\n").map_or("", |(_, body)| body);
            let json: serde_json::Value =
                serde_json::from_str(body).map_err(|e| format!("{e}: {status:?}"))?;
            let app = &json["app"];
            let fine = status.starts_with("HTTP/1.1 200 OK\r\n")
                && app["state"] == "running"
                && app["pid"].as_i64().is_some_and(|pid| pid > 1)
                && app["started_at"].as_str().is_some_and(|t| t.ends_with('Z'))
                && json["exit"].is_null()
                && json["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()));
            if !fine {
                return Err(format!("status answered {status:?}"));
            }
            for (what, answer, code) in [
                ("no token", anonymous, "401"),
                ("a wrong token", wrong, "401"),
                ("an unknown endpoint", missing, "404"),
            ] {
                if !answer.starts_with(&format!("HTTP/1.1 {code} ")) {
                    return Err(format!("{what} got {answer:?}"));
                }
            }
            if anonymous.contains("\"pid\"") || wrong.contains("\"pid\"") {
                return Err("a 401 told something about the guest".into());
            }
            Ok(())
        },
    }]
}
