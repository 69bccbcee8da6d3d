//! Users of the LOCAL realm (the AAA server "LOCAL" of connection profiles): the rules
//! of a user's name and password, checked once here, then the password is hashed (argon2,
//! on the blocking pool) and the repository writes the hash. The password itself is never
//! stored, logged or returned.

use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::ObjectKind as CoreKind;

use super::acquire;
use crate::db::local_users::{self, LocalUser, LocalUserInput, LocalUserUpdate};
use crate::db::{Actor, DbError, Listed, Page, PasswordHash};
use crate::rules::{self, ChangeError, Problems};

/// The shortest password of a LOCAL user, in characters (Unicode as typed).
pub const MIN_PASSWORD_LEN: usize = 8;

/// A field of a LOCAL user a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Password,
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Password => "password",
        }
    }
}

pub type LocalUserError = ChangeError<Field>;

/// A user as an administrator enters it. `password: None` on an edit keeps the stored
/// password; a new user needs one.
pub struct LocalUserChange {
    pub name: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for LocalUserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUserChange")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Every rule `change` breaks; `creating` when it adds a user.
pub fn check(change: &LocalUserChange, creating: bool) -> Problems<Field> {
    let mut problems = Problems::default();
    problems.check_object_name(Field::Name, CoreKind::LocalUser, &change.name);
    match change.password.as_deref() {
        None | Some("") if creating => problems.add(Field::Password, "is required for a new user"),
        Some(password) if !password.is_empty() && password.chars().count() < MIN_PASSWORD_LEN => {
            problems.add(
                Field::Password,
                format!("use at least {MIN_PASSWORD_LEN} characters"),
            );
        }
        _ => {}
    }
    problems
}

/// The argon2 hash of a given password (on the blocking pool: it is slow on purpose).
async fn hash(password: Option<String>) -> Result<Option<PasswordHash>, LocalUserError> {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    crate::admins::hashing::hash(&password)
        .await
        .map(Some)
        .map_err(|e| invalid(&e.to_string()))
}

fn invalid(message: &str) -> LocalUserError {
    ChangeError::Invalid(vec![rules::Problem {
        field: Field::Password,
        message: message.to_owned(),
    }])
}

pub async fn list(
    pool: &PgPool,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<LocalUser>, DbError> {
    local_users::list(pool, domain_id, page).await
}

pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    change: LocalUserChange,
) -> Result<LocalUser, LocalUserError> {
    check(&change, true).finish()?;
    let Some(password_hash) = hash(change.password).await? else {
        return Err(invalid("is required for a new user"));
    };
    let input = LocalUserInput {
        name: change.name,
        password_hash,
    };
    let mut conn = acquire(pool).await?;
    Ok(local_users::create(&mut conn, actor, domain_id, &input).await?)
}

pub async fn update(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    change: LocalUserChange,
) -> Result<LocalUser, LocalUserError> {
    check(&change, false).finish()?;
    let update = LocalUserUpdate {
        password_hash: hash(change.password).await?,
        name: change.name,
    };
    let mut conn = acquire(pool).await?;
    Ok(local_users::update(&mut conn, actor, domain_id, id, expected_version, &update).await?)
}

pub async fn delete(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut conn = acquire(pool).await?;
    local_users::delete(&mut conn, actor, domain_id, id, expected_version).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_user_needs_a_password_and_an_edit_may_keep_it() {
        let change = |name: &str, password: Option<&str>| LocalUserChange {
            name: name.to_owned(),
            password: password.map(str::to_owned),
        };
        let fields = |c: &LocalUserChange, creating| -> Vec<Field> {
            check(c, creating)
                .into_vec()
                .iter()
                .map(|p| p.field)
                .collect()
        };
        assert!(fields(&change("alice", Some("Sommer-2031")), true).is_empty());
        assert_eq!(
            fields(&change("alice", Some("pw")), true),
            [Field::Password]
        );
        assert_eq!(
            fields(&change("alice", Some("ÄÖÜßéèç")), false),
            [Field::Password]
        );
        assert!(fields(&change("alice", Some("ÄÖÜßéèçà")), false).is_empty());
        assert_eq!(fields(&change("alice", None), true), [Field::Password]);
        assert_eq!(fields(&change("alice", Some("")), true), [Field::Password]);
        assert!(fields(&change("alice", None), false).is_empty());
        assert_eq!(fields(&change("al ice", None), false), [Field::Name]);
        assert!(!format!("{:?}", change("alice", Some("s3cret"))).contains("s3cret"));
    }
}
