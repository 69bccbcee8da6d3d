//! A bounded log of session start and end events with a cursor, for the manager.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::EndReason;

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

/// A page of events read with [`SessionDb::events_since`](super::SessionDb::events_since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<SessionEvent>,
    /// The cursor to pass next time.
    pub next_cursor: u64,
    /// True when events between the given cursor and the first returned one were
    /// dropped from the log (the reader was too slow, or the agent restarted).
    pub lost: bool,
}

#[derive(Debug)]
pub(crate) struct EventLog {
    events: VecDeque<SessionEvent>,
    capacity: usize,
    next_sequence: u64,
}

impl EventLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            next_sequence: 0,
        }
    }

    pub(crate) fn push(
        &mut self,
        at: OffsetDateTime,
        index: u32,
        username: &str,
        tunnel_group: &str,
        kind: SessionEventKind,
    ) {
        if self.events.len() >= self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(SessionEvent {
            sequence: self.next_sequence,
            at,
            index,
            username: username.to_owned(),
            tunnel_group: tunnel_group.to_owned(),
            kind,
        });
        self.next_sequence += 1;
    }

    pub(crate) fn since(&self, cursor: u64) -> EventPage {
        let first = self.next_sequence - self.events.len() as u64;
        // A cursor from the future belongs to an earlier run of the agent.
        let (start, lost) = if cursor > self.next_sequence || cursor < first {
            (first, cursor != first)
        } else {
            (cursor, false)
        };
        let skip = usize::try_from(start - first).unwrap_or(usize::MAX);
        EventPage {
            events: self.events.iter().skip(skip).cloned().collect(),
            next_cursor: self.next_sequence,
            lost,
        }
    }
}
