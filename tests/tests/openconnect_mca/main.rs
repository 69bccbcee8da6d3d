//! The real openconnect 9.01 client against `sensor-agent run`: Multiple Certificate
//! Authentication, then a CSTP tunnel carrying pings.
//!
//! The agent runs in one network namespace, openconnect in another, joined by a veth
//! pair (10.99.0.1 agent side, 10.99.0.2 client side). Two namespaces because in a
//! single one the agent's own TUN address would be a local address and a ping to it
//! would never enter the tunnel. The agent is the workspace's `sensor-agent` binary
//! (built by `e2e::sensor::binary`). `managed`, `fmc_workflow` and `web_ui` add the
//! manager: mgmt-server's application in this process on a throw-away PostgreSQL,
//! driven by its deploy engine, by fireREST and by Chromium. Needs root, `ip`, `ping`
//! and `/usr/sbin/openconnect`; the tests fail (never skip) without them.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly on purpose

mod dtls;
mod fmc_workflow;
mod lab;
mod login;
mod managed;
mod refusals;
mod tunnel;
mod two_sensors;
mod web_ui;
