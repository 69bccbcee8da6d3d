//! One error type for the REST API, rendered in FMC's shape:
//! `{"error":{"category":"...","messages":[{"description":"..."}],"severity":"ERROR"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admins::SessionError;
use crate::db::DbError;
use crate::deploy::{CompileError, DeployError};
use crate::devices::SensorError;
use crate::rules::{ChangeError, Field};

/// A refused or failed call. Every message names what is wrong and where.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub category: &'static str,
    pub messages: Vec<String>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, category: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            category,
            messages: vec![message.into()],
            retry_after_secs: None,
        }
    }

    /// A request body or parameter that is wrong: one message per problem.
    pub fn validation(messages: Vec<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            category: "VALIDATION",
            messages,
            retry_after_secs: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "FRAMEWORK", message)
    }

    /// fireREST refreshes its token when a 401 body says "Access token invalid".
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "FRAMEWORK", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FRAMEWORK", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "FRAMEWORK", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let messages: Vec<_> = if self.messages.is_empty() {
            vec![json!({ "description": self.status.canonical_reason().unwrap_or("error") })]
        } else {
            self.messages
                .iter()
                .map(|m| json!({ "description": m }))
                .collect()
        };
        let body = json!({
            "error": { "category": self.category, "messages": messages, "severity": "ERROR" }
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// What a 503 for an unreachable database asks the client to wait.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 5;

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        let message = error.to_string();
        match &error {
            DbError::NotFound { .. } => Self::not_found(message),
            DbError::Stale { .. } => {
                Self::new(StatusCode::PRECONDITION_FAILED, "FRAMEWORK", message)
            }
            DbError::Conflict { field, value, .. } if field == "name" => Self::bad_request(
                format!("Duplicate Name: {value:?} already exists ({message})"),
            ),
            DbError::Conflict { .. }
            | DbError::MissingReference { .. }
            | DbError::Invalid { .. }
            | DbError::BuiltIn { .. }
            | DbError::WrongReference { .. } => Self::bad_request(message),
            DbError::InUse { .. } | DbError::WrongState { .. } => {
                Self::new(StatusCode::CONFLICT, "FRAMEWORK", message)
            }
            _ if error.is_unavailable() => {
                tracing::warn!(error = %error, "database unavailable");
                let mut unavailable = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "FRAMEWORK",
                    "The database is unavailable right now; retry the request in a few seconds",
                );
                unavailable.retry_after_secs = Some(DATABASE_RETRY_AFTER_SECS);
                unavailable
            }
            _ => {
                tracing::error!(error = %error, "database error");
                Self::internal("the database could not complete the request")
            }
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(error: DeployError) -> Self {
        match error {
            DeployError::Db(e) => e.into(),
            DeployError::Compile(CompileError::Db(e)) => e.into(),
            DeployError::Compile(CompileError::Invalid { device, problems }) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                category: "VALIDATION",
                messages: problems
                    .iter()
                    .map(|p| format!("device {device}: {p}"))
                    .collect(),
                retry_after_secs: None,
            },
            DeployError::Compile(other) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION",
                other.to_string(),
            ),
            DeployError::NotRegistered { .. } | DeployError::NoDevices => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION",
                error.to_string(),
            ),
        }
    }
}

impl<F: Field> From<ChangeError<F>> for ApiError {
    fn from(error: ChangeError<F>) -> Self {
        match error {
            ChangeError::Db(e) => e.into(),
            ChangeError::Invalid(problems) => Self::validation(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field.fmc_path(), p.message))
                    .collect(),
            ),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Db(e) => e.into(),
            SessionError::UnknownRefreshToken | SessionError::TooManyRefreshes => {
                Self::unauthorized(error.to_string())
            }
            SessionError::NoRandomness => Self::internal(error.to_string()),
        }
    }
}

impl From<SensorError> for ApiError {
    fn from(error: SensorError) -> Self {
        match error {
            SensorError::Db(e) => e.into(),
            SensorError::NotRegistered { .. } | SensorError::BadHost { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION",
                error.to_string(),
            ),
            SensorError::Sensor { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "FRAMEWORK", error.to_string())
            }
            SensorError::Ca(_) => Self::internal(error.to_string()),
        }
    }
}
