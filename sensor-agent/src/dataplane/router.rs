//! Routing between the TUN device and sessions, by assigned address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::packet;
use crate::sessions::LiveCounters;

/// Packets queued towards one session before further ones are dropped (and counted
/// as `Pkts Tx Drop`), so one slow client never blocks the TUN reader.
pub const DEFAULT_DOWNLINK_QUEUE: usize = 256;
/// Packets queued towards the TUN device before uplink packets are dropped.
pub const DEFAULT_TUN_QUEUE: usize = 1024;

/// What happened to a packet read from the TUN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Queued for the session holding the destination address.
    Queued,
    /// No session holds the destination address.
    NoRoute,
    /// The session's queue was full; counted as a Tx drop of the session.
    QueueFull,
    /// Not an IPv4/IPv6 packet, or too short.
    Malformed,
}

/// Why an uplink packet (client → TUN) was dropped; each is a session Rx drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UplinkDrop {
    #[error("source address {address} is not assigned to the session")]
    Spoofed { address: IpAddr },
    #[error("not an IPv4/IPv6 packet")]
    Malformed,
    #[error("the TUN device queue is full")]
    TunQueueFull,
    #[error("the data plane has stopped")]
    Stopped,
}

/// Device-wide counters of the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouterCounters {
    /// TUN packets for an address no session holds.
    pub no_route: u64,
    /// TUN packets that were not IP.
    pub malformed: u64,
    /// Packets queued to sessions.
    pub dispatched: u64,
    /// Uplink packets queued to the TUN device.
    pub uplinked: u64,
}

/// The address → session table. One per sensor, shared by the TUN reader and every
/// session.
#[derive(Debug)]
pub struct Router {
    routes: RwLock<HashMap<IpAddr, Route>>,
    to_tun: mpsc::Sender<Bytes>,
    downlink_queue: usize,
    next_port: AtomicU64,
    no_route: AtomicU64,
    malformed: AtomicU64,
    dispatched: AtomicU64,
    uplinked: AtomicU64,
}

#[derive(Debug, Clone)]
struct Route {
    port: u64,
    downlink: mpsc::Sender<Bytes>,
    counters: Arc<LiveCounters>,
}

/// The packets sessions send towards the TUN device; the TUN writer drains it.
#[derive(Debug)]
pub struct TunQueue(pub(crate) mpsc::Receiver<Bytes>);

impl TunQueue {
    /// The next packet for the TUN device; `None` once the router is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.0.recv().await
    }

    /// A packet if one is queued.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.0.try_recv().ok()
    }
}

/// The addresses a session's packets must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionAddresses {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

impl SessionAddresses {
    fn iter(&self) -> impl Iterator<Item = IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
    }

    fn contains(&self, address: IpAddr) -> bool {
        self.iter().any(|a| a == address)
    }
}

impl Router {
    /// A router with per-session queues of `downlink_queue` packets and a TUN queue of
    /// `tun_queue` packets; the returned [`TunQueue`] goes to the TUN writer.
    pub fn new(downlink_queue: usize, tun_queue: usize) -> (Arc<Self>, TunQueue) {
        let (to_tun, from_sessions) = mpsc::channel(tun_queue.max(1));
        let router = Self {
            routes: RwLock::new(HashMap::new()),
            to_tun,
            downlink_queue: downlink_queue.max(1),
            next_port: AtomicU64::new(1),
            no_route: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            dispatched: AtomicU64::new(0),
            uplinked: AtomicU64::new(0),
        };
        (Arc::new(router), TunQueue(from_sessions))
    }

    /// Routes `addresses` to a new port for a session's tunnel. An address already
    /// routed elsewhere (a reconnect racing the old tunnel) now goes to the new port;
    /// the session database decides who holds an address. Drops are counted on
    /// `counters`.
    pub fn attach(
        self: &Arc<Self>,
        addresses: SessionAddresses,
        counters: Arc<LiveCounters>,
    ) -> SessionPort {
        let port = self.next_port.fetch_add(1, Ordering::Relaxed);
        let (downlink, receiver) = mpsc::channel(self.downlink_queue);
        let route = Route {
            port,
            downlink,
            counters: Arc::clone(&counters),
        };
        {
            let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
            for address in addresses.iter() {
                routes.insert(address, route.clone());
            }
        }
        SessionPort {
            router: Arc::clone(self),
            port,
            downlink: receiver,
            uplink: Uplink {
                router: Arc::clone(self),
                addresses,
                counters,
            },
        }
    }

    /// Hands a packet read from the TUN device to the session holding its
    /// destination; never waits.
    pub fn dispatch(&self, packet: Bytes) -> Dispatch {
        let Some((_, destination)) = packet::addresses(&packet) else {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return Dispatch::Malformed;
        };
        let route = {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            routes
                .get(&destination)
                .map(|r| (r.downlink.clone(), Arc::clone(&r.counters)))
        };
        let Some((downlink, counters)) = route else {
            self.no_route.fetch_add(1, Ordering::Relaxed);
            return Dispatch::NoRoute;
        };
        match downlink.try_send(packet) {
            Ok(()) => {
                self.dispatched.fetch_add(1, Ordering::Relaxed);
                Dispatch::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                counters.record_tx_drop();
                Dispatch::QueueFull
            }
            // The port is being dropped and will remove its route.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.no_route.fetch_add(1, Ordering::Relaxed);
                Dispatch::NoRoute
            }
        }
    }

    /// Whether a session currently holds `address`.
    pub fn routes_to(&self, address: IpAddr) -> bool {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&address)
    }

    pub fn counters(&self) -> RouterCounters {
        RouterCounters {
            no_route: self.no_route.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            dispatched: self.dispatched.load(Ordering::Relaxed),
            uplinked: self.uplinked.load(Ordering::Relaxed),
        }
    }

    fn detach(&self, port: u64) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.retain(|_, route| route.port != port);
    }
}

/// A tunnel's connection to the data plane: packets for the client arrive on
/// [`recv`](Self::recv); packets from the client go out through [`Uplink`]. It knows
/// nothing of TLS or DTLS: the tunnel task selects over this port and its transports.
/// Dropping it removes its routes.
#[derive(Debug)]
pub struct SessionPort {
    router: Arc<Router>,
    port: u64,
    downlink: mpsc::Receiver<Bytes>,
    uplink: Uplink,
}

impl SessionPort {
    /// The next packet for the client; `None` only if the router is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.downlink.recv().await
    }

    /// A packet for the client if one is queued.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.downlink.try_recv().ok()
    }

    /// The uplink; clone it for a second transport (DTLS) of the same session.
    pub fn uplink(&self) -> &Uplink {
        &self.uplink
    }
}

impl Drop for SessionPort {
    fn drop(&mut self) {
        self.router.detach(self.port);
    }
}

/// Sends a session's packets to the TUN device, refusing any whose source is not the
/// session's assigned address.
#[derive(Debug, Clone)]
pub struct Uplink {
    router: Arc<Router>,
    addresses: SessionAddresses,
    counters: Arc<LiveCounters>,
}

impl Uplink {
    /// The same uplink counting on `counters` instead: the DTLS tunnel of a session
    /// counts its own `Bytes Rx`.
    pub fn with_counters(&self, counters: Arc<LiveCounters>) -> Uplink {
        Uplink {
            router: Arc::clone(&self.router),
            addresses: self.addresses,
            counters,
        }
    }

    /// Queues a packet from the client for the TUN device, counting it as received
    /// (`Bytes Rx`) or as an Rx drop. Never waits.
    pub fn send(&self, packet: Bytes, now: OffsetDateTime) -> Result<(), UplinkDrop> {
        let result = self.check_and_queue(packet, now);
        if result.is_err() {
            self.counters.record_rx_drop();
        }
        result
    }

    /// Queues a packet from the client for the TUN device like [`Uplink::send`], but
    /// waits while the queue is full instead of dropping: a stream transport (CSTP over
    /// TLS/TCP) then stops reading, and TCP's flow control slows the client down.
    pub async fn send_waiting(&self, packet: Bytes, now: OffsetDateTime) -> Result<(), UplinkDrop> {
        let result = match self.check(&packet) {
            Ok(()) => {
                let len = packet.len();
                match self.router.to_tun.send(packet).await {
                    Ok(()) => {
                        self.counted(len, now);
                        Ok(())
                    }
                    Err(_) => Err(UplinkDrop::Stopped),
                }
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.counters.record_rx_drop();
        }
        result
    }

    /// Refuses what is not an IP packet from the session's own address.
    fn check(&self, packet: &[u8]) -> Result<(), UplinkDrop> {
        let (source, _) = packet::addresses(packet).ok_or(UplinkDrop::Malformed)?;
        if !self.addresses.contains(source) {
            return Err(UplinkDrop::Spoofed { address: source });
        }
        Ok(())
    }

    fn counted(&self, len: usize, now: OffsetDateTime) {
        self.counters.record_rx(len, now);
        self.router.uplinked.fetch_add(1, Ordering::Relaxed);
    }

    fn check_and_queue(&self, packet: Bytes, now: OffsetDateTime) -> Result<(), UplinkDrop> {
        self.check(&packet)?;
        let len = packet.len();
        match self.router.to_tun.try_send(packet) {
            Ok(()) => {
                self.counted(len, now);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(UplinkDrop::TunQueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(UplinkDrop::Stopped),
        }
    }
}
