use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SecretError;

/// The kinds of stored objects, named as FMC's `type` field names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    Domain,
    Administrator,
    ApiSession,
    Device,
    #[serde(rename = "RAVpn")]
    RaVpnPolicy,
    #[serde(rename = "RaVpnConnectionProfile")]
    ConnectionProfile,
    GroupPolicy,
    #[serde(rename = "IPv4AddressPool")]
    Ipv4AddressPool,
    #[serde(rename = "IPv6AddressPool")]
    Ipv6AddressPool,
    CertEnrollment,
    /// A cert enrollment installed on (or issued for) one device.
    DeviceCertificate,
    /// A per-device override of an IPv4 pool (FMC `overrides`).
    #[serde(rename = "IPv4AddressPoolOverride")]
    Ipv4AddressPoolOverride,
    #[serde(rename = "IPv6AddressPoolOverride")]
    Ipv6AddressPoolOverride,
    LocalUser,
    #[serde(rename = "DeploymentRequest")]
    Deployment,
    DeploymentJob,
    InternalCa,
    RaVpnSession,
}

impl ObjectKind {
    /// FMC's `type` string.
    pub fn fmc_type(self) -> &'static str {
        match self {
            Self::Domain => "Domain",
            Self::Administrator => "Administrator",
            Self::ApiSession => "ApiSession",
            Self::Device => "Device",
            Self::RaVpnPolicy => "RAVpn",
            Self::ConnectionProfile => "RaVpnConnectionProfile",
            Self::GroupPolicy => "GroupPolicy",
            Self::Ipv4AddressPool => "IPv4AddressPool",
            Self::Ipv6AddressPool => "IPv6AddressPool",
            Self::CertEnrollment => "CertEnrollment",
            Self::DeviceCertificate => "DeviceCertificate",
            Self::Ipv4AddressPoolOverride => "IPv4AddressPoolOverride",
            Self::Ipv6AddressPoolOverride => "IPv6AddressPoolOverride",
            Self::LocalUser => "LocalUser",
            Self::Deployment => "DeploymentRequest",
            Self::DeploymentJob => "DeploymentJob",
            Self::InternalCa => "InternalCa",
            Self::RaVpnSession => "RaVpnSession",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.fmc_type())
    }
}

/// Why a repository call did not do what was asked. In every case nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{kind} {id} does not exist")]
    NotFound { kind: ObjectKind, id: Uuid },
    #[error(
        "{kind} {id} was changed by someone else: you edited version {expected}, it is now at version {current}"
    )]
    Stale {
        kind: ObjectKind,
        id: Uuid,
        expected: i32,
        current: i32,
    },
    #[error("a {kind} with {field} {value:?} already exists")]
    Conflict {
        kind: ObjectKind,
        /// `name`, or the unique constraint that clashed.
        field: String,
        value: String,
    },
    #[error("{kind} {id} is still in use ({constraint}); remove the references first")]
    InUse {
        kind: ObjectKind,
        id: Uuid,
        constraint: String,
    },
    #[error("the {kind} refers to an object that does not exist ({constraint})")]
    MissingReference {
        kind: ObjectKind,
        constraint: String,
    },
    #[error("the {kind} breaks the rule {constraint}: {message}")]
    Invalid {
        kind: ObjectKind,
        constraint: String,
        message: String,
    },
    #[error("{kind} {name:?} is built in and cannot be deleted or renamed")]
    BuiltIn { kind: ObjectKind, name: String },
    #[error("{kind} {id} must be {expected}")]
    WrongReference {
        kind: ObjectKind,
        id: Uuid,
        expected: &'static str,
    },
    #[error("{kind} {id} cannot {action} while it is {state}")]
    WrongState {
        kind: ObjectKind,
        id: Uuid,
        action: &'static str,
        state: String,
    },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("database error while trying to {action}: {source}")]
    Sql {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database schema could not be brought up to date: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl DbError {
    /// Classifies an error of a statement that writes a `kind` row named `name`:
    /// unique → [`DbError::Conflict`], foreign key → [`DbError::MissingReference`],
    /// check → [`DbError::Invalid`].
    pub(crate) fn on_write(
        kind: ObjectKind,
        name: &str,
        action: &'static str,
    ) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| {
            let Some(db) = source.as_database_error() else {
                return Self::Sql { action, source };
            };
            let constraint = db.constraint().unwrap_or_default().to_owned();
            let code = db.code().unwrap_or_default().into_owned();
            match code.as_str() {
                "23505" => {
                    let (field, value) = if constraint.ends_with("_name_unique") {
                        ("name".to_owned(), name.to_owned())
                    } else {
                        (constraint, unique_detail(&source))
                    };
                    Self::Conflict { kind, field, value }
                }
                "23503" => Self::MissingReference { kind, constraint },
                "23514" | "23502" | "22P02" | "22003" => Self::Invalid {
                    kind,
                    constraint,
                    message: db.message().to_owned(),
                },
                _ => Self::Sql { action, source },
            }
        }
    }

    /// Classifies an error of a statement that deletes `kind` row `id`: a foreign key
    /// that still points at it → [`DbError::InUse`].
    pub(crate) fn on_delete(
        kind: ObjectKind,
        id: Uuid,
        action: &'static str,
    ) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| match source.as_database_error() {
            Some(db) if db.code().as_deref() == Some("23503") => Self::InUse {
                kind,
                id,
                constraint: db.constraint().unwrap_or_default().to_owned(),
            },
            _ => Self::Sql { action, source },
        }
    }

    pub(crate) fn sql(action: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Sql { action, source }
    }

    /// The database could not be reached (down, restarting, no free connection):
    /// the same request may well succeed later.
    pub fn is_unavailable(&self) -> bool {
        let Self::Sql { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // Class 08 (connection exception), 57P01-57P03 (shutdown, cannot connect now).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        }
    }
}

/// PostgreSQL's "Key (nat_id)=(x) already exists." detail, or the message.
fn unique_detail(error: &sqlx::Error) -> String {
    error
        .as_database_error()
        .and_then(|db| db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
        .and_then(|pg| pg.detail())
        .map(str::to_owned)
        .unwrap_or_else(|| error.to_string())
}
