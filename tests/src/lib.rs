//! Shared fixtures for the cross-process tests: network namespaces the tests create
//! and always remove, a throw-away PostgreSQL cluster, and the seed scenario as
//! manager objects.

pub mod netns;
pub mod postgres;
pub mod seed;
