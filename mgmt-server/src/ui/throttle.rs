//! Refused logins slow an attacker down: after [`MAX_FAILURES`] refusals of one user
//! name within [`WINDOW`], that name is locked for [`LOCKOUT`] (kept in memory).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub(crate) const MAX_FAILURES: usize = 5;
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
pub(crate) const LOCKOUT: Duration = Duration::from_secs(300);
/// Names tracked at most (oldest forgotten first), so the map cannot grow without bound.
const MAX_NAMES: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub struct LoginThrottle {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    failures: Vec<Instant>,
    locked_until: Option<Instant>,
}

impl LoginThrottle {
    /// Whether `name` is locked at `now`.
    pub(crate) fn is_locked(&self, name: &str, now: Instant) -> bool {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&key(name))
            .and_then(|e| e.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a refusal; returns whether the name is now locked.
    pub(crate) fn failed(&self, name: &str, now: Instant) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_NAMES && !map.contains_key(&key(name)) {
            map.retain(|_, e| e.locked_until.is_some_and(|until| now < until));
        }
        let entry = map.entry(key(name)).or_default();
        entry.failures.retain(|t| now.duration_since(*t) < WINDOW);
        entry.failures.push(now);
        if entry.failures.len() >= MAX_FAILURES {
            entry.locked_until = Some(now + LOCKOUT);
            entry.failures.clear();
        }
        entry.locked_until.is_some_and(|until| now < until)
    }

    /// Forgets a name's refusals after a successful login.
    pub(crate) fn succeeded(&self, name: &str) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&key(name));
    }
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_refusals_within_a_minute_lock_the_name_for_five_minutes() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES - 1 {
            assert!(!throttle.failed("admin", start + Duration::from_secs(i as u64)));
        }
        assert!(!throttle.is_locked("admin", start + Duration::from_secs(10)));
        assert!(throttle.failed("Admin", start + Duration::from_secs(10)));
        assert!(throttle.is_locked("admin", start + Duration::from_secs(11)));
        assert!(!throttle.is_locked("other", start + Duration::from_secs(11)));
        assert!(!throttle.is_locked("admin", start + Duration::from_secs(10) + LOCKOUT));
    }

    #[test]
    fn refusals_spread_over_more_than_a_minute_do_not_lock() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..10u64 {
            assert!(!throttle.failed("admin", start + Duration::from_secs(i * 20)));
        }
    }

    #[test]
    fn a_successful_login_forgets_earlier_refusals() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed("admin", start);
        }
        throttle.succeeded("admin");
        assert!(!throttle.failed("admin", start));
    }
}
