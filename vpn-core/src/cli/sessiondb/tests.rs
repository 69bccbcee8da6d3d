use time::macros::datetime;

use super::*;
use crate::session::fixtures::seed_session;

/// The seed capture was taken 21 minutes after login.
const NOW: OffsetDateTime = datetime!(2025-03-19 07:39:53 UTC);

fn second_session() -> SessionRecord {
    let mut s = seed_session();
    s.index = 31;
    s.username = "alice".to_owned();
    s.assigned_ipv4 = Some("192.168.13.2".parse().unwrap());
    s.tunnel_group = "Other-TG".to_owned();
    s
}

#[test]
fn seed_session_renders_exactly_the_seed_detail_output() {
    assert_eq!(
        vpn_sessiondb_detail_anyconnect(&[seed_session()], None, NOW),
        include_str!("../golden/seed_show_vpn-sessiondb_detail_anyconnect.txt")
    );
}

#[test]
fn seed_session_renders_the_short_anyconnect_listing() {
    assert_eq!(
        vpn_sessiondb_anyconnect(&[seed_session()], None, NOW),
        include_str!("../golden/seed_show_vpn-sessiondb_anyconnect.txt")
    );
}

#[test]
fn summary_counts_active_sessions_and_tunnels_and_takes_history_as_input() {
    let mut inactive = second_session();
    inactive.ssl = None;
    inactive.dtls = None;
    let mut tls_only = second_session();
    tls_only.index = 40;
    tls_only.dtls = None;
    let stats = SessionStats {
        cumulative_sessions: 330_351,
        peak_concurrent_sessions: 442,
        cumulative_ssl_tunnels: 985_244,
        peak_concurrent_ssl_tunnels: 392,
        cumulative_dtls_tunnels: 2_227_003,
        peak_concurrent_dtls_tunnels: 386,
        device_capacity: 5000,
    };
    assert_eq!(
        vpn_sessiondb_summary(&[seed_session(), inactive, tls_only], &stats),
        include_str!("../golden/show_vpn-sessiondb_summary.txt")
    );
}

#[test]
fn summary_never_shows_peak_or_cumulative_below_the_current_count() {
    let text = vpn_sessiondb_summary(&[seed_session()], &SessionStats::default());
    assert!(
        text.contains(
            "AnyConnect Client            :      1 :          1 :           1 :        0\n"
        )
    );
    assert!(text.contains("Device Load                  :     0%\n"));
    assert!(
        text.contains("DTLS-Tunnel                  :      1 :          1 :               1\n")
    );
}

#[test]
fn empty_database_says_there_are_no_active_sessions() {
    let expected = "INFO: There are presently no active sessions\n";
    assert_eq!(vpn_sessiondb_anyconnect(&[], None, NOW), expected);
    assert_eq!(
        vpn_sessiondb_detail_anyconnect(&[], Some(&SessionFilter::Name("x".to_owned())), NOW),
        expected
    );
}

#[test]
fn filter_matching_nothing_says_no_sessions_of_the_type_specified() {
    let filter = SessionFilter::Name("nobody".to_owned());
    assert_eq!(
        vpn_sessiondb_anyconnect(&[seed_session()], Some(&filter), NOW),
        "INFO: There are presently no active sessions of the type specified\n"
    );
}

#[test]
fn filters_select_by_username_assigned_address_and_tunnel_group() {
    let sessions = [seed_session(), second_session()];
    let by_name = vpn_sessiondb_anyconnect(
        &sessions,
        Some(&SessionFilter::Name("alice".to_owned())),
        NOW,
    );
    assert!(by_name.contains("Username     : alice "));
    assert!(!by_name.contains("client.cisco.com"));

    let by_address = vpn_sessiondb_anyconnect(
        &sessions,
        Some(&SessionFilter::AssignedAddress(
            "192.168.13.1".parse().unwrap(),
        )),
        NOW,
    );
    assert!(by_address.contains("client.cisco.com"));
    assert!(!by_address.contains("alice"));

    let by_group = vpn_sessiondb_detail_anyconnect(
        &sessions,
        Some(&SessionFilter::TunnelGroup("Other-TG".to_owned())),
        NOW,
    );
    assert!(by_group.contains("Tunnel Group : Other-TG"));
    assert!(!by_group.contains("client.cisco.com"));
}

#[test]
fn sessions_are_listed_by_index_whatever_the_database_order() {
    let text = vpn_sessiondb_anyconnect(&[second_session(), seed_session()], None, NOW);
    let first = text.find("Index        : 28").unwrap();
    let second = text.find("Index        : 31").unwrap();
    assert!(first < second);
    assert_eq!(
        text,
        vpn_sessiondb_anyconnect(&[seed_session(), second_session()], None, NOW)
    );
}

#[test]
fn session_without_dtls_has_no_dtls_block_count_or_protocol() {
    let mut s = seed_session();
    s.dtls = None;
    let text = vpn_sessiondb_detail_anyconnect(&[s], None, NOW);
    assert!(text.contains("Protocol     : AnyConnect-Parent SSL-Tunnel\n"));
    assert!(
        text.contains("Encryption   : AnyConnect-Parent: (1)none  SSL-Tunnel: (1)AES-GCM-128\n")
    );
    assert!(!text.contains("DTLS-Tunnel"));
    assert!(text.contains("Bytes Tx     : 19324                  Bytes Rx     : 464\n"));
}

#[test]
fn inactive_session_reports_time_since_its_last_activity() {
    let mut s = seed_session();
    s.ssl = None;
    s.dtls = None;
    s.last_activity = datetime!(2025-03-19 07:34:50 UTC);
    let text = vpn_sessiondb_detail_anyconnect(&[s], None, NOW);
    assert!(text.contains("Protocol     : AnyConnect-Parent\n"));
    assert!(text.contains("Inactivity   : 0h:05m:03s\n"));
    assert!(text.contains("AnyConnect-Parent Tunnels: 1\n\nAnyConnect-Parent:\n"));
}

#[test]
fn ipv6_assignment_adds_an_assigned_ipv6_line() {
    let mut s = seed_session();
    s.assigned_ipv4 = None;
    s.assigned_ipv6 = Some("2001:db8:13::1".parse().unwrap());
    let text = vpn_sessiondb_anyconnect(&[s], None, NOW);
    assert!(text.contains(
        "Assigned IP  : none                   Public IP    : 10.106.56.89\nAssigned IPv6: 2001:db8:13::1\n"
    ));
}

#[test]
fn idle_time_left_counts_down_from_each_tunnels_last_traffic_and_stops_at_zero() {
    let later = datetime!(2025-03-19 08:30:00 UTC);
    let text = vpn_sessiondb_detail_anyconnect(&[seed_session()], None, later);
    assert!(text.contains("Idle TO Left : 0 Minutes\n"));
    assert!(text.contains("Duration     : 1h:11m:07s\n"));
}

#[test]
fn session_without_idle_timeout_shows_none() {
    let mut s = seed_session();
    s.idle_timeout_minutes = None;
    let text = vpn_sessiondb_detail_anyconnect(&[s], None, NOW);
    assert!(text.contains("  Idle Time Out: none                   Idle TO Left : none\n"));
}

#[test]
fn session_output_has_no_trailing_whitespace() {
    let text = vpn_sessiondb_detail_anyconnect(&[seed_session(), second_session()], None, NOW);
    assert!(text.lines().all(|l| l == l.trim_end()));
}

proptest::proptest! {
    #[test]
    fn any_session_renders_without_panicking_or_trailing_whitespace(
        index in proptest::prelude::any::<u32>(),
        username in ".{0,40}",
        bytes in proptest::prelude::any::<u64>(),
        idle in proptest::option::of(proptest::prelude::any::<u32>()),
        login_offset in -10_000_000i64..10_000_000,
    ) {
        let mut s = seed_session();
        s.index = index;
        s.username = username;
        s.parent.counters.bytes_tx = bytes;
        s.idle_timeout_minutes = idle;
        s.login_time = NOW + Duration::seconds(login_offset);
        let text = vpn_sessiondb_detail_anyconnect(std::slice::from_ref(&s), None, NOW);
        proptest::prop_assert!(text.lines().all(|l| l == l.trim_end()));
        let tunnel_id = format!("Tunnel ID    : {index}.1");
        proptest::prop_assert!(text.contains(&tunnel_id));
        let summary = vpn_sessiondb_summary(&[s], &SessionStats { device_capacity: 1, ..SessionStats::default() });
        proptest::prop_assert!(summary.contains("Device Load                  :   100%"));
    }
}
