//! The management channel: the sensor's side of "deploy over an authenticated REST
//! push" (the documents and proofs are `vpn_core::channel`'s; the manager's side is
//! `mgmt_server::sensor_client`).
//!
//! 1. The administrator types `sensor-agent configure manager add <host[:port]> <key>
//!    [<nat-id>]` ([`ManagerChannel::add_manager`]).
//! 2. The manager calls the management API (TLS 1.3, the sensor's self-signed bootstrap
//!    certificate): it takes a challenge and proves the key, bound to that certificate;
//!    the sensor checks the manager's address and the NAT ID, then the proof, then the
//!    certificates the manager's internal CA issued (the sensor's, for the key the
//!    sensor already holds, and the manager's). It keeps them in `DATA_DIR/manager/`,
//!    forgets the key, and answers with its own proof.
//! 3. From then on the API accepts only mutual TLS with exactly the manager's
//!    certificate, and serves: config push ([`crate::config_store::Deployer`]), status,
//!    sessions (list, terminate) and session events with a cursor.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections, [`MAX_CONNECTIONS_PER_SOURCE`] from
//! one source, each with [`IO_TIMEOUT`] for its handshake and request heads. Once
//! registered to a manager given by address (or by a name, through the addresses it
//! resolves to), connections from any other address are closed on accept, before they
//! take a slot: a flood of plain TCP connections cannot lock the manager out.

mod api;
pub mod enrollment;
pub mod registration;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;
use vpn_core::channel::{
    CertificateExpiry, IdentifierError, ManagerAddress, ManagerHost, NatId, RegistrationKey,
    RunningConfigSummary, SensorStatus, SessionCounts, certificate_expiries,
};
use vpn_core::config::DeviceConfig;

use crate::config_store::Deployer;
use crate::connection_limit::{ConnectionLimit, ConnectionRefused};
use crate::sessions::SessionDb;
use enrollment::{ChannelKey, EnrollmentError, EnrollmentFiles, PendingManager, Registration};
use registration::Challenges;
use tls::ChannelTlsError;

pub use api::{MAX_CONFIG_BYTES, MAX_EVENTS_PER_PAGE, MAX_REGISTRATION_BYTES};

/// Where the management API listens unless told otherwise.
pub const DEFAULT_MANAGEMENT_LISTEN: &str = "0.0.0.0:8305";
/// Most management connections at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Most management connections from one source (an address, or an IPv6 /64).
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 8;
/// How long the addresses of a manager host name are trusted before resolving again.
const RESOLVED_LIFETIME: Duration = Duration::from_secs(60);
/// Longest TLS handshake or request head.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the management channel could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChannelSetupError {
    #[error("the manager files")]
    Files(#[from] EnrollmentError),
    #[error("the management API's TLS")]
    Tls(#[from] ChannelTlsError),
}

/// Why `configure manager add|delete` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManagerCommandError {
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
    #[error("this sensor is registered to manager {manager}; run `configure manager delete` first")]
    AlreadyRegistered { manager: String },
    #[error("the manager files")]
    Files(#[from] EnrollmentError),
    #[error("the management API's TLS")]
    Tls(#[from] ChannelTlsError),
}

/// What the management API reads and acts on.
#[derive(Debug, Clone)]
pub struct AgentHandles {
    pub deployer: Arc<Deployer>,
    pub sessions: SessionDb,
    pub config: watch::Receiver<Arc<DeviceConfig>>,
}

/// The management channel of one sensor.
pub struct ManagerChannel {
    files: EnrollmentFiles,
    key: ChannelKey,
    bootstrap_der: Vec<u8>,
    hostname: String,
    state: Mutex<EnrollmentState>,
    tls: RwLock<Arc<ServerConfig>>,
    challenges: Mutex<Challenges>,
    /// The addresses the registered manager's host name resolved to, and when.
    resolved: Mutex<Option<(String, Vec<IpAddr>, Instant)>>,
    agent: AgentHandles,
    started_at: OffsetDateTime,
    started: Instant,
}

impl std::fmt::Debug for ManagerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerChannel")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct EnrollmentState {
    pending: Option<PendingManager>,
    registration: Option<Registration>,
}

impl ManagerChannel {
    /// Loads `DATA_DIR/manager/` (creating the channel key on first start).
    pub fn open(
        data_dir: &std::path::Path,
        hostname: &str,
        agent: AgentHandles,
        started_at: OffsetDateTime,
    ) -> Result<Arc<Self>, ChannelSetupError> {
        let files = EnrollmentFiles::open(data_dir)?;
        let key = files.channel_key(hostname)?;
        let bootstrap_der = vpn_core::pki::pem::certificates(&key.bootstrap_certificate_pem)
            .ok()
            .and_then(|certs| certs.into_iter().next())
            .map(|der| der.as_ref().to_vec())
            .unwrap_or_default();
        let state = EnrollmentState {
            pending: files.pending()?,
            registration: files.registration()?,
        };
        let tls = match &state.registration {
            Some(registration) => tls::registered_config(&key, registration)?,
            None => tls::bootstrap_config(&key)?,
        };
        Ok(Arc::new(Self {
            files,
            key,
            bootstrap_der,
            hostname: hostname.to_owned(),
            state: Mutex::new(state),
            tls: RwLock::new(tls),
            challenges: Mutex::new(Challenges::default()),
            resolved: Mutex::new(None),
            agent,
            started_at,
            started: Instant::now(),
        }))
    }

    /// `configure manager add <host[:port]> <key> [<nat-id>]`.
    pub fn add_manager(
        &self,
        address: &str,
        registration_key: &str,
        nat_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<PendingManager, ManagerCommandError> {
        let address: ManagerAddress = address.parse()?;
        let registration_key = RegistrationKey::new(registration_key)?;
        let nat_id = nat_id.map(NatId::new).transpose()?;
        if address.host == ManagerHost::DontResolve && nat_id.is_none() {
            return Err(IdentifierError::NatIdRequired.into());
        }
        let mut state = self.state();
        if let Some(registration) = &state.registration {
            return Err(ManagerCommandError::AlreadyRegistered {
                manager: registration.address.to_string(),
            });
        }
        let pending = PendingManager {
            address,
            registration_key,
            nat_id,
            added_at: now,
        };
        self.files.save_pending(&pending)?;
        state.pending = Some(pending.clone());
        tracing::info!(manager = %pending.address, "manager added; waiting for it to register");
        Ok(pending)
    }

    /// `configure manager delete`: forgets the manager; the running configuration
    /// and the sessions stay. The API is back to its bootstrap certificate.
    pub fn delete_manager(&self) -> Result<(), ManagerCommandError> {
        let bootstrap = tls::bootstrap_config(&self.key)?;
        let mut state = self.state();
        self.files.forget_manager()?;
        *state = EnrollmentState::default();
        *self.tls.write().unwrap_or_else(PoisonError::into_inner) = bootstrap;
        tracing::info!("manager deleted");
        Ok(())
    }

    /// `show managers`, as FTD prints it.
    pub fn show_managers(&self) -> String {
        let state = self.state();
        let (host, identifier, status, name) = match (&state.registration, &state.pending) {
            (Some(registration), _) => (
                registration.address.to_string(),
                registration.nat_id.as_ref().map(ToString::to_string),
                "Completed",
                registration.manager_name.clone(),
            ),
            (None, Some(pending)) => (
                pending.address.to_string(),
                pending.nat_id.as_ref().map(ToString::to_string),
                "Pending",
                pending.address.to_string(),
            ),
            (None, None) => return "No managers configured.\n".to_owned(),
        };
        let mut text = String::new();
        text.push_str("Type                      : Manager\n");
        text.push_str(&format!("Host                      : {host}\n"));
        text.push_str(&format!("Display name              : {name}\n"));
        if let Some(identifier) = identifier {
            text.push_str(&format!("Identifier                : {identifier}\n"));
        }
        text.push_str(&format!("Registration              : {status}\n"));
        text.push_str("Management type           : Configuration and analytics\n");
        text
    }

    /// The device id the manager gave at registration.
    pub fn device_id(&self) -> Option<Uuid> {
        self.state().registration.as_ref().map(|r| r.device_id)
    }

    /// What `GET /api/v1/status` answers.
    pub fn status(&self) -> SensorStatus {
        let config = Arc::clone(&self.agent.config.borrow());
        let running = (config.version > 0).then(|| RunningConfigSummary {
            version: config.version,
            hash: config.content_hash(),
            connection_profiles: u32::try_from(config.connection_profiles.len())
                .unwrap_or(u32::MAX),
        });
        let (identity, trustpoints) = if running.is_some() {
            certificate_expiries(&config)
        } else {
            (None, Vec::new())
        };
        let records = self.agent.sessions.sessions();
        let stats = self.agent.sessions.stats();
        let count = |keep: &dyn Fn(&vpn_core::session::SessionRecord) -> bool| {
            u32::try_from(records.iter().filter(|r| keep(r)).count()).unwrap_or(u32::MAX)
        };
        let state = self.state();
        SensorStatus {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            hostname: self.hostname.clone(),
            device_id: state.registration.as_ref().map(|r| r.device_id),
            started_at: self.started_at,
            uptime_secs: self.started.elapsed().as_secs(),
            running,
            sessions: SessionCounts {
                active: count(&|r| r.is_active()),
                inactive: count(&|r| !r.is_active()),
                ssl_tunnels: count(&|r| r.ssl.is_some()),
                dtls_tunnels: count(&|r| r.dtls.is_some()),
                cumulative: stats.cumulative_sessions,
                peak_concurrent: stats.peak_concurrent_sessions,
                device_capacity: stats.device_capacity,
            },
            identity_certificate: identity,
            trustpoints,
            channel_certificate: state
                .registration
                .as_ref()
                .and_then(|r| CertificateExpiry::of_first("channel", &r.sensor_certificate_pem)),
        }
    }

    /// Accepts management connections on `listener` forever.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let router = api::router(Arc::clone(&self));
        let connections = ConnectionLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE);
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "management accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !self.admits(peer.ip()) {
                tracing::debug!(%peer, "management connection from an address that is not the manager's; closed");
                continue;
            }
            let slot = match connections.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(ConnectionRefused::SourceFull { first: false, .. }) => {
                    tracing::debug!(%peer, "management connection refused: source over its cap");
                    continue;
                }
                Err(refused) => {
                    tracing::warn!(%peer, "management {refused}");
                    continue;
                }
            };
            let channel = Arc::clone(&self);
            let router = router.clone();
            tokio::spawn(async move {
                channel.connection(tcp, peer, router).await;
                drop(slot);
            });
        }
    }

    async fn connection(&self, tcp: TcpStream, peer: SocketAddr, router: axum::Router) {
        // Without it, a small answer written as two TLS records waits for the manager's
        // delayed ACK (Nagle): about 40 ms on every call.
        let _ = tcp.set_nodelay(true);
        let config = Arc::clone(&self.tls.read().unwrap_or_else(PoisonError::into_inner));
        let acceptor = TlsAcceptor::from(config);
        let stream = match tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "management TLS handshake refused");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "management TLS handshake timed out");
                return;
            }
        };
        let authenticated = stream
            .get_ref()
            .1
            .peer_certificates()
            .is_some_and(|chain| !chain.is_empty());
        let caller = api::Caller {
            peer,
            manager: authenticated,
        };
        api::serve_connection(stream, router, caller).await;
    }

    /// Whether a connection from `peer` may go on: any address until registered, then
    /// only the registered manager's (any address when it is `DONTRESOLVE`).
    fn admits(self: &Arc<Self>, peer: IpAddr) -> bool {
        let host = match &self.state().registration {
            Some(registration) => registration.address.host.clone(),
            None => return true,
        };
        match host {
            ManagerHost::DontResolve => true,
            ManagerHost::Address(address) => registration::same_address(address, peer),
            ManagerHost::Name(name) => {
                let resolved = self
                    .resolved
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                match resolved {
                    Some((known, addresses, at))
                        if known == name && at.elapsed() < RESOLVED_LIFETIME =>
                    {
                        addresses
                            .iter()
                            .any(|address| registration::same_address(*address, peer))
                    }
                    // Not resolved lately: resolve in the background and let this one
                    // through (its handshake still needs the manager's certificate).
                    _ => {
                        self.resolve_in_background(name);
                        true
                    }
                }
            }
        }
    }

    fn resolve_in_background(self: &Arc<Self>, name: String) {
        let channel = Arc::clone(self);
        tokio::spawn(async move {
            let lookup =
                tokio::time::timeout(IO_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)));
            let addresses: Vec<IpAddr> = match lookup.await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => {
                    tracing::warn!(manager = %name, "the manager's host name does not resolve");
                    return;
                }
            };
            *channel
                .resolved
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some((name, addresses, Instant::now()));
        });
    }

    fn state(&self) -> MutexGuard<'_, EnrollmentState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn challenges(&self) -> MutexGuard<'_, Challenges> {
        self.challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
