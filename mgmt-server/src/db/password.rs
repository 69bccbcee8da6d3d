//! Argon2id password hashes (PHC strings) for administrators and LOCAL realm users. The
//! sensor verifies LOCAL users against the same PHC string.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use serde::{Deserialize, Serialize};

/// Why a password could not be hashed or a stored hash read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password must not be empty")]
    Empty,
    #[error("the password hash is not an argon2 PHC string: {reason}")]
    NotArgon2 { reason: String },
    #[error("hashing the password failed: {reason}")]
    Hash { reason: String },
}

/// An argon2 PHC string (`$argon2id$v=19$...`). `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Hashes `password` with argon2id and a random salt. Slow on purpose (tens of
    /// milliseconds): call it from `spawn_blocking` in request handlers.
    pub fn new(password: &str) -> Result<Self, PasswordError> {
        if password.is_empty() {
            return Err(PasswordError::Empty);
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|error| PasswordError::Hash {
                reason: error.to_string(),
            })?;
        Ok(Self(hash.to_string()))
    }

    /// Accepts an existing argon2 PHC string (imports, the sensor's format).
    pub fn from_phc(phc: impl Into<String>) -> Result<Self, PasswordError> {
        let phc = phc.into();
        let parsed = argon2::PasswordHash::new(&phc).map_err(|error| PasswordError::NotArgon2 {
            reason: error.to_string(),
        })?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(PasswordError::NotArgon2 {
                reason: format!("algorithm is {}", parsed.algorithm),
            });
        }
        Ok(Self(phc))
    }

    /// Whether `password` matches. Slow on purpose, like [`PasswordHash::new`].
    pub fn verify(&self, password: &str) -> bool {
        argon2::PasswordHash::new(&self.0)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = PasswordError;

    fn try_from(phc: String) -> Result<Self, Self::Error> {
        Self::from_phc(phc)
    }
}

impl From<PasswordHash> for String {
    fn from(hash: PasswordHash) -> Self {
        hash.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = PasswordHash::new("correct horse").unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$"));
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("wrong horse"));
        assert_eq!(PasswordHash::from_phc(hash.as_phc()).unwrap(), hash);
    }

    #[test]
    fn empty_passwords_and_foreign_hashes_are_refused() {
        assert_eq!(PasswordHash::new("").unwrap_err(), PasswordError::Empty);
        assert!(PasswordHash::from_phc("plaintext").is_err());
        assert!(PasswordHash::from_phc("$5$rounds=5000$abc$def").is_err());
    }
}
