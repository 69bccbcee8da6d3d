//! The five calls every FMC object collection has (list, get, create, update, delete),
//! written once over a [`Resource`]: a resource module only says how its rows are
//! read and written and how they look in FMC JSON.

use std::collections::HashMap;
use std::future::Future;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json};
use serde_json::Value;
use uuid::Uuid;

use super::envelope::{BaseUrl, ListQuery, Listing, collection};
use super::error::ApiError;
use super::{ApiContext, Caller, Routes, versioning};
use crate::db::{Listed, Page};
use axum::http::Method;

/// Where a call is: the domain, the parent object (connection profiles live under a
/// policy) and the object itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    pub domain: Uuid,
    pub parent: Option<Uuid>,
}

/// One FMC object collection.
pub(crate) trait Resource: Send + Sync + 'static {
    type Row: Send + Sync;

    fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> impl Future<Output = Result<Listed<Self::Row>, ApiError>> + Send;
    fn get(
        context: &ApiContext,
        scope: Scope,
        id: Uuid,
    ) -> impl Future<Output = Result<Self::Row, ApiError>> + Send;
    fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> impl Future<Output = Result<Self::Row, ApiError>> + Send;
    /// `expected` is the version the caller last read.
    fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> impl Future<Output = Result<Self::Row, ApiError>> + Send;
    fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// FMC JSON of a row; `self_url` is its absolute link.
    fn to_json(row: &Self::Row, self_url: &str) -> Value;
    fn id(row: &Self::Row) -> Uuid;
    fn version(row: &Self::Row) -> i32;
}

/// Registers the five calls of `R` at `collection` (a `config:` path).
pub(crate) fn crud<R: Resource>(routes: Routes, collection: &str, tag: &'static str) -> Routes {
    let item = format!("{collection}/{{id}}");
    routes
        .add(
            Method::GET,
            collection,
            tag,
            "List (offset, limit, expanded)",
            get(list::<R>),
        )
        .add(Method::POST, collection, tag, "Create", post(create::<R>))
        .add(Method::GET, &item, tag, "Read one (ETag)", get(read::<R>))
        .add(
            Method::PUT,
            &item,
            tag,
            "Update (If-Match for optimistic locking)",
            put(update::<R>),
        )
        .add(
            Method::DELETE,
            &item,
            tag,
            "Delete (If-Match)",
            delete(remove::<R>),
        )
}

fn scope_of(params: &HashMap<String, String>, caller: &Caller) -> Result<Scope, ApiError> {
    let parent = match params.get("parent") {
        Some(text) => Some(parse_id(text)?),
        None => None,
    };
    Ok(Scope {
        domain: caller.domain_id,
        parent,
    })
}

pub(crate) fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found(format!("{text:?} is not an object id")))
}

/// The `{id}` of an item path.
pub(crate) fn path_id(params: &HashMap<String, String>) -> Result<Uuid, ApiError> {
    parse_id(params.get("id").map_or("", String::as_str))
}

/// A row as FMC JSON at `url`, with its version as the ETag.
fn tagged_row<R: Resource>(status: StatusCode, row: &R::Row, url: &str) -> Response {
    versioning::tagged(status, R::to_json(row, url), R::version(row))
}

/// A JSON body, `null` or empty for none (fireREST sends `null` on GET and DELETE).
pub(crate) fn json_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })
}

fn item_url(collection_url: &str, id: Uuid) -> String {
    format!("{}/{id}", collection_url.trim_end_matches('/'))
}

async fn list<R: Resource>(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope_of(&params, &caller)?;
    let listing = Listing::from_query(&query)?;
    let listed = R::list(&context, scope, listing.page).await?;
    let url = format!("{base}{}", uri.path());
    let items = listed
        .items
        .iter()
        .map(|row| R::to_json(row, &item_url(&url, R::id(row))))
        .collect();
    Ok(Json(collection(&url, items, listed.total, &listing)))
}

async fn read<R: Resource>(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let scope = scope_of(&params, &caller)?;
    let id = path_id(&params)?;
    let row = R::get(&context, scope, id).await?;
    Ok(tagged_row::<R>(
        StatusCode::OK,
        &row,
        &format!("{base}{}", uri.path()),
    ))
}

async fn create<R: Resource>(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let scope = scope_of(&params, &caller)?;
    let body = json_body(&body)?;
    let row = R::create(&context, &caller, scope, &body).await?;
    let url = item_url(&format!("{base}{}", uri.path()), R::id(&row));
    Ok(tagged_row::<R>(StatusCode::CREATED, &row, &url))
}

async fn update<R: Resource>(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let scope = scope_of(&params, &caller)?;
    let id = path_id(&params)?;
    let body = json_body(&body)?;
    if let Some(body_id) = body.get("id").and_then(Value::as_str)
        && body_id != id.to_string()
    {
        return Err(ApiError::bad_request(format!(
            "id: the body's id {body_id} is not the id in the path ({id})"
        )));
    }
    let expected = match versioning::if_match(&headers)? {
        Some(version) => version,
        None => R::version(&R::get(&context, scope, id).await?),
    };
    let row = R::update(&context, &caller, scope, id, expected, &body).await?;
    Ok(tagged_row::<R>(
        StatusCode::OK,
        &row,
        &format!("{base}{}", uri.path()),
    ))
}

async fn remove<R: Resource>(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = scope_of(&params, &caller)?;
    let id = path_id(&params)?;
    let row = R::get(&context, scope, id).await?;
    let body = R::to_json(&row, &format!("{base}{}", uri.path()));
    R::delete(
        &context,
        &caller,
        scope,
        id,
        versioning::if_match(&headers)?,
    )
    .await?;
    Ok(versioning::tagged(StatusCode::OK, body, R::version(&row)))
}
