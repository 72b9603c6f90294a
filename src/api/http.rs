//! The API's HTTP/1.1 as plain functions over bytes: a request's head
//! parsed with httparse, the bearer token checked in constant time, the
//! endpoint chosen, and the answer written. One request per connection
//! (`Connection: close`), JSON bodies of a known length (no chunks).

use serde_json::{Value, json};

/// The most a request's head may take.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most a request's body may take, but for [`Endpoint::takes_bulk`]'s.
pub const MAX_BODY: usize = 64 * 1024;
/// The most a body with a file's or stdin's content may take: a MiB of
/// content in base64, with room for the rest of the JSON.
pub const MAX_BULK_BODY: usize = 1_500_000;

/// What the API needs of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Without the query.
    pub path: String,
    /// After the `?`, as sent.
    pub query: String,
    /// `Authorization: Bearer TOKEN`'s token, if given so.
    pub bearer: Option<Vec<u8>>,
    /// `Content-Length`, when given (and valid).
    pub content_length: Option<u64>,
    /// A `Transfer-Encoding` was given: a body of unknown length.
    pub chunked: bool,
    /// `Upgrade: tcp`, Docker's attach convention.
    pub upgrade: bool,
    /// How many bytes the head took: the body follows.
    pub head_len: usize,
}

/// How far a request's head has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Complete(Request),
    /// More bytes are needed.
    Partial,
    /// Not HTTP/1.x, or too long.
    Bad,
}

/// Parses the head at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) | Err(_) => return Parsed::Bad,
    };
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Parsed::Bad;
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let content_length = match header("content-length") {
        Some(value) => match std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            Some(length) => Some(length),
            None => return Parsed::Bad,
        },
        None => None,
    };
    let bearer = header("authorization").and_then(|value| {
        // The scheme's name is case-insensitive (RFC 7235).
        let (scheme, token) = value.split_at_checked(7)?;
        scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| token.to_vec())
    });
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Parsed::Complete(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        bearer,
        content_length,
        chunked: header("transfer-encoding").is_some(),
        upgrade: header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"tcp")),
        head_len,
    })
}

/// Whether `given` is `token`, in time that does not depend on where
/// they differ (the length is compared too, without an early return).
pub fn same_token(given: &[u8], token: &[u8]) -> bool {
    let mut difference = given.len() ^ token.len();
    for (i, byte) in token.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(i).copied().unwrap_or(!byte));
        // Kept from the optimiser, which could end the loop early.
        difference = std::hint::black_box(difference);
    }
    difference == 0
}

/// An answer: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            body: json!({ "error": message }),
        }
    }

    /// The whole response, head and body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = self.body.to_string();
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            411 => "Length Required",
            413 => "Content Too Large",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            body.len() + 1
        );
        if self.status == 401 {
            out.push_str("WWW-Authenticate: Bearer\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&body);
        out.push('\n');
        out.into_bytes()
    }
}

impl Answer {
    pub fn ok(body: Value) -> Answer {
        Answer { status: 200, body }
    }
}

/// What a request asks for, once its token and route are known good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Status,
    /// `GET /v1/wait`, with `?timeout=S` when given.
    Wait(Option<std::time::Duration>),
    Signal,
    Stop,
    Sysinfo,
    Clock,
    Entropy,
    PutFile,
    /// `GET /v1/files?path=`, the path decoded.
    GetFile(String),
    /// `POST /v1/exec`; `true` with `Upgrade: tcp`.
    Exec(bool),
    /// `POST /v1/exec/{id}/resize`.
    Resize(u64),
    /// `POST /v1/exec/{id}/close-stdin`.
    CloseStdin(u64),
    /// `GET /v1/logs`; `true` with `?follow=1`.
    Logs(bool),
}

impl Endpoint {
    /// Whether its body may carry a file's or stdin's content.
    pub fn takes_bulk(&self) -> bool {
        matches!(self, Endpoint::PutFile | Endpoint::Exec(_))
    }

    /// The most its body may take.
    pub fn max_body(&self) -> usize {
        if self.takes_bulk() {
            MAX_BULK_BODY
        } else {
            MAX_BODY
        }
    }
}

/// The query's value of `key`, percent-decoded (RFC 3986: a `+` is a
/// plus, as in a path, not a space as in a form).
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text| percent_encoding::percent_decode_str(text).decode_utf8_lossy();
        (decode(k) == key).then(|| decode(v).into_owned())
    })
}

/// What `request` asks for: 401 before anything else when the token does
/// not match (`token` `None`: the API runs without one, as asked), then
/// the route, then what the head says of the body.
pub fn route(request: &Request, token: Option<&[u8]>) -> Result<Endpoint, Answer> {
    if let Some(token) = token
        && !request
            .bearer
            .as_deref()
            .is_some_and(|given| same_token(given, token))
    {
        return Err(Answer::error(
            401,
            "a bearer token is needed (Authorization: Bearer TOKEN)",
        ));
    }
    let endpoint = endpoint(request)?;
    if request.chunked {
        return Err(Answer::error(
            411,
            "send the body with a Content-Length, not in chunks",
        ));
    }
    if request
        .content_length
        .is_some_and(|length| length > endpoint.max_body() as u64)
    {
        let most = endpoint.max_body();
        return Err(Answer::error(
            413,
            &format!("the body is over the {most} bytes this endpoint takes"),
        ));
    }
    Ok(endpoint)
}

fn endpoint(request: &Request) -> Result<Endpoint, Answer> {
    let method = request.method.as_str();
    let path = request.path.as_str();
    let only = |wanted: &str, endpoint: Endpoint| {
        if method == wanted {
            Ok(endpoint)
        } else {
            Err(Answer::error(405, &format!("use {wanted}")))
        }
    };
    let query = |key| query_value(&request.query, key);
    match path {
        "/v1/status" => only("GET", Endpoint::Status),
        "/v1/wait" => {
            let timeout = match query("timeout") {
                Some(text) => Some(
                    seconds(&text)
                        .ok_or_else(|| Answer::error(400, "timeout must be a number of seconds"))?,
                ),
                None => None,
            };
            only("GET", Endpoint::Wait(timeout))
        }
        "/v1/signal" => only("POST", Endpoint::Signal),
        "/v1/stop" => only("POST", Endpoint::Stop),
        "/v1/sysinfo" => only("GET", Endpoint::Sysinfo),
        "/v1/clock" => only("POST", Endpoint::Clock),
        "/v1/entropy" => only("POST", Endpoint::Entropy),
        "/v1/files" if method == "PUT" => Ok(Endpoint::PutFile),
        "/v1/files" if method == "GET" => query("path")
            .map(Endpoint::GetFile)
            .ok_or_else(|| Answer::error(400, "give the file as ?path=/absolute/path")),
        "/v1/files" => Err(Answer::error(405, "use GET or PUT")),
        "/v1/exec" => only("POST", Endpoint::Exec(request.upgrade)),
        "/v1/logs" => only(
            "GET",
            Endpoint::Logs(query("follow").is_some_and(|v| v == "1" || v == "true")),
        ),
        _ => {
            let session = path
                .strip_prefix("/v1/exec/")
                .and_then(|rest| rest.split_once('/'));
            match session.and_then(|(id, what)| Some((id.parse().ok()?, what))) {
                Some((id, "resize")) => only("POST", Endpoint::Resize(id)),
                Some((id, "close-stdin")) => only("POST", Endpoint::CloseStdin(id)),
                _ => Err(Answer::error(404, "no such endpoint")),
            }
        }
    }
}

/// Seconds as a non-negative number, whole or not, of at most a day.
fn seconds(text: &str) -> Option<std::time::Duration> {
    // serde_json's number parser, as the binary has it already: core's
    // own (`str::parse::<f64>`) would add 14 KB of tables.
    let seconds = serde_json::from_slice::<Value>(text.as_bytes())
        .ok()?
        .as_f64()?;
    (0.0..=86_400.0)
        .contains(&seconds)
        .then(|| std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bytes: &[u8]) -> Request {
        match parse(bytes) {
            Parsed::Complete(request) => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn heads_are_parsed_whole_or_asked_for_more() {
        let get = request(
            b"GET /v1/status?x=1 HTTP/1.1\r\nHost: vm\r\nAuthorization: Bearer t0k\r\n\r\n",
        );
        assert_eq!(
            (
                get.method.as_str(),
                get.path.as_str(),
                get.bearer.as_deref()
            ),
            ("GET", "/v1/status", Some(&b"t0k"[..]))
        );
        assert_eq!(
            parse(b"GET /v1/status HTTP/1.1\r\nHost: v"),
            Parsed::Partial
        );
        assert_eq!(parse(b"\x16\x03\x01 not http\r\n\r\n"), Parsed::Bad);
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse(&long), Parsed::Bad);
        let basic = request(b"GET / HTTP/1.1\r\nauthorization: Basic eDp5\r\n\r\n");
        assert_eq!(basic.bearer, None);
        let lower = request(b"GET / HTTP/1.1\r\nAuthorization: bearer t0k\r\n\r\n");
        assert_eq!(lower.bearer.as_deref(), Some(&b"t0k"[..]));
    }

    #[test]
    fn tokens_match_whole_and_nothing_less() {
        assert!(same_token(b"s3cret", b"s3cret"));
        assert!(!same_token(b"s3cre", b"s3cret"));
        assert!(!same_token(b"s3cret!", b"s3cret"));
        assert!(!same_token(b"", b"s3cret"));
        assert!(!same_token(b"S3cret", b"s3cret"));
    }

    #[test]
    fn the_token_comes_before_the_route() {
        let get = |head: &str| request(format!("{head}\r\n\r\n").as_bytes());
        let status = |r: Result<Endpoint, Answer>| r.map_or_else(|a| a.status, |_| 200);
        let asked = get("GET /v1/status HTTP/1.1\r\nAuthorization: Bearer t");
        assert_eq!(route(&asked, Some(b"t")), Ok(Endpoint::Status));
        assert_eq!(status(route(&asked, Some(b"u"))), 401);
        let anonymous = get("GET /v1/status HTTP/1.1");
        assert_eq!(status(route(&anonymous, Some(b"t"))), 401);
        assert_eq!(route(&anonymous, None), Ok(Endpoint::Status));
        // Nothing about the guest before the token: not even what exists.
        assert_eq!(
            status(route(&get("GET /v1/nothing HTTP/1.1"), Some(b"t"))),
            401
        );
        let bad_path = get("GET /v1/nothing HTTP/1.1\r\nAuthorization: Bearer t");
        assert_eq!(status(route(&bad_path, Some(b"t"))), 404);
        let post = get("POST /v1/status HTTP/1.1\r\nAuthorization: Bearer t");
        assert_eq!(status(route(&post, Some(b"t"))), 405);
        let answer = Answer::ok(json!({"app": {"state": "running"}}));
        let text = String::from_utf8(answer.to_bytes()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n{\"app\":{\"state\":\"running\"}}\n"),
            "{text}"
        );
    }

    #[test]
    fn endpoints_take_their_queries_and_bounded_bodies() {
        let get = |head: &str| request(format!("{head}\r\n\r\n").as_bytes());
        let status = |r: Result<Endpoint, Answer>| r.map_or_else(|a| a.status, |_| 200);
        use std::time::Duration;
        assert_eq!(
            route(&get("GET /v1/wait?timeout=2.5 HTTP/1.1"), None),
            Ok(Endpoint::Wait(Some(Duration::from_millis(2500))))
        );
        assert_eq!(
            route(&get("GET /v1/wait HTTP/1.1"), None),
            Ok(Endpoint::Wait(None))
        );
        assert_eq!(
            status(route(&get("GET /v1/wait?timeout=-1 HTTP/1.1"), None)),
            400
        );
        assert_eq!(
            route(&get("GET /v1/files?path=%2Fetc%2Fa%20b+c HTTP/1.1"), None),
            Ok(Endpoint::GetFile("/etc/a b+c".into()))
        );
        assert_eq!(status(route(&get("GET /v1/files HTTP/1.1"), None)), 400);
        assert_eq!(status(route(&get("DELETE /v1/files HTTP/1.1"), None)), 405);
        assert_eq!(
            route(&get("POST /v1/exec HTTP/1.1\r\nUpgrade: tcp"), None),
            Ok(Endpoint::Exec(true))
        );
        assert_eq!(
            route(&get("POST /v1/exec/7/resize HTTP/1.1"), None),
            Ok(Endpoint::Resize(7))
        );
        assert_eq!(
            status(route(&get("POST /v1/exec/x/resize HTTP/1.1"), None)),
            404
        );
        assert_eq!(
            route(&get("GET /v1/logs?follow=1 HTTP/1.1"), None),
            Ok(Endpoint::Logs(true))
        );
        // A gigabyte is refused from its head, before a byte is read.
        let huge = get("POST /v1/signal HTTP/1.1\r\nContent-Length: 1000000000");
        assert_eq!(status(route(&huge, None)), 413);
        let file = get("PUT /v1/files HTTP/1.1\r\nContent-Length: 1000000");
        assert_eq!(route(&file, None), Ok(Endpoint::PutFile));
        let chunked = get("POST /v1/signal HTTP/1.1\r\nTransfer-Encoding: chunked");
        assert_eq!(status(route(&chunked, None)), 411);
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Parsed::Bad
        );
    }
}
