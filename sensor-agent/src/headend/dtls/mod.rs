//! The DTLS data channel in openconnect's PSK-NEGOTIATE mode (protocol.md §5).
//!
//! On CONNECT the tunnel registers the session with the [`DtlsServer`]: a random
//! 32-byte App-ID, the PSK exported from that TLS connection ([`DtlsPsk`]), the
//! client's IP address and a channel back to the tunnel task. The client then sends a
//! DTLS 1.2 ClientHello whose session id is the App-ID. [`DtlsServer::serve`] reads
//! every datagram of the UDP port in one task and hands it, by source address, to that
//! address's peer task; a datagram from an unknown address starts a handshake only if
//! it is a ClientHello naming a registered App-ID from the session's client IP, within
//! [`MAX_HANDSHAKES`] in progress overall and [`MAX_HANDSHAKES_PER_SESSION`] per
//! session. Anything else is dropped without state, so a flood of random ClientHellos
//! costs a parse and a map lookup each.
//!
//! A peer task drives one OpenSSL DTLS server object over in-memory datagrams. Once
//! established it attaches a DTLS tunnel to the session (`DTLS-Tunnel` in `show
//! vpn-sessiondb`), sends the tunnel task a `DtlsLink` for packets to the client,
//! and serves the client's records itself: data to the uplink, DPD requests and MTU
//! probes echoed at full length, keepalives ignored. It ends when the client has been
//! silent too long, closes, the tunnel ends or the listener stops; the tunnel is told
//! and carries everything over TLS again.

mod hello;
mod peer;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslSessionCacheMode, SslVersion};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::Instrument as _;

pub use hello::{HelloError, MAX_DATAGRAM_LEN, MAX_SESSION_ID_LEN, client_hello_session_id};

use crate::dataplane::Uplink;
use crate::sessions::{LiveCounters, SessionDb};

/// RFC 5705 exporter label of the PSK (no context), protocol.md §5.2.
pub const PSK_EXPORTER_LABEL: &[u8] = b"EXPORTER-openconnect-psk";
/// Bytes of PSK and of App-ID.
pub const PSK_LEN: usize = 32;
pub const APP_ID_LEN: usize = 32;
/// Longest DTLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most DTLS handshakes in progress at once on the sensor.
pub const MAX_HANDSHAKES: usize = 256;
/// Most DTLS handshakes in progress at once for one session.
pub const MAX_HANDSHAKES_PER_SESSION: usize = 4;
/// Most client addresses with a peer task at once.
pub const MAX_PEERS: usize = 8192;
/// Datagrams queued towards one peer task before further ones are dropped.
const PEER_QUEUE: usize = 128;
/// Packets queued towards the client on one DTLS link.
const DOWNLINK_QUEUE: usize = 256;
/// Path MTU assumed for handshake messages (PSK flights are far smaller).
const HANDSHAKE_MTU: u32 = 1400;

/// The PSK of a session's DTLS: the exporter of its current TLS connection. Its
/// `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct DtlsPsk([u8; PSK_LEN]);

impl DtlsPsk {
    /// The PSK of a completed TLS handshake (TLS 1.2 or 1.3).
    pub fn export(connection: &rustls::ServerConnection) -> Option<Self> {
        connection
            .export_keying_material([0u8; PSK_LEN], PSK_EXPORTER_LABEL, None)
            .ok()
            .map(Self)
    }

    pub fn from_bytes(bytes: [u8; PSK_LEN]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; PSK_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for DtlsPsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DtlsPsk(<redacted>)")
    }
}

/// `X-DTLS-App-ID`: what the client puts in its ClientHello's session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppId([u8; APP_ID_LEN]);

impl AppId {
    fn random() -> Option<Self> {
        let mut bytes = [0u8; APP_ID_LEN];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// 64 lowercase hex digits, as the header carries it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn from_session_id(id: &[u8]) -> Option<Self> {
        <[u8; APP_ID_LEN]>::try_from(id).ok().map(Self)
    }
}

/// Why the DTLS server cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum DtlsSetupError {
    #[error("OpenSSL refused the DTLS 1.2 PSK server configuration")]
    Context(#[source] ErrorStack),
    #[error("cannot bind UDP {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What a tunnel task hears from its DTLS peer.
#[derive(Debug)]
pub(crate) enum DtlsEvent {
    /// A DTLS tunnel is established: send packets over it.
    Up(DtlsLink),
    /// The DTLS tunnel `generation` is gone.
    Down { generation: u32 },
}

/// Where a tunnel task sends packets to go to the client over DTLS.
#[derive(Debug)]
pub(crate) struct DtlsLink {
    /// The DTLS tunnel number.
    pub(crate) generation: u32,
    packets: mpsc::Sender<Bytes>,
    received: Arc<AtomicU64>,
    /// `DTLS-Tunnel` counters (`Bytes Tx` is counted by the sender).
    pub(crate) counters: Arc<LiveCounters>,
}

impl DtlsLink {
    /// A link and the ends its peer holds: the packet queue and the count of records
    /// received from the client.
    pub(crate) fn new(
        generation: u32,
        counters: Arc<LiveCounters>,
    ) -> (Self, mpsc::Receiver<Bytes>, Arc<AtomicU64>) {
        let (packets, receiver) = mpsc::channel(DOWNLINK_QUEUE);
        let received = Arc::new(AtomicU64::new(0));
        (
            Self {
                generation,
                packets,
                received: Arc::clone(&received),
                counters,
            },
            receiver,
            received,
        )
    }

    /// Records received from the client over this link so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Queues a packet for the client; never waits.
    pub(crate) fn try_send(&self, packet: Bytes) -> Result<(), mpsc::error::TrySendError<Bytes>> {
        self.packets.try_send(packet)
    }
}

/// What the CONNECT of a session registers.
#[derive(Debug, Clone)]
pub(crate) struct SessionBinding {
    pub(crate) psk: DtlsPsk,
    /// The client's IP address on the TLS connection; DTLS must come from it.
    pub(crate) client_ip: IpAddr,
    pub(crate) index: u32,
    pub(crate) ssl_tunnel_number: u32,
    pub(crate) sessions: SessionDb,
    pub(crate) uplink: Uplink,
    /// Silence after which the DTLS tunnel counts as dead.
    pub(crate) dead_after: Duration,
    /// For the syslog lines.
    pub(crate) group_policy: String,
    pub(crate) username: String,
}

#[derive(Debug, Clone)]
struct Binding {
    session: SessionBinding,
    events: mpsc::Sender<DtlsEvent>,
    handshakes: Arc<AtomicUsize>,
}

/// A registered App-ID; dropping it (the tunnel ended) unregisters it and ends its
/// DTLS tunnel.
#[derive(Debug)]
pub(crate) struct DtlsRegistration {
    server: Arc<DtlsServer>,
    pub(crate) app_id: AppId,
    /// Taken by the tunnel task.
    pub(crate) events: Option<mpsc::Receiver<DtlsEvent>>,
}

impl Drop for DtlsRegistration {
    fn drop(&mut self) {
        self.server.bindings().remove(&self.app_id);
    }
}

/// The headend's DTLS service on one UDP port: the port clients are told and the
/// server the socket's datagrams go to.
#[derive(Debug, Clone)]
pub struct DtlsService {
    pub port: u16,
    pub server: Arc<DtlsServer>,
}

/// The DTLS 1.2 PSK server: OpenSSL context and the registered sessions.
pub struct DtlsServer {
    context: SslContext,
    psk_index: Index<Ssl, DtlsPsk>,
    bindings: Mutex<HashMap<AppId, Binding>>,
    handshakes: Arc<AtomicUsize>,
}

impl std::fmt::Debug for DtlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsServer")
            .field("sessions", &self.bindings().len())
            .finish_non_exhaustive()
    }
}

impl DtlsServer {
    /// A server offering DTLS 1.2 with the plain-PSK suites openconnect offers.
    pub fn new() -> Result<Arc<Self>, DtlsSetupError> {
        let psk_index = Ssl::new_ex_index::<DtlsPsk>().map_err(DtlsSetupError::Context)?;
        let mut builder =
            SslContext::builder(SslMethod::dtls_server()).map_err(DtlsSetupError::Context)?;
        builder
            .set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(DtlsSetupError::Context)?;
        builder
            .set_cipher_list("PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305:PSK-AES128-GCM-SHA256")
            .map_err(DtlsSetupError::Context)?;
        builder.set_session_cache_mode(SslSessionCacheMode::OFF);
        builder.set_psk_server_callback(move |ssl, _identity, out| {
            // The identity is `psk`; the key is the session's, found on the object.
            let Some(psk) = ssl.ex_data(psk_index) else {
                return Ok(0);
            };
            let key = psk.bytes();
            match out.get_mut(..key.len()) {
                Some(dst) => {
                    dst.copy_from_slice(key);
                    Ok(key.len())
                }
                None => Ok(0),
            }
        });
        Ok(Arc::new(Self {
            context: builder.build(),
            psk_index,
            bindings: Mutex::new(HashMap::new()),
            handshakes: Arc::new(AtomicUsize::new(0)),
        }))
    }

    /// Registers a session's tunnel under a fresh App-ID.
    pub(crate) fn register(self: &Arc<Self>, session: SessionBinding) -> Option<DtlsRegistration> {
        let app_id = AppId::random()?;
        let (events, receiver) = mpsc::channel(8);
        self.bindings().insert(
            app_id,
            Binding {
                session,
                events,
                handshakes: Arc::new(AtomicUsize::new(0)),
            },
        );
        Some(DtlsRegistration {
            server: Arc::clone(self),
            app_id,
            events: Some(receiver),
        })
    }

    /// Sessions registered now.
    pub fn registered(&self) -> usize {
        self.bindings().len()
    }

    /// Receives the datagrams of `socket` until the task is dropped, which also ends
    /// every DTLS tunnel on it.
    pub async fn serve(self: Arc<Self>, socket: UdpSocket) {
        let socket = Arc::new(socket);
        let local_port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut peers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
        let mut buffer = vec![0u8; 65_536];
        loop {
            let (len, from) = match socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(e) => {
                    // ICMP errors of earlier sends surface here; the socket goes on.
                    tracing::debug!(error = %e, "DTLS receive failed");
                    continue;
                }
            };
            let Some(datagram) = buffer.get(..len) else {
                continue;
            };
            if len > MAX_DATAGRAM_LEN {
                continue;
            }
            if let Some(peer) = peers.get(&from) {
                match peer.try_send(datagram.to_vec()) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => continue,
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        peers.remove(&from);
                    }
                }
            }
            let Some(start) = self.start_handshake(datagram, from) else {
                continue;
            };
            if peers.len() >= MAX_PEERS {
                peers.retain(|_, peer| !peer.is_closed());
                if peers.len() >= MAX_PEERS {
                    tracing::warn!(%from, "{MAX_PEERS} DTLS peers; handshake refused");
                    continue;
                }
            }
            let (sender, receiver) = mpsc::channel(PEER_QUEUE);
            peers.insert(from, sender);
            let span = peer::span(&start.session, from);
            tokio::spawn(
                peer::run(
                    start,
                    Arc::clone(&socket),
                    from,
                    local_port,
                    receiver,
                    datagram.to_vec(),
                )
                .instrument(span),
            );
        }
    }

    /// A DTLS server object for the session `datagram`'s ClientHello names, if it is
    /// one from the session's client address and the handshake limits allow it.
    fn start_handshake(&self, datagram: &[u8], from: SocketAddr) -> Option<peer::HandshakeStart> {
        let session_id = match client_hello_session_id(datagram) {
            Ok(id) => id,
            Err(e) => {
                tracing::trace!(%from, error = %e, "datagram from an unknown address dropped");
                return None;
            }
        };
        let app_id = AppId::from_session_id(session_id)?;
        let binding = self.bindings().get(&app_id).cloned()?;
        if binding.session.client_ip.to_canonical() != from.ip().to_canonical() {
            tracing::debug!(%from, index = binding.session.index, "DTLS ClientHello from another address than the session's; dropped");
            return None;
        }
        let slot = HandshakeSlot::take(&self.handshakes, MAX_HANDSHAKES)?;
        let session_slot = HandshakeSlot::take(&binding.handshakes, MAX_HANDSHAKES_PER_SESSION)?;
        let mut ssl = Ssl::new(&self.context)
            .inspect_err(|e| tracing::warn!(error = %e, "DTLS server object not created"))
            .ok()?;
        ssl.set_ex_data(self.psk_index, binding.session.psk.clone());
        ssl.set_mtu(HANDSHAKE_MTU).ok()?;
        Some(peer::HandshakeStart {
            ssl,
            session: binding.session,
            events: binding.events,
            slots: [slot, session_slot],
        })
    }

    fn bindings(&self) -> MutexGuard<'_, HashMap<AppId, Binding>> {
        self.bindings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One handshake counted against a limit until dropped.
#[derive(Debug)]
struct HandshakeSlot(Arc<AtomicUsize>);

impl HandshakeSlot {
    fn take(counter: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        if counter.fetch_add(1, Ordering::AcqRel) >= limit {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(Arc::clone(counter)))
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;
