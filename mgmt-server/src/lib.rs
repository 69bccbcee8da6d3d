//! The management center: PostgreSQL model ([`db`]), FMC-shaped REST API, web UI and
//! deploy engine (coming in the mgmt-server issues), the internal CA ([`pki`]) and the
//! manager's side of the sensor channel ([`sensor_client`]).

pub mod api;
pub mod app;
pub mod db;
pub mod deploy;
pub mod pki;
pub mod sensor_client;
pub mod server;
pub mod ui;
