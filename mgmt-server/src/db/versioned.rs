//! The one way an aggregate row is created, changed or deleted: in a transaction (or a
//! savepoint of the caller's), under a row lock with the optimistic version checked,
//! with its before and after images written to the audit log before the commit.
//!
//! Each aggregate says once how its row is locked and read ([`Versioned`]); each change
//! then says only what is specific to it:
//!
//! ```text
//! let mut change = Change::<Device>::open(conn, domain_id, id, Some(expected_version)).await?;
//! sqlx::query!("UPDATE devices SET … WHERE id = $1", id).execute(change.conn()).await?;
//! change.updated(actor).await
//! ```
//!
//! Dropping a [`Change`] without finishing it (an early `?`) rolls everything back.

use std::future::Future;

use serde::Serialize;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::audit::{self, AuditAction};
use super::{Actor, DbError, ObjectKind};

/// A stored aggregate with an optimistic `version` and an audit image (its JSON).
pub(crate) trait Versioned: Serialize + Sized + Send + Sync {
    const KIND: ObjectKind;
    /// Where the row lives, as its repository functions take it: usually the domain id.
    type Scope: Copy + Send + Sync;

    /// Locks the row `id` of `scope` for the rest of the transaction and returns its
    /// version; `None` when there is no such row.
    fn lock_version(
        conn: &mut PgConnection,
        scope: Self::Scope,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<i32>, DbError>> + Send;

    /// The row as the API shows it (what the audit log keeps as before/after).
    fn load(
        conn: &mut PgConnection,
        scope: Self::Scope,
        id: Uuid,
    ) -> impl Future<Output = Result<Self, DbError>> + Send;

    /// The name the audit row records.
    fn name(&self) -> &str;

    /// The domain the audit row records.
    fn audit_domain(&self, scope: Self::Scope) -> Uuid;
}

/// A change of one `T` row in progress; finish it with [`Change::created`],
/// [`Change::updated`], [`Change::deleted`] or [`Change::finish`].
pub(crate) struct Change<'c, T: Versioned> {
    tx: Transaction<'c, Postgres>,
    scope: T::Scope,
    id: Uuid,
    before: Option<T>,
    password_changed: bool,
}

impl<'c, T: Versioned> Change<'c, T> {
    /// Starts creating row `id`: the caller inserts it with [`Change::conn`].
    pub(crate) async fn create(
        conn: &'c mut PgConnection,
        scope: T::Scope,
        id: Uuid,
    ) -> Result<Self, DbError> {
        Ok(Self {
            tx: super::begin(conn).await?,
            scope,
            id,
            before: None,
            password_changed: false,
        })
    }

    /// Locks row `id` and reads its before image. With `expected_version`, a different
    /// current version is [`DbError::Stale`]; a missing row is [`DbError::NotFound`].
    pub(crate) async fn open(
        conn: &'c mut PgConnection,
        scope: T::Scope,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<Self, DbError> {
        let mut tx = super::begin(conn).await?;
        let current = T::lock_version(&mut tx, scope, id)
            .await?
            .ok_or(DbError::NotFound { kind: T::KIND, id })?;
        if let Some(expected) = expected_version {
            super::check_version(T::KIND, id, expected, current)?;
        }
        let before = T::load(&mut tx, scope, id).await?;
        Ok(Self {
            tx,
            scope,
            id,
            before: Some(before),
            password_changed: false,
        })
    }

    /// The transaction, for the change's own statements.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The row as it was when the change was opened (`None` while creating).
    pub(crate) fn before(&self) -> Option<&T> {
        self.before.as_ref()
    }

    /// The audit row says that a password changed (never what it is).
    pub(crate) fn note_password_changed(&mut self, changed: bool) {
        self.password_changed = changed;
    }

    /// Audits a CREATE and commits; returns the new row.
    pub(crate) async fn created(self, actor: &Actor) -> Result<T, DbError> {
        self.finish(actor, AuditAction::Create, None).await
    }

    /// Audits an UPDATE and commits; returns the row as it is now.
    pub(crate) async fn updated(self, actor: &Actor) -> Result<T, DbError> {
        self.finish(actor, AuditAction::Update, None).await
    }

    /// Audits `action` (with `detail`) on the changed row and commits; returns the row
    /// as it is now.
    pub(crate) async fn finish(
        mut self,
        actor: &Actor,
        action: AuditAction,
        detail: Option<&str>,
    ) -> Result<T, DbError> {
        let after = T::load(&mut self.tx, self.scope, self.id).await?;
        let mut after_image = super::snapshot(&after);
        if self.password_changed
            && let Some(serde_json::Value::Object(fields)) = after_image.as_mut()
        {
            fields.insert("passwordChanged".to_owned(), true.into());
        }
        let before_image = self.before.as_ref().and_then(super::snapshot);
        self.audit(actor, action, &after, before_image, after_image, detail)
            .await?;
        super::commit(self.tx).await?;
        Ok(after)
    }

    /// Audits a DELETE (of the before image) and commits. The caller has deleted the row.
    pub(crate) async fn deleted(mut self, actor: &Actor) -> Result<(), DbError> {
        let before = self.before.take().ok_or(DbError::NotFound {
            kind: T::KIND,
            id: self.id,
        })?;
        let before_image = super::snapshot(&before);
        self.audit(
            actor,
            AuditAction::Delete,
            &before,
            before_image,
            None,
            None,
        )
        .await?;
        super::commit(self.tx).await
    }

    async fn audit(
        &mut self,
        actor: &Actor,
        action: AuditAction,
        row: &T,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
        detail: Option<&str>,
    ) -> Result<(), DbError> {
        audit::record(
            &mut *self.tx,
            &audit::NewAuditEntry {
                actor,
                domain_id: Some(row.audit_domain(self.scope)),
                action,
                object_kind: T::KIND,
                object_id: Some(self.id),
                object_name: Some(row.name()),
                before,
                after,
                detail,
            },
        )
        .await?;
        Ok(())
    }
}

/// Implements [`Versioned`] for an aggregate that lives in a domain (`Scope` = the
/// domain id, which the audit row records), with a `name` field:
///
/// ```text
/// domain_scoped!(Device, KIND, get,
///     "SELECT version FROM devices WHERE id = $1 AND domain_id = $2 FOR UPDATE",
///     "lock a device");
/// ```
///
/// `get(conn, domain_id, id)` reads the row; the lock query (a literal, so that sqlx
/// checks it) selects `version` by `$1` (id) and `$2` (domain) `FOR UPDATE`.
macro_rules! domain_scoped {
    ($aggregate:ty, $kind:expr, $get:path, $lock:tt, $action:tt) => {
        impl $crate::db::versioned::Versioned for $aggregate {
            const KIND: $crate::db::ObjectKind = $kind;
            type Scope = ::uuid::Uuid;

            async fn lock_version(
                conn: &mut ::sqlx::PgConnection,
                domain_id: ::uuid::Uuid,
                id: ::uuid::Uuid,
            ) -> Result<Option<i32>, $crate::db::DbError> {
                ::sqlx::query_scalar!($lock, id, domain_id)
                    .fetch_optional(conn)
                    .await
                    .map_err($crate::db::DbError::sql($action))
            }

            async fn load(
                conn: &mut ::sqlx::PgConnection,
                domain_id: ::uuid::Uuid,
                id: ::uuid::Uuid,
            ) -> Result<Self, $crate::db::DbError> {
                $get(conn, domain_id, id).await
            }

            fn name(&self) -> &str {
                &self.name
            }

            fn audit_domain(&self, domain_id: ::uuid::Uuid) -> ::uuid::Uuid {
                domain_id
            }
        }
    };
}

pub(crate) use domain_scoped;
