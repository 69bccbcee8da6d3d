//! Shared fixtures for the cross-process tests: network namespaces the tests create
//! and always remove, a throw-away PostgreSQL cluster, the seed scenario as manager
//! objects, and a headless Chromium driven through chromedriver.

pub mod browser;
pub mod netns;
pub mod postgres;
pub mod seed;
