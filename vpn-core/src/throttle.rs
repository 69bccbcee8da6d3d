//! Bounded work per source: a ban score like ocserv's and per-source quotas of things
//! in flight. Sans-IO: the caller passes the time.
//!
//! * [`BanScore`]: each key (a source address, or a username and a source address)
//!   collects points (a wrong password adds [`BanPolicy::wrong_password_points`]); the
//!   points decay by one every [`BanPolicy::decay_per_point`]; at or above
//!   [`BanPolicy::threshold`] the key is refused until enough points decayed. Points are
//!   charged before the work ([`BanScore::charge`]) and refunded when it succeeds, so a
//!   burst of parallel attempts cannot all pass the check before the first one fails.
//! * [`SourceQuota`]: things that wait for the client (pending logins, MCA challenges)
//!   counted per source, so one source cannot fill a table that everyone shares.
//!
//! Sources are [`source_of`] an address: IPv4 addresses as they are, IPv6 addresses by
//! their /64 (one host usually owns a whole /64).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The source an address belongs to: an IPv4 address (IPv4-mapped IPv6 included) or an
/// IPv6 /64.
pub fn source_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The rules of a [`BanScore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanPolicy {
    /// A key at or above this many points is refused.
    pub threshold: u32,
    /// Points a wrong password adds.
    pub wrong_password_points: u32,
    /// One point decays every this long.
    pub decay_per_point: Duration,
    /// Most keys remembered; beyond it, keys whose points all decayed are forgotten and
    /// new keys are not tracked until room is made.
    pub max_keys: usize,
}

/// A key that must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; retry in {} s", retry_after.as_secs().max(1))]
pub struct Banned {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Score {
    points: u64,
    /// When `points` was last brought up to date.
    updated: Instant,
}

impl Score {
    /// Applies the decay up to `now`.
    fn decay(&mut self, policy: &BanPolicy, now: Instant) {
        let step = policy.decay_per_point.as_nanos().max(1);
        let elapsed = now.saturating_duration_since(self.updated).as_nanos();
        let decayed = u64::try_from(elapsed / step).unwrap_or(u64::MAX);
        if decayed >= self.points {
            self.points = 0;
            self.updated = now;
        } else {
            self.points -= decayed;
            let spent = policy
                .decay_per_point
                .saturating_mul(u32::try_from(decayed).unwrap_or(u32::MAX));
            self.updated += spent;
        }
    }

    /// How long until the points are below the threshold.
    fn wait(&self, policy: &BanPolicy, now: Instant) -> Duration {
        let excess = self.points + 1 - u64::from(policy.threshold);
        let until = policy
            .decay_per_point
            .saturating_mul(u32::try_from(excess).unwrap_or(u32::MAX));
        until.saturating_sub(now.saturating_duration_since(self.updated))
    }
}

/// Points per key, decaying over time (see the module).
#[derive(Debug, Clone)]
pub struct BanScore<K> {
    policy: BanPolicy,
    scores: HashMap<K, Score>,
}

impl<K: Hash + Eq + Clone> BanScore<K> {
    pub fn new(policy: BanPolicy) -> Self {
        Self {
            policy,
            scores: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &BanPolicy {
        &self.policy
    }

    /// Whether `key` is refused now.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Banned> {
        let policy = self.policy;
        let Some(score) = self.scores.get_mut(key) else {
            return Ok(());
        };
        score.decay(&policy, now);
        if score.points >= u64::from(policy.threshold) {
            Err(Banned {
                retry_after: score.wait(&policy, now),
            })
        } else {
            Ok(())
        }
    }

    /// Adds `points` to `key` unless it is refused now (then nothing is added).
    pub fn charge(&mut self, key: &K, points: u32, now: Instant) -> Result<(), Banned> {
        self.check(key, now)?;
        self.add(key, points, now);
        Ok(())
    }

    /// Adds `points` to `key`.
    pub fn add(&mut self, key: &K, points: u32, now: Instant) {
        let policy = self.policy;
        if let Some(score) = self.scores.get_mut(key) {
            score.decay(&policy, now);
            score.points = score.points.saturating_add(u64::from(points));
            return;
        }
        if self.scores.len() >= policy.max_keys {
            self.scores.retain(|_, score| {
                score.decay(&policy, now);
                score.points > 0
            });
        }
        if self.scores.len() < policy.max_keys {
            self.scores.insert(
                key.clone(),
                Score {
                    points: u64::from(points),
                    updated: now,
                },
            );
        }
    }

    /// Takes back up to `points` charged to `key` (the attempt succeeded).
    pub fn refund(&mut self, key: &K, points: u32, now: Instant) {
        let policy = self.policy;
        if let Some(score) = self.scores.get_mut(key) {
            score.decay(&policy, now);
            score.points = score.points.saturating_sub(u64::from(points));
            if score.points == 0 {
                self.scores.remove(key);
            }
        }
    }

    /// Forgets `key` (e.g. a username and address after a successful login).
    pub fn forget(&mut self, key: &K) {
        self.scores.remove(key);
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

/// A source that has as many things waiting as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{limit} already waiting from this source")]
pub struct QuotaExceeded {
    pub limit: usize,
}

/// Things waiting for a client (by handle), at most `per_source` per source; each is
/// forgotten when released or after `lifetime`.
#[derive(Debug, Clone)]
pub struct SourceQuota {
    per_source: usize,
    lifetime: Duration,
    handles: HashMap<String, (IpAddr, Instant)>,
    counts: HashMap<IpAddr, usize>,
}

impl SourceQuota {
    pub fn new(per_source: usize, lifetime: Duration) -> Self {
        Self {
            per_source,
            lifetime,
            handles: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    /// Counts `handle` against the source of `address`, unless that source is full.
    pub fn admit(
        &mut self,
        address: IpAddr,
        handle: &str,
        now: Instant,
    ) -> Result<(), QuotaExceeded> {
        let source = source_of(address);
        if self.counts.get(&source).copied().unwrap_or(0) >= self.per_source {
            self.purge_expired(now);
        }
        let count = self.counts.entry(source).or_insert(0);
        if *count >= self.per_source {
            return Err(QuotaExceeded {
                limit: self.per_source,
            });
        }
        *count += 1;
        if let Some((old, _)) = self.handles.insert(handle.to_owned(), (source, now)) {
            self.uncount(old);
        }
        Ok(())
    }

    /// Whether the source of `address` may start one more now.
    pub fn has_room(&mut self, address: IpAddr, now: Instant) -> bool {
        let source = source_of(address);
        if self.counts.get(&source).copied().unwrap_or(0) >= self.per_source {
            self.purge_expired(now);
        }
        self.counts.get(&source).copied().unwrap_or(0) < self.per_source
    }

    /// The thing behind `handle` is done (answered, refused or gone).
    pub fn release(&mut self, handle: &str) {
        if let Some((source, _)) = self.handles.remove(handle) {
            self.uncount(source);
        }
    }

    /// Things waiting from the source of `address`.
    pub fn waiting(&self, address: IpAddr) -> usize {
        self.counts.get(&source_of(address)).copied().unwrap_or(0)
    }

    fn purge_expired(&mut self, now: Instant) {
        let lifetime = self.lifetime;
        let expired: Vec<String> = self
            .handles
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) > lifetime)
            .map(|(handle, _)| handle.clone())
            .collect();
        for handle in expired {
            self.release(&handle);
        }
    }

    fn uncount(&mut self, source: IpAddr) {
        if let Some(count) = self.counts.get_mut(&source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.counts.remove(&source);
            }
        }
    }
}

#[cfg(test)]
mod tests;
