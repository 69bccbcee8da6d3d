//! A bounded log of session start and end events with a cursor, for the manager.

use std::collections::VecDeque;

use time::OffsetDateTime;
use vpn_core::session::{EventPage, SessionEvent, SessionEventKind};

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
