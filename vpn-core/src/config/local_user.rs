use serde::{Deserialize, Serialize};

/// A user of the LOCAL realm. Only the argon2 PHC hash travels, never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUser {
    pub name: String,
    /// `$argon2id$...` PHC string.
    pub password_hash: String,
}
