//! Shared fixtures for the cross-process tests: network namespaces the tests create
//! and always remove, and a throw-away PostgreSQL cluster.

pub mod netns;
pub mod postgres;
