//! Session start and end events, as the sensor logs them and the manager reads them
//! with a cursor.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why a session ended, with FTD's wording (syslog 113019 `Reason:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The client sent a CSTP DISCONNECT (logout).
    UserRequested,
    /// No traffic for the group policy's idle timeout.
    IdleTimeout,
    /// `vpn-sessiondb logoff` or a terminate from the manager.
    AdminReset,
    /// The group policy's maximum connect time passed.
    MaxTimeExceeded,
    /// A newer login of the same user exceeded the simultaneous-login limit.
    PortPreempted,
    /// Detached longer than the disconnected timeout (the client never came back).
    LostService,
}

impl EndReason {
    /// The `Reason:` text of syslog 113019. `User Requested`, `Idle Timeout` and
    /// `Admin Reset` are seen in real logs; the others follow ASA's message catalogue.
    pub fn ftd_text(self) -> &'static str {
        match self {
            Self::UserRequested => "User Requested",
            Self::IdleTimeout => "Idle Timeout",
            Self::AdminReset => "Admin Reset",
            Self::MaxTimeExceeded => "Max time exceeded",
            Self::PortPreempted => "Port Preempted",
            Self::LostService => "Lost Service",
        }
    }
}

/// One session event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Position in the log; consecutive, starting at 0 when the agent starts.
    pub sequence: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub index: u32,
    pub username: String,
    pub tunnel_group: String,
    pub kind: SessionEventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SessionEventKind {
    Started {
        public_ip: IpAddr,
        assigned_ipv4: Option<Ipv4Addr>,
        assigned_ipv6: Option<Ipv6Addr>,
    },
    Ended {
        reason: EndReason,
        duration_secs: i64,
        bytes_tx: u64,
        bytes_rx: u64,
    },
}

/// A page of events, read with a cursor (the sensor's `SessionDb::events_since`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<SessionEvent>,
    /// The cursor to pass next time.
    pub next_cursor: u64,
    /// True when events between the given cursor and the first returned one were
    /// dropped from the log (the reader was too slow, or the agent restarted).
    pub lost: bool,
}
