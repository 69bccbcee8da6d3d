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
