use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracing::level_filters::LevelFilter;
use vpn_core::pool::PoolSet;

use super::*;
use crate::sessions::SessionDbSettings;
use crate::testing::logs::Logs;
use crate::testing::{sample_config, test_identity, tls_connect};

fn headend() -> Arc<Headend> {
    let mut config = sample_config();
    config.headend.identity = test_identity("FTD-ID").identity;
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&config).unwrap(),
        SessionDbSettings::default(),
    );
    let (router, _tun) = Router::new(4, 4);
    let (_updates, config) = watch::channel(Arc::new(config));
    Headend::new(
        config,
        sessions,
        router,
        HeadendSettings {
            disconnected_timeout_secs: 1800,
        },
    )
    .unwrap()
}

/// Opens a TLS connection, sends a request head that cannot be parsed and waits for
/// the headend to close; the client's address.
async fn unreadable_request(address: SocketAddr) -> SocketAddr {
    let mut tls = tls_connect(address).await.unwrap();
    let client = tls.get_ref().0.local_addr().unwrap();
    tls.write_all(b"\x01\x02 not http\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    client
}

#[tokio::test]
async fn each_connection_logs_in_a_span_with_its_number_peer_tls_version_and_sni() {
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber(LevelFilter::DEBUG));
    // Callsites first hit by other tests while no subscriber listened cached "never"; ask again.
    tracing::callsite::rebuild_interest_cache();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(headend().serve(listener));
    let first = unreadable_request(address).await;
    let second = unreadable_request(address).await;
    server.abort();

    let spans = logs.spans("vpn_connection");
    assert_eq!(spans.len(), 2, "{spans:?}");
    for (span, client) in spans.iter().zip([first, second]) {
        assert_eq!(span.fields["peer"], client.to_string());
        assert_eq!(span.fields["tls_version"], "TLSv1.3");
        assert_eq!(span.fields["sni"], "localhost");
    }
    let number = |at: usize| spans[at].fields["connection"].parse::<u64>().unwrap();
    assert!(number(1) > number(0));
    let refused = logs.event("request not read");
    assert_eq!(refused.spans.len(), 1);
    assert_eq!(refused.spans[0].fields["peer"], first.to_string());
    assert!(!refused.fields.contains_key("peer"));
}

/// Serves `headend` on a fresh 127.0.0.1 port until the returned task is aborted.
async fn serving(
    headend: Arc<Headend>,
) -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (address, tokio::spawn(headend.serve(listener)))
}

/// Reads one response (head and `Content-Length` body), or whatever came before the
/// connection closed; and whether it then closed.
async fn response<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse::<usize>().unwrap());
            if bytes.len() >= end + 4 + length {
                return String::from_utf8_lossy(&bytes[..end + 4 + length]).to_string();
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap_or(0);
        if n == 0 {
            return String::from_utf8_lossy(&bytes).to_string();
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closed `stream` (EOF or reset) within 10 s.
async fn closed<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

const INIT: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id><group-access>https://localhost/RAVPN-MCA</group-access></config-auth>";

fn init_request() -> String {
    format!(
        "POST /RAVPN-MCA HTTP/1.1\r\nHost: localhost\r\nX-Aggregate-Auth: 1\r\nContent-Length: {}\r\n\r\n{INIT}",
        INIT.len()
    )
}

#[tokio::test]
async fn answers_carry_hsts_nosniff_a_csp_and_an_xml_charset() {
    let (address, server) = serving(headend()).await;
    let mut tls = tls_connect(address).await.unwrap();
    tls.write_all(init_request().as_bytes()).await.unwrap();
    let answer = response(&mut tls).await;
    server.abort();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    for header in [
        "Strict-Transport-Security: max-age=31536000\r\n",
        "X-Content-Type-Options: nosniff\r\n",
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n",
        "Content-Type: text/xml; charset=utf-8\r\n",
    ] {
        assert!(answer.contains(header), "{header} missing: {answer}");
    }
}

#[tokio::test]
async fn header_tricks_over_tls_are_answered_400_and_the_connection_closed() {
    let (address, server) = serving(headend()).await;
    let body = INIT;
    let tricks = [
        format!(
            "POST /RAVPN-MCA HTTP/1.1\r\nContent-Length: {}\r\nContent-Length: 83\r\n\r\n{body}",
            body.len()
        ),
        format!(
            "POST /RAVPN-MCA HTTP/1.1\r\nContent-Length: +{}\r\n\r\n{body}",
            body.len()
        ),
        format!(
            "POST /RAVPN-MCA HTTP/1.1\nContent-Length: {}\n\n{body}",
            body.len()
        ),
        format!(
            "POST /RAVPN-MCA HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    ];
    for trick in tricks {
        let mut tls = tls_connect(address).await.unwrap();
        tls.write_all(trick.as_bytes()).await.unwrap();
        let answer = response(&mut tls).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{trick:?}: {answer}"
        );
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        assert!(closed(&mut tls).await, "{trick:?}: still open");
    }
    server.abort();
}

#[tokio::test]
async fn a_request_pipelined_behind_an_auth_post_gets_400_and_close() {
    let (address, server) = serving(headend()).await;
    let mut tls = tls_connect(address).await.unwrap();
    let two = format!("{}{}", init_request(), init_request());
    tls.write_all(two.as_bytes()).await.unwrap();
    let answer = response(&mut tls).await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(closed(&mut tls).await);
    // One request at a time on a keep-alive connection is fine.
    let mut tls = tls_connect(address).await.unwrap();
    for _ in 0..2 {
        tls.write_all(init_request().as_bytes()).await.unwrap();
        let answer = response(&mut tls).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }
    server.abort();
}

#[tokio::test]
async fn a_flood_of_idle_connections_from_one_address_leaves_room_for_others() {
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber(LevelFilter::INFO));
    tracing::callsite::rebuild_interest_cache();
    let (address, server) = serving(headend()).await;
    let flood_source: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_SOURCE {
        held.push(
            crate::testing::tcp_connect_from(flood_source, address)
                .await
                .unwrap(),
        );
    }
    // Let the accept loop take them all (it counts them before the TLS handshake).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = crate::testing::tcp_connect_from(flood_source, address)
        .await
        .unwrap();
    assert!(
        closed(&mut over).await,
        "a connection over the cap is closed at once"
    );
    // Another address still gets in and is answered.
    let other = "127.0.0.2".parse().unwrap();
    let mut tls = crate::testing::tls_connect_from(other, address)
        .await
        .unwrap();
    tls.write_all(init_request().as_bytes()).await.unwrap();
    assert!(response(&mut tls).await.starts_with("HTTP/1.1 200 OK\r\n"));
    server.abort();
    drop(held);
    let refused = logs
        .messages()
        .into_iter()
        .filter(|m| m.contains("connections open from this source; connection refused"))
        .count();
    assert_eq!(
        refused, 1,
        "logged once while the source stays over its cap"
    );
}
