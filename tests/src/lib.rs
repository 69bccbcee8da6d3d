//! Shared fixtures for the cross-process tests in `tests/tests/` (network namespaces, PostgreSQL, clients).
