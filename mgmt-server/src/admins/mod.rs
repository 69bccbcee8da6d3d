//! Administrators: their accounts, how they prove who they are whichever door they use,
//! and their sessions.

pub mod administrators;
pub mod hashing;
pub mod login;
pub mod sessions;

pub use administrators::{AdministratorError, NewAdministrator};
pub use login::{Door, LOGIN_LOCK, LoginRefused, SOURCE_LOCK, authenticate};
pub use sessions::{Authenticated, IssuedTokens, SessionError};
