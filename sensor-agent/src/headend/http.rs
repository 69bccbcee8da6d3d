//! The headend's HTTP/1.1: request heads parsed with `httparse`, responses written by
//! hand.
//!
//! Why not hyper: openconnect only considers CONNECT response headers whose names start
//! case-sensitively with `X-CSTP-` / `X-DTLS-` (`strncmp(buf, "X-CSTP-", 7)`), and hyper
//! lowercases (or title-cases) header names on output (hyper issue #2946). So requests
//! are read with `httparse` (the parser hyper itself uses) inside a per-connection loop
//! over the TLS stream, and every response is written byte for byte here.
//!
//! Limits: a request head is at most [`MAX_HEAD_BYTES`] with at most [`MAX_HEADERS`]
//! headers; a body is read only by `Content-Length` (no chunked requests; openconnect
//! never sends one) and is at most [`MAX_BODY_BYTES`]; every read waits at most
//! [`READ_TIMEOUT`], and once its first byte arrived the whole head must arrive within
//! [`HEAD_DEADLINE`] and the whole request within [`REQUEST_DEADLINE`] (a client sending
//! a byte now and then cannot hold a connection open).
//!
//! Strict framing (request smuggling): a head with a bare LF or CR line end, more than
//! one `Content-Length`, a `Content-Length` that is not plain decimal digits (`+83`,
//! `0x10`, `1,2`) or a `Transfer-Encoding` together with a `Content-Length` is refused
//! with `400` and the connection closed.
//!
//! Every response carries `Strict-Transport-Security`, `X-Content-Type-Options:
//! nosniff` and a `Content-Security-Policy` that forbids framing; openconnect ignores
//! headers it does not know (protocol.md §2.1).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use vpn_core::aggauth::limits::MAX_BODY_BYTES;

/// Largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;
/// Longest wait for the next bytes of a request (also the keep-alive idle time).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest time from the first byte of a request to the end of its head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Longest time from the first byte of a request to the end of its body.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// Longest `Content-Length` value accepted, in digits (more cannot be below the limit).
const MAX_CONTENT_LENGTH_DIGITS: usize = 19;

/// Headers every response carries (HSTS for a year; nothing may sniff, script or frame).
pub const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("Strict-Transport-Security", "max-age=31536000"),
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// One request: head and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/RAVPN-MultiCert`, `/CSCOSSLC/tunnel`).
    pub path: String,
    /// Header names lowercased, values as sent (non-UTF-8 bytes replaced).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name` from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim())
    }
}

/// Why no request could be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the connection closed in the middle of a request")]
    Truncated,
    #[error("no request bytes for {0:?}")]
    Timeout(Duration),
    #[error("the request did not arrive within {0:?} of its first byte")]
    TooSlow(Duration),
    #[error("request head longer than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("malformed request head: {0}")]
    Malformed(String),
    #[error("request body of {0} bytes is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge(u64),
    #[error("chunked request bodies are not accepted")]
    Chunked,
    #[error("read failed")]
    Io(#[from] std::io::Error),
}

impl RequestError {
    /// The status to answer with before closing, if the peer can still be told.
    pub fn status(&self) -> Option<(u16, &'static str)> {
        match self {
            Self::HeadTooLarge => Some((431, "Request Header Fields Too Large")),
            Self::Malformed(_) => Some((400, "Bad Request")),
            Self::BodyTooLarge(_) => Some((413, "Payload Too Large")),
            Self::Chunked => Some((411, "Length Required")),
            Self::TooSlow(_) => Some((408, "Request Timeout")),
            Self::Truncated | Self::Timeout(_) | Self::Io(_) => None,
        }
    }
}

/// Reads one request from `stream`. `buffer` holds bytes already received beyond the
/// previous request and keeps whatever follows this one. `Ok(None)`: the peer closed
/// the connection cleanly between requests.
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> Result<Option<Request>, RequestError> {
    // Set when the first byte of this request is there.
    let mut started = (!buffer.is_empty()).then(tokio::time::Instant::now);
    let (head_len, mut request, content_length) = loop {
        if let Some(parsed) = parse_head(buffer)? {
            break parsed;
        }
        if buffer.len() >= MAX_HEAD_BYTES {
            return Err(RequestError::HeadTooLarge);
        }
        let deadline = started.map(|at| (at + HEAD_DEADLINE, HEAD_DEADLINE));
        if read_more(stream, buffer, MAX_HEAD_BYTES, deadline).await? == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(RequestError::Truncated)
            };
        }
        started.get_or_insert_with(tokio::time::Instant::now);
    };
    let body_len = usize::try_from(content_length).unwrap_or(usize::MAX);
    let total = head_len.saturating_add(body_len);
    let started = started.unwrap_or_else(tokio::time::Instant::now);
    while buffer.len() < total {
        let deadline = Some((started + REQUEST_DEADLINE, REQUEST_DEADLINE));
        if read_more(stream, buffer, total, deadline).await? == 0 {
            return Err(RequestError::Truncated);
        }
    }
    request.body = buffer.get(head_len..total).unwrap_or_default().to_vec();
    buffer.drain(..total);
    Ok(Some(request))
}

/// Parses a complete head at the start of `buffer`: its length, the request (empty
/// body) and the announced body length. `Ok(None)` when more bytes are needed.
fn parse_head(buffer: &[u8]) -> Result<Option<(usize, Request, u64)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::Malformed(format!(
                "more than {MAX_HEADERS} headers"
            )));
        }
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(RequestError::HeadTooLarge);
    }
    check_line_ends(buffer.get(..head_len).unwrap_or_default())?;
    let method = parsed.method.unwrap_or_default().to_owned();
    let path = parsed.path.unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    let request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let lengths: Vec<&str> = request
        .headers
        .iter()
        .filter(|(name, _)| name == "content-length")
        .map(|(_, value)| value.as_str())
        .collect();
    let transfer_encoding = request.header("transfer-encoding");
    if transfer_encoding.is_some() && !lengths.is_empty() {
        return Err(RequestError::Malformed(
            "Transfer-Encoding together with Content-Length".to_owned(),
        ));
    }
    if transfer_encoding.is_some_and(|te| !te.eq_ignore_ascii_case("identity")) {
        return Err(RequestError::Chunked);
    }
    let content_length = match lengths.as_slice() {
        [] => 0,
        [value] => content_length(value)?,
        _ => {
            return Err(RequestError::Malformed(format!(
                "{} Content-Length headers",
                lengths.len()
            )));
        }
    };
    if content_length > MAX_BODY_BYTES as u64 {
        return Err(RequestError::BodyTooLarge(content_length));
    }
    Ok(Some((head_len, request, content_length)))
}

/// A `Content-Length` value: decimal digits only (no sign, no spaces, no hex).
fn content_length(value: &str) -> Result<u64, RequestError> {
    let plain = !value.is_empty()
        && value.len() <= MAX_CONTENT_LENGTH_DIGITS
        && value.bytes().all(|b| b.is_ascii_digit());
    plain
        .then(|| value.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| RequestError::Malformed(format!("Content-Length {value:?}")))
}

/// Every line of a head ends with CRLF: a bare LF or CR is refused (parsers disagree on
/// them, which is how requests are smuggled).
fn check_line_ends(head: &[u8]) -> Result<(), RequestError> {
    let mut previous = 0u8;
    for (at, &byte) in head.iter().enumerate() {
        let bare_lf = byte == b'\n' && previous != b'\r';
        let bare_cr = byte == b'\r' && head.get(at + 1) != Some(&b'\n');
        if bare_lf || bare_cr {
            return Err(RequestError::Malformed(
                "a line of the head does not end with CRLF".to_owned(),
            ));
        }
        previous = byte;
    }
    Ok(())
}

/// Reads more bytes into `buffer`, never beyond `limit` bytes in total, waiting at most
/// [`READ_TIMEOUT`] and never past `deadline` (when, and how long it was).
async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
    limit: usize,
    deadline: Option<(tokio::time::Instant, Duration)>,
) -> Result<usize, RequestError> {
    let mut chunk = [0u8; 4096];
    let room = limit.saturating_sub(buffer.len()).clamp(1, chunk.len());
    let target = chunk.get_mut(..room).unwrap_or_default();
    let idle_end = tokio::time::Instant::now() + READ_TIMEOUT;
    let (end, error) = match deadline {
        Some((at, allowed)) if at < idle_end => (at, RequestError::TooSlow(allowed)),
        _ => (idle_end, RequestError::Timeout(READ_TIMEOUT)),
    };
    let n = tokio::time::timeout_at(end, stream.read(target))
        .await
        .map_err(|_| error)??;
    buffer.extend_from_slice(target.get(..n).unwrap_or_default());
    Ok(n)
}

/// A response: status, extra headers (names written exactly as given) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Send `Connection: close` and close after writing.
    pub close: bool,
}

impl Response {
    /// `200 OK` with an aggregate-auth XML body.
    pub fn xml(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            reason: "OK",
            headers: vec![("Content-Type", "text/xml; charset=utf-8".to_owned())],
            body,
            close: false,
        }
    }

    /// A bodiless status that ends the connection.
    pub fn status_and_close(status: u16, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            headers: Vec::new(),
            body: Vec::new(),
            close: true,
        }
    }

    /// The response bytes: status line, headers, `Content-Length`, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (name, value) in SECURITY_HEADERS {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if self.close {
            out.push_str("Connection: close\r\n");
        } else {
            out.push_str("Connection: Keep-Alive\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Writes the response in one write and flushes it.
    pub async fn write_to<S: AsyncWrite + Unpin>(&self, stream: &mut S) -> std::io::Result<()> {
        stream.write_all(&self.to_bytes()).await?;
        stream.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> (Vec<Result<Option<Request>, String>>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let input = input.to_vec();
        let writer = tokio::spawn(async move {
            client.write_all(&input).await.unwrap();
            drop(client);
        });
        let mut buffer = Vec::new();
        let mut results = Vec::new();
        loop {
            let result = read_request(&mut server, &mut buffer).await;
            let stop = !matches!(result, Ok(Some(_)));
            results.push(result.map_err(|e| e.to_string()));
            if stop {
                break;
            }
        }
        writer.await.unwrap();
        (results, buffer)
    }

    #[tokio::test]
    async fn two_keep_alive_requests_are_read_with_their_bodies_and_cookies() {
        let input = b"POST /RAVPN-MultiCert HTTP/1.1\r\nHost: localhost:8443\r\nX-Aggregate-Auth: 1\r\nContent-Length: 5\r\n\r\nhelloCONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nCookie: a=b; webvpn=ABCDEF\r\n\r\n";
        let (results, rest) = read_all(input).await;
        assert_eq!(results.len(), 3);
        let first = results[0].clone().unwrap().unwrap();
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/RAVPN-MultiCert");
        assert_eq!(first.header("X-AGGREGATE-AUTH"), Some("1"));
        assert_eq!(first.body, b"hello");
        let second = results[1].clone().unwrap().unwrap();
        assert_eq!(second.method, "CONNECT");
        assert_eq!(second.cookie("webvpn"), Some("ABCDEF"));
        assert_eq!(second.cookie("webvpnc"), None);
        assert!(matches!(results[2], Ok(None)));
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn oversized_head_too_many_headers_big_bodies_and_chunking_are_refused() {
        let long = format!(
            "GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
            "0".repeat(MAX_HEAD_BYTES)
        );
        let (results, _) = read_all(long.as_bytes()).await;
        assert!(results[0].as_ref().unwrap_err().contains("longer than"));

        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-H{i}: v\r\n"));
        }
        many.push_str("\r\n");
        let (results, _) = read_all(many.as_bytes()).await;
        assert!(
            results[0]
                .as_ref()
                .unwrap_err()
                .contains("more than 64 headers")
        );

        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        let (results, _) = read_all(big.as_bytes()).await;
        assert!(results[0].as_ref().unwrap_err().contains("body of"));

        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let (results, _) = read_all(chunked).await;
        assert!(results[0].as_ref().unwrap_err().contains("chunked"));
    }

    #[tokio::test]
    async fn a_request_cut_short_is_an_error_not_a_clean_close() {
        let (results, _) = read_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").await;
        assert!(results[0].as_ref().unwrap_err().contains("middle"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_times_out_silently() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut buffer = Vec::new();
        let error = read_request(&mut server, &mut buffer).await.unwrap_err();
        assert!(
            matches!(error, RequestError::Timeout(t) if t == READ_TIMEOUT),
            "{error}"
        );
        assert_eq!(error.status(), None);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_sent_a_byte_at_a_time_must_arrive_within_the_head_deadline() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let trickle = tokio::spawn(async move {
            // One byte every 2 s: each read is well within READ_TIMEOUT.
            for byte in b"POST / HTTP/1.1\r\nHost: localhost\r\n" {
                if client.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        let started = tokio::time::Instant::now();
        let mut buffer = Vec::new();
        let error = read_request(&mut server, &mut buffer).await.unwrap_err();
        assert!(
            matches!(error, RequestError::TooSlow(t) if t == HEAD_DEADLINE),
            "{error}"
        );
        assert_eq!(error.status(), Some((408, "Request Timeout")));
        assert!(started.elapsed() <= HEAD_DEADLINE + Duration::from_secs(1));
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_must_arrive_within_the_request_deadline() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let trickle = tokio::spawn(async move {
            let _ = client
                .write_all(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
                .await;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if client.write_all(b"x").await.is_err() {
                    return;
                }
            }
        });
        let mut buffer = Vec::new();
        let error = read_request(&mut server, &mut buffer).await.unwrap_err();
        assert!(
            matches!(error, RequestError::TooSlow(t) if t == REQUEST_DEADLINE),
            "{error}"
        );
        trickle.abort();
    }

    async fn first_error(input: &[u8]) -> String {
        let (results, _) = read_all(input).await;
        match &results[0] {
            Err(e) => e.clone(),
            Ok(request) => panic!("accepted: {request:?}"),
        }
    }

    #[tokio::test]
    async fn smuggling_tricks_in_the_framing_are_refused_with_400() {
        let tricks: [&[u8]; 9] = [
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 83\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello",
            b"POST / HTTP/1.1\nContent-Length: 5\n\nhello",
            b"POST / HTTP/1.1\r\nHost: x\nContent-Length: 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
        ];
        for trick in tricks {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            client.write_all(trick).await.unwrap();
            drop(client);
            let mut buffer = Vec::new();
            let error = read_request(&mut server, &mut buffer).await.unwrap_err();
            assert_eq!(
                error.status(),
                Some((400, "Bad Request")),
                "{:?}: {error}",
                String::from_utf8_lossy(trick)
            );
        }
        let identity =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello";
        assert!(
            first_error(identity)
                .await
                .contains("Transfer-Encoding together")
        );
        // Plain decimal digits, leading zeros included, are fine.
        let (results, _) = read_all(b"POST / HTTP/1.1\r\nContent-Length: 005\r\n\r\nhello").await;
        assert_eq!(results[0].clone().unwrap().unwrap().body, b"hello");
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = parse_head(&bytes);
        }
    }

    #[test]
    fn responses_keep_header_case_and_carry_the_security_headers_and_charset() {
        let mut response = Response::xml(b"<x/>".to_vec());
        response
            .headers
            .push(("Set-Cookie", "webvpn=T; path=/; Secure".to_owned()));
        let text = String::from_utf8(response.to_bytes()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\nContent-Type: text/xml; charset=utf-8\r\nSet-Cookie: webvpn=T; path=/; Secure\r\nContent-Length: 4\r\nConnection: Keep-Alive\r\n\r\n<x/>"
        );
    }
}
