//! Shared fixtures for the cross-process tests: network namespaces the tests create
//! and always remove, the sensor-agent process, a throw-away PostgreSQL cluster, the
//! seed scenario as manager objects, and a headless Chromium driven through
//! chromedriver. The tests themselves are in `tests/` beside this library.

pub mod binaries;
pub mod browser;
pub mod netns;
#[cfg(feature = "manager")]
pub mod postgres;
#[cfg(feature = "manager")]
pub mod seed;
pub mod sensor;
