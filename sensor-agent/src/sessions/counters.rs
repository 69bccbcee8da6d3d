//! Live traffic counters of one tunnel, shared between the data path and the database.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use time::OffsetDateTime;
use vpn_core::session::TunnelCounters;

/// Counters the packet path bumps without taking the session database lock.
///
/// Tx is towards the client, Rx from it (the headend's view, as FTD prints it).
#[derive(Debug)]
pub struct LiveCounters {
    bytes_tx: AtomicU64,
    bytes_rx: AtomicU64,
    pkts_tx: AtomicU64,
    pkts_rx: AtomicU64,
    pkts_tx_drop: AtomicU64,
    pkts_rx_drop: AtomicU64,
    /// Unix seconds of the last packet carried either way.
    last_activity: AtomicI64,
}

impl LiveCounters {
    /// Zeroed counters whose last activity is `established`.
    pub fn new(established: OffsetDateTime) -> Self {
        Self {
            bytes_tx: AtomicU64::new(0),
            bytes_rx: AtomicU64::new(0),
            pkts_tx: AtomicU64::new(0),
            pkts_rx: AtomicU64::new(0),
            pkts_tx_drop: AtomicU64::new(0),
            pkts_rx_drop: AtomicU64::new(0),
            last_activity: AtomicI64::new(established.unix_timestamp()),
        }
    }

    /// One packet of `bytes` sent to the client.
    pub fn record_tx(&self, bytes: usize, now: OffsetDateTime) {
        self.bytes_tx.fetch_add(bytes as u64, Ordering::Relaxed);
        self.pkts_tx.fetch_add(1, Ordering::Relaxed);
        self.touch(now);
    }

    /// One packet of `bytes` received from the client.
    pub fn record_rx(&self, bytes: usize, now: OffsetDateTime) {
        self.bytes_rx.fetch_add(bytes as u64, Ordering::Relaxed);
        self.pkts_rx.fetch_add(1, Ordering::Relaxed);
        self.touch(now);
    }

    /// A packet for the client was dropped (its queue was full).
    pub fn record_tx_drop(&self) {
        self.pkts_tx_drop.fetch_add(1, Ordering::Relaxed);
    }

    /// A packet from the client was dropped (spoofed source, TUN queue full).
    pub fn record_rx_drop(&self) {
        self.pkts_rx_drop.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as the CLI shows them.
    pub fn snapshot(&self) -> TunnelCounters {
        TunnelCounters {
            bytes_tx: self.bytes_tx.load(Ordering::Relaxed),
            bytes_rx: self.bytes_rx.load(Ordering::Relaxed),
            pkts_tx: self.pkts_tx.load(Ordering::Relaxed),
            pkts_rx: self.pkts_rx.load(Ordering::Relaxed),
            pkts_tx_drop: self.pkts_tx_drop.load(Ordering::Relaxed),
            pkts_rx_drop: self.pkts_rx_drop.load(Ordering::Relaxed),
        }
    }

    /// When the tunnel last carried a packet (or was established), to the second.
    pub fn last_activity(&self) -> OffsetDateTime {
        let seconds = self.last_activity.load(Ordering::Relaxed);
        OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn touch(&self, now: OffsetDateTime) {
        self.last_activity
            .fetch_max(now.unix_timestamp(), Ordering::Relaxed);
    }
}
