//! TLS of the management API (TLS 1.3 only, as FTD's sftunnel): before registration the
//! channel key's self-signed certificate and no client authentication; afterwards the
//! certificate the manager issued, and only the manager's own certificate as client.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, Error, RootCertStore, ServerConfig, SignatureScheme,
};
use vpn_core::pki::pem;

use super::enrollment::{ChannelKey, Registration};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChannelTlsError {
    #[error("the {what} is not a readable PEM certificate")]
    Certificate { what: &'static str },
    #[error("the channel key cannot be read")]
    Key,
    #[error("TLS settings")]
    Rustls(#[from] Error),
    #[error("the manager's CA cannot be used: {0}")]
    Verifier(String),
}

/// Before registration: the bootstrap certificate, no client certificate asked.
pub fn bootstrap_config(key: &ChannelKey) -> Result<Arc<ServerConfig>, ChannelTlsError> {
    let chain = certificates("bootstrap certificate", &key.bootstrap_certificate_pem)?;
    let private_key = pem::private_key(&key.private_key_pem).map_err(|_| ChannelTlsError::Key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)?;
    Ok(Arc::new(config))
}

/// After registration: the issued certificate; the client must present exactly the
/// registered manager's certificate, valid and chained to its CA.
pub fn registered_config(
    key: &ChannelKey,
    registration: &Registration,
) -> Result<Arc<ServerConfig>, ChannelTlsError> {
    let chain = certificates("sensor certificate", &registration.sensor_certificate_pem)?;
    let private_key = pem::private_key(&key.private_key_pem).map_err(|_| ChannelTlsError::Key)?;
    let mut roots = RootCertStore::empty();
    for ca in certificates("manager CA certificate", &registration.ca_certificate_pem)? {
        roots
            .add(ca)
            .map_err(|e| ChannelTlsError::Verifier(e.to_string()))?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| ChannelTlsError::Verifier(e.to_string()))?;
    let manager = certificates("manager certificate", &registration.manager_certificate_pem)?
        .into_iter()
        .next()
        .ok_or(ChannelTlsError::Certificate {
            what: "manager certificate",
        })?;
    let verifier = RegisteredManager { inner, manager };
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, private_key)?;
    Ok(Arc::new(config))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certificates(
    what: &'static str,
    text: &str,
) -> Result<Vec<CertificateDer<'static>>, ChannelTlsError> {
    match pem::certificates(text) {
        Ok(chain) if !chain.is_empty() => Ok(chain),
        _ => Err(ChannelTlsError::Certificate { what }),
    }
}

/// The CA check of webpki, then the pin: a certificate the same CA issued to anyone
/// else (another manager, a sensor) is refused too.
#[derive(Debug)]
struct RegisteredManager {
    inner: Arc<dyn ClientCertVerifier>,
    manager: CertificateDer<'static>,
}

impl ClientCertVerifier for RegisteredManager {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if end_entity.as_ref() != self.manager.as_ref() {
            return Err(Error::General(
                "the client certificate is not the registered manager's".to_owned(),
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
