//! The FTD side: the session database, the data plane (one TUN device, packets routed
//! to sessions by address) and the local control socket the `sensor-agent` CLI talks
//! to. The AnyConnect headend and the management channel come next.

pub mod cli;
pub mod config_file;
pub mod control;
pub mod dataplane;
pub mod sessions;

pub use config_file::load_config;

#[cfg(test)]
mod testing;
