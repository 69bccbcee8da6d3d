//! Shared fixtures for the cross-process tests: network namespaces the tests create
//! and always remove.

pub mod netns;
