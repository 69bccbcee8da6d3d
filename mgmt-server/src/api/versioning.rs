//! Optimistic locking over HTTP: single-object GETs carry `ETag: "<version>"`; a PUT or
//! DELETE with `If-Match` is refused with 412 when the object moved on (and nothing is
//! written). Without `If-Match` (fireREST sends none) the current version is used.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;

/// The object with its ETag.
pub(crate) fn tagged(status: StatusCode, body: Value, version: i32) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The version `If-Match` names, if the header is there.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<i32>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    let bare = text.trim().trim_start_matches("W/").trim_matches('"');
    bare.parse::<i32>().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "If-Match {text:?} is not an ETag this server gave out (\"<version>\")"
        ))
    })
}
