//! Sans-IO core shared by the management center and the sensor.
//!
//! Nothing here opens a socket, reads a clock or touches a file: time is passed in,
//! bytes go in and typed values or bytes come out. The manager compiles a
//! [`config::DeviceConfig`], the sensor runs it, and both render it with [`cli`].

pub mod aggauth;
pub mod channel;
pub mod cli;
pub mod config;
pub mod cstp;
pub mod log_escape;
pub mod login;
pub mod mca;
pub mod pki;
pub mod pool;
pub mod session;
pub mod throttle;
