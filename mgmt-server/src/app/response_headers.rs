//! Headers every response of the manager carries, REST API and web UI alike: HSTS,
//! `X-Content-Type-Options: nosniff`, a CSP that forbids framing (`frame-ancestors
//! 'none'`), `X-Frame-Options: DENY`, `Referrer-Policy`, `Cache-Control: no-store`
//! unless the handler chose otherwise, and a `Content-Type` that names its charset.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;

/// The content security policy of every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

/// `router` with the headers above on every response.
pub fn secured(router: Router) -> Router {
    router.layer(middleware::from_fn(add_headers))
}

async fn add_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_headers(response.headers_mut());
    response
}

fn set_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Some(with_charset) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(with_charset)
    {
        headers.insert(header::CONTENT_TYPE, with_charset);
    }
}

/// `content_type` with `; charset=utf-8` when it is text or JSON and names no charset.
fn with_charset(content_type: &str) -> Option<HeaderValue> {
    let lower = content_type.to_ascii_lowercase();
    let essence = lower.split(';').next().unwrap_or("").trim();
    let textual = essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/javascript"
        || essence.ends_with("+xml")
        || essence == "application/xml";
    if !textual || lower.contains("charset=") {
        return None;
    }
    HeaderValue::from_str(&format!("{content_type}; charset=utf-8")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_get_a_charset_and_a_named_one_is_kept() {
        assert_eq!(
            with_charset("application/json").unwrap(),
            "application/json; charset=utf-8"
        );
        assert_eq!(
            with_charset("text/plain").unwrap(),
            "text/plain; charset=utf-8"
        );
        assert!(with_charset("text/html; charset=utf-8").is_none());
        assert!(with_charset("application/octet-stream").is_none());
    }

    #[test]
    fn every_response_forbids_framing_sniffing_and_plain_http() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        set_headers(&mut headers);
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap_or_default()
                .contains("frame-ancestors 'none'")
        );
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }
}
