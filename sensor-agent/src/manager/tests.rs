//! The management port under a flood: per-source caps, and only the registered
//! manager's address once registered.

use std::net::IpAddr;

use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;
use vpn_core::pool::PoolSet;

use super::*;
use crate::config_store::{ConfigStore, nothing_applied};
use crate::sessions::SessionDbSettings;
use crate::testing::{tcp_connect_from, tls_connect_from};

fn channel_on(dir: &std::path::Path) -> Arc<ManagerChannel> {
    let store = ConfigStore::open(dir).unwrap();
    let config = Arc::new(nothing_applied());
    let pools = PoolSet::from_device_config(&config).unwrap();
    let sessions = SessionDb::new(pools, SessionDbSettings::default());
    let (sender, receiver) = watch::channel(config);
    let agent = AgentHandles {
        deployer: Arc::new(Deployer::new(store, sender, sessions.clone())),
        sessions,
        config: receiver,
    };
    ManagerChannel::open(dir, "ftd-test", agent, OffsetDateTime::now_utc()).unwrap()
}

async fn serving(channel: &Arc<ManagerChannel>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (address, tokio::spawn(Arc::clone(channel).serve(listener)))
}

/// Whether the sensor closed `tcp` within 5 s.
async fn closed(tcp: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_flood_of_plain_tcp_connections_from_one_address_leaves_room_for_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let channel = channel_on(dir.path());
    let (address, server) = serving(&channel).await;
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_SOURCE {
        held.push(tcp_connect_from(ip("127.0.0.1"), address).await.unwrap());
    }
    let mut over = tcp_connect_from(ip("127.0.0.1"), address).await.unwrap();
    assert!(
        closed(&mut over).await,
        "over the per-source cap: closed at once"
    );
    // The manager, elsewhere, still completes its handshake.
    let tls = tls_connect_from(ip("127.0.0.2"), address).await;
    assert!(tls.is_ok(), "{tls:?}");
    server.abort();
}

#[tokio::test]
async fn once_registered_only_the_managers_address_gets_a_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let channel = channel_on(dir.path());
    // Registered to 127.0.0.3 (the TLS stays the bootstrap one: only the address
    // check is under test).
    channel.state().registration = Some(Registration {
        device_id: Uuid::new_v4(),
        device_name: "ftd-test".to_owned(),
        manager_name: "fmc".to_owned(),
        address: "127.0.0.3".parse().unwrap(),
        nat_id: None,
        ca_certificate_pem: String::new(),
        manager_certificate_pem: String::new(),
        sensor_certificate_pem: String::new(),
        registered_at: OffsetDateTime::now_utc(),
    });
    let (address, server) = serving(&channel).await;
    let mut flood = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 8 {
        let mut tcp = tcp_connect_from(ip("127.0.0.1"), address).await.unwrap();
        assert!(
            closed(&mut tcp).await,
            "another address is closed on accept"
        );
        flood.push(tcp);
    }
    let tls = tls_connect_from(ip("127.0.0.3"), address).await;
    assert!(tls.is_ok(), "{tls:?}");
    server.abort();
}

#[test]
fn dontresolve_and_unregistered_sensors_admit_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let channel = channel_on(dir.path());
    assert!(channel.admits(ip("198.51.100.1")));
    channel.state().registration = Some(Registration {
        device_id: Uuid::new_v4(),
        device_name: "ftd-test".to_owned(),
        manager_name: "fmc".to_owned(),
        address: "DONTRESOLVE".parse().unwrap(),
        nat_id: None,
        ca_certificate_pem: String::new(),
        manager_certificate_pem: String::new(),
        sensor_certificate_pem: String::new(),
        registered_at: OffsetDateTime::now_utc(),
    });
    assert!(channel.admits(ip("198.51.100.1")));
    channel.state().registration.as_mut().unwrap().address = "192.0.2.10".parse().unwrap();
    assert!(channel.admits(ip("::ffff:192.0.2.10")));
    assert!(!channel.admits(ip("192.0.2.11")));
}
