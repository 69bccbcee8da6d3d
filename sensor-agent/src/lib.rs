//! The FTD side: the AnyConnect-compatible [`headend`] (TLS, aggregate-auth with
//! Multiple Certificate Authentication, CSTP tunnel; verified with the real openconnect
//! 9.01), the session database, the data plane (one TUN device, packets routed to
//! sessions by address), the local control socket the `sensor-agent` CLI talks to, and
//! the [`manager`] channel (registration, config push, status, sessions API). DTLS is
//! not implemented yet (CSTP only).
//!
//! ```text
//! sensor-agent run [--data-dir /var/lib/sensor-agent] [--config device.json]
//!                  [--listen 0.0.0.0] [--tun-name vpn-sensor0] [--tun-ipv4 10.77.0.1/24]
//!                  [--headend-address 198.51.100.1]
//!                  [--management-listen 0.0.0.0:8305]
//! sensor-agent configure manager add 192.0.2.10 Reg-Key-42 [nat-id]
//! sensor-agent configure manager delete
//! sensor-agent show managers
//! sensor-agent configure apply device-v2.json
//! sensor-agent show running-config tunnel-group
//! sensor-agent show vpn-sessiondb detail anyconnect filter name alice
//! sensor-agent vpn-sessiondb logoff name alice noconfirm
//! ```
//!
//! `run` needs root (or `CAP_NET_ADMIN` plus write access to the socket directory) and
//! iproute2's `ip` for the pool routes. Every flag has a `SENSOR_AGENT_*` variable. The
//! headend listens on `--listen` at the configuration's `headend.ssl_port` once the
//! configuration has an identity certificate.
//!
//! Configuration: [`config_store::ConfigStore`] keeps the applied configuration in the
//! data directory (`running.json`, `history/<version>.json`) and the agent starts with
//! it; `--config FILE` applies FILE at start (labs). With nothing applied the agent
//! still starts (control socket, TUN device without routes, no headend) and runs
//! [`config_store::nothing_applied`] until the first deploy. A deploy
//! ([`config_store::Deployer::deploy`], e.g. from `configure apply`) must be newer and
//! for this device and pass `DeviceConfig::validate`; then [`services`] prepares it
//! (binds a new `ssl_port`, builds the TLS configuration of a new identity, adds new
//! pool routes, sets the TUN MTU) and only if that succeeds is it written atomically,
//! sent to the headend and activated: new connections get the new identity and port,
//! established tunnels go on, and the sessions whose pool address or connection
//! profile (authentication, trustpoints) it no longer admits end. Nothing needs a
//! restart.
//!
//! How the headend uses this crate:
//! 1. after authentication, [`sessions::SessionDb::login`] gives the cookie and addresses;
//! 2. on CONNECT, [`sessions::SessionDb::authenticate_cookie`] then
//!    [`sessions::SessionDb::attach`] give an [`sessions::Attachment`], and
//!    [`dataplane::Router::attach`] with its addresses and counters gives the
//!    [`dataplane::SessionPort`];
//! 3. the tunnel task selects over the port (packets for the client), its transports
//!    (CSTP now, DTLS later: data goes to [`dataplane::Uplink::send`]) and
//!    `attachment.stop`; it counts what it sends with `attachment.counters.record_tx`;
//! 4. on CSTP DISCONNECT it calls [`sessions::SessionDb::logout`]; on a lost connection
//!    [`sessions::SessionDb::detach`]; dropping the port removes its routes.

mod atomic_file;
pub mod cli;
pub mod config_file;
pub mod config_store;
pub mod connection_limit;
pub mod control;
pub mod dataplane;
pub mod headend;
pub mod manager;
pub mod services;
pub mod sessions;

pub use config_file::load_config;

#[cfg(test)]
mod testing;
