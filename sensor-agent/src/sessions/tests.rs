use std::net::Ipv4Addr;

use time::macros::datetime;
use vpn_core::config::{Ipv4Pool, Ipv6Pool};

use super::*;

const T0: OffsetDateTime = datetime!(2026-11-26 10:00:00 UTC);

fn pools() -> PoolSet {
    PoolSet::new(
        &[Ipv4Pool {
            name: "POOL4".to_owned(),
            start: Ipv4Addr::new(10, 77, 0, 10),
            end: Ipv4Addr::new(10, 77, 0, 12),
            mask: Ipv4Addr::new(255, 255, 255, 0),
        }],
        &[Ipv6Pool {
            name: "POOL6".to_owned(),
            start: "2001:db8:77::10".parse().unwrap(),
            prefix_len: 64,
            count: 16,
        }],
    )
    .unwrap()
}

fn db() -> SessionDb {
    db_with(SessionDbSettings {
        headend_address: Ipv4Addr::new(10, 106, 67, 89),
        ..SessionDbSettings::default()
    })
}

fn db_with(settings: SessionDbSettings) -> SessionDb {
    SessionDb::new(pools(), settings)
}

fn machine(byte: u8) -> MachineFingerprint {
    MachineFingerprint::from_bytes([byte; 32])
}

fn new_session(username: &str) -> NewSession {
    NewSession {
        ipv6_pools: vec!["POOL6".to_owned()],
        machine_fingerprint: Some(machine(1)),
        ..crate::testing::new_session(username)
    }
}

fn tls() -> TlsTunnelSetup {
    TlsTunnelSetup {
        cipher_suite: "TLS13_AES_256_GCM_SHA384".to_owned(),
        encapsulation: "TLSv1.3".to_owned(),
        tcp_src_port: 50530,
        tcp_dst_port: 443,
    }
}

#[test]
fn login_assigns_the_lowest_free_addresses_and_an_ftd_audit_id() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    assert_eq!(grant.index, 1);
    assert_eq!(grant.assigned_ipv4, Some(Ipv4Addr::new(10, 77, 0, 10)));
    assert_eq!(
        grant.assigned_ipv6,
        Some("2001:db8:77::10".parse().unwrap())
    );
    assert_eq!(grant.audit_session_id.len(), 24);
    assert!(grant.audit_session_id.starts_with("0a6a4359"));
    let second = db.login(new_session("bob"), T0).unwrap();
    assert_eq!(second.index, 2);
    assert_eq!(second.assigned_ipv4, Some(Ipv4Addr::new(10, 77, 0, 11)));
}

#[test]
fn database_stores_only_the_hash_of_the_cookie() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let dump = format!("{:?}", db.state.lock().unwrap());
    assert!(!dump.contains(grant.cookie.expose()));
    assert!(!dump.contains(&grant.cookie.expose().to_ascii_lowercase()));
    let hash = cookie::hash_presented(grant.cookie.expose()).unwrap();
    assert_eq!(db.state.lock().unwrap().by_cookie.get(&hash), Some(&1));
}

#[test]
fn cookie_opens_its_session_only_with_the_bound_machine_certificate() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let cookie = grant.cookie.expose();
    assert_eq!(db.authenticate_cookie(cookie, Some(&machine(1)), T0), Ok(1));
    assert_eq!(
        db.authenticate_cookie(cookie, Some(&machine(2)), T0),
        Err(CookieError::MachineMismatch)
    );
    assert_eq!(
        db.authenticate_cookie(cookie, None, T0),
        Err(CookieError::MachineMismatch)
    );
}

#[test]
fn unknown_or_malformed_cookie_is_refused() {
    let db = db();
    db.login(new_session("alice"), T0).unwrap();
    assert_eq!(
        db.authenticate_cookie(&"A".repeat(64), Some(&machine(1)), T0),
        Err(CookieError::Unknown)
    );
    assert!(matches!(
        db.authenticate_cookie("not-a-cookie", Some(&machine(1)), T0),
        Err(CookieError::Malformed(_))
    ));
}

#[test]
fn cookie_past_the_maximum_connect_time_is_refused_and_the_session_ends() {
    let db = db();
    let mut new = new_session("alice");
    new.max_connect_time_minutes = Some(60);
    let grant = db.login(new, T0).unwrap();
    let cookie = grant.cookie.expose();
    let before = T0 + Duration::minutes(59);
    assert_eq!(
        db.authenticate_cookie(cookie, Some(&machine(1)), before),
        Ok(1)
    );
    let after = T0 + Duration::minutes(60);
    assert_eq!(
        db.authenticate_cookie(cookie, Some(&machine(1)), after),
        Err(CookieError::Expired)
    );
    assert!(db.sessions().is_empty());
    let page = db.events_since(0);
    assert!(matches!(
        page.events.last().map(|e| &e.kind),
        Some(SessionEventKind::Ended {
            reason: EndReason::MaxTimeExceeded,
            ..
        })
    ));
}

#[test]
fn logged_out_cookie_is_dead_and_the_address_is_free_again() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let attachment = db.attach(1, &tls(), T0).unwrap();
    assert!(db.logout(1, T0));
    assert_eq!(
        *attachment.stop.borrow(),
        TunnelStop::SessionEnded(EndReason::UserRequested)
    );
    assert_eq!(
        db.authenticate_cookie(grant.cookie.expose(), Some(&machine(1)), T0),
        Err(CookieError::Unknown)
    );
    let next = db.login(new_session("bob"), T0).unwrap();
    assert_eq!(next.assigned_ipv4, grant.assigned_ipv4);
}

#[test]
fn logoff_by_name_ends_only_that_users_sessions_and_counts_them() {
    let db = db();
    db.login(new_session("alice"), T0).unwrap();
    db.login(new_session("alice"), T0).unwrap();
    db.login(new_session("bob"), T0).unwrap();
    let target = LogoffTarget::Name("alice".to_owned());
    assert_eq!(db.logoff(&target, T0), 2);
    assert_eq!(db.logoff(&target, T0), 0);
    let left: Vec<String> = db.sessions().into_iter().map(|s| s.username).collect();
    assert_eq!(left, ["bob"]);
}

#[test]
fn logoff_by_ip_address_tunnel_group_and_all_count_what_they_end() {
    let db = db();
    db.login(new_session("alice"), T0).unwrap();
    let mut other_group = new_session("bob");
    other_group.tunnel_group = "OTHER".to_owned();
    db.login(other_group, T0).unwrap();
    db.login(new_session("carol"), T0).unwrap();

    let by_v6 = LogoffTarget::IpAddress("2001:db8:77::10".parse().unwrap());
    assert_eq!(db.logoff(&by_v6, T0), 1);
    let by_v4 = LogoffTarget::IpAddress("10.77.0.10".parse().unwrap());
    assert_eq!(db.logoff(&by_v4, T0), 0, "alice's session is already gone");
    assert_eq!(
        db.logoff(&LogoffTarget::TunnelGroup("OTHER".to_owned()), T0),
        1
    );
    assert_eq!(db.logoff(&LogoffTarget::All, T0), 1);
    assert!(db.sessions().is_empty());
    let reasons: Vec<EndReason> = db
        .events_since(0)
        .events
        .into_iter()
        .filter_map(|e| match e.kind {
            SessionEventKind::Ended { reason, .. } => Some(reason),
            SessionEventKind::Started { .. } => None,
        })
        .collect();
    assert_eq!(reasons, [EndReason::AdminReset; 3]);
}

#[test]
fn login_beyond_the_simultaneous_login_limit_logs_off_the_oldest_session() {
    let db = db();
    let mut first = new_session("alice");
    first.simultaneous_logins = 2;
    let oldest = db.login(first.clone(), T0).unwrap();
    let oldest_attachment = db.attach(oldest.index, &tls(), T0).unwrap();
    let middle = db.login(first.clone(), T0 + Duration::seconds(1)).unwrap();
    let newest = db.login(first, T0 + Duration::seconds(2)).unwrap();
    assert_eq!(newest.preempted, [oldest.index]);
    assert_eq!(
        *oldest_attachment.stop.borrow(),
        TunnelStop::SessionEnded(EndReason::PortPreempted)
    );
    let left: Vec<u32> = db.sessions().iter().map(|s| s.index).collect();
    assert_eq!(left, [middle.index, newest.index]);
    // Other users are not affected by alice's limit.
    assert!(
        db.login(new_session("bob"), T0)
            .unwrap()
            .preempted
            .is_empty()
    );
}

#[test]
fn simultaneous_login_limit_of_zero_refuses_the_login() {
    let db = db();
    let mut new = new_session("alice");
    new.simultaneous_logins = 0;
    assert!(matches!(
        db.login(new, T0),
        Err(LoginError::LoginsNotPermitted { .. })
    ));
}

#[test]
fn exhausted_pool_refuses_the_login_without_leaking_addresses() {
    let db = db();
    for user in ["a", "b", "c"] {
        db.login(new_session(user), T0).unwrap();
    }
    assert!(matches!(
        db.login(new_session("d"), T0),
        Err(LoginError::Address(_))
    ));
    // The IPv6 address of the failed login was not taken.
    db.logoff(&LogoffTarget::Name("a".to_owned()), T0);
    let grant = db.login(new_session("d"), T0).unwrap();
    assert_eq!(
        grant.assigned_ipv6,
        Some("2001:db8:77::10".parse().unwrap())
    );
}

#[test]
fn device_capacity_refuses_logins_beyond_it() {
    let db = db_with(SessionDbSettings {
        device_capacity: 1,
        ..SessionDbSettings::default()
    });
    db.login(new_session("alice"), T0).unwrap();
    assert_eq!(
        db.login(new_session("bob"), T0).unwrap_err(),
        LoginError::CapacityReached { capacity: 1 }
    );
}

#[test]
fn reconnect_with_the_cookie_reattaches_with_the_same_addresses() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let first = db.attach(grant.index, &tls(), T0).unwrap();
    assert_eq!(first.tunnel_number, 2);
    db.detach(grant.index, first.tunnel_number, T0 + Duration::seconds(5));
    let detached = db.session(grant.index).unwrap();
    assert!(!detached.is_active());
    // Meanwhile another user logs in and must not get alice's address.
    let bob = db.login(new_session("bob"), T0).unwrap();
    assert_ne!(bob.assigned_ipv4, grant.assigned_ipv4);

    let later = T0 + Duration::minutes(2);
    let index = db
        .authenticate_cookie(grant.cookie.expose(), Some(&machine(1)), later)
        .unwrap();
    let second = db.attach(index, &tls(), later).unwrap();
    assert_eq!(second.assigned_ipv4, grant.assigned_ipv4);
    assert_eq!(second.assigned_ipv6, grant.assigned_ipv6);
    assert_eq!(second.tunnel_number, 3);
    assert!(db.session(index).unwrap().is_active());
    assert_eq!(db.stats().cumulative_ssl_tunnels, 2);
}

#[test]
fn reconnect_while_the_old_tunnel_is_still_up_supersedes_it() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let first = db.attach(grant.index, &tls(), T0).unwrap();
    let second = db.attach(grant.index, &tls(), T0).unwrap();
    assert_eq!(*first.stop.borrow(), TunnelStop::Superseded);
    assert_eq!(*second.stop.borrow(), TunnelStop::Run);
    // The old tunnel noticing its closed socket late must not detach the new one.
    db.detach(grant.index, first.tunnel_number, T0);
    assert!(db.session(grant.index).unwrap().is_active());
}

#[test]
fn detached_session_ends_after_the_disconnected_timeout() {
    let db = db_with(SessionDbSettings {
        disconnected_timeout: Duration::minutes(5),
        ..SessionDbSettings::default()
    });
    let grant = db.login(new_session("alice"), T0).unwrap();
    let tunnel = db.attach(grant.index, &tls(), T0).unwrap();
    db.detach(grant.index, tunnel.tunnel_number, T0);
    assert!(db.expire(T0 + Duration::minutes(4)).is_empty());
    assert_eq!(
        db.expire(T0 + Duration::minutes(5)),
        [(grant.index, EndReason::LostService)]
    );
    assert_eq!(
        db.authenticate_cookie(grant.cookie.expose(), Some(&machine(1)), T0),
        Err(CookieError::Unknown)
    );
}

#[test]
fn idle_session_ends_after_the_idle_timeout_counted_from_its_last_packet() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let tunnel = db.attach(grant.index, &tls(), T0).unwrap();
    tunnel.counters.record_rx(100, T0 + Duration::minutes(20));
    assert!(db.expire(T0 + Duration::minutes(49)).is_empty());
    assert_eq!(
        db.expire(T0 + Duration::minutes(50)),
        [(grant.index, EndReason::IdleTimeout)]
    );
    assert_eq!(
        *tunnel.stop.borrow(),
        TunnelStop::SessionEnded(EndReason::IdleTimeout)
    );
}

#[test]
fn session_records_show_live_counters_and_stats_keep_peaks() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    db.login(new_session("bob"), T0).unwrap();
    let tunnel = db.attach(grant.index, &tls(), T0).unwrap();
    tunnel.counters.record_tx(1500, T0);
    tunnel.counters.record_rx(60, T0);
    tunnel.counters.record_tx_drop();
    let record = db.session(grant.index).unwrap();
    let ssl = record.ssl.as_ref().unwrap();
    assert_eq!((ssl.counters.bytes_tx, ssl.counters.pkts_tx), (1500, 1));
    assert_eq!((ssl.counters.bytes_rx, ssl.counters.pkts_tx_drop), (60, 1));
    assert_eq!(ssl.encryption, "AES-GCM-256");
    db.logoff(&LogoffTarget::All, T0);
    let stats = db.stats();
    assert_eq!(stats.cumulative_sessions, 2);
    assert_eq!(stats.peak_concurrent_sessions, 2);
    assert_eq!(stats.cumulative_ssl_tunnels, 1);
    assert_eq!(stats.peak_concurrent_ssl_tunnels, 1);
}

#[test]
fn indexes_keep_increasing_after_sessions_end() {
    let db = db();
    db.login(new_session("alice"), T0).unwrap();
    db.logoff(&LogoffTarget::All, T0);
    assert_eq!(db.login(new_session("alice"), T0).unwrap().index, 2);
}

#[test]
fn events_are_read_with_a_cursor_and_overflow_is_reported_as_lost() {
    let db = db_with(SessionDbSettings {
        event_capacity: 4,
        ..SessionDbSettings::default()
    });
    db.login(new_session("alice"), T0).unwrap();
    let page = db.events_since(0);
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.next_cursor, 1);
    assert!(!page.lost);
    assert!(matches!(
        page.events[0].kind,
        SessionEventKind::Started { .. }
    ));
    let empty = db.events_since(page.next_cursor);
    assert!(empty.events.is_empty() && !empty.lost);

    // Five more events overflow the buffer of four: event 1 is lost.
    db.logoff(&LogoffTarget::All, T0);
    for user in ["b", "c"] {
        db.login(new_session(user), T0).unwrap();
    }
    db.logoff(&LogoffTarget::All, T0);
    let page = db.events_since(1);
    assert!(page.lost);
    let sequences: Vec<u64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [2, 3, 4, 5]);
    assert_eq!(page.next_cursor, 6);

    // A cursor from an earlier run of the agent is also reported as lost.
    let stale = db.events_since(100);
    assert!(stale.lost);
    assert_eq!(stale.events.len(), 4);
}

#[test]
fn redeploy_that_drops_a_pool_ends_only_the_sessions_whose_address_left() {
    let db = db();
    let mut v4_only = new_session("alice");
    v4_only.ipv6_pools.clear();
    let alice = db.login(v4_only, T0).unwrap();
    let mut v6_only = new_session("bob");
    v6_only.ipv4_pools.clear();
    let bob = db.login(v6_only, T0).unwrap();
    let shrunk = Ipv4Pool {
        name: "POOL4".to_owned(),
        start: Ipv4Addr::new(10, 77, 0, 11),
        end: Ipv4Addr::new(10, 77, 0, 12),
        mask: Ipv4Addr::new(255, 255, 255, 0),
    };
    let ipv6 = pools().ipv6_pools()[0].pool().clone();
    let ended = db.apply_pools(&[shrunk], &[ipv6], T0).unwrap();
    assert_eq!(ended, [alice.index]);
    let left: Vec<u32> = db.sessions().iter().map(|s| s.index).collect();
    assert_eq!(left, [bob.index]);
}

#[test]
fn invalid_pool_redeploy_changes_nothing() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let backwards = Ipv4Pool {
        name: "POOL4".to_owned(),
        start: Ipv4Addr::new(10, 77, 0, 20),
        end: Ipv4Addr::new(10, 77, 0, 10),
        mask: Ipv4Addr::new(255, 255, 255, 0),
    };
    assert!(db.apply_pools(&[backwards], &[], T0).is_err());
    assert_eq!(
        db.session(grant.index).unwrap().assigned_ipv4,
        grant.assigned_ipv4
    );
    // The address is still taken: the next login gets the following one.
    let next = db.login(new_session("bob"), T0).unwrap();
    assert_eq!(next.assigned_ipv4, Some(Ipv4Addr::new(10, 77, 0, 11)));
}

fn dtls() -> DtlsTunnelSetup {
    DtlsTunnelSetup {
        cipher_suite: "PSK-AES256-GCM-SHA384".to_owned(),
        encapsulation: "DTLSv1.2".to_owned(),
        udp_src_port: 41000,
        udp_dst_port: 443,
    }
}

#[test]
fn a_dtls_tunnel_shows_next_to_the_ssl_tunnel_with_its_own_number_and_counters() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let ssl = db.attach(grant.index, &tls(), T0).unwrap();
    let dtls_tunnel = db
        .attach_dtls(grant.index, ssl.tunnel_number, &dtls(), T0)
        .unwrap();
    assert_eq!(dtls_tunnel.tunnel_number, ssl.tunnel_number + 1);
    dtls_tunnel.counters.record_rx(84, T0);
    dtls_tunnel.counters.record_tx(84, T0);
    let record = db.session(grant.index).unwrap();
    let shown = record.dtls.as_ref().unwrap();
    assert_eq!(shown.encapsulation, "DTLSv1.2");
    assert_eq!(shown.encryption, "AES-GCM-256");
    assert_eq!(shown.hashing, "SHA384");
    assert_eq!((shown.udp_src_port, shown.udp_dst_port), (41000, 443));
    assert_eq!((shown.counters.pkts_rx, shown.counters.bytes_tx), (1, 84));
    assert_eq!(record.total_counters().bytes_rx, 84);
    assert_eq!(db.stats().cumulative_dtls_tunnels, 1);
    assert_eq!(db.stats().peak_concurrent_dtls_tunnels, 1);

    db.detach_dtls(grant.index, dtls_tunnel.tunnel_number);
    assert!(db.session(grant.index).unwrap().dtls.is_none());
}

#[test]
fn dtls_counters_keep_growing_across_dtls_reestablishments() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let ssl = db.attach(grant.index, &tls(), T0).unwrap();
    let first = db
        .attach_dtls(grant.index, ssl.tunnel_number, &dtls(), T0)
        .unwrap();
    first.counters.record_rx(100, T0);
    let second = db
        .attach_dtls(grant.index, ssl.tunnel_number, &dtls(), T0)
        .unwrap();
    // The first tunnel ending late does not take the second one down.
    db.detach_dtls(grant.index, first.tunnel_number);
    second.counters.record_rx(50, T0);
    let shown = db.session(grant.index).unwrap().dtls.unwrap();
    assert_eq!(shown.tunnel_number, second.tunnel_number);
    assert_eq!(shown.counters.bytes_rx, 150);
}

#[test]
fn a_dtls_tunnel_of_a_superseded_or_lost_ssl_tunnel_is_refused_or_removed() {
    let db = db();
    let grant = db.login(new_session("alice"), T0).unwrap();
    let old = db.attach(grant.index, &tls(), T0).unwrap();
    let dtls_tunnel = db
        .attach_dtls(grant.index, old.tunnel_number, &dtls(), T0)
        .unwrap();
    // A reconnect: the old DTLS tunnel is gone with its TLS tunnel.
    let new = db.attach(grant.index, &tls(), T0).unwrap();
    assert!(db.session(grant.index).unwrap().dtls.is_none());
    assert_eq!(
        db.attach_dtls(grant.index, old.tunnel_number, &dtls(), T0)
            .unwrap_err(),
        AttachError::TunnelGone {
            index: grant.index,
            tunnel_number: old.tunnel_number
        }
    );
    db.detach_dtls(grant.index, dtls_tunnel.tunnel_number);
    db.attach_dtls(grant.index, new.tunnel_number, &dtls(), T0)
        .unwrap();
    db.detach(grant.index, new.tunnel_number, T0);
    let record = db.session(grant.index).unwrap();
    assert!(record.dtls.is_none() && record.ssl.is_none());
}
