//! Repository tests against a throw-away PostgreSQL cluster that this test binary starts
//! (one cluster per run, a fresh database per test).

#![allow(clippy::unwrap_used)]

mod support;

mod cluster;
mod pools;
