//! The management center: domain services ([`services`], [`devices`], [`deploy`]), the
//! PostgreSQL model ([`db`]), the FMC-shaped REST API ([`api`]) and the web UI ([`ui`]),
//! the internal CA ([`pki`]) and the manager's side of the sensor channel
//! ([`sensor_client`]).

pub mod admins;
pub mod api;
pub mod app;
pub mod audit;
pub mod db;
pub mod deploy;
pub mod devices;
pub mod listener;
pub mod log_format;
pub mod objects;
pub mod pki;
pub mod ravpn;
pub mod rules;
pub mod sensor_client;
pub mod server;
pub mod services;
pub mod ui;
