use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use e2e::netns::Netns;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::sessions::LiveCounters;
use crate::testing::run_in;

const T0: OffsetDateTime = datetime!(2026-11-26 10:00:00 UTC);

/// An IPv4 ICMP echo request or reply with valid checksums.
fn icmp_echo(source: Ipv4Addr, destination: Ipv4Addr, kind: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut icmp = vec![kind, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"sensor-agent dataplane test");
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&source.octets());
    ip.extend_from_slice(&destination.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv6_packet(source: Ipv6Addr, destination: Ipv6Addr) -> Vec<u8> {
    let mut packet = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&destination.octets());
    packet
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);
const HEADEND: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

fn client_addresses() -> SessionAddresses {
    SessionAddresses {
        ipv4: Some(CLIENT),
        ipv6: Some("fd00:99::10".parse().unwrap()),
    }
}

#[test]
fn tun_packets_reach_the_session_holding_their_destination_in_either_family() {
    let (router, _tun) = Router::new(8, 8);
    let counters = Arc::new(LiveCounters::new(T0));
    let mut port = router.attach(client_addresses(), counters);
    let other = router.attach(
        SessionAddresses {
            ipv4: Some(Ipv4Addr::new(10, 99, 0, 11)),
            ipv6: None,
        },
        Arc::new(LiveCounters::new(T0)),
    );
    let v4 = Bytes::from(icmp_echo(HEADEND, CLIENT, 0, 1, 1));
    let v6 = Bytes::from(ipv6_packet(
        "fd00:99::1".parse().unwrap(),
        "fd00:99::10".parse().unwrap(),
    ));
    assert_eq!(router.dispatch(v4.clone()), Dispatch::Queued);
    assert_eq!(router.dispatch(v6.clone()), Dispatch::Queued);
    assert_eq!(port.try_recv(), Some(v4));
    assert_eq!(port.try_recv(), Some(v6));
    assert_eq!(port.try_recv(), None);
    drop(other);
}

#[test]
fn packets_for_unassigned_addresses_and_non_ip_packets_are_counted_and_dropped() {
    let (router, _tun) = Router::new(8, 8);
    let _port = router.attach(client_addresses(), Arc::new(LiveCounters::new(T0)));
    let stray = Bytes::from(icmp_echo(HEADEND, Ipv4Addr::new(10, 99, 0, 99), 0, 1, 1));
    assert_eq!(router.dispatch(stray), Dispatch::NoRoute);
    assert_eq!(
        router.dispatch(Bytes::from_static(b"\x00garbage")),
        Dispatch::Malformed
    );
    let counters = router.counters();
    assert_eq!((counters.no_route, counters.malformed), (1, 1));
}

#[test]
fn full_session_queue_drops_and_counts_a_tx_drop_without_waiting() {
    let (router, _tun) = Router::new(2, 8);
    let counters = Arc::new(LiveCounters::new(T0));
    let mut port = router.attach(client_addresses(), Arc::clone(&counters));
    let packet = Bytes::from(icmp_echo(HEADEND, CLIENT, 0, 1, 1));
    assert_eq!(router.dispatch(packet.clone()), Dispatch::Queued);
    assert_eq!(router.dispatch(packet.clone()), Dispatch::Queued);
    assert_eq!(router.dispatch(packet.clone()), Dispatch::QueueFull);
    assert_eq!(router.dispatch(packet.clone()), Dispatch::QueueFull);
    assert_eq!(counters.snapshot().pkts_tx_drop, 2);
    // Once the tunnel catches up, packets flow again.
    port.try_recv();
    assert_eq!(router.dispatch(packet), Dispatch::Queued);
}

#[test]
fn uplink_refuses_a_spoofed_source_and_counts_an_rx_drop() {
    let (router, mut tun) = Router::new(8, 8);
    let counters = Arc::new(LiveCounters::new(T0));
    let port = router.attach(client_addresses(), Arc::clone(&counters));
    let spoofed = Bytes::from(icmp_echo(Ipv4Addr::new(10, 99, 0, 11), HEADEND, 8, 1, 1));
    assert_eq!(
        port.uplink().send(spoofed, T0),
        Err(UplinkDrop::Spoofed {
            address: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11))
        })
    );
    assert_eq!(
        port.uplink().send(Bytes::from_static(b"\x45short"), T0),
        Err(UplinkDrop::Malformed)
    );
    assert_eq!(tun.try_recv(), None);
    let snapshot = counters.snapshot();
    assert_eq!((snapshot.pkts_rx_drop, snapshot.pkts_rx), (2, 0));
}

#[test]
fn uplink_queues_packets_from_the_assigned_address_and_counts_bytes_rx() {
    let (router, mut tun) = Router::new(8, 8);
    let counters = Arc::new(LiveCounters::new(T0));
    let port = router.attach(client_addresses(), Arc::clone(&counters));
    let later = T0 + time::Duration::seconds(42);
    let packet = Bytes::from(icmp_echo(CLIENT, HEADEND, 8, 1, 1));
    port.uplink().send(packet.clone(), later).unwrap();
    assert_eq!(tun.try_recv(), Some(packet.clone()));
    let snapshot = counters.snapshot();
    assert_eq!(snapshot.bytes_rx, packet.len() as u64);
    assert_eq!(snapshot.pkts_rx, 1);
    assert_eq!(counters.last_activity(), later);
}

#[tokio::test]
async fn a_waiting_uplink_holds_the_packet_until_the_tun_queue_has_room_and_drops_none() {
    let (router, mut tun) = Router::new(8, 1);
    let counters = Arc::new(LiveCounters::new(T0));
    let port = router.attach(client_addresses(), Arc::clone(&counters));
    let first = Bytes::from(icmp_echo(CLIENT, HEADEND, 8, 1, 1));
    let second = Bytes::from(icmp_echo(CLIENT, HEADEND, 8, 1, 2));
    let uplink = port.uplink().clone();
    uplink.send_waiting(first.clone(), T0).await.unwrap();
    let waiting = tokio::spawn({
        let second = second.clone();
        async move { uplink.send_waiting(second, T0).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !waiting.is_finished(),
        "the queue is full: the sender waits"
    );
    assert_eq!(tun.try_recv(), Some(first));
    assert_eq!(waiting.await.unwrap(), Ok(()));
    assert_eq!(tun.try_recv(), Some(second));
    let snapshot = counters.snapshot();
    assert_eq!((snapshot.pkts_rx, snapshot.pkts_rx_drop), (2, 0));
    let spoofed = Bytes::from(icmp_echo(HEADEND, CLIENT, 8, 1, 3));
    assert!(matches!(
        port.uplink().send_waiting(spoofed, T0).await,
        Err(UplinkDrop::Spoofed { .. })
    ));
    assert_eq!(counters.snapshot().pkts_rx_drop, 1);
}

#[test]
fn full_tun_queue_drops_uplink_packets_as_rx_drops() {
    let (router, _tun) = Router::new(8, 1);
    let counters = Arc::new(LiveCounters::new(T0));
    let port = router.attach(client_addresses(), Arc::clone(&counters));
    let packet = Bytes::from(icmp_echo(CLIENT, HEADEND, 8, 1, 1));
    port.uplink().send(packet.clone(), T0).unwrap();
    assert_eq!(
        port.uplink().send(packet, T0),
        Err(UplinkDrop::TunQueueFull)
    );
    assert_eq!(counters.snapshot().pkts_rx_drop, 1);
}

#[test]
fn dropping_a_superseded_port_keeps_the_route_of_the_reconnected_tunnel() {
    let (router, _tun) = Router::new(8, 8);
    let old = router.attach(client_addresses(), Arc::new(LiveCounters::new(T0)));
    let mut new = router.attach(client_addresses(), Arc::new(LiveCounters::new(T0)));
    drop(old);
    let packet = Bytes::from(icmp_echo(HEADEND, CLIENT, 0, 1, 1));
    assert_eq!(router.dispatch(packet.clone()), Dispatch::Queued);
    assert_eq!(new.try_recv(), Some(packet.clone()));
    drop(new);
    assert!(!router.routes_to(IpAddr::V4(CLIENT)));
    assert_eq!(router.dispatch(packet), Dispatch::NoRoute);
}

/// `ip -j ARGS` inside the namespace, parsed.
fn ip_json(netns: &Netns, args: &[&str]) -> serde_json::Value {
    let output = Command::new("ip")
        .args(["-n", netns.name(), "-j"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn tun_device_in_a_namespace_has_its_mtu_address_and_routes_and_answers_ping_through_the_router() {
    let netns = Netns::create("sa-test");
    let worker_settings = TunSettings {
        name: "satun0".to_owned(),
        mtu: 1399,
        ipv4: Some("10.99.0.1/24".parse().unwrap()),
        ipv6: Some("fd00:99::1/64".parse().unwrap()),
        routes: vec![
            "10.99.0.0/24".parse().unwrap(),
            "10.98.0.0/24".parse().unwrap(),
        ],
    };
    let (router, queue) = Router::new(DEFAULT_DOWNLINK_QUEUE, DEFAULT_TUN_QUEUE);
    let counters = Arc::new(LiveCounters::new(T0));
    let worker_counters = Arc::clone(&counters);
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let (reply_tx, reply_rx) = std::sync::mpsc::channel::<Option<Bytes>>();

    let inspector = std::thread::scope(|scope| {
        let netns = &netns;
        let inspector = scope.spawn(move || {
            started_rx.recv_timeout(Duration::from_secs(20)).unwrap();
            let links = ip_json(netns, &["addr", "show", "dev", "satun0"]);
            let routes = ip_json(netns, &["route", "show"]);
            finish_tx.send(()).unwrap();
            (links, routes)
        });
        run_in(netns, move || async move {
            let dataplane = Dataplane::start(&worker_settings, router, queue).unwrap();
            assert_eq!(dataplane.mtu().unwrap(), 1399);
            let mut port = dataplane.router().attach(
                SessionAddresses {
                    ipv4: Some(CLIENT),
                    ipv6: None,
                },
                worker_counters,
            );
            started_tx.send(()).unwrap();
            let echo = Bytes::from(icmp_echo(CLIENT, HEADEND, 8, 0x5a17, 1));
            port.uplink().send(echo, T0).unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let packet = port.recv().await?;
                    // Skip anything else the kernel sends (none expected for IPv4).
                    if packet.get(9) == Some(&1) {
                        return Some(packet);
                    }
                }
            })
            .await
            .ok()
            .flatten();
            reply_tx.send(reply).unwrap();
            let _ = finish_rx.await;
        });
        inspector.join().unwrap()
    });
    let (links, routes) = inspector;

    let link = &links[0];
    assert_eq!(link["ifname"], "satun0");
    assert_eq!(link["mtu"], 1399);
    let has_address = link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["family"] == "inet" && a["local"] == "10.99.0.1" && a["prefixlen"] == 24);
    assert!(has_address, "address missing: {link}");
    let has_ipv6 = link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["family"] == "inet6" && a["local"] == "fd00:99::1" && a["prefixlen"] == 64);
    assert!(has_ipv6, "IPv6 address missing: {link}");
    let pool_route = routes
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["dst"] == "10.98.0.0/24" && r["dev"] == "satun0");
    assert!(pool_route, "pool route missing: {routes}");

    let reply = reply_rx
        .recv()
        .unwrap()
        .expect("no ICMP echo reply came back through the TUN reader");
    assert_eq!(&reply[12..16], &HEADEND.octets());
    assert_eq!(&reply[16..20], &CLIENT.octets());
    assert_eq!(reply[20], 0, "ICMP type must be echo reply");
    assert_eq!(&reply[24..28], &[0x5a, 0x17, 0, 1]);
    assert_eq!(counters.snapshot().pkts_rx, 1);
}
