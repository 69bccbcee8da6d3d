use std::sync::Arc;
use std::time::Duration;

use tokio::io::DuplexStream;
use vpn_core::pool::PoolSet;
use vpn_core::session::TunnelCounters;

use super::*;
use crate::dataplane::{Router, TunQueue};
use crate::headend::dtls::DtlsLink;
use crate::sessions::LiveCounters;
use crate::sessions::{NewSession, SessionDb, SessionDbSettings};
use crate::testing::sample_config;

fn policy() -> GroupPolicy {
    let mut policy = GroupPolicy::new("GP-MCA");
    policy.mtu = 1399;
    policy.dns_servers = vec![
        "192.168.77.53".parse().unwrap(),
        "2001:db8::53".parse().unwrap(),
    ];
    policy.default_domain = Some("example.test".to_owned());
    policy.split_tunnel_policy = SplitTunnelPolicy::TunnelSpecified;
    policy.split_tunnel_networks = vec!["192.168.77.0/24".parse().unwrap()];
    policy.banner = Some("Welcome to the test server".to_owned());
    policy.max_connect_time_minutes = Some(60);
    policy
}

#[test]
fn connect_answer_has_case_exact_cstp_headers_and_no_dtls() {
    let config = sample_config();
    let answer = connect_response(
        &config,
        Some(&policy()),
        Some(Ipv4Addr::new(10, 77, 0, 10)),
        None,
        Some(65535),
        1800,
        None,
    );
    let text = String::from_utf8(answer).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 CONNECTED\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"));
    for line in [
        "X-CSTP-Version: 1",
        "X-CSTP-Address: 10.77.0.10",
        "X-CSTP-Netmask: 255.255.255.0",
        "X-CSTP-DNS: 192.168.77.53",
        "X-CSTP-DNS-IP6: 2001:db8::53",
        "X-CSTP-Default-Domain: example.test",
        "X-CSTP-Split-Include: 192.168.77.0/255.255.255.0",
        "X-CSTP-Banner: Welcome%20to%20the%20test%20server",
        "X-CSTP-Keepalive: 20",
        "X-CSTP-DPD: 30",
        "X-CSTP-Idle-Timeout: 1800",
        "X-CSTP-Disconnected-Timeout: 1800",
        "X-CSTP-Session-Timeout: 3600",
        "X-CSTP-Rekey-Method: none",
        "X-CSTP-Base-MTU: 1500",
        "X-CSTP-MTU: 1399",
    ] {
        assert!(
            text.contains(&format!("{line}\r\n")),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("X-DTLS"), "{text}");
}

#[test]
fn tunnel_all_sends_no_split_routes_and_the_base_mtu_never_undercuts_the_tunnel_mtu() {
    let config = sample_config();
    let mut policy = policy();
    policy.split_tunnel_policy = SplitTunnelPolicy::TunnelAll;
    policy.max_connect_time_minutes = None;
    let text = String::from_utf8(connect_response(
        &config,
        Some(&policy),
        Some(Ipv4Addr::new(10, 77, 0, 11)),
        None,
        Some(1000),
        60,
        None,
    ))
    .unwrap();
    assert!(!text.contains("Split-"), "{text}");
    assert!(!text.contains("Session-Timeout"), "{text}");
    assert!(text.contains("X-CSTP-Base-MTU: 1399\r\n"), "{text}");
}

struct Tunnel {
    sessions: SessionDb,
    router: Arc<Router>,
    tun: TunQueue,
    index: u32,
    client: DuplexStream,
    task: tokio::task::JoinHandle<TunnelEnd>,
    /// Plays the tunnel's DTLS peer.
    dtls: mpsc::Sender<DtlsEvent>,
}

fn packet_from(source: Ipv4Addr, destination: Ipv4Addr) -> Vec<u8> {
    let mut packet = vec![0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0];
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&destination.octets());
    packet.extend_from_slice(&[0; 8]);
    packet
}

const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
const HEADEND_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

fn start_tunnel() -> Tunnel {
    start_tunnel_with(Duration::from_secs(60))
}

fn start_tunnel_with(silence_limit: Duration) -> Tunnel {
    let config = sample_config();
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&config).unwrap(),
        SessionDbSettings::default(),
    );
    let now = OffsetDateTime::now_utc();
    let grant = sessions
        .login(
            NewSession {
                tcp_src_port: 50000,
                username_derivation: String::new(),
                idle_timeout_minutes: None,
                simultaneous_logins: 1,
                ..crate::testing::new_session("client.example.com")
            },
            now,
        )
        .unwrap();
    assert_eq!(grant.assigned_ipv4, Some(CLIENT_ADDRESS));
    let mut attachment = sessions
        .attach(
            grant.index,
            &TlsTunnelSetup {
                cipher_suite: "TLS_AES_256_GCM_SHA384".to_owned(),
                encapsulation: "TLSv1.3".to_owned(),
                tcp_src_port: 50001,
                tcp_dst_port: 443,
            },
            now,
        )
        .unwrap();
    let (router, tun) = Router::new(16, 16);
    let mut port = router.attach(
        SessionAddresses {
            ipv4: attachment.assigned_ipv4,
            ipv6: None,
        },
        attachment.counters.clone(),
    );
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let (dtls, dtls_events) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        run_cstp(
            &mut server,
            &[],
            &mut attachment,
            &mut port,
            silence_limit,
            Some(dtls_events),
        )
        .await
    });
    Tunnel {
        sessions,
        router,
        tun,
        index: grant.index,
        client,
        task,
        dtls,
    }
}

async fn send(client: &mut DuplexStream, frame: &Frame<'_>) {
    let mut bytes = Vec::new();
    encode_to_vec(frame, &mut bytes).unwrap();
    client.write_all(&bytes).await.unwrap();
}

/// Reads one frame: (type byte, payload).
async fn receive(client: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; HEADER_LEN];
    client.read_exact(&mut header).await.unwrap();
    assert_eq!(&header[..4], b"STF\x01");
    assert_eq!(header[7], 0);
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let mut payload = vec![0; len];
    client.read_exact(&mut payload).await.unwrap();
    (header[6], payload)
}

#[tokio::test]
async fn dpd_is_answered_data_flows_both_ways_and_a_client_disconnect_ends_the_tunnel() {
    let mut t = start_tunnel();
    send(&mut t.client, &Frame::DpdRequest(b"probe")).await;
    assert_eq!(receive(&mut t.client).await, (0x04, b"probe".to_vec()));

    send(&mut t.client, &Frame::Keepalive).await;
    let uplink = packet_from(CLIENT_ADDRESS, HEADEND_ADDRESS);
    send(&mut t.client, &Frame::Data(&uplink)).await;
    let received = tokio::time::timeout(std::time::Duration::from_secs(5), t.tun.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received.as_ref(), uplink.as_slice());

    let downlink = packet_from(HEADEND_ADDRESS, CLIENT_ADDRESS);
    assert_eq!(
        t.router.dispatch(Bytes::from(downlink.clone())),
        crate::dataplane::Dispatch::Queued
    );
    assert_eq!(receive(&mut t.client).await, (0x00, downlink.clone()));

    send(
        &mut t.client,
        &Frame::Disconnect(Reason::new("Aborted by caller")),
    )
    .await;
    assert_eq!(t.task.await.unwrap(), TunnelEnd::ClientDisconnect);
    let record = t.sessions.session(t.index).unwrap();
    let counters = record.ssl.unwrap().counters;
    assert_eq!((counters.pkts_tx, counters.pkts_rx), (1, 1));
    assert_eq!(counters.bytes_tx, downlink.len() as u64);
}

#[tokio::test]
async fn administrator_logoff_sends_a_disconnect_with_its_reason_then_closes() {
    let mut t = start_tunnel();
    let ended = t
        .sessions
        .logoff(&vpn_core::cli::LogoffTarget::All, OffsetDateTime::now_utc());
    assert_eq!(ended, 1);
    let (frame_type, payload) = receive(&mut t.client).await;
    assert_eq!(frame_type, 0x05);
    assert_eq!(payload[0], 0xb0);
    assert_eq!(&payload[1..], b"Administrator reset");
    assert_eq!(
        t.task.await.unwrap(),
        TunnelEnd::SessionEnded(EndReason::AdminReset)
    );
}

#[tokio::test]
async fn a_dropped_connection_or_a_broken_stream_is_a_lost_connection() {
    let t = start_tunnel();
    drop(t.client);
    assert_eq!(t.task.await.unwrap(), TunnelEnd::ConnectionLost);

    let mut t = start_tunnel();
    t.client.write_all(b"GARBAGE!").await.unwrap();
    assert_eq!(t.task.await.unwrap(), TunnelEnd::ConnectionLost);
}

#[test]
fn banner_is_percent_encoded_except_unreserved_characters() {
    assert_eq!(
        url_encode("Hi, all: ünï-1.0_~"),
        "Hi%2C%20all%3A%20%C3%BCn%C3%AF-1.0_~"
    );
}

#[tokio::test]
async fn a_silent_client_is_counted_as_lost() {
    let t = start_tunnel_with(Duration::from_millis(200));
    let end = tokio::time::timeout(Duration::from_secs(5), t.task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, TunnelEnd::ConnectionLost);
    drop(t.client);
}

#[test]
fn silence_limit_is_three_client_intervals_but_never_below_the_minimum() {
    let mut policy = GroupPolicy::new("GP");
    policy.keepalive_secs = Some(20);
    policy.client_dpd_secs = Some(30);
    assert_eq!(silence_limit(Some(&policy)), Duration::from_secs(90));
    policy.keepalive_secs = None;
    policy.client_dpd_secs = Some(5);
    assert_eq!(silence_limit(Some(&policy)), MIN_SILENCE_LIMIT);
    assert_eq!(silence_limit(None), Duration::from_secs(300));
}

#[test]
fn an_ipv6_address_is_announced_with_the_prefix_of_its_pool() {
    let mut config = sample_config();
    config.ipv6_pools = vec![
        vpn_core::config::Ipv6Pool {
            name: "LOW".to_owned(),
            start: "2001:db8:1::10".parse().unwrap(),
            prefix_len: 64,
            count: 16,
        },
        vpn_core::config::Ipv6Pool {
            name: "HIGH".to_owned(),
            start: "2001:db8:2::10".parse().unwrap(),
            prefix_len: 120,
            count: 16,
        },
    ];
    let text = String::from_utf8(connect_response(
        &config,
        None,
        None,
        Some("2001:db8:2::11".parse().unwrap()),
        None,
        60,
        None,
    ))
    .unwrap();
    assert!(
        text.contains("X-CSTP-Address-IP6: 2001:db8:2::11/120\r\n"),
        "{text}"
    );
    assert!(!text.contains("X-CSTP-Address:"), "{text}");
}

#[test]
fn connect_answer_offers_psk_negotiate_dtls_with_app_id_port_and_intervals() {
    let config = sample_config();
    let offer = DtlsOffer {
        app_id_hex: "ab".repeat(32),
        port: 443,
    };
    let text = String::from_utf8(connect_response(
        &config,
        Some(&policy()),
        Some(Ipv4Addr::new(10, 77, 0, 10)),
        None,
        None,
        1800,
        Some(&offer),
    ))
    .unwrap();
    for line in [
        format!("X-DTLS-App-ID: {}", "ab".repeat(32)),
        "X-DTLS-Port: 443".to_owned(),
        "X-DTLS-Keepalive: 20".to_owned(),
        "X-DTLS-DPD: 30".to_owned(),
        "X-DTLS-Rekey-Method: none".to_owned(),
        "X-DTLS-CipherSuite: PSK-NEGOTIATE".to_owned(),
    ] {
        assert!(
            text.contains(&format!("{line}\r\n")),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("X-DTLS-MTU"), "{text}");
    assert!(!text.contains("X-DTLS-Session-ID"), "{text}");
}

fn connect_request(dtls_suites: Option<&str>) -> Request {
    Request {
        method: "CONNECT".to_owned(),
        path: TUNNEL_PATH.to_owned(),
        headers: dtls_suites
            .map(|suites| ("x-dtls-ciphersuite".to_owned(), suites.to_owned()))
            .into_iter()
            .collect(),
        body: Vec::new(),
    }
}

#[test]
fn dtls_is_offered_only_when_headend_policy_and_client_all_want_it() {
    let suites = "PSK-NEGOTIATE:OC-DTLS1_2-AES256-GCM:AES256-SHA";
    let mut config = sample_config();
    let mut policy = policy();
    assert!(dtls_wanted(
        &config,
        Some(&policy),
        &connect_request(Some(suites))
    ));
    // openconnect --no-dtls sends no X-DTLS-CipherSuite.
    assert!(!dtls_wanted(&config, Some(&policy), &connect_request(None)));
    assert!(!dtls_wanted(
        &config,
        Some(&policy),
        &connect_request(Some("AES256-SHA"))
    ));
    policy.dtls_enabled = false;
    assert!(!dtls_wanted(
        &config,
        Some(&policy),
        &connect_request(Some(suites))
    ));
    policy.dtls_enabled = true;
    config.headend.dtls_enabled = false;
    assert!(!dtls_wanted(
        &config,
        Some(&policy),
        &connect_request(Some(suites))
    ));
}

/// Hands the tunnel a DTLS link and waits until a packet to the client goes over it
/// (the tunnel may read the client's frames before the event).
async fn dtls_up(
    t: &mut Tunnel,
    generation: u32,
) -> (
    Arc<LiveCounters>,
    mpsc::Receiver<Bytes>,
    Arc<std::sync::atomic::AtomicU64>,
) {
    let counters = Arc::new(LiveCounters::new(OffsetDateTime::now_utc()));
    let (link, mut packets, received) = DtlsLink::new(generation, Arc::clone(&counters));
    t.dtls.send(DtlsEvent::Up(link)).await.unwrap();
    let probe = packet_from(HEADEND_ADDRESS, CLIENT_ADDRESS);
    for _ in 0..50 {
        t.router.dispatch(Bytes::from(probe.clone()));
        tokio::select! {
            over_dtls = packets.recv() => {
                assert_eq!(over_dtls.unwrap().as_ref(), probe.as_slice());
                return (counters, packets, received);
            }
            over_cstp = receive(&mut t.client) => assert_eq!(over_cstp, (0x00, probe.clone())),
        }
    }
    panic!("DTLS never carried a packet");
}

fn dtls_counters(counters: &LiveCounters) -> (u64, u64) {
    let TunnelCounters {
        pkts_tx, bytes_tx, ..
    } = counters.snapshot();
    (pkts_tx, bytes_tx)
}

/// Sends a DPD over CSTP and waits for its answer: everything sent before is handled.
async fn sync(client: &mut DuplexStream) {
    send(client, &Frame::DpdRequest(b"sync")).await;
    loop {
        if receive(client).await == (0x04, b"sync".to_vec()) {
            return;
        }
    }
}

#[tokio::test]
async fn packets_go_over_dtls_while_it_is_up_and_over_cstp_once_it_is_down() {
    let mut t = start_tunnel();
    let (counters, mut packets, _received) = dtls_up(&mut t, 3).await;
    let probed = dtls_counters(&counters);
    let downlink = packet_from(HEADEND_ADDRESS, CLIENT_ADDRESS);
    t.router.dispatch(Bytes::from(downlink.clone()));
    let over_dtls = tokio::time::timeout(Duration::from_secs(5), packets.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(over_dtls.as_ref(), downlink.as_slice());
    assert_eq!(
        dtls_counters(&counters),
        (probed.0 + 1, probed.1 + downlink.len() as u64)
    );

    // A Down for another generation changes nothing; for this one, CSTP takes over
    // (the tunnel may still send a packet or two over DTLS before it reads the event).
    t.dtls
        .send(DtlsEvent::Down { generation: 9 })
        .await
        .unwrap();
    t.router.dispatch(Bytes::from(downlink.clone()));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), packets.recv())
            .await
            .unwrap()
            .is_some()
    );
    t.dtls
        .send(DtlsEvent::Down { generation: 3 })
        .await
        .unwrap();
    let mut over_cstp = false;
    for _ in 0..50 {
        t.router.dispatch(Bytes::from(downlink.clone()));
        tokio::select! {
            // Once the link is dropped the queue is closed and this branch disabled.
            Some(_) = packets.recv() => {}
            frame = receive(&mut t.client) => {
                assert_eq!(frame, (0x00, downlink.clone()));
                over_cstp = true;
                break;
            }
        }
    }
    assert!(over_cstp, "CSTP never took over");
    t.router.dispatch(Bytes::from(downlink.clone()));
    assert_eq!(receive(&mut t.client).await, (0x00, downlink.clone()));
    assert!(packets.try_recv().is_err());
}

#[tokio::test]
async fn a_client_sending_data_over_cstp_gets_its_packets_over_cstp_until_heard_over_dtls() {
    let mut t = start_tunnel();
    let (_counters, mut packets, received) = dtls_up(&mut t, 3).await;
    received.store(5, std::sync::atomic::Ordering::Relaxed);
    // The client found DTLS dead and sends over CSTP.
    let uplink = packet_from(CLIENT_ADDRESS, HEADEND_ADDRESS);
    send(&mut t.client, &Frame::Data(&uplink)).await;
    sync(&mut t.client).await;
    let downlink = packet_from(HEADEND_ADDRESS, CLIENT_ADDRESS);
    t.router.dispatch(Bytes::from(downlink.clone()));
    assert_eq!(receive(&mut t.client).await, (0x00, downlink.clone()));
    assert!(packets.try_recv().is_err());

    // A record over DTLS again: DTLS carries the packets again.
    received.store(6, std::sync::atomic::Ordering::Relaxed);
    t.router.dispatch(Bytes::from(downlink.clone()));
    let over_dtls = tokio::time::timeout(Duration::from_secs(5), packets.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(over_dtls.as_ref(), downlink.as_slice());
}

#[tokio::test]
async fn a_dtls_peer_that_is_gone_falls_back_to_cstp_without_losing_the_packet() {
    let mut t = start_tunnel();
    let (_counters, packets, _received) = dtls_up(&mut t, 3).await;
    drop(packets);
    let downlink = packet_from(HEADEND_ADDRESS, CLIENT_ADDRESS);
    t.router.dispatch(Bytes::from(downlink.clone()));
    assert_eq!(receive(&mut t.client).await, (0x00, downlink));
}
