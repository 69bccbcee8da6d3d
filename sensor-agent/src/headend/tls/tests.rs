use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vpn_core::config::{IdentityCertificate, PrivateKeyPem};

use super::*;

struct Pki {
    identity: IdentityCertificate,
    server_der: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key_der: Vec<u8>,
}

fn pki() -> Pki {
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "machine.example.com");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.self_signed(&client_key).unwrap();
    Pki {
        identity: IdentityCertificate {
            trustpoint: "FTD-ID".into(),
            certificate_chain_pem: server.pem(),
            private_key_pem: PrivateKeyPem(server_key.serialize_pem()),
        },
        server_der: server.der().clone(),
        client_cert: client.der().clone(),
        client_key_der: client_key.serialize_der(),
    }
}

fn client_config(
    pki: &Pki,
    version: &'static rustls::SupportedProtocolVersion,
    with_cert: bool,
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pki.server_der.clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots);
    if with_cert {
        let key = PrivateKeyDer::try_from(pki.client_key_der.clone()).unwrap();
        builder
            .with_client_auth_cert(vec![pki.client_cert.clone()], key)
            .unwrap()
    } else {
        builder.with_no_client_auth()
    }
}

/// Runs one handshake plus a byte each way; returns what the server saw.
async fn handshake(pki: &Pki, client: ClientConfig) -> NegotiatedTls {
    let acceptor = TlsAcceptor::from(server_config(&pki.identity).unwrap());
    let connector = TlsConnector::from(Arc::new(client));
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let mut tls = acceptor.accept(server_io).await.unwrap();
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
        tls.write_all(&byte).await.unwrap();
        tls.flush().await.unwrap();
        NegotiatedTls::of(tls.get_ref().1)
    });
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), client_io)
        .await
        .unwrap();
    tls.write_all(b"x").await.unwrap();
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await.unwrap();
    assert_eq!(&byte, b"x");
    server.await.unwrap()
}

#[tokio::test]
async fn machine_certificate_sent_in_the_tls13_handshake_is_kept_for_authentication() {
    let pki = pki();
    let seen = handshake(&pki, client_config(&pki, &rustls::version::TLS13, true)).await;
    assert_eq!(seen.version, "TLSv1.3");
    assert!(
        seen.cipher_suite.starts_with("TLS_AES_") || seen.cipher_suite.starts_with("TLS_CHACHA20")
    );
    assert_eq!(seen.client_chain, vec![pki.client_cert.clone()]);
}

#[tokio::test]
async fn machine_certificate_is_requested_in_tls12_too() {
    let pki = pki();
    let seen = handshake(&pki, client_config(&pki, &rustls::version::TLS12, true)).await;
    assert_eq!(seen.version, "TLSv1.2");
    assert!(seen.cipher_suite.starts_with("TLS_ECDHE_"));
    assert_eq!(seen.client_chain, vec![pki.client_cert.clone()]);
}

#[tokio::test]
async fn client_without_certificate_still_connects_so_the_xml_can_ask_for_one() {
    let pki = pki();
    let seen = handshake(&pki, client_config(&pki, &rustls::version::TLS13, false)).await;
    assert!(seen.client_chain.is_empty());
}

#[test]
fn unusable_identity_is_refused_with_the_trustpoint_name() {
    let mut identity = pki().identity;
    identity.private_key_pem = PrivateKeyPem("not a key".into());
    let error = server_config(&identity).unwrap_err();
    assert!(matches!(error, TlsSetupError::Key { .. }));
    assert!(error.to_string().contains("FTD-ID"));

    let mut identity = pki().identity;
    identity.certificate_chain_pem = String::new();
    assert!(matches!(
        server_config(&identity).unwrap_err(),
        TlsSetupError::Chain { .. }
    ));

    // A key that does not belong to the certificate.
    let mut identity = pki().identity;
    identity.private_key_pem = PrivateKeyPem(rcgen::KeyPair::generate().unwrap().serialize_pem());
    assert!(matches!(
        server_config(&identity).unwrap_err(),
        TlsSetupError::Rustls { .. }
    ));
}
