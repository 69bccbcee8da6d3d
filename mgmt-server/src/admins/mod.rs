//! Administrators: how they prove who they are, whichever door they use.

pub mod login;

pub use login::{Door, LOGIN_LOCK, LoginRefused, authenticate};
