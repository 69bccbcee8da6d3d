//! Administrators' accounts, the one set of rules for both ways one is created (the
//! first-run page and System > Users): a user name of 1 to 64 characters without spaces,
//! a password of at least [`MIN_PASSWORD_LEN`] characters (typed twice where the page
//! asks for it), stored only as an argon2 hash.

use sqlx::PgPool;
use uuid::Uuid;

use crate::db::admins::{self, Administrator, AdministratorInput, Role};
use crate::db::{Actor, DbError, Listed, Page, PasswordHash};
use crate::rules::{self, ChangeError, Problem, Problems};

/// The shortest administrator password.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest administrator name (the database's limit).
pub const MAX_NAME_CHARS: usize = 64;

/// A field of an administrator a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Password,
    /// The password typed a second time.
    Confirmation,
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Password => "password",
            Self::Confirmation => "confirmPassword",
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
    if input.password.chars().count() < MIN_PASSWORD_LEN {
        problems.add(
            Field::Password,
            format!("use at least {MIN_PASSWORD_LEN} characters"),
        );
    } else if input
        .confirmation
        .as_ref()
        .is_some_and(|again| *again != input.password)
    {
        problems.add(Field::Confirmation, "the passwords do not match");
    }
    problems.into_vec()
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
    let password = input.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || PasswordHash::new(&password))
        .await
        .map_err(|_| AdministratorError::Hash)?
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

    #[test]
    fn an_administrator_name_is_1_to_64_characters_without_spaces_and_the_password_8_or_more() {
        assert!(fields(&input(" admin ", "12345678", None)).is_empty());
        assert!(fields(&input(&"a".repeat(64), "12345678", Some("12345678"))).is_empty());
        assert_eq!(
            fields(&input(&"a".repeat(65), "1234567", None)),
            [Field::Name, Field::Password]
        );
        assert_eq!(fields(&input("two words", "12345678", None)), [Field::Name]);
        assert_eq!(fields(&input("", "12345678", None)), [Field::Name]);
        assert_eq!(
            fields(&input("admin", "12345678", Some("12345679"))),
            [Field::Confirmation]
        );
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
