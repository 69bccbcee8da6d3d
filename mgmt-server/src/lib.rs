//! The management center: PostgreSQL model, FMC-shaped REST API, web UI and deploy engine (coming in the mgmt-server issues).

pub mod db;
