//! FMC's collection envelope (`links`, `items`, `paging`), list parameters (`offset`,
//! `limit`, `expanded`, `filter`; booleans in any case, as fireREST sends `True`), and
//! absolute links built from the request's `Host`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::db::Page;

/// Most items in one page (FMC's maximum).
pub const MAX_LIMIT: i64 = 1000;
/// Items in a page when the client does not say.
pub const DEFAULT_LIMIT: i64 = 25;

/// The raw list parameters.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub offset: Option<String>,
    pub limit: Option<String>,
    pub expanded: Option<String>,
    pub filter: Option<String>,
}

/// Checked list parameters.
#[derive(Debug, Clone)]
pub struct Listing {
    pub page: Page,
    pub expanded: bool,
    /// `filter=key:value;key:value`, FMC's syntax.
    pub filter: Vec<(String, String)>,
}

impl Listing {
    pub fn from_query(query: &ListQuery) -> Result<Self, ApiError> {
        let mut problems = Vec::new();
        let offset = match query.offset.as_deref() {
            None => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .unwrap_or_else(|| {
                    problems.push(format!("offset {text:?} must be a whole number, 0 or more"));
                    0
                }),
        };
        let limit = match query.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .unwrap_or_else(|| {
                    problems.push(format!(
                        "limit {text:?} must be a number from 1 to {MAX_LIMIT}"
                    ));
                    DEFAULT_LIMIT
                }),
        };
        let expanded = match query.expanded.as_deref() {
            None => false,
            Some(text) => parse_bool(text).unwrap_or_else(|| {
                problems.push(format!("expanded {text:?} must be true or false"));
                false
            }),
        };
        let filter = query
            .filter
            .as_deref()
            .map(|text| {
                text.split(';')
                    .filter(|part| !part.is_empty())
                    .filter_map(|part| {
                        let (key, value) = part.split_once(':')?;
                        Some((key.trim().to_owned(), value.trim().to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        Ok(Self {
            page: Page { offset, limit },
            expanded,
            filter,
        })
    }

    pub fn filter_value(&self, key: &str) -> Option<&str> {
        self.filter
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// `true`/`false` in any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `https://<Host>`: the prefix of every link.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(base_url(&parts.headers)))
    }
}

pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("https://{host}")
}

/// A collection: `items` (id/name/type/links unless expanded), `links.self`, `paging`.
pub fn collection(self_url: &str, items: Vec<Value>, total: i64, listing: &Listing) -> Value {
    let Page { offset, limit } = listing.page;
    let pages = if total == 0 {
        0
    } else {
        (total + limit - 1) / limit
    };
    let expanded = if listing.expanded { "true" } else { "false" };
    let page_url =
        |offset: i64| format!("{self_url}?offset={offset}&limit={limit}&expanded={expanded}");
    let mut paging = json!({ "offset": offset, "limit": limit, "count": total, "pages": pages });
    if offset + limit < total {
        paging["next"] = json!([page_url(offset + limit)]);
    }
    if offset > 0 {
        paging["previous"] = json!([page_url((offset - limit).max(0))]);
    }
    let items: Vec<Value> = if listing.expanded {
        items
    } else {
        items.into_iter().map(|item| summary(&item)).collect()
    };
    let mut body = json!({ "links": { "self": page_url(offset) }, "paging": paging });
    if !items.is_empty() {
        body["items"] = Value::Array(items);
    }
    body
}

/// The unexpanded form of an item: what FMC lists without `expanded=true`.
fn summary(item: &Value) -> Value {
    let mut out = json!({});
    for key in ["id", "name", "type", "links"] {
        if let Some(value) = item.get(key) {
            out[key] = value.clone();
        }
    }
    out
}

/// `{id, type, name}`.
pub fn reference(id: impl ToString, kind: &str, name: &str) -> Value {
    json!({ "id": id.to_string(), "type": kind, "name": name })
}
