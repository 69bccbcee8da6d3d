//! Administrators' accounts, the one set of rules for every door (the first-run page,
//! System > Users, the REST API): a user name of 1 to 64 characters without spaces, a
//! password of [`MIN_PASSWORD_LEN`] to [`MAX_PASSWORD_CHARS`] characters (Unicode as
//! typed) that is not common or guessable (zxcvbn score [`MIN_PASSWORD_SCORE`] or more),
//! typed twice where the page asks for it, stored only as an argon2 hash.
//!
//! The lifecycle: enable, disable, change role, reset a password (an Administrator),
//! change one's own password (with the current one), delete. Each is one audited change;
//! disabling, deleting or a new password ends the account's live sessions (web UI and
//! REST) at once, and a new role is re-checked on the next request of every session.
//! The last enabled account of the Administrator role cannot be disabled, demoted or
//! deleted.

use sqlx::PgPool;
use uuid::Uuid;

use super::hashing;
use crate::db::admins::{self, Administrator, AdministratorInput, AdministratorUpdate, Role};
use crate::db::{Actor, DbError, Listed, Page};
use crate::rules::{self, ChangeError, Problem, Problems};

/// The shortest administrator password, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest administrator password, in characters (bounds the strength estimate).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The least zxcvbn score (0 to 4) an administrator password needs: 3 is "safely
/// unguessable: moderate protection from offline slow-hash scenario".
pub const MIN_PASSWORD_SCORE: u8 = 3;
/// The longest administrator name (the database's limit).
pub const MAX_NAME_CHARS: usize = 64;

/// A field of an administrator a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Password,
    /// The password typed a second time.
    Confirmation,
    /// One's own current password, to change it.
    CurrentPassword,
    Role,
    Enabled,
    /// The account as a whole (deleting it).
    Account,
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Password => "password",
            Self::Confirmation => "confirmPassword",
            Self::CurrentPassword => "currentPassword",
            Self::Role => "role",
            Self::Enabled => "enabled",
            Self::Account => "id",
        }
    }
}

/// A new administrator. `Debug` does not show the password.
pub struct NewAdministrator {
    pub name: String,
    pub password: String,
    /// The password typed again, where the door asks for it.
    pub confirmation: Option<String>,
    pub role: Role,
}

impl std::fmt::Debug for NewAdministrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdministrator")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Why an administrator was not created.
#[derive(Debug, thiserror::Error)]
pub enum AdministratorError {
    #[error(transparent)]
    Refused(#[from] ChangeError<Field>),
    #[error("an administrator exists already: the first-run setup is over")]
    SetUpAlready,
    #[error("the password could not be hashed")]
    Hash,
}

impl From<DbError> for AdministratorError {
    fn from(error: DbError) -> Self {
        Self::Refused(ChangeError::Db(error))
    }
}

/// Every rule `input` breaks.
pub fn check(input: &NewAdministrator) -> Vec<Problem<Field>> {
    let mut problems = Problems::default();
    let name = input.name.trim();
    if name.is_empty() {
        problems.add(Field::Name, "is required");
    } else if name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        problems.add(
            Field::Name,
            format!("use up to {MAX_NAME_CHARS} characters without spaces"),
        );
    }
    check_password(
        &mut problems,
        &input.password,
        input.confirmation.as_deref(),
        name,
    );
    problems.into_vec()
}

/// What is wrong with `password` as an administrator password, if anything. `name` is
/// the account's name (a password made of it is guessable).
pub fn password_problem(password: &str, name: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Some(format!("use at least {MIN_PASSWORD_LEN} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(format!("use at most {MAX_PASSWORD_CHARS} characters"));
    }
    let estimate = zxcvbn::zxcvbn(password, &[name, "fmc", "firepower", "cisco", "admin"]);
    if u8::from(estimate.score()) < MIN_PASSWORD_SCORE {
        let mut message =
            "is too common or easy to guess: use a longer, less predictable password".to_owned();
        if let Some(hint) = estimate.feedback().and_then(|f| f.warning()) {
            message = format!("{message} ({hint})");
        }
        return Some(message);
    }
    None
}

fn check_password(
    problems: &mut Problems<Field>,
    password: &str,
    confirmation: Option<&str>,
    name: &str,
) {
    if let Some(problem) = password_problem(password, name) {
        problems.add(Field::Password, problem);
    } else if confirmation.is_some_and(|again| again != password) {
        problems.add(Field::Confirmation, "the passwords do not match");
    }
}

/// No administrator exists yet: the first one is created on the first-run page.
pub async fn first_run(pool: &PgPool) -> Result<bool, DbError> {
    Ok(admins::count(pool).await? == 0)
}

pub async fn list(pool: &PgPool, page: Page) -> Result<Listed<Administrator>, DbError> {
    admins::list(pool, page).await
}

/// Creates the first administrator (role Administrator), while there is none.
pub async fn create_first(
    pool: &PgPool,
    domain_id: Uuid,
    input: &NewAdministrator,
) -> Result<Administrator, AdministratorError> {
    if !first_run(pool).await? {
        return Err(AdministratorError::SetUpAlready);
    }
    let input = NewAdministrator {
        name: input.name.clone(),
        password: input.password.clone(),
        confirmation: input.confirmation.clone(),
        role: Role::Administrator,
    };
    store(pool, &Actor::system(), domain_id, &input).await
}

/// Creates an administrator.
pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    input: &NewAdministrator,
) -> Result<Administrator, AdministratorError> {
    store(pool, actor, domain_id, input).await
}

async fn store(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    input: &NewAdministrator,
) -> Result<Administrator, AdministratorError> {
    let problems = check(input);
    if !problems.is_empty() {
        return Err(ChangeError::Invalid(problems).into());
    }
    let password_hash = hashing::hash(&input.password)
        .await
        .map_err(|_| AdministratorError::Hash)?;
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let stored = AdministratorInput {
        name: input.name.trim().to_owned(),
        password_hash,
        role: input.role,
        enabled: true,
    };
    Ok(admins::create(&mut conn, actor, domain_id, &stored).await?)
}

/// One change of an existing account. `Debug` does not show a password.
pub enum AccountChange {
    Enable,
    Disable,
    Role(Role),
    /// A new password set by an Administrator; the account's sessions end.
    ResetPassword {
        password: String,
        confirmation: Option<String>,
    },
}

impl std::fmt::Debug for AccountChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Enable => f.write_str("Enable"),
            Self::Disable => f.write_str("Disable"),
            Self::Role(role) => f.debug_tuple("Role").field(role).finish(),
            Self::ResetPassword { .. } => f.write_str("ResetPassword(<redacted>)"),
        }
    }
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Administrator, DbError> {
    admins::get(pool, id).await
}

fn refused(field: Field, message: impl Into<String>) -> AdministratorError {
    let mut problems = Problems::default();
    problems.add(field, message);
    ChangeError::Invalid(problems.into_vec()).into()
}

/// Whether `target` is the only enabled account of the Administrator role among the
/// locked `enabled_administrators`.
fn is_last_administrator(target: &Administrator, enabled_administrators: &[Uuid]) -> bool {
    target.enabled
        && target.role.0 == Role::Administrator
        && enabled_administrators.len() <= 1
        && enabled_administrators.contains(&target.id)
}

/// Applies `change` to administrator `id` (audited as an UPDATE). Disabling or a new
/// password ends the account's sessions in the same transaction.
pub async fn change(
    pool: &PgPool,
    actor: &Actor,
    id: Uuid,
    change: AccountChange,
) -> Result<Administrator, AdministratorError> {
    let current = admins::get(pool, id).await?;
    let mut update = AdministratorUpdate {
        name: current.name.clone(),
        password_hash: None,
        role: current.role.0,
        enabled: current.enabled,
    };
    let mut end_sessions = false;
    match &change {
        AccountChange::Enable => update.enabled = true,
        AccountChange::Disable => {
            update.enabled = false;
            end_sessions = true;
        }
        AccountChange::Role(role) => update.role = *role,
        AccountChange::ResetPassword {
            password,
            confirmation,
        } => {
            let mut problems = Problems::default();
            check_password(
                &mut problems,
                password,
                confirmation.as_deref(),
                &current.name,
            );
            problems.finish()?;
            update.password_hash = Some(
                hashing::hash(password)
                    .await
                    .map_err(|_| AdministratorError::Hash)?,
            );
            end_sessions = true;
        }
    }
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(DbError::sql("begin a transaction"))?;
    let enabled = admins::lock_enabled_administrators(&mut tx).await?;
    let locked = admins::get(&mut *tx, id).await?;
    let stays_administrator = update.enabled && update.role == Role::Administrator;
    if !stays_administrator && is_last_administrator(&locked, &enabled) {
        return Err(match change {
            AccountChange::Role(_) => refused(
                Field::Role,
                "the last enabled Administrator keeps the Administrator role: give another account that role first",
            ),
            _ => refused(
                Field::Enabled,
                "the last enabled Administrator cannot be disabled: enable or create another Administrator first",
            ),
        });
    }
    let updated = admins::update(&mut tx, actor, id, locked.version, &update).await?;
    if end_sessions {
        let ended = admins::revoke_sessions_of(&mut *tx, id, None).await?;
        tracing::info!(administrator = %updated.name, sessions = ended, "sessions ended");
    }
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(updated)
}

/// Deletes administrator `id` (audited); its sessions go with it.
pub async fn delete(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AdministratorError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(DbError::sql("begin a transaction"))?;
    let enabled = admins::lock_enabled_administrators(&mut tx).await?;
    let target = admins::get(&mut *tx, id).await?;
    if is_last_administrator(&target, &enabled) {
        return Err(refused(
            Field::Account,
            "the last enabled Administrator cannot be deleted: enable or create another Administrator first",
        ));
    }
    admins::delete(&mut tx, actor, id, None).await?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(())
}

/// One's own new password, with the current one. `Debug` does not show them.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    pub confirmation: Option<String>,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange(<redacted>)")
    }
}

/// Changes the password of the administrator whose session is `session_id`, after
/// checking the current one; the account's other sessions end.
pub async fn change_own_password(
    pool: &PgPool,
    actor: &Actor,
    administrator_id: Uuid,
    session_id: Uuid,
    change: &PasswordChange,
) -> Result<Administrator, AdministratorError> {
    let current = admins::get(pool, administrator_id).await?;
    let mut problems = Problems::default();
    let right = hashing::verify(&current.password_hash, &change.current)
        .await
        .map_err(|_| AdministratorError::Hash)?;
    if !right {
        problems.add(Field::CurrentPassword, "is not your current password");
    }
    check_password(
        &mut problems,
        &change.new,
        change.confirmation.as_deref(),
        &current.name,
    );
    if right && change.new == change.current {
        problems.add(Field::Password, "must differ from the current password");
    }
    problems.finish()?;
    let hash = hashing::hash(&change.new)
        .await
        .map_err(|_| AdministratorError::Hash)?;
    let update = AdministratorUpdate {
        name: current.name.clone(),
        password_hash: Some(hash),
        role: current.role.0,
        enabled: current.enabled,
    };
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(DbError::sql("begin a transaction"))?;
    let updated =
        admins::update(&mut tx, actor, administrator_id, current.version, &update).await?;
    admins::revoke_sessions_of(&mut *tx, administrator_id, Some(session_id)).await?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, password: &str, confirmation: Option<&str>) -> NewAdministrator {
        NewAdministrator {
            name: name.to_owned(),
            password: password.to_owned(),
            confirmation: confirmation.map(str::to_owned),
            role: Role::ReadOnly,
        }
    }

    fn fields(input: &NewAdministrator) -> Vec<Field> {
        check(input).iter().map(|p| p.field).collect()
    }

    const GOOD: &str = "Sup3r-secret!";

    #[test]
    fn an_administrator_name_is_1_to_64_characters_without_spaces_and_the_password_8_or_more() {
        assert!(fields(&input(" admin ", GOOD, None)).is_empty());
        assert!(fields(&input(&"a".repeat(64), GOOD, Some(GOOD))).is_empty());
        assert_eq!(
            fields(&input(&"a".repeat(65), "Zq7!x", None)),
            [Field::Name, Field::Password]
        );
        assert_eq!(fields(&input("two words", GOOD, None)), [Field::Name]);
        assert_eq!(fields(&input("", GOOD, None)), [Field::Name]);
        assert_eq!(
            fields(&input("admin", GOOD, Some("Sup3r-secret?"))),
            [Field::Confirmation]
        );
    }

    #[test]
    fn common_and_guessable_passwords_are_refused_however_long() {
        for weak in [
            "password",
            "12345678",
            "Password1",
            "qwertyuiop",
            "admin123",
            "alice12345",
        ] {
            assert!(
                password_problem(weak, "alice").is_some(),
                "{weak} was accepted"
            );
        }
        assert!(password_problem(&"x".repeat(129), "alice").is_some());
    }

    #[test]
    fn a_strong_password_is_accepted_unicode_as_typed() {
        for strong in [
            GOOD,
            "Read-only-pw",
            "correct horse battery staple",
            "Grüße-aus-Köln-7",
            "пароль-Ёжик-42",
        ] {
            assert_eq!(password_problem(strong, "alice"), None, "{strong}");
        }
        // Seven characters are too few even when each is a multi-byte one.
        assert!(password_problem("ÄÖÜßéèç", "alice").is_some());
    }

    #[test]
    fn an_account_change_does_not_show_the_new_password() {
        let change = AccountChange::ResetPassword {
            password: "Sup3r-secret!".into(),
            confirmation: None,
        };
        assert!(!format!("{change:?}").contains("Sup3r"));
        let own = PasswordChange {
            current: "Old-s3cret!".into(),
            new: "Sup3r-secret!".into(),
            confirmation: None,
        };
        assert!(!format!("{own:?}").contains("s3cret"));
    }

    #[test]
    fn a_new_administrators_password_is_not_in_its_debug_text() {
        let text = format!(
            "{:?}",
            input("admin", "Sup3r-secret!", Some("Sup3r-secret!"))
        );
        assert!(!text.contains("Sup3r"), "{text}");
    }
}
