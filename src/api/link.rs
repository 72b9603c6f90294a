//! What PID 1 and the API's server say to each other over their channel
//! ([`crate::sys::channel`]), as plain functions over bytes: one message a
//! request or a notice, in words, so that a log of them reads as English.

use std::time::Duration;

use crate::app::supervisor::Request;

/// What PID 1 tells the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A graceful stop began (a press, SIGTERM, `/v1/stop`).
    Stopping,
    /// The app ended: its exit record, as JSON text.
    Exited(String),
}

/// The longest grace a stop request may ask for: a day.
const MAX_GRACE_MS: u64 = 86_400_000;

pub fn encode_request(request: &Request) -> Vec<u8> {
    match request {
        Request::Signal(signal) => format!("signal {signal}").into_bytes(),
        Request::Stop(None) => b"stop".to_vec(),
        Request::Stop(Some(grace)) => format!("stop {}", grace.as_millis()).into_bytes(),
    }
}

/// `None` for anything that is not a request (a server's fault, never
/// acted on).
pub fn decode_request(bytes: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(bytes).ok()?;
    match text.split_once(' ') {
        Some(("signal", n)) => n.parse().ok().map(Request::Signal),
        // At most a day, as the API takes it: PID 1 adds it to now.
        Some(("stop", ms)) => ms
            .parse()
            .ok()
            .filter(|ms| *ms <= MAX_GRACE_MS)
            .map(|ms| Request::Stop(Some(Duration::from_millis(ms)))),
        None if text == "stop" => Some(Request::Stop(None)),
        _ => None,
    }
}

pub fn encode_notice(notice: &Notice) -> Vec<u8> {
    match notice {
        Notice::Stopping => b"stopping".to_vec(),
        Notice::Exited(record) => format!("exited {record}").into_bytes(),
    }
}

pub fn decode_notice(bytes: &[u8]) -> Option<Notice> {
    let text = std::str::from_utf8(bytes).ok()?;
    match text.split_once(' ') {
        Some(("exited", record)) => Some(Notice::Exited(record.to_owned())),
        None if text == "stopping" => Some(Notice::Stopping),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_channel() {
        for request in [
            Request::Signal(15),
            Request::Stop(None),
            Request::Stop(Some(Duration::from_millis(2500))),
        ] {
            assert_eq!(decode_request(&encode_request(&request)), Some(request));
        }
        for notice in [Notice::Stopping, Notice::Exited("{\"exit_code\":3}".into())] {
            assert_eq!(decode_notice(&encode_notice(&notice)), Some(notice));
        }
        assert_eq!(decode_request(b"signal x"), None);
        assert_eq!(decode_request(b"reboot"), None);
        // Added to now in PID 1: never more than a day.
        assert_eq!(decode_request(b"stop 18446744073709551615"), None);
        assert_eq!(decode_notice(b"\xff"), None);
    }
}
