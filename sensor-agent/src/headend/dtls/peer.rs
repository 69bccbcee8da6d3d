//! One client address: its DTLS handshake, then its DTLS tunnel.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use openssl::ssl::{ErrorCode, Ssl, SslStream};
use time::OffsetDateTime;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use vpn_core::cstp::{FrameType, dpd_response_in_place};
use vpn_core::log_escape::escaped;

use super::{DtlsEvent, DtlsLink, HANDSHAKE_TIMEOUT, HandshakeSlot, SessionBinding};
use crate::dataplane::Uplink;
use crate::sessions::DtlsTunnelSetup;

/// Largest plaintext of one DTLS record.
const MAX_RECORD_LEN: usize = 16_384;
/// How often a handshake waiting for the client is woken (OpenSSL retransmits its
/// last flight when its timer has run out).
const HANDSHAKE_TICK: Duration = Duration::from_millis(500);

/// A ClientHello accepted for a session, with the server object configured for it.
pub(super) struct HandshakeStart {
    pub(super) ssl: Ssl,
    pub(super) session: SessionBinding,
    pub(super) events: mpsc::Sender<DtlsEvent>,
    pub(super) slots: [HandshakeSlot; 2],
}

/// Datagrams in and out of the OpenSSL object: each read is one received datagram,
/// each write one datagram to send.
#[derive(Debug, Default)]
pub(super) struct DatagramPipe {
    incoming: VecDeque<Vec<u8>>,
    outgoing: Vec<Vec<u8>>,
}

#[cfg(test)]
impl DatagramPipe {
    pub(super) fn write_all_datagrams(&mut self, datagrams: &[&[u8]]) {
        self.incoming
            .extend(datagrams.iter().map(|datagram| datagram.to_vec()));
    }

    pub(super) fn take_outgoing(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outgoing)
    }
}

impl Read for DatagramPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram longer than OpenSSL's buffer is cut and then fails its MAC.
        let len = datagram.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..len), datagram.get(..len)) {
            dst.copy_from_slice(src);
        }
        Ok(len)
    }
}

impl Write for DatagramPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the handshake started by `first` (a ClientHello) and then the DTLS tunnel, in
/// the session's span (see [`span`]).
pub(super) async fn run(
    start: HandshakeStart,
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    local_port: u16,
    mut incoming: mpsc::Receiver<Vec<u8>>,
    first: Vec<u8>,
) {
    let HandshakeStart {
        ssl,
        session,
        events,
        slots,
    } = start;
    let Ok(mut stream) = SslStream::new(ssl, DatagramPipe::default()) else {
        return;
    };
    stream.get_mut().incoming.push_back(first);
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        let result = stream.accept();
        flush(&mut stream, &socket, peer).await;
        match result {
            Ok(()) => break,
            Err(e) if e.code() == ErrorCode::WANT_READ => {}
            Err(e) => {
                tracing::debug!(error = %e, "DTLS handshake failed");
                return;
            }
        }
        if Instant::now() >= deadline {
            tracing::debug!("DTLS handshake timed out");
            return;
        }
        tokio::select! {
            datagram = incoming.recv() => match datagram {
                Some(datagram) => stream.get_mut().incoming.push_back(datagram),
                None => return,
            },
            () = tokio::time::sleep(HANDSHAKE_TICK) => {}
            () = events.closed() => return,
        }
    }
    drop(slots);
    established(stream, session, events, socket, peer, local_port, incoming).await;
}

/// The span of one DTLS peer: a `dtls` span with the client's address, inside the
/// `vpn_session` span of the session its ClientHello named.
pub(super) fn span(session: &SessionBinding, peer: SocketAddr) -> tracing::Span {
    let session_span = crate::headend::session_span(session.index, &session.username);
    tracing::info_span!(parent: &session_span, "dtls", %peer)
}

/// Why a DTLS tunnel ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Silent,
    Closed,
    Broken,
    TunnelEnded,
    ListenerStopped,
}

async fn established(
    mut stream: SslStream<DatagramPipe>,
    session: SessionBinding,
    events: mpsc::Sender<DtlsEvent>,
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    local_port: u16,
    mut incoming: mpsc::Receiver<Vec<u8>>,
) {
    let setup = DtlsTunnelSetup {
        cipher_suite: stream
            .ssl()
            .current_cipher()
            .map_or_else(|| "unknown".to_owned(), |c| c.name().to_owned()),
        encapsulation: stream.ssl().version_str().to_owned(),
        udp_src_port: peer.port(),
        udp_dst_port: local_port,
    };
    let attachment = match session.sessions.attach_dtls(
        session.index,
        session.ssl_tunnel_number,
        &setup,
        OffsetDateTime::now_utc(),
    ) {
        Ok(attachment) => attachment,
        Err(e) => {
            tracing::debug!(error = %e, "DTLS tunnel not attached");
            return;
        }
    };
    let generation = attachment.tunnel_number;
    let (link, mut packets, received) = DtlsLink::new(generation, Arc::clone(&attachment.counters));
    if events.send(DtlsEvent::Up(link)).await.is_err() {
        session.sessions.detach_dtls(session.index, generation);
        return;
    }
    tracing::info!(
        target: "syslog",
        syslog_id = 722022,
        "Group <{}> User <{}> IP <{}> UDP SVC connection established without compression",
        escaped(&session.group_policy),
        escaped(&session.username),
        peer.ip()
    );
    tracing::debug!(cipher = %setup.cipher_suite, version = %setup.encapsulation, "DTLS established");
    let uplink = session.uplink.with_counters(attachment.counters);
    let mut record = vec![0u8; MAX_RECORD_LEN];
    let mut out: Vec<u8> = Vec::with_capacity(MAX_RECORD_LEN);
    let mut last_heard = Instant::now();
    let end = 'tunnel: loop {
        tokio::select! {
            datagram = incoming.recv() => {
                let Some(datagram) = datagram else {
                    break 'tunnel End::ListenerStopped;
                };
                stream.get_mut().incoming.push_back(datagram);
                loop {
                    match stream.ssl_read(&mut record) {
                        Ok(len) => {
                            last_heard = Instant::now();
                            received.fetch_add(1, Ordering::Relaxed);
                            let Some(plaintext) = record.get_mut(..len) else {
                                continue;
                            };
                            match on_record(plaintext, &uplink) {
                                RecordAction::None => {}
                                RecordAction::Echo => {
                                    if stream.ssl_write(plaintext).is_err() {
                                        break 'tunnel End::Broken;
                                    }
                                }
                                RecordAction::Close => break 'tunnel End::Closed,
                            }
                        }
                        Err(e) if e.code() == ErrorCode::WANT_READ => break,
                        Err(e) if e.code() == ErrorCode::ZERO_RETURN => break 'tunnel End::Closed,
                        Err(e) => {
                            tracing::debug!(error = %e, "DTLS record refused; tunnel closed");
                            break 'tunnel End::Broken;
                        }
                    }
                }
                flush(&mut stream, &socket, peer).await;
            }
            packet = packets.recv() => {
                let Some(packet) = packet else {
                    break 'tunnel End::TunnelEnded;
                };
                out.clear();
                out.push(FrameType::Data.to_byte());
                out.extend_from_slice(&packet);
                if stream.ssl_write(&out).is_err() {
                    break 'tunnel End::Broken;
                }
                flush(&mut stream, &socket, peer).await;
            }
            () = tokio::time::sleep_until(last_heard + session.dead_after) => break 'tunnel End::Silent,
            () = events.closed() => break 'tunnel End::TunnelEnded,
        }
    };
    if !matches!(end, End::Closed | End::Broken) {
        let _ = stream.shutdown();
        flush(&mut stream, &socket, peer).await;
    }
    session.sessions.detach_dtls(session.index, generation);
    let _ = events.try_send(DtlsEvent::Down { generation });
    tracing::info!(
        target: "syslog",
        syslog_id = 722023,
        "Group <{}> User <{}> IP <{}> UDP SVC connection terminated without compression",
        escaped(&session.group_policy),
        escaped(&session.username),
        peer.ip()
    );
    tracing::debug!(?end, "DTLS tunnel ended");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecordAction {
    None,
    /// The record was turned into its answer in place; send it back.
    Echo,
    Close,
}

/// Serves one decrypted record from the client (protocol.md §5.3).
pub(super) fn on_record(record: &mut [u8], uplink: &Uplink) -> RecordAction {
    let Some(&type_byte) = record.first() else {
        return RecordAction::None;
    };
    match FrameType::from_byte(type_byte) {
        Ok(FrameType::Data) => {
            let packet = record.get(1..).unwrap_or_default();
            if let Err(e) = uplink.send(Bytes::copy_from_slice(packet), OffsetDateTime::now_utc()) {
                tracing::trace!(error = %e, "DTLS uplink packet dropped");
            }
            RecordAction::None
        }
        Ok(FrameType::DpdRequest) => match dpd_response_in_place(record) {
            Ok(()) => RecordAction::Echo,
            Err(_) => RecordAction::None,
        },
        Ok(FrameType::Disconnect | FrameType::Terminate) => RecordAction::Close,
        _ => RecordAction::None,
    }
}

async fn flush(stream: &mut SslStream<DatagramPipe>, socket: &UdpSocket, peer: SocketAddr) {
    for datagram in std::mem::take(&mut stream.get_mut().outgoing) {
        if let Err(e) = socket.send_to(&datagram, peer).await {
            tracing::trace!(error = %e, "DTLS datagram not sent");
        }
    }
}
