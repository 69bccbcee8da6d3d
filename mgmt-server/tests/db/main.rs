//! Repository tests against a throw-away PostgreSQL cluster that this test binary starts
//! (one cluster per run, a fresh database per test).

#![allow(clippy::unwrap_used)]

mod support;

mod accounts;
mod api;
mod audit;
mod cert_enrollments;
mod cluster;
mod deployments;
mod device_policy;
mod devices;
mod doors;
mod group_policies;
mod lifecycle;
mod listener;
mod per_device;
mod pools;
mod ravpn;
mod roles;
mod ui;
