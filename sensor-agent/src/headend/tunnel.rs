//! `CONNECT /CSCOSSLC/tunnel`: the cookie check, the `X-CSTP-*` answer (protocol.md §4.3)
//! and the CSTP loop over the same TLS stream.
//!
//! One frame is written per `write_all` + `flush`, so each frame is one TLS record as
//! openconnect requires (§4.4).
//!
//! DTLS (§5): when the headend runs a DTLS service, DTLS is enabled for the headend
//! and the session's group policy, and the client offers `PSK-NEGOTIATE`, the answer
//! carries `X-DTLS-*` headers and the tunnel registers with the DTLS server. Packets
//! to the client then go over DTLS while it is up; when the client sends data over
//! CSTP instead (it found DTLS dead) they go over CSTP until the client is heard over
//! DTLS again, and when DTLS ends they go over CSTP. The session keeps its address.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use vpn_core::config::{DeviceConfig, GroupPolicy, SplitTunnelPolicy};
use vpn_core::cstp::Frame;
use vpn_core::cstp::{
    FrameDecoder, FrameType, HEADER_LEN, MAX_PAYLOAD_LEN, Reason, encode_header, encode_to_vec,
};
use vpn_core::log_escape::escaped;

use super::dtls::{DtlsEvent, DtlsLink, DtlsRegistration, SessionBinding};
use super::http::{Request, Response};
use super::{Connection, Headend};
use crate::dataplane::{SessionAddresses, SessionPort};
use crate::sessions::{Attachment, EndReason, TlsTunnelSetup, TunnelStop};

/// The only tunnel path AnyConnect clients use.
pub const TUNNEL_PATH: &str = "/CSCOSSLC/tunnel";
/// Largest link MTU announced (`X-CSTP-Base-MTU`).
pub const MAX_BASE_MTU: u32 = 1500;

/// What the session gave the tunnel: the answer to send and what the loop needs.
pub(crate) struct Admitted {
    pub(crate) response: Vec<u8>,
    /// How long the client may stay silent before the connection counts as dead.
    pub(crate) silence_limit: Duration,
    pub(crate) attachment: Attachment,
    pub(crate) port: SessionPort,
    /// The tunnel's DTLS registration when DTLS was offered.
    pub(crate) dtls: Option<DtlsRegistration>,
    /// The session's span, for everything the tunnel logs.
    pub(crate) span: tracing::Span,
}

/// The `X-DTLS-*` part of a CONNECT answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DtlsOffer {
    /// `X-DTLS-App-ID`, 64 hex digits.
    pub(crate) app_id_hex: String,
    /// `X-DTLS-Port`.
    pub(crate) port: u16,
}

/// Checks the cookie of a CONNECT and attaches the tunnel; `Err` is the response to
/// send before closing (401 for a refused cookie). Once the cookie names a session,
/// what is logged goes into the session's span.
pub(crate) fn admit(
    headend: &Headend,
    connection: &Connection,
    request: &Request,
    now: OffsetDateTime,
) -> Result<Admitted, Response> {
    if request.path != TUNNEL_PATH {
        return Err(Response::status_and_close(404, "Not Found"));
    }
    let cookie = request.cookie("webvpn").unwrap_or_default();
    let machine = connection.machine_fingerprint();
    let index = match headend
        .sessions
        .authenticate_cookie(cookie, machine.as_ref(), now)
    {
        Ok(index) => index,
        Err(e) => {
            tracing::info!(error = %e, "CONNECT refused");
            return Err(Response::status_and_close(401, "Unauthorized"));
        }
    };
    let setup = TlsTunnelSetup {
        cipher_suite: connection.tls.cipher_suite.clone(),
        encapsulation: connection.tls.version.to_owned(),
        tcp_src_port: connection.peer.port(),
        tcp_dst_port: connection.local.port(),
    };
    let attachment = headend
        .sessions
        .attach(index, &setup, now)
        .map_err(|_| Response::status_and_close(401, "Unauthorized"))?;
    let Some(record) = headend.sessions.session(index) else {
        return Err(Response::status_and_close(401, "Unauthorized"));
    };
    let span = super::session_span(index, &record.username);
    let _in_session = span.enter();
    let config = headend.config();
    let policy = config.group_policy(&record.group_policy);
    let client_base_mtu = request
        .header("x-cstp-base-mtu")
        .and_then(|v| v.parse::<u32>().ok());
    let port = headend.router.attach(
        SessionAddresses {
            ipv4: attachment.assigned_ipv4,
            ipv6: attachment.assigned_ipv6,
        },
        attachment.counters.clone(),
    );
    let dtls = if dtls_wanted(&config, policy, request) {
        register_dtls(headend, connection, &record, &attachment, &port, policy)
    } else {
        None
    };
    let offer = dtls.as_ref().map(|(offer, _)| offer.clone());
    let response = connect_response(
        &config,
        policy,
        attachment.assigned_ipv4,
        attachment.assigned_ipv6,
        client_base_mtu,
        headend.settings.disconnected_timeout_secs,
        offer.as_ref(),
    );
    tracing::info!(
        target: "syslog",
        syslog_id = 722022,
        "Group <{}> User <{}> IP <{}> TCP SVC connection established without compression",
        escaped(&record.group_policy),
        escaped(&record.username),
        record.public_ip
    );
    Ok(Admitted {
        response,
        silence_limit: silence_limit(policy),
        attachment,
        port,
        dtls: dtls.map(|(_, registration)| registration),
        span: span.clone(),
    })
}

/// Whether DTLS is enabled for the headend and the session's group policy, and the
/// client offers `PSK-NEGOTIATE` (openconnect with `--no-dtls` offers nothing).
pub(crate) fn dtls_wanted(
    config: &DeviceConfig,
    policy: Option<&GroupPolicy>,
    request: &Request,
) -> bool {
    let offered = request.header("x-dtls-ciphersuite").is_some_and(|suites| {
        suites
            .split(':')
            .any(|suite| suite.trim().eq_ignore_ascii_case("PSK-NEGOTIATE"))
    });
    config.headend.dtls_enabled && policy.is_none_or(|p| p.dtls_enabled) && offered
}

/// Registers the tunnel with the running DTLS service; `None` when none runs.
fn register_dtls(
    headend: &Headend,
    connection: &Connection,
    record: &vpn_core::session::SessionRecord,
    attachment: &Attachment,
    port: &SessionPort,
    policy: Option<&GroupPolicy>,
) -> Option<(DtlsOffer, DtlsRegistration)> {
    let service = headend.dtls()?;
    let psk = connection.dtls_psk.clone()?;
    let registration = service.server.register(SessionBinding {
        psk,
        client_ip: connection.peer.ip(),
        index: attachment.index,
        ssl_tunnel_number: attachment.tunnel_number,
        sessions: headend.sessions.clone(),
        uplink: port.uplink().clone(),
        dead_after: silence_limit(policy),
        group_policy: record.group_policy.clone(),
        username: record.username.clone(),
    })?;
    let offer = DtlsOffer {
        app_id_hex: registration.app_id.to_hex(),
        port: service.port,
    };
    Some((offer, registration))
}

/// The `HTTP/1.1 200 CONNECTED` answer with the session's addresses and policy.
pub(crate) fn connect_response(
    config: &DeviceConfig,
    policy: Option<&GroupPolicy>,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    client_base_mtu: Option<u32>,
    disconnected_timeout_secs: u32,
    dtls: Option<&DtlsOffer>,
) -> Vec<u8> {
    let default_policy;
    let policy = match policy {
        Some(policy) => policy,
        None => {
            default_policy = GroupPolicy::new("DfltGrpPolicy");
            &default_policy
        }
    };
    let mut out = String::from("HTTP/1.1 200 CONNECTED\r\n");
    let mut header = |name: &str, value: &dyn std::fmt::Display| {
        let _ = write!(out, "{name}: {value}\r\n");
    };
    header("X-CSTP-Version", &1);
    if let Some(address) = ipv4 {
        header("X-CSTP-Address", &address);
        let mask = config
            .ipv4_pools
            .iter()
            .find(|p| p.start <= address && address <= p.end)
            .map_or(Ipv4Addr::new(255, 255, 255, 255), |p| p.mask);
        header("X-CSTP-Netmask", &mask);
    }
    if let Some(address) = ipv6 {
        let prefix = config
            .ipv6_pools
            .iter()
            .find(|p| {
                let offset = u128::from(address).wrapping_sub(u128::from(p.start));
                u128::from(p.start) <= u128::from(address) && offset < u128::from(p.count)
            })
            .map_or(128, |p| p.prefix_len);
        header("X-CSTP-Address-IP6", &format!("{address}/{prefix}"));
    }
    for dns in &policy.dns_servers {
        match dns {
            IpAddr::V4(v4) => header("X-CSTP-DNS", v4),
            IpAddr::V6(v6) => header("X-CSTP-DNS-IP6", v6),
        }
    }
    if let Some(domain) = &policy.default_domain {
        header("X-CSTP-Default-Domain", domain);
    }
    let split_header = match policy.split_tunnel_policy {
        SplitTunnelPolicy::TunnelAll => None,
        SplitTunnelPolicy::TunnelSpecified => Some("X-CSTP-Split-Include"),
        SplitTunnelPolicy::ExcludeSpecified => Some("X-CSTP-Split-Exclude"),
    };
    if let Some(split_header) = split_header {
        for network in &policy.split_tunnel_networks {
            match network {
                ipnet::IpNet::V4(net) => {
                    header(
                        split_header,
                        &format!("{}/{}", net.network(), net.netmask()),
                    );
                }
                ipnet::IpNet::V6(net) => {
                    header(&format!("{split_header}-IP6"), &net.trunc());
                }
            }
        }
    }
    if let Some(banner) = &policy.banner {
        header("X-CSTP-Banner", &url_encode(banner));
    }
    if let Some(keepalive) = policy.keepalive_secs {
        header("X-CSTP-Keepalive", &keepalive);
    }
    if let Some(dpd) = policy.client_dpd_secs {
        header("X-CSTP-DPD", &dpd);
    }
    if let Some(idle) = policy.idle_timeout_minutes {
        header("X-CSTP-Idle-Timeout", &(u64::from(idle) * 60));
    }
    header("X-CSTP-Disconnected-Timeout", &disconnected_timeout_secs);
    if let Some(max) = policy.max_connect_time_minutes {
        header("X-CSTP-Session-Timeout", &(u64::from(max) * 60));
    }
    header("X-CSTP-Rekey-Method", &"none");
    let base_mtu = client_base_mtu
        .unwrap_or(MAX_BASE_MTU)
        .clamp(u32::from(policy.mtu), MAX_BASE_MTU);
    header("X-CSTP-Base-MTU", &base_mtu);
    header("X-CSTP-MTU", &policy.mtu);
    header("X-CSTP-Tunnel-All-DNS", &"false");
    header("X-CSTP-License", &"accept");
    if let Some(dtls) = dtls {
        // PSK-NEGOTIATE as ocserv answers it; no X-DTLS-MTU in this mode (§5.2).
        header("X-DTLS-App-ID", &dtls.app_id_hex);
        header("X-DTLS-Port", &dtls.port);
        if let Some(keepalive) = policy.keepalive_secs {
            header("X-DTLS-Keepalive", &keepalive);
        }
        if let Some(dpd) = policy.client_dpd_secs {
            header("X-DTLS-DPD", &dpd);
        }
        header("X-DTLS-Rekey-Method", &"none");
        header("X-DTLS-CipherSuite", &"PSK-NEGOTIATE");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Silence after which a client counts as dead: three of its keepalive/DPD intervals
/// (it sends something at least that often), at least [`MIN_SILENCE_LIMIT`].
pub(crate) fn silence_limit(policy: Option<&GroupPolicy>) -> Duration {
    let interval = policy
        .and_then(|p| p.keepalive_secs.into_iter().chain(p.client_dpd_secs).max())
        .unwrap_or(100);
    Duration::from_secs(u64::from(interval) * 3).max(MIN_SILENCE_LIMIT)
}

/// Shortest silence limit, however short the configured intervals.
pub const MIN_SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// How the CSTP loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TunnelEnd {
    /// The client sent DISCONNECT: log out.
    ClientDisconnect,
    /// The connection broke, closed or went silent: detach, the client may come back.
    ConnectionLost,
    /// Another CONNECT took the session over.
    Superseded,
    /// The session ended on our side.
    SessionEnded(EndReason),
}

/// Runs the tunnel until it ends. `leftover` are bytes read after the CONNECT head;
/// nothing received for `silence_limit` ends it as a lost connection.
pub(crate) async fn run_cstp<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    leftover: &[u8],
    attachment: &mut Attachment,
    port: &mut SessionPort,
    silence_limit: Duration,
    mut dtls_events: Option<mpsc::Receiver<DtlsEvent>>,
) -> TunnelEnd {
    let mut dtls = DtlsPath::default();
    let mut last_heard = tokio::time::Instant::now();
    let mut decoder = FrameDecoder::new();
    let mut out: Vec<u8> = Vec::with_capacity(HEADER_LEN + MAX_PAYLOAD_LEN);
    if decoder.push(leftover).is_err() {
        return TunnelEnd::ConnectionLost;
    }
    loop {
        // Handle every complete frame before reading more.
        loop {
            let action = match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if matches!(frame, Frame::Data(_)) {
                        dtls.client_used_cstp();
                    }
                    on_frame(&frame, &mut out)
                }
                Ok(None) => break,
                Err(e) if e.is_fatal() => {
                    tracing::info!(error = %e, "CSTP stream broken");
                    return TunnelEnd::ConnectionLost;
                }
                Err(e) => {
                    tracing::trace!(error = %e, "CSTP frame skipped");
                    continue;
                }
            };
            match action {
                FrameAction::None => {}
                FrameAction::Uplink(packet) => {
                    // Waiting here (not dropping) when the TUN queue is full stops this
                    // connection's reads, so TCP slows the client instead of losing data.
                    let sent = port
                        .uplink()
                        .send_waiting(packet, OffsetDateTime::now_utc())
                        .await;
                    if let Err(e) = sent {
                        tracing::trace!(error = %e, "uplink packet dropped");
                    }
                }
                FrameAction::Reply => {
                    if write_frame(stream, &out).await.is_err() {
                        return TunnelEnd::ConnectionLost;
                    }
                }
                FrameAction::Disconnect => {
                    let _ = stream.shutdown().await;
                    return TunnelEnd::ClientDisconnect;
                }
            }
        }
        tokio::select! {
            read = stream.read(decoder.read_buffer()) => {
                match read {
                    Ok(0) | Err(_) => return TunnelEnd::ConnectionLost,
                    Ok(n) => {
                        decoder.commit_read(n);
                        last_heard = tokio::time::Instant::now();
                    }
                }
            }
            () = tokio::time::sleep_until(last_heard + silence_limit) => {
                tracing::info!(?silence_limit, "client silent too long; connection counted as lost");
                let _ = stream.shutdown().await;
                return TunnelEnd::ConnectionLost;
            }
            packet = port.recv() => {
                let Some(packet) = packet else {
                    return TunnelEnd::SessionEnded(EndReason::AdminReset);
                };
                if packet.len() > MAX_PAYLOAD_LEN || packet.is_empty() {
                    continue;
                }
                let packet = match dtls.send(packet) {
                    Ok(()) => continue,
                    Err(packet) => packet,
                };
                out.clear();
                out.resize(HEADER_LEN, 0);
                if encode_header(FrameType::Data, packet.len(), &mut out).is_err() {
                    continue;
                }
                out.extend_from_slice(&packet);
                if write_frame(stream, &out).await.is_err() {
                    return TunnelEnd::ConnectionLost;
                }
                attachment.counters.record_tx(packet.len(), OffsetDateTime::now_utc());
            }
            event = next_dtls_event(&mut dtls_events) => {
                match event {
                    Some(DtlsEvent::Up(link)) => {
                        tracing::debug!(tunnel = link.generation, "packets to the client go over DTLS");
                        dtls.up(link);
                    }
                    Some(DtlsEvent::Down { generation }) => {
                        if dtls.down(generation) {
                            tracing::debug!("DTLS gone; packets to the client go over CSTP");
                        }
                    }
                    None => {
                        dtls_events = None;
                        dtls = DtlsPath::default();
                    }
                }
            }
            changed = attachment.stop.changed() => {
                let stop = if changed.is_err() {
                    TunnelStop::SessionEnded(EndReason::AdminReset)
                } else {
                    *attachment.stop.borrow_and_update()
                };
                match stop {
                    TunnelStop::Run => {}
                    TunnelStop::Superseded => {
                        let _ = stream.shutdown().await;
                        return TunnelEnd::Superseded;
                    }
                    TunnelStop::SessionEnded(reason) => {
                        out.clear();
                        let frame = Frame::Disconnect(Reason::new(disconnect_text(reason)));
                        if encode_to_vec(&frame, &mut out).is_ok() {
                            let _ = write_frame(stream, &out).await;
                        }
                        let _ = stream.shutdown().await;
                        return TunnelEnd::SessionEnded(reason);
                    }
                }
            }
        }
    }
}

/// The next event of the tunnel's DTLS peer; never, when DTLS was not offered.
async fn next_dtls_event(events: &mut Option<mpsc::Receiver<DtlsEvent>>) -> Option<DtlsEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// Which transport carries packets to the client: DTLS while a link is up, unless the
/// client has sent data over CSTP since it was last heard over DTLS (it fell back).
#[derive(Debug, Default)]
struct DtlsPath {
    link: Option<DtlsLink>,
    /// DTLS records received when the client last sent data over CSTP.
    fell_back_at: Option<u64>,
}

impl DtlsPath {
    fn up(&mut self, link: DtlsLink) {
        self.link = Some(link);
        self.fell_back_at = None;
    }

    /// True if `generation` was the link in use.
    fn down(&mut self, generation: u32) -> bool {
        if self
            .link
            .as_ref()
            .is_some_and(|l| l.generation == generation)
        {
            self.link = None;
            self.fell_back_at = None;
            return true;
        }
        false
    }

    fn client_used_cstp(&mut self) {
        if let Some(link) = &self.link {
            self.fell_back_at = Some(link.received());
        }
    }

    /// Sends `packet` over DTLS if DTLS carries traffic now; gives it back otherwise.
    fn send(&mut self, packet: Bytes) -> Result<(), Bytes> {
        let Some(link) = &self.link else {
            return Err(packet);
        };
        if let Some(mark) = self.fell_back_at {
            if link.received() <= mark {
                return Err(packet);
            }
            self.fell_back_at = None;
        }
        let len = packet.len();
        match link.try_send(packet) {
            Ok(()) => {
                link.counters.record_tx(len, OffsetDateTime::now_utc());
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                link.counters.record_tx_drop();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(packet)) => {
                self.link = None;
                Err(packet)
            }
        }
    }
}

enum FrameAction {
    None,
    /// A packet from the client for the TUN device.
    Uplink(Bytes),
    /// `out` holds a frame to send.
    Reply,
    Disconnect,
}

fn on_frame(frame: &Frame<'_>, out: &mut Vec<u8>) -> FrameAction {
    match frame {
        Frame::Data(packet) => FrameAction::Uplink(Bytes::copy_from_slice(packet)),
        Frame::DpdRequest(payload) => {
            out.clear();
            match encode_to_vec(&Frame::DpdResponse(payload), out) {
                Ok(_) => FrameAction::Reply,
                Err(_) => FrameAction::None,
            }
        }
        Frame::Disconnect(reason) | Frame::Terminate(reason) => {
            tracing::info!(reason = %reason.text_lossy(), "client disconnected");
            FrameAction::Disconnect
        }
        Frame::DpdResponse(_) | Frame::Keepalive => FrameAction::None,
    }
}

/// One frame, one write, one flush: one TLS record.
async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> std::io::Result<()> {
    stream.write_all(frame).await?;
    stream.flush().await
}

/// The reason text of the DISCONNECT sent when the session ends on our side.
fn disconnect_text(reason: EndReason) -> &'static str {
    match reason {
        EndReason::AdminReset => "Administrator reset",
        EndReason::IdleTimeout => "Idle timeout",
        EndReason::MaxTimeExceeded => "Maximum connect time exceeded",
        EndReason::PortPreempted => "Port preempted",
        EndReason::LostService | EndReason::UserRequested => "Session ended",
    }
}

/// Percent-encodes everything but unreserved characters (`X-CSTP-Banner`).
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests;
