//! The data plane: one TUN device for the whole sensor and a [`Router`] that hands
//! packets between it and sessions by assigned address. No process or device per
//! session.
//!
//! TUN → client: the reader task reads a packet, looks up the session holding its
//! destination address and queues it on that session's bounded queue (a full queue
//! drops the packet and counts a Tx drop; the reader never waits). The tunnel task
//! takes it from its [`SessionPort`] and sends it over DTLS while that is up, over TLS
//! otherwise, counting `Bytes Tx` on the transport used (the headend's tunnel decides,
//! see `headend::tunnel`; [`DataPath`] is the transport-generic form of that rule).
//! A DTLS tunnel gives its data packets to an [`Uplink`] made with
//! [`Uplink::with_counters`], so they count on the DTLS tunnel.
//!
//! Client → TUN: the tunnel task gives each data packet to its [`Uplink`], which
//! drops (and counts as Rx drop) any packet whose source is not the session's
//! assigned address, and queues the rest for the writer task.

mod packet;
mod path;
mod router;
mod tun;

pub use path::{DataPath, Transport, TransportKind};
pub use router::{
    DEFAULT_DOWNLINK_QUEUE, DEFAULT_TUN_QUEUE, Dispatch, Router, RouterCounters, SessionAddresses,
    SessionPort, TunQueue, Uplink, UplinkDrop,
};
pub use tun::{DEFAULT_TUN_NAME, Dataplane, DataplaneError, TunSettings, has_net_admin};

#[cfg(test)]
mod tests;
