//! The packet path towards the client, independent of the protocol that carries it.

use std::future::Future;
use std::io;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::sessions::LiveCounters;

/// Carries IP packets to the client over one protocol: CSTP over TLS now, DTLS later.
/// The headend implements it for each; the data plane only needs to send.
pub trait Transport: Send {
    /// Sends one IP packet, framed as the protocol requires (one CSTP frame per TLS
    /// record, one DTLS record per packet).
    fn send_packet(&mut self, packet: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
}

/// Which transport carried a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Tls,
    Dtls,
}

/// A tunnel's transports to the client: the TLS channel always, a DTLS channel while
/// it is up. Packets go over DTLS when it is up (as AnyConnect headends do) and fall
/// back to TLS when a DTLS send fails; each transport counts its own traffic.
#[derive(Debug)]
pub struct DataPath<T, D> {
    tls: T,
    tls_counters: Arc<LiveCounters>,
    dtls: Option<(D, Arc<LiveCounters>)>,
}

impl<T: Transport, D: Transport> DataPath<T, D> {
    pub fn new(tls: T, tls_counters: Arc<LiveCounters>) -> Self {
        Self {
            tls,
            tls_counters,
            dtls: None,
        }
    }

    /// DTLS is established: send over it from now on.
    pub fn dtls_up(&mut self, dtls: D, counters: Arc<LiveCounters>) {
        self.dtls = Some((dtls, counters));
    }

    /// DTLS is gone (closed, timed out): back to TLS only. Returns it, if it was up.
    pub fn dtls_down(&mut self) -> Option<D> {
        self.dtls.take().map(|(dtls, _)| dtls)
    }

    pub fn has_dtls(&self) -> bool {
        self.dtls.is_some()
    }

    /// The TLS transport, e.g. to send control frames (DPD, disconnect).
    pub fn tls_mut(&mut self) -> &mut T {
        &mut self.tls
    }

    /// Sends a packet to the client and counts it as `Bytes Tx` of the transport that
    /// carried it. A failed DTLS send takes DTLS down and retries over TLS; a failed
    /// TLS send is the tunnel's end and is returned.
    pub async fn send(&mut self, packet: &[u8], now: OffsetDateTime) -> io::Result<TransportKind> {
        if let Some((dtls, counters)) = &mut self.dtls {
            match dtls.send_packet(packet).await {
                Ok(()) => {
                    counters.record_tx(packet.len(), now);
                    return Ok(TransportKind::Dtls);
                }
                Err(e) => {
                    tracing::trace!(error = %e, "DTLS send failed; falling back to TLS");
                    self.dtls = None;
                }
            }
        }
        self.tls.send_packet(packet).await?;
        self.tls_counters.record_tx(packet.len(), now);
        Ok(TransportKind::Tls)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-11-26 10:00:00 UTC);

    /// A transport that records what it sends, or fails every send.
    #[derive(Debug, Default)]
    struct Recorder {
        sent: Vec<Vec<u8>>,
        broken: bool,
    }

    impl Transport for Recorder {
        async fn send_packet(&mut self, packet: &[u8]) -> io::Result<()> {
            if self.broken {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            self.sent.push(packet.to_vec());
            Ok(())
        }
    }

    fn counters() -> Arc<LiveCounters> {
        Arc::new(LiveCounters::new(T0))
    }

    #[tokio::test]
    async fn packets_go_over_dtls_while_it_is_up_and_over_tls_otherwise() {
        let tls_counters = counters();
        let dtls_counters = counters();
        let mut path = DataPath::new(Recorder::default(), Arc::clone(&tls_counters));
        assert_eq!(path.send(b"one", T0).await.unwrap(), TransportKind::Tls);
        path.dtls_up(Recorder::default(), Arc::clone(&dtls_counters));
        assert_eq!(path.send(b"two", T0).await.unwrap(), TransportKind::Dtls);
        let dtls = path.dtls_down().unwrap();
        assert_eq!(path.send(b"three", T0).await.unwrap(), TransportKind::Tls);
        assert_eq!(dtls.sent, [b"two".to_vec()]);
        assert_eq!(path.tls_mut().sent, [b"one".to_vec(), b"three".to_vec()]);
        assert_eq!(tls_counters.snapshot().bytes_tx, 8);
        assert_eq!(dtls_counters.snapshot().pkts_tx, 1);
    }

    #[tokio::test]
    async fn failed_dtls_send_falls_back_to_tls_without_losing_the_packet() {
        let tls_counters = counters();
        let mut path = DataPath::new(Recorder::default(), Arc::clone(&tls_counters));
        path.dtls_up(
            Recorder {
                broken: true,
                ..Recorder::default()
            },
            counters(),
        );
        assert_eq!(path.send(b"packet", T0).await.unwrap(), TransportKind::Tls);
        assert!(!path.has_dtls());
        assert_eq!(path.tls_mut().sent, [b"packet".to_vec()]);
        assert_eq!(tls_counters.snapshot().pkts_tx, 1);
    }

    #[tokio::test]
    async fn failed_tls_send_is_the_end_of_the_tunnel() {
        let mut path: DataPath<Recorder, Recorder> = DataPath::new(
            Recorder {
                broken: true,
                ..Recorder::default()
            },
            counters(),
        );
        assert!(path.send(b"packet", T0).await.is_err());
    }
}
