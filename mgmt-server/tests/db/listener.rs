//! The manager's HTTPS listener: a connection over the per-address cap is told so
//! (503, Retry-After, the reason in words) instead of being served, and a freed place
//! is served again.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mgmt_server::listener::ConnectionCaps;
use reqwest::StatusCode;

fn tls() -> Arc<rustls::ServerConfig> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let chain = vpn_core::pki::pem::certificates(&cert.pem()).unwrap();
    let key = vpn_core::pki::pem::private_key(&key.serialize_pem()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

#[tokio::test]
async fn a_connection_over_the_per_address_cap_is_told_so_and_a_freed_place_is_served() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "served" }));
    let caps = ConnectionCaps {
        per_address: 1,
        total: 16,
    };
    tokio::spawn(mgmt_server::server::serve_https(
        listener,
        tls(),
        caps,
        router,
    ));
    // A fresh client per request: one connection each, none kept alive.
    let get = || async {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
            .get(format!("https://localhost:{}/", address.port()))
            .send()
            .await
            .unwrap()
    };
    let served = get().await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.text().await.unwrap(), "served");

    let held = tokio::net::TcpStream::connect(address).await.unwrap();
    let refused = get().await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("Too many connections from your address"),
        "{text}"
    );

    drop(held);
    // The server notices the closed connection when it reads from it; ask until it has.
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = get().await.status();
        if status == StatusCode::OK {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK);
}
