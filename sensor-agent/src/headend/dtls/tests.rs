use std::net::{IpAddr, Ipv4Addr};

use openssl::ssl::SslVersion;
use time::OffsetDateTime;
use tokio::time::Instant;
use vpn_core::pool::PoolSet;

use super::hello::tests::client_hello;
use super::peer::{DatagramPipe, RecordAction, on_record};
use super::*;
use crate::dataplane::{Router, SessionAddresses, SessionPort, TunQueue};
use crate::sessions::{SessionDbSettings, TlsTunnelSetup};
use crate::testing::{new_session, sample_config};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

/// A logged-in session with an attached TLS tunnel and its data plane port.
struct Session {
    sessions: SessionDb,
    index: u32,
    tunnel_number: u32,
    port: SessionPort,
    tun: TunQueue,
    address: Ipv4Addr,
}

fn session() -> Session {
    let config = sample_config();
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&config).unwrap(),
        SessionDbSettings::default(),
    );
    let now = OffsetDateTime::now_utc();
    let grant = sessions
        .login(new_session("client.example.com"), now)
        .unwrap();
    let attachment = sessions
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
    let (router, tun) = Router::new(8, 8);
    let port = router.attach(
        SessionAddresses {
            ipv4: attachment.assigned_ipv4,
            ipv6: None,
        },
        attachment.counters.clone(),
    );
    Session {
        sessions,
        index: grant.index,
        tunnel_number: attachment.tunnel_number,
        port,
        tun,
        address: attachment.assigned_ipv4.unwrap(),
    }
}

fn binding(session: &Session) -> SessionBinding {
    SessionBinding {
        psk: DtlsPsk::from_bytes([7; PSK_LEN]),
        client_ip: CLIENT_IP,
        index: session.index,
        ssl_tunnel_number: session.tunnel_number,
        sessions: session.sessions.clone(),
        uplink: session.port.uplink().clone(),
        dead_after: Duration::from_secs(30),
        group_policy: "GP-MCA".to_owned(),
        username: "client.example.com".to_owned(),
    }
}

fn from_client(port: u16) -> SocketAddr {
    SocketAddr::new(CLIENT_IP, port)
}

#[test]
fn a_hello_naming_a_registered_app_id_from_the_client_address_starts_a_handshake() {
    let server = DtlsServer::new().unwrap();
    let session = session();
    let registration = server.register(binding(&session)).unwrap();
    assert_eq!(registration.app_id.to_hex().len(), 64);
    let hello = client_hello(&registration.app_id.0);
    assert!(server.start_handshake(&hello, from_client(40000)).is_some());
    // Another App-ID, another address, or no ClientHello at all: nothing starts.
    assert!(
        server
            .start_handshake(&client_hello(&[0x11; 32]), from_client(40001))
            .is_none()
    );
    let elsewhere = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), 40000);
    assert!(server.start_handshake(&hello, elsewhere).is_none());
    assert!(
        server
            .start_handshake(b"\x17garbage", from_client(40002))
            .is_none()
    );
}

#[test]
fn dropping_the_registration_forgets_the_app_id() {
    let server = DtlsServer::new().unwrap();
    let session = session();
    let registration = server.register(binding(&session)).unwrap();
    let hello = client_hello(&registration.app_id.0);
    assert_eq!(server.registered(), 1);
    drop(registration);
    assert_eq!(server.registered(), 0);
    assert!(server.start_handshake(&hello, from_client(40000)).is_none());
}

#[test]
fn handshakes_in_progress_for_one_session_are_limited() {
    let server = DtlsServer::new().unwrap();
    let session = session();
    let registration = server.register(binding(&session)).unwrap();
    let hello = client_hello(&registration.app_id.0);
    let mut started: Vec<_> = (0..MAX_HANDSHAKES_PER_SESSION)
        .map(|i| {
            server
                .start_handshake(&hello, from_client(40000 + i as u16))
                .unwrap()
        })
        .collect();
    assert!(server.start_handshake(&hello, from_client(41000)).is_none());
    started.pop();
    assert!(server.start_handshake(&hello, from_client(41000)).is_some());
}

#[test]
fn each_read_of_the_pipe_is_one_datagram_and_an_empty_pipe_would_block() {
    let mut pipe = DatagramPipe::default();
    pipe.write_all_datagrams(&[b"one", b"three"]);
    let mut buffer = [0u8; 16];
    assert_eq!(std::io::Read::read(&mut pipe, &mut buffer).unwrap(), 3);
    assert_eq!(std::io::Read::read(&mut pipe, &mut buffer).unwrap(), 5);
    assert_eq!(&buffer[..5], b"three");
    let error = std::io::Read::read(&mut pipe, &mut buffer).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(std::io::Write::write(&mut pipe, b"out").unwrap(), 3);
    assert_eq!(pipe.take_outgoing(), vec![b"out".to_vec()]);
}

fn ipv4_packet(source: Ipv4Addr, destination: Ipv4Addr) -> Vec<u8> {
    let mut packet = vec![0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0];
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&destination.octets());
    packet.extend_from_slice(&[0; 8]);
    packet
}

#[test]
fn a_data_record_goes_to_the_tun_device_and_counts_on_the_dtls_tunnel() {
    let mut session = session();
    let counters = Arc::new(LiveCounters::new(OffsetDateTime::now_utc()));
    let uplink = session.port.uplink().with_counters(Arc::clone(&counters));
    let packet = ipv4_packet(session.address, Ipv4Addr::new(10, 77, 0, 1));
    let mut record = vec![0x00];
    record.extend_from_slice(&packet);
    assert_eq!(on_record(&mut record, &uplink), RecordAction::None);
    assert_eq!(session.tun.try_recv().unwrap().as_ref(), packet.as_slice());
    let snapshot = counters.snapshot();
    assert_eq!(
        (snapshot.pkts_rx, snapshot.bytes_rx),
        (1, packet.len() as u64)
    );

    // A packet with another source is dropped and counted as an Rx drop.
    let mut spoofed = vec![0x00];
    spoofed.extend_from_slice(&ipv4_packet(Ipv4Addr::new(10, 77, 0, 99), session.address));
    assert_eq!(on_record(&mut spoofed, &uplink), RecordAction::None);
    assert!(session.tun.try_recv().is_none());
    assert_eq!(counters.snapshot().pkts_rx_drop, 1);
}

#[test]
fn an_mtu_probe_is_answered_with_the_same_bytes_as_a_dpd_response() {
    let session = session();
    let mut probe = vec![0u8; 1400];
    probe[0] = 0x03;
    probe[1..5].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let expected = {
        let mut answer = probe.clone();
        answer[0] = 0x04;
        answer
    };
    assert_eq!(
        on_record(&mut probe, session.port.uplink()),
        RecordAction::Echo
    );
    assert_eq!(probe, expected);
}

#[test]
fn keepalives_and_unknown_records_are_ignored_and_a_disconnect_closes_dtls() {
    let session = session();
    let uplink = session.port.uplink();
    assert_eq!(on_record(&mut [0x07], uplink), RecordAction::None);
    assert_eq!(on_record(&mut [0x04, 1, 2], uplink), RecordAction::None);
    assert_eq!(on_record(&mut [0x42, 1], uplink), RecordAction::None);
    assert_eq!(on_record(&mut [], uplink), RecordAction::None);
    assert_eq!(on_record(&mut [0x05, 0xb0], uplink), RecordAction::Close);
}

#[test]
fn the_psk_never_shows_in_debug_output() {
    let psk = DtlsPsk::from_bytes([0x41; PSK_LEN]);
    assert_eq!(format!("{psk:?}"), "DtlsPsk(<redacted>)");
}

/// The PSK the headend exports from a TLS 1.3 or 1.2 connection and the one an
/// OpenSSL client exports with the same label and no context (what openconnect does
/// with GnuTLS).
async fn exported_pair(max_version: SslVersion) -> (DtlsPsk, [u8; PSK_LEN]) {
    let identity =
        crate::headend::TlsIdentity::new(&crate::testing::test_identity("VPN-ID").identity)
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let client = tokio::task::spawn_blocking(move || {
        let mut connector = openssl::ssl::SslConnector::builder(SslMethod::tls_client()).unwrap();
        connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
        connector.set_max_proto_version(Some(max_version)).unwrap();
        let tcp = std::net::TcpStream::connect(address).unwrap();
        let stream = connector.build().connect("localhost", tcp).unwrap();
        let mut psk = [0u8; PSK_LEN];
        stream
            .ssl()
            .export_keying_material(&mut psk, "EXPORTER-openconnect-psk", None)
            .unwrap();
        psk
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let server = identity.acceptor().accept(tcp).await.unwrap();
    let exported = DtlsPsk::export(server.get_ref().1).unwrap();
    (exported, client.await.unwrap())
}

#[tokio::test]
async fn the_psk_is_the_tls_exporter_an_openssl_client_computes_over_tls_1_3_and_1_2() {
    for version in [SslVersion::TLS1_3, SslVersion::TLS1_2] {
        let (server, client) = exported_pair(version).await;
        assert_eq!(server.bytes(), &client, "{version:?}");
    }
    // Every TLS connection (a reconnect is one) has its own PSK.
    let (first, _) = exported_pair(SslVersion::TLS1_3).await;
    let (second, _) = exported_pair(SslVersion::TLS1_3).await;
    assert_ne!(first, second);
}

/// A blocking UDP socket as the OpenSSL DTLS client's transport: one datagram per
/// read and per write.
struct ClientSocket(std::net::UdpSocket);

impl std::io::Read for ClientSocket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.recv(buf)
    }
}

impl std::io::Write for ClientSocket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dtls_client_with_the_session_psk_gets_a_dtls_tunnel_that_echoes_probes_and_carries_packets()
 {
    let mut session = session();
    let server = DtlsServer::new().unwrap();
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let server_address = socket.local_addr().unwrap();
    let downlink = ipv4_packet(Ipv4Addr::new(10, 77, 0, 1), session.address);
    let uplink = ipv4_packet(session.address, Ipv4Addr::new(10, 77, 0, 1));

    let client_uplink = uplink.clone();
    let client = std::thread::spawn(move || {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.connect(server_address).unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut context = SslContext::builder(SslMethod::dtls_client()).unwrap();
        context.set_cipher_list("PSK-AES256-GCM-SHA384").unwrap();
        context.set_psk_client_callback(|_, _, identity, psk| {
            identity[..4].copy_from_slice(b"psk\0");
            psk[..PSK_LEN].copy_from_slice(&[7; PSK_LEN]);
            Ok(PSK_LEN)
        });
        let mut ssl = Ssl::new(&context.build()).unwrap();
        ssl.set_mtu(1400).unwrap();
        let mut stream = openssl::ssl::SslStream::new(ssl, ClientSocket(udp)).unwrap();
        stream.connect().unwrap();
        let mut record = vec![0u8; 2048];
        // An MTU probe comes back at full length as a DPD response.
        let mut probe = vec![0u8; 1300];
        probe[0] = 0x03;
        probe[1..5].copy_from_slice(&[1, 2, 3, 4]);
        stream.ssl_write(&probe).unwrap();
        let len = stream.ssl_read(&mut record).unwrap();
        assert_eq!(len, probe.len());
        assert_eq!(record[0], 0x04);
        assert_eq!(&record[1..len], &probe[1..]);
        let mut data = vec![0x00];
        data.extend_from_slice(&client_uplink);
        stream.ssl_write(&data).unwrap();
        let len = stream.ssl_read(&mut record).unwrap();
        record.truncate(len);
        record
    });

    let mut first = vec![0u8; MAX_DATAGRAM_LEN];
    let (len, from) = socket.recv_from(&mut first).await.unwrap();
    first.truncate(len);
    let mut ssl = Ssl::new(&server.context).unwrap();
    ssl.set_ex_data(server.psk_index, DtlsPsk::from_bytes([7; PSK_LEN]));
    let (events, mut tunnel_events) = mpsc::channel(4);
    let (to_peer, peer_datagrams) = mpsc::channel(16);
    let counter = Arc::new(AtomicUsize::new(0));
    let start = peer::HandshakeStart {
        ssl,
        session: binding(&session),
        events,
        slots: [
            HandshakeSlot::take(&counter, 2).unwrap(),
            HandshakeSlot::take(&counter, 2).unwrap(),
        ],
    };
    let peer_task = tokio::spawn(peer::run(
        start,
        Arc::clone(&socket),
        from,
        server_address.port(),
        peer_datagrams,
        first,
    ));
    let receiver = Arc::clone(&socket);
    let forward = tokio::spawn(async move {
        let mut buffer = vec![0u8; MAX_DATAGRAM_LEN];
        while let Ok((len, _)) = receiver.recv_from(&mut buffer).await {
            if to_peer.send(buffer[..len].to_vec()).await.is_err() {
                return;
            }
        }
    });

    let Some(DtlsEvent::Up(link)) = tunnel_events.recv().await else {
        panic!("no DTLS tunnel came up");
    };
    let shown = session
        .sessions
        .session(session.index)
        .unwrap()
        .dtls
        .unwrap();
    assert_eq!(shown.encapsulation, "DTLSv1.2");
    assert_eq!(shown.cipher_suite, "PSK-AES256-GCM-SHA384");
    assert_eq!(shown.udp_dst_port, server_address.port());
    assert_eq!(shown.udp_src_port, from.port());

    // The client's data packet reaches the TUN device, counted on the DTLS tunnel.
    let deadline = Instant::now() + Duration::from_secs(5);
    let received = loop {
        if let Some(packet) = session.tun.try_recv() {
            break packet;
        }
        assert!(Instant::now() < deadline, "no uplink packet");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(received.as_ref(), uplink.as_slice());
    assert!(link.received() >= 2);
    link.try_send(Bytes::from(downlink.clone())).unwrap();
    let record = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    assert_eq!(record[0], 0x00);
    assert_eq!(&record[1..], downlink.as_slice());
    let counters = session
        .sessions
        .session(session.index)
        .unwrap()
        .dtls
        .unwrap()
        .counters;
    assert_eq!(counters.pkts_rx, 1);

    // The tunnel ends: the DTLS tunnel goes with it.
    drop(link);
    drop(tunnel_events);
    tokio::time::timeout(Duration::from_secs(5), peer_task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        session
            .sessions
            .session(session.index)
            .unwrap()
            .dtls
            .is_none()
    );
    forward.abort();
}
