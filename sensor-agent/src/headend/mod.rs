//! The AnyConnect-compatible headend that openconnect 9.01 logs into with Multiple
//! Certificate Authentication (docs/protocol.md §1–4).
//!
//! * [`tls`]: TLS 1.2/1.3 with the identity certificate; the machine certificate is
//!   requested in the handshake but not required.
//! * [`http`]: request heads read with `httparse`, responses written by hand (header
//!   names must keep their exact case, which hyper cannot do).
//! * `auth`: the aggregate-auth XML exchange (MCA challenge, certificate validation,
//!   password, login into the [`SessionDb`]).
//! * `tunnel`: `CONNECT /CSCOSSLC/tunnel` and the CSTP loop between the TLS stream and
//!   the session's [`crate::dataplane::SessionPort`].
//! * [`dtls`]: the DTLS data channel (PSK-NEGOTIATE) next to the CSTP tunnel, while the
//!   services run a [`dtls::DtlsService`] on the configured UDP port.
//!
//! [`Headend::serve`] accepts TCP connections and runs each in its own task: TLS
//! handshake (bounded by [`HANDSHAKE_TIMEOUT`]), then HTTP requests on the keep-alive
//! connection until a CONNECT turns it into a tunnel.
//!
//! Bounds per source (an IPv4 address or an IPv6 /64): at most
//! [`MAX_CONNECTIONS_PER_SOURCE`] connections that are not tunnels yet, besides the
//! global [`MAX_CONNECTIONS`]; a refusal is logged (loudly the first time, quietly while
//! the source stays over its cap). On the auth endpoint a connection carries one request
//! at a time: bytes pipelined after a POST or GET are answered `400` and the connection
//! closed. The login's own bounds (password checks, ban score, pending logins and MCA
//! challenges per source) are in `auth`.
//!
//! Logs: each connection runs in a `vpn_connection` span (`connection`, a number of
//! this process; `peer`; once the handshake is done `tls_version` and `sni`), and
//! whatever concerns a session (its login, its tunnel, its DTLS channel) in a
//! `vpn_session` span ([`session_span`]).

mod auth;
pub mod dtls;
pub mod http;
mod password;
pub mod tls;
mod trust_cache;
mod tunnel;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument as _;
use tracing::field::Empty;
use vpn_core::config::{ConnectionProfile, DeviceConfig};
use vpn_core::log_escape::escaped;
use vpn_core::mca::ChallengeStore;
use vpn_core::pki::{TrustStore, TrustStoreError};
use vpn_core::throttle::SourceQuota;

pub use auth::{
    LOGIN_FAILED, MAX_CHALLENGES_PER_SOURCE, MAX_PENDING_LOGINS, MAX_PENDING_LOGINS_PER_SOURCE,
    MCA_REQUIRED, PENDING_LOGIN_LIFETIME, SESSION_LIMIT_REACHED, SOURCE_BAN, TOO_MANY_PENDING,
    USER_BAN,
};
pub use password::{MAX_MEMORY_KIB, PASSWORD_CHECKS_AT_ONCE};
pub use tls::{NegotiatedTls, TlsIdentity, TlsSetupError};
pub use tunnel::{MAX_BASE_MTU, MIN_SILENCE_LIMIT, TUNNEL_PATH};

use crate::connection_limit::{ConnectionLimit, ConnectionRefused, ConnectionSlot};
use crate::dataplane::Router;
use crate::sessions::{MachineFingerprint, SessionDb};
use http::{Request, Response, read_request};
use tunnel::TunnelEnd;

/// Longest TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Most client connections served at once; further ones are closed on accept.
pub const MAX_CONNECTIONS: usize = 4096;
/// Most connections from one source that are not tunnels (yet).
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 32;

/// The `connection` number of the next accepted connection (of any headend of this
/// process), so the log lines of one connection can be told from another's.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// The span of one VPN session: its index as `show vpn-sessiondb` prints it, and the
/// user's name only while DEBUG is on (user names stay out of INFO logs except in the
/// FTD syslog lines).
pub(crate) fn session_span(index: u32, username: &str) -> tracing::Span {
    let span = tracing::info_span!("vpn_session", session = index, user = Empty);
    if tracing::enabled!(tracing::Level::DEBUG) {
        span.record("user", tracing::field::display(escaped(username)));
    }
    span
}

/// Settings of the headend that are not in the device configuration.
#[derive(Debug, Clone, Copy)]
pub struct HeadendSettings {
    /// `X-CSTP-Disconnected-Timeout`: how long a session waits for a lost client.
    pub disconnected_timeout_secs: u32,
}

/// The headend: configuration, session database, data plane router and the state of
/// logins in progress. Share it as `Arc<Headend>`.
pub struct Headend {
    config: watch::Receiver<Arc<DeviceConfig>>,
    sessions: SessionDb,
    router: Arc<Router>,
    challenges: Mutex<ChallengeStore>,
    pending_logins: Mutex<auth::PendingLogins>,
    /// MCA challenges waiting, counted per source (the store itself is global).
    challenge_quota: Mutex<SourceQuota>,
    /// Ban scores of password logins.
    throttle: Mutex<auth::LoginThrottle>,
    trust: Mutex<trust_cache::TrustCache>,
    settings: HeadendSettings,
    /// What new TLS connections get; replaced live by a deploy of a new identity.
    identity: RwLock<TlsIdentity>,
    /// Connection caps, shared by every listener the headend serves over its life.
    connections: Arc<ConnectionLimit>,
    /// The DTLS service CONNECTs offer, while one runs.
    dtls: RwLock<Option<dtls::DtlsService>>,
}

impl std::fmt::Debug for Headend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Headend")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Headend {
    /// A headend serving the identity certificate of the configuration current now.
    pub fn new(
        config: watch::Receiver<Arc<DeviceConfig>>,
        sessions: SessionDb,
        router: Arc<Router>,
        settings: HeadendSettings,
    ) -> Result<Arc<Self>, TlsSetupError> {
        let identity = TlsIdentity::new(&config.borrow().headend.identity)?;
        Ok(Self::with_identity(
            config, sessions, router, settings, identity,
        ))
    }

    /// A headend presenting `identity` (built beforehand, e.g. while a deploy is
    /// prepared).
    pub fn with_identity(
        config: watch::Receiver<Arc<DeviceConfig>>,
        sessions: SessionDb,
        router: Arc<Router>,
        settings: HeadendSettings,
        identity: TlsIdentity,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            sessions,
            router,
            challenges: Mutex::new(ChallengeStore::default()),
            pending_logins: Mutex::new(auth::PendingLogins::default()),
            challenge_quota: Mutex::new(SourceQuota::new(
                MAX_CHALLENGES_PER_SOURCE,
                vpn_core::mca::CHALLENGE_LIFETIME,
            )),
            throttle: Mutex::new(auth::LoginThrottle::default()),
            trust: Mutex::new(trust_cache::TrustCache::default()),
            settings,
            identity: RwLock::new(identity),
            connections: ConnectionLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE),
            dtls: RwLock::new(None),
        })
    }

    /// Offers `dtls` to tunnels connecting from now on (`None`: offer no DTLS).
    /// Tunnels already running keep the DTLS service they were offered.
    pub fn set_dtls(&self, dtls: Option<dtls::DtlsService>) {
        *self.dtls.write().unwrap_or_else(PoisonError::into_inner) = dtls;
    }

    /// The DTLS service new tunnels are offered, if one runs.
    pub fn dtls(&self) -> Option<dtls::DtlsService> {
        self.dtls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Presents `identity` to every connection accepted from now on; connections
    /// already established (and their tunnels) keep the one they negotiated.
    pub fn set_identity(&self, identity: TlsIdentity) {
        *self
            .identity
            .write()
            .unwrap_or_else(PoisonError::into_inner) = identity;
    }

    /// The identity new connections get.
    pub fn identity(&self) -> TlsIdentity {
        self.identity
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Accepts connections on `listener` until the task is dropped, one task per
    /// connection. Dropping this task closes the listener; the connections it accepted
    /// go on.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let connections = Arc::clone(&self.connections);
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let slot = match connections.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(refused) => {
                    log_refused_connection(peer, refused);
                    continue;
                }
            };
            let headend = Arc::clone(&self);
            let span = connection_span(peer);
            tokio::spawn(
                async move {
                    headend.connection(tcp, peer, slot).await;
                }
                .instrument(span),
            );
        }
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr, slot: ConnectionSlot) {
        let Ok(local) = tcp.local_addr() else {
            return;
        };
        let _ = tcp.set_nodelay(true);
        let identity = self.identity();
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, identity.acceptor().accept(tcp))
            .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let error = e.to_string();
                tracing::info!(target: "syslog", syslog_id = 725006, %peer, "Device failed SSL handshake with client outside:{peer}: {}", escaped(&error));
                return;
            }
            Err(_) => {
                tracing::info!("TLS handshake timed out");
                return;
            }
        };
        let tls = NegotiatedTls::of(stream.get_ref().1);
        let dtls_psk = dtls::DtlsPsk::export(stream.get_ref().1);
        let span = tracing::Span::current();
        span.record("tls_version", tls.version);
        if let Some(sni) = stream.get_ref().1.server_name() {
            span.record("sni", sni);
        }
        tracing::debug!(cipher = %tls.cipher_suite, client_certificate = !tls.client_chain.is_empty(), "TLS established");
        let connection = Arc::new(Connection {
            peer,
            local,
            tls,
            server_cert_sha1: identity.server_cert_sha1().to_owned(),
            dtls_psk,
        });
        self.requests(stream, connection, slot).await;
    }

    /// Serves the requests of one TLS connection.
    async fn requests<S: AsyncRead + AsyncWrite + Unpin>(
        self: Arc<Self>,
        mut stream: S,
        connection: Arc<Connection>,
        mut slot: ConnectionSlot,
    ) {
        let mut buffer = Vec::new();
        loop {
            let request = match read_request(&mut stream, &mut buffer).await {
                Ok(Some(request)) => request,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "request not read");
                    if let Some((status, reason)) = e.status() {
                        let _ = Response::status_and_close(status, reason)
                            .write_to(&mut stream)
                            .await;
                    }
                    return;
                }
            };
            let auth_request = matches!(request.method.as_str(), "POST" | "GET");
            if auth_request && !buffer.is_empty() {
                tracing::info!(
                    bytes = buffer.len(),
                    "request pipelined behind an auth request; connection closed"
                );
                let _ = Response::status_and_close(400, "Bad Request")
                    .write_to(&mut stream)
                    .await;
                return;
            }
            match request.method.as_str() {
                "POST" => {
                    let response = self.post(&connection, request).await;
                    if response.write_to(&mut stream).await.is_err() {
                        return;
                    }
                }
                "GET" => {
                    if auth::legacy_get().write_to(&mut stream).await.is_err() {
                        return;
                    }
                }
                "CONNECT" => {
                    // A tunnel (or its refusal) no longer counts against its source.
                    slot.leave_source();
                    self.tunnel(&mut stream, &connection, &request, &buffer)
                        .await;
                    return;
                }
                _ => {
                    let _ = Response::status_and_close(405, "Method Not Allowed")
                        .write_to(&mut stream)
                        .await;
                    return;
                }
            }
        }
    }

    /// Runs the authentication step on the blocking pool: chain validation and password
    /// hashing are CPU work.
    async fn post(self: &Arc<Self>, connection: &Arc<Connection>, request: Request) -> Response {
        let headend = Arc::clone(self);
        let connection = Arc::clone(connection);
        // The connection's span (and subscriber) go along to the blocking thread.
        let span = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let answer = tokio::task::spawn_blocking(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                span.in_scope(|| {
                    auth::handle_post(
                        &headend,
                        &connection,
                        &request,
                        OffsetDateTime::now_utc(),
                        Instant::now(),
                    )
                })
            })
        })
        .await;
        answer.unwrap_or_else(|_| Response::xml(vpn_core::aggauth::error_form(LOGIN_FAILED)))
    }

    async fn tunnel<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        connection: &Connection,
        request: &Request,
        leftover: &[u8],
    ) {
        let admitted = match tunnel::admit(self, connection, request, OffsetDateTime::now_utc()) {
            Ok(admitted) => admitted,
            Err(response) => {
                let _ = response.write_to(stream).await;
                return;
            }
        };
        let span = admitted.span.clone();
        self.run_tunnel(stream, admitted, leftover)
            .instrument(span)
            .await;
    }

    /// Answers an admitted CONNECT and runs its CSTP loop until the tunnel ends.
    async fn run_tunnel<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        admitted: tunnel::Admitted,
        leftover: &[u8],
    ) {
        let tunnel::Admitted {
            response,
            silence_limit,
            mut attachment,
            mut port,
            mut dtls,
            span: _,
        } = admitted;
        if tokio::io::AsyncWriteExt::write_all(stream, &response)
            .await
            .is_err()
            || tokio::io::AsyncWriteExt::flush(stream).await.is_err()
        {
            self.sessions.detach(
                attachment.index,
                attachment.tunnel_number,
                OffsetDateTime::now_utc(),
            );
            return;
        }
        let dtls_events = dtls
            .as_mut()
            .and_then(|registration| registration.events.take());
        let end = tunnel::run_cstp(
            stream,
            leftover,
            &mut attachment,
            &mut port,
            silence_limit,
            dtls_events,
        )
        .await;
        drop(dtls);
        drop(port);
        let now = OffsetDateTime::now_utc();
        match end {
            TunnelEnd::ClientDisconnect => {
                self.sessions.logout(attachment.index, now);
            }
            TunnelEnd::ConnectionLost => {
                tracing::info!(
                    tunnel = attachment.tunnel_number,
                    "tunnel connection lost; session waits for the client"
                );
                self.sessions
                    .detach(attachment.index, attachment.tunnel_number, now);
            }
            TunnelEnd::Superseded | TunnelEnd::SessionEnded(_) => {}
        }
    }

    fn config(&self) -> Arc<DeviceConfig> {
        Arc::clone(&self.config.borrow())
    }

    fn challenges(&self) -> MutexGuard<'_, ChallengeStore> {
        self.challenges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The profile's parsed trust store, shared by every login under this config version.
    fn trust_store(
        &self,
        config: &DeviceConfig,
        profile: &ConnectionProfile,
    ) -> Result<Arc<TrustStore>, TrustStoreError> {
        self.trust
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store(config, profile)
    }

    fn pending_logins(&self) -> MutexGuard<'_, auth::PendingLogins> {
        self.pending_logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn challenge_quota(&self) -> MutexGuard<'_, SourceQuota> {
        self.challenge_quota
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn throttle(&self) -> MutexGuard<'_, auth::LoginThrottle> {
        self.throttle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The log line of a connection closed on accept.
fn log_refused_connection(peer: SocketAddr, refused: ConnectionRefused) {
    match refused {
        ConnectionRefused::SourceFull { first: false, .. } => {
            tracing::debug!(%peer, "{refused}");
        }
        ConnectionRefused::SourceFull { first: true, .. } | ConnectionRefused::Full { .. } => {
            tracing::warn!(%peer, "{refused}");
        }
    }
}

/// The span of one accepted client connection; `tls_version` and `sni` are recorded
/// once the handshake is done.
fn connection_span(peer: SocketAddr) -> tracing::Span {
    tracing::info_span!(
        "vpn_connection",
        connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
        %peer,
        tls_version = Empty,
        sni = Empty,
    )
}

/// One client TLS connection.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) tls: NegotiatedTls,
    /// `<server-cert-hash>` of the identity this connection's handshake presented.
    pub(crate) server_cert_sha1: String,
    /// The DTLS PSK this connection's tunnel would use (its TLS exporter).
    pub(crate) dtls_psk: Option<dtls::DtlsPsk>,
}

impl Connection {
    /// The client (machine) certificate of the handshake.
    fn machine_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.tls.client_chain.first()
    }

    fn machine_fingerprint(&self) -> Option<MachineFingerprint> {
        self.machine_certificate()
            .map(|der| MachineFingerprint::of_certificate_der(der.as_ref()))
    }
}

#[cfg(test)]
mod tests;
