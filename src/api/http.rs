//! The API's HTTP/1.1 as plain functions over bytes: a request's head
//! parsed with httparse, the bearer token checked in constant time, the
//! route chosen, and the answer written. One request per connection
//! (`Connection: close`), JSON bodies.

use serde_json::{Value, json};

/// The most a request's head may take.
pub const MAX_HEAD: usize = 16 * 1024;

/// What the API needs of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Without the query.
    pub path: String,
    /// `Authorization: Bearer TOKEN`'s token, if given so.
    pub bearer: Option<Vec<u8>>,
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
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) | Err(_) => return Parsed::Bad,
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Parsed::Bad;
    };
    let bearer = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("authorization"))
        .and_then(|h| {
            // The scheme's name is case-insensitive (RFC 7235).
            let (scheme, token) = h.value.split_at_checked(7)?;
            scheme
                .eq_ignore_ascii_case(b"bearer ")
                .then(|| token.to_vec())
        });
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Parsed::Complete(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        bearer,
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
            404 => "Not Found",
            405 => "Method Not Allowed",
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

/// The answer to `request`: 401 before anything else when the token does
/// not match (`token` `None`: the API runs without one, as asked), then
/// the route.
pub fn answer(request: &Request, token: Option<&[u8]>, status: impl FnOnce() -> Value) -> Answer {
    if let Some(token) = token
        && !request
            .bearer
            .as_deref()
            .is_some_and(|given| same_token(given, token))
    {
        return Answer::error(
            401,
            "a bearer token is needed (Authorization: Bearer TOKEN)",
        );
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/v1/status") => Answer {
            status: 200,
            body: status(),
        },
        (_, "/v1/status") => Answer::error(405, "use GET"),
        _ => Answer::error(404, "no such endpoint"),
    }
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
        let status = || json!({"app": {"state": "running"}});
        let get = |head: &str| request(format!("{head}\r\n\r\n").as_bytes());
        let asked = get("GET /v1/status HTTP/1.1\r\nAuthorization: Bearer t");
        assert_eq!(answer(&asked, Some(b"t"), status).status, 200);
        assert_eq!(answer(&asked, Some(b"u"), status).status, 401);
        let anonymous = get("GET /v1/status HTTP/1.1");
        assert_eq!(answer(&anonymous, Some(b"t"), status).status, 401);
        assert_eq!(answer(&anonymous, None, status).status, 200);
        // Nothing about the guest before the token: not even what exists.
        assert_eq!(
            answer(&get("GET /v1/nothing HTTP/1.1"), Some(b"t"), status).status,
            401
        );
        let bad_path = get("GET /v1/nothing HTTP/1.1\r\nAuthorization: Bearer t");
        assert_eq!(answer(&bad_path, Some(b"t"), status).status, 404);
        let post = get("POST /v1/status HTTP/1.1\r\nAuthorization: Bearer t");
        assert_eq!(answer(&post, Some(b"t"), status).status, 405);
        let bytes = answer(&asked, Some(b"t"), status).to_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n{\"app\":{\"state\":\"running\"}}\n"),
            "{text}"
        );
    }
}
