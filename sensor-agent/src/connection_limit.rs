//! Connection caps of a listener: a global one and one per source (an IPv4 address or
//! an IPv6 /64, [`vpn_core::throttle::source_of`]), so a flood of connections from one
//! place, even ones that never send a byte, cannot take every slot.
//!
//! The headend counts a connection against its source only until it becomes a tunnel
//! ([`ConnectionSlot::leave_source`]): many users behind one NAT address keep their
//! tunnels, while unauthenticated connections from that address stay bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vpn_core::throttle::source_of;

/// Why a connection was closed on accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionRefused {
    #[error("{limit} connections open; connection refused")]
    Full { limit: usize },
    #[error("{limit} connections open from this source; connection refused")]
    SourceFull {
        limit: usize,
        /// The first refusal since the source was last under its cap (log it loudly;
        /// the following ones quietly).
        first: bool,
    },
}

#[derive(Debug, Default)]
struct SourceCount {
    open: usize,
    refusing: bool,
}

/// The caps of one listener (or of several sharing them).
#[derive(Debug)]
pub struct ConnectionLimit {
    total: Arc<Semaphore>,
    limit: usize,
    per_source: usize,
    sources: Mutex<HashMap<IpAddr, SourceCount>>,
}

impl ConnectionLimit {
    pub fn new(limit: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(limit)),
            limit,
            per_source,
            sources: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, ConnectionRefused> {
        let source = source_of(peer);
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let count = sources.entry(source).or_default();
        if count.open >= self.per_source {
            let first = !count.refusing;
            count.refusing = true;
            return Err(ConnectionRefused::SourceFull {
                limit: self.per_source,
                first,
            });
        }
        let Ok(permit) = Arc::clone(&self.total).try_acquire_owned() else {
            if count.open == 0 {
                sources.remove(&source);
            }
            return Err(ConnectionRefused::Full { limit: self.limit });
        };
        count.open += 1;
        Ok(ConnectionSlot {
            _permit: permit,
            source: Some(source),
            limit: Arc::clone(self),
        })
    }

    /// Connections counted against the source of `peer`.
    pub fn open_from(&self, peer: IpAddr) -> usize {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&source_of(peer))
            .map_or(0, |count| count.open)
    }

    fn release(&self, source: IpAddr) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = sources.get_mut(&source) {
            count.open = count.open.saturating_sub(1);
            count.refusing = false;
            if count.open == 0 {
                sources.remove(&source);
            }
        }
    }
}

/// An admitted connection; dropping it frees its places.
#[derive(Debug)]
pub struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    source: Option<IpAddr>,
    limit: Arc<ConnectionLimit>,
}

impl ConnectionSlot {
    /// Stops counting the connection against its source (it keeps its global place).
    pub fn leave_source(&mut self) {
        if let Some(source) = self.source.take() {
            self.limit.release(source);
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.leave_source();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_source_over_its_cap_is_refused_while_others_get_in() {
        let limit = ConnectionLimit::new(10, 3);
        let flood = ip("203.0.113.9");
        let held: Vec<_> = (0..3).map(|_| limit.admit(flood).unwrap()).collect();
        assert_eq!(
            limit.admit(flood).unwrap_err(),
            ConnectionRefused::SourceFull {
                limit: 3,
                first: true
            }
        );
        assert_eq!(
            limit.admit(flood).unwrap_err(),
            ConnectionRefused::SourceFull {
                limit: 3,
                first: false
            }
        );
        let mine = limit.admit(ip("192.0.2.7")).unwrap();
        drop(held);
        assert_eq!(limit.open_from(flood), 0);
        assert!(limit.admit(flood).is_ok());
        drop(mine);
    }

    #[test]
    fn the_global_cap_holds_and_a_tunnel_leaves_its_source_count() {
        let limit = ConnectionLimit::new(2, 2);
        let mut tunnel = limit.admit(ip("192.0.2.7")).unwrap();
        tunnel.leave_source();
        assert_eq!(limit.open_from(ip("192.0.2.7")), 0);
        let _other = limit.admit(ip("2001:db8::1")).unwrap();
        // Same /64 as the other, under its cap, but the tunnel still holds a place.
        assert_eq!(
            limit.admit(ip("2001:db8::2")).unwrap_err(),
            ConnectionRefused::Full { limit: 2 }
        );
        assert_eq!(limit.open_from(ip("2001:db8::2")), 1);
        drop(tunnel);
        assert!(limit.admit(ip("198.51.100.1")).is_ok());
    }
}
