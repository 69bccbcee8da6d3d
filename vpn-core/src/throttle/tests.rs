use super::*;

const POLICY: BanPolicy = BanPolicy {
    threshold: 50,
    wrong_password_points: 10,
    decay_per_point: Duration::from_secs(3),
    max_keys: 4,
};

/// A fixed origin for the test's clock (vpn-core reads no clock; the tests pick one).
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn wrong_attempts_ban_a_key_until_its_points_decay() {
    let start = origin();
    let mut score = BanScore::new(POLICY);
    let key = ip("192.0.2.7");
    for _ in 0..5 {
        assert_eq!(score.charge(&key, 10, start), Ok(()));
    }
    let banned = score.charge(&key, 10, start).unwrap_err();
    // 50 points, below 50 after one point decayed: 3 s.
    assert_eq!(banned.retry_after, Duration::from_secs(3));
    assert!(banned.to_string().contains("retry in 3 s"), "{banned}");
    // Still refused a moment later, with less to wait; a refused attempt adds nothing.
    let later = start + Duration::from_secs(2);
    assert_eq!(
        score.check(&key, later).unwrap_err().retry_after,
        Duration::from_secs(1)
    );
    // Once a point decayed, one more attempt is allowed, and it bans again.
    let after = start + Duration::from_secs(3);
    assert_eq!(score.charge(&key, 10, after), Ok(()));
    assert!(score.check(&key, after).is_err());
    // Everything decays in the end.
    assert_eq!(
        score.check(&key, after + Duration::from_secs(3 * 60)),
        Ok(())
    );
}

#[test]
fn other_keys_are_not_affected_by_a_banned_one() {
    let now = origin();
    let mut score = BanScore::new(POLICY);
    let attacker = ("admin".to_owned(), ip("203.0.113.9"));
    for _ in 0..10 {
        let _ = score.charge(&attacker, 10, now);
    }
    assert!(score.check(&attacker, now).is_err());
    assert_eq!(
        score.check(&("admin".to_owned(), ip("192.0.2.7")), now),
        Ok(())
    );
}

#[test]
fn a_successful_attempt_gets_its_points_back() {
    let now = origin();
    let mut score = BanScore::new(POLICY);
    let key = ip("192.0.2.7");
    for _ in 0..4 {
        score.charge(&key, 10, now).unwrap();
    }
    score.charge(&key, 10, now).unwrap();
    score.refund(&key, 10, now);
    assert_eq!(score.check(&key, now), Ok(()));
    score.forget(&key);
    assert!(score.is_empty());
}

#[test]
fn the_table_is_bounded_and_forgets_decayed_keys_first() {
    let now = origin();
    let mut score = BanScore::new(POLICY);
    for i in 0..4 {
        score.add(&i, 10, now);
    }
    // Full: a fifth key is not tracked while the others still have points.
    score.add(&4, 100, now);
    assert_eq!(score.len(), 4);
    assert_eq!(score.check(&4, now), Ok(()));
    // Once their points decayed, room is made.
    let later = now + Duration::from_secs(60);
    score.add(&4, 100, later);
    assert_eq!(score.len(), 1);
    assert!(score.check(&4, later).is_err());
}

#[test]
fn ipv6_sources_are_their_slash_64_and_mapped_ipv4_is_ipv4() {
    assert_eq!(source_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    assert_eq!(
        source_of(ip("2001:db8:1:2:ffff::1")),
        source_of(ip("2001:db8:1:2::99"))
    );
    assert_ne!(
        source_of(ip("2001:db8:1:3::1")),
        source_of(ip("2001:db8:1:2::1"))
    );
    assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    assert_eq!(source_of(ip("192.0.2.7")), ip("192.0.2.7"));
}

#[test]
fn a_source_quota_refuses_one_source_over_its_share_and_admits_the_others() {
    let now = origin();
    let mut quota = SourceQuota::new(3, Duration::from_secs(120));
    let flood = ip("203.0.113.9");
    for i in 0..3 {
        quota.admit(flood, &format!("h{i}"), now).unwrap();
    }
    assert_eq!(
        quota.admit(flood, "h3", now),
        Err(QuotaExceeded { limit: 3 })
    );
    assert!(!quota.has_room(flood, now));
    quota.admit(ip("192.0.2.7"), "mine", now).unwrap();
    // Answered ones free their place; expired ones too.
    quota.release("h0");
    assert_eq!(quota.waiting(flood), 2);
    quota.admit(flood, "h4", now).unwrap();
    let later = now + Duration::from_secs(121);
    assert!(quota.has_room(flood, later));
    assert_eq!(quota.waiting(flood), 0);
    assert_eq!(quota.waiting(ip("192.0.2.7")), 0);
}
