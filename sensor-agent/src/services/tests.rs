use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use e2e::netns::Netns;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vpn_core::pool::PoolSet;

use super::*;
use crate::config_store::nothing_applied;
use crate::dataplane::{DEFAULT_DOWNLINK_QUEUE, DEFAULT_TUN_QUEUE};
use crate::sessions::SessionDbSettings;
use crate::testing::{
    TestIdentity, free_port, presented_certificate, run_in, sample_config, sha1_hex, test_identity,
    tls_connect,
};

/// Services on 127.0.0.1 without a TUN device, running nothing yet.
fn services_without_tun() -> Arc<Services> {
    services(None)
}

fn services(tun: Option<TunDevice>) -> Arc<Services> {
    let config = sample_config();
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&config).unwrap(),
        SessionDbSettings::default(),
    );
    let (router, _queue) = Router::new(4, 4);
    let (_updates, config) = watch::channel(Arc::new(config));
    Services::new(
        ServiceParts {
            config,
            sessions,
            router,
            headend: HeadendSettings {
                disconnected_timeout_secs: 1800,
            },
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            runtime: Handle::current(),
        },
        tun,
    )
}

/// The sample configuration with `identity` on `port`, DTLS off.
fn config_with(identity: &TestIdentity, port: u16) -> DeviceConfig {
    let mut config = sample_config();
    config.headend.identity = identity.identity.clone();
    config.headend.ssl_port = port;
    config.headend.dtls_enabled = false;
    config
}

/// [`config_with`] and DTLS on UDP `dtls_port`.
fn config_with_dtls(identity: &TestIdentity, port: u16, dtls_port: u16) -> DeviceConfig {
    let mut config = config_with(identity, port);
    config.headend.dtls_enabled = true;
    config.headend.dtls_port = dtls_port;
    config
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind(localhost(0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until UDP `port` can be bound again.
async fn udp_free_soon(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if std::net::UdpSocket::bind(localhost(port)).is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// Waits (bounded) until nothing accepts connections on `address` any more.
async fn refused_soon(address: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(address).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn the_headend_starts_with_the_first_configuration_that_has_an_identity() {
    let services = services_without_tun();
    assert!(services.start(&nothing_applied()).unwrap().is_empty());
    assert!(services.headend_address().is_none());
    assert!(services.headend().is_none());

    let identity = test_identity("VPN-ID");
    let port = free_port();
    let changes = services.start(&config_with(&identity, port)).unwrap();
    assert_eq!(services.headend_address(), Some(localhost(port)));
    assert!(
        changes
            .iter()
            .any(|c| c == &format!("the headend listens on 127.0.0.1:{port}")),
        "{changes:?}"
    );
    assert_eq!(
        presented_certificate(localhost(port)).await.unwrap(),
        identity.leaf_der
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_identity_is_presented_to_new_connections_while_established_ones_go_on() {
    let services = services_without_tun();
    let first = test_identity("VPN-ID");
    let port = free_port();
    services.start(&config_with(&first, port)).unwrap();
    let mut established = tls_connect(localhost(port)).await.unwrap();

    let second = test_identity("VPN-ID-2026");
    let changes = services
        .prepare(&config_with(&second, port))
        .unwrap()
        .activate();
    let hash = sha1_hex(&second.leaf_der);
    assert_eq!(
        changes,
        vec![format!(
            "the headend presents identity trustpoint VPN-ID-2026 (server-cert-hash {hash}) to new connections"
        )]
    );
    assert_eq!(
        presented_certificate(localhost(port)).await.unwrap(),
        second.leaf_der
    );
    assert_eq!(
        services.headend().unwrap().identity().server_cert_sha1(),
        hash
    );

    // The connection made before the swap still gets answers.
    established
        .write_all(b"GET / HTTP/1.1\r\nHost: vpn.example.com\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 9];
    established.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 ");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_ssl_port_serves_and_the_old_one_stops_accepting() {
    let services = services_without_tun();
    let identity = test_identity("VPN-ID");
    let (old, new) = (free_port(), free_port());
    services.start(&config_with(&identity, old)).unwrap();
    let changes = services
        .prepare(&config_with(&identity, new))
        .unwrap()
        .activate();
    assert_eq!(
        changes,
        vec![format!("the headend listens on 127.0.0.1:{new}")]
    );
    assert_eq!(services.headend_address(), Some(localhost(new)));
    assert_eq!(
        presented_certificate(localhost(new)).await.unwrap(),
        identity.leaf_der
    );
    assert!(refused_soon(localhost(old)).await, "port {old} still open");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_refuses_the_change_and_the_running_port_and_identity_stay() {
    let services = services_without_tun();
    let first = test_identity("VPN-ID");
    let port = free_port();
    services.start(&config_with(&first, port)).unwrap();
    let taken = std::net::TcpListener::bind(localhost(0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();

    let second = test_identity("VPN-ID-2026");
    let Err(error) = services.prepare(&config_with(&second, taken_port)) else {
        panic!("a port in use was accepted");
    };
    assert!(
        matches!(&error, ApplyError::Listen { address, .. } if address.port() == taken_port),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("headend.ssl_port {taken_port}")),
        "{error}"
    );
    assert_eq!(services.headend_address(), Some(localhost(port)));
    assert_eq!(
        presented_certificate(localhost(port)).await.unwrap(),
        first.leaf_der
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_rustls_refuses_is_refused_and_the_running_one_stays() {
    let services = services_without_tun();
    let first = test_identity("VPN-ID");
    let port = free_port();
    services.start(&config_with(&first, port)).unwrap();
    // The leaf of one identity with the key of another.
    let mut mismatched = test_identity("VPN-ID-BAD");
    mismatched.identity.private_key_pem = first.identity.private_key_pem.clone();
    let Err(error) = services.prepare(&config_with(&mismatched, free_port())) else {
        panic!("a key of another certificate was accepted");
    };
    assert!(matches!(error, ApplyError::Identity(_)), "{error}");
    let ApplyError::Identity(source) = &error else {
        unreachable!()
    };
    assert!(source.to_string().contains("VPN-ID-BAD"), "{source}");
    assert_eq!(services.headend_address(), Some(localhost(port)));
    assert_eq!(
        presented_certificate(localhost(port)).await.unwrap(),
        first.leaf_der
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prepared_change_dropped_without_activation_leaves_the_headend_as_it_was() {
    let services = services_without_tun();
    let first = test_identity("VPN-ID");
    let (port, other) = (free_port(), free_port());
    services.start(&config_with(&first, port)).unwrap();
    let prepared = services
        .prepare(&config_with(&test_identity("VPN-ID-2026"), other))
        .unwrap();
    drop(prepared);
    assert!(
        tokio::net::TcpStream::connect(localhost(other))
            .await
            .is_err()
    );
    assert_eq!(services.headend_address(), Some(localhost(port)));
    assert_eq!(
        presented_certificate(localhost(port)).await.unwrap(),
        first.leaf_der
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_without_identity_stops_the_headend_accepting() {
    let services = services_without_tun();
    let port = free_port();
    services
        .start(&config_with(&test_identity("VPN-ID"), port))
        .unwrap();
    let changes = services.prepare(&sample_config()).unwrap().activate();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(services.headend_address().is_none());
    assert!(refused_soon(localhost(port)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn dtls_is_received_on_its_udp_port_and_offered_to_new_tunnels() {
    let services = services_without_tun();
    let (port, udp) = (free_port(), free_udp_port());
    let changes = services
        .start(&config_with_dtls(&test_identity("VPN-ID"), port, udp))
        .unwrap();
    assert!(
        changes.contains(&format!("the headend receives DTLS on UDP 127.0.0.1:{udp}")),
        "{changes:?}"
    );
    assert_eq!(services.dtls_address(), Some(localhost(udp)));
    assert_eq!(services.headend().unwrap().dtls().unwrap().port, udp);
    assert!(std::net::UdpSocket::bind(localhost(udp)).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dtls_port_in_use_refuses_the_change_and_the_running_dtls_port_stays() {
    let services = services_without_tun();
    let identity = test_identity("VPN-ID");
    let (port, udp) = (free_port(), free_udp_port());
    services
        .start(&config_with_dtls(&identity, port, udp))
        .unwrap();
    let taken = std::net::UdpSocket::bind(localhost(0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let Err(error) = services.prepare(&config_with_dtls(&identity, port, taken_port)) else {
        panic!("a UDP port in use was accepted");
    };
    assert!(
        matches!(&error, ApplyError::DtlsListen { address, .. } if address.port() == taken_port),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("headend.dtls_port {taken_port}")),
        "{error}"
    );
    assert_eq!(services.dtls_address(), Some(localhost(udp)));
    assert_eq!(services.headend().unwrap().dtls().unwrap().port, udp);
}

#[tokio::test(flavor = "multi_thread")]
async fn dtls_turned_off_stops_receiving_and_new_tunnels_get_no_dtls_offer() {
    let services = services_without_tun();
    let identity = test_identity("VPN-ID");
    let (port, udp) = (free_port(), free_udp_port());
    services
        .start(&config_with_dtls(&identity, port, udp))
        .unwrap();
    let changes = services
        .prepare(&config_with(&identity, port))
        .unwrap()
        .activate();
    assert_eq!(
        changes,
        vec![format!(
            "the headend stopped receiving DTLS on UDP 127.0.0.1:{udp}"
        )]
    );
    assert!(services.dtls_address().is_none());
    assert!(services.headend().unwrap().dtls().is_none());
    assert!(udp_free_soon(udp).await, "UDP {udp} still bound");
}

/// `ip -n NETNS -j ARGS`.
fn ip_json(netns: &str, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new("ip")
        .args(["-n", netns, "-j"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "ip {args:?}: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

/// Destinations routed into `device`.
fn device_routes(netns: &str, family: &str, device: &str) -> Vec<String> {
    let routes = ip_json(netns, &[family, "route", "show", "dev", device]);
    let mut routes: Vec<String> = routes
        .as_array()
        .map(|routes| {
            routes
                .iter()
                .filter_map(|r| r["dst"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    routes.sort();
    routes
}

fn device_mtu(netns: &str, device: &str) -> u64 {
    ip_json(netns, &["link", "show", "dev", device])[0]["mtu"]
        .as_u64()
        .unwrap()
}

/// The sample configuration (pool 10.77.0.10-20/24, MTU 1399) with a second IPv4 pool
/// 10.78.0.0/24 and the group policy MTU `mtu`.
fn config_with_second_pool(mtu: u16) -> DeviceConfig {
    let mut value = serde_json::to_value(sample_config()).unwrap();
    value["ipv4_pools"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "POOL4-B", "start": "10.78.0.10", "end": "10.78.0.20", "mask": "255.255.255.0"
        }));
    value["group_policies"][0]["mtu"] = serde_json::json!(mtu);
    serde_json::from_value(value).unwrap()
}

/// Starts the data plane for the sample configuration in `netns` (device `name`, own
/// address 10.77.0.1/24) and runs `body` with services over it and the namespace name.
fn with_tun_services<F, Fut>(netns: &Netns, name: &'static str, body: F)
where
    F: FnOnce(Arc<Services>, String) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let netns_name = netns.name().to_owned();
    run_in(netns, move || async move {
        let started_with = TunSettings::for_config(
            &sample_config(),
            name,
            Some("10.77.0.1/24".parse().unwrap()),
            None,
        );
        let (router, queue) = Router::new(DEFAULT_DOWNLINK_QUEUE, DEFAULT_TUN_QUEUE);
        let dataplane = Dataplane::start(&started_with, router, queue).unwrap();
        body(
            services(Some(TunDevice {
                dataplane,
                started_with,
            })),
            netns_name,
        )
        .await;
    });
}

#[test]
fn deploys_set_the_tun_mtu_and_add_and_remove_pool_routes() {
    let netns = Netns::create("sa-svc");
    with_tun_services(&netns, "svtun0", |services, netns| async move {
        assert_eq!(device_mtu(&netns, "svtun0"), 1399);
        let added = services
            .prepare(&config_with_second_pool(1300))
            .unwrap()
            .activate();
        assert_eq!(
            added,
            vec![
                "route 10.78.0.0/24 added to svtun0".to_owned(),
                "TUN device svtun0 MTU 1399 -> 1300".to_owned(),
            ]
        );
        assert_eq!(device_mtu(&netns, "svtun0"), 1300);
        assert_eq!(
            device_routes(&netns, "-4", "svtun0"),
            vec!["10.77.0.0/24".to_owned(), "10.78.0.0/24".to_owned()]
        );

        let removed = services.prepare(&sample_config()).unwrap().activate();
        assert_eq!(
            removed,
            vec![
                "route 10.78.0.0/24 removed from svtun0".to_owned(),
                "TUN device svtun0 MTU 1300 -> 1399".to_owned(),
            ]
        );
        assert_eq!(device_mtu(&netns, "svtun0"), 1399);
        assert_eq!(
            device_routes(&netns, "-4", "svtun0"),
            vec!["10.77.0.0/24".to_owned()]
        );
    });
}

#[test]
fn a_route_that_cannot_be_added_refuses_the_change_and_undoes_what_was_prepared() {
    let netns = Netns::create("sa-svc");
    with_tun_services(&netns, "svtun1", |services, netns| async move {
        let sysctl = std::process::Command::new("ip")
            .args(["netns", "exec", &netns, "sysctl", "-qw"])
            .arg("net.ipv6.conf.svtun1.disable_ipv6=1")
            .status()
            .unwrap();
        assert!(sysctl.success());
        let mut config = config_with_second_pool(1300);
        let mut value = serde_json::to_value(&config).unwrap();
        value["ipv6_pools"] = serde_json::json!([
            { "name": "POOL6", "start": "fd00:77::10", "prefix_len": 64, "count": 16 }
        ]);
        config = serde_json::from_value(value).unwrap();

        let Err(error) = services.prepare(&config) else {
            panic!("a route into a device without IPv6 was accepted");
        };
        let ApplyError::TunDevice(source) = &error else {
            panic!("{error}");
        };
        let message = source.to_string();
        assert!(
            message.contains("fd00:77::/64") && message.contains("IPv6 is disabled"),
            "{message}"
        );
        // The IPv4 route added before the failure is gone again, the MTU untouched.
        assert_eq!(
            device_routes(&netns, "-4", "svtun1"),
            vec!["10.77.0.0/24".to_owned()]
        );
        assert_eq!(device_mtu(&netns, "svtun1"), 1399);
        // And a later deploy still works from the running state.
        let changes = services
            .prepare(&config_with_second_pool(1300))
            .unwrap()
            .activate();
        assert_eq!(changes.len(), 2, "{changes:?}");
    });
}
