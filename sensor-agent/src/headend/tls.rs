//! TLS for the headend: TLS 1.2 and 1.3 with the identity certificate, and a client
//! certificate requested in the handshake but not required.
//!
//! openconnect sends its machine certificate only when the server asks for one in the
//! handshake (no post-handshake auth), and the connection profile that decides which CAs
//! are trusted is known only later, from the aggregate-auth request. So the handshake
//! accepts any well-formed certificate whose holder proves possession of its key
//! (CertificateVerify), and keeps the chain; chain validation against the profile's
//! trustpoints happens at the authentication step (`vpn_core::pki`).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, ServerConnection};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio_rustls::TlsAcceptor;
use vpn_core::config::IdentityCertificate;
use vpn_core::pki::pem::{self, PemError};

/// Why the headend's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("identity trustpoint {trustpoint}: certificate chain: {source}")]
    Chain {
        trustpoint: String,
        #[source]
        source: PemError,
    },
    #[error("identity trustpoint {trustpoint}: private key: {source}")]
    Key {
        trustpoint: String,
        #[source]
        source: PemError,
    },
    #[error("identity trustpoint {trustpoint}: {source}")]
    Rustls {
        trustpoint: String,
        #[source]
        source: rustls::Error,
    },
}

/// What the headend presents to new connections: the TLS acceptor built for one
/// identity certificate and that certificate's `<server-cert-hash>`. Cheap to clone.
#[derive(Clone)]
pub struct TlsIdentity {
    acceptor: TlsAcceptor,
    server_cert_sha1: String,
}

impl TlsIdentity {
    /// Builds the rustls server configuration for `identity`; refuses a chain or key
    /// that cannot be parsed or that rustls does not accept (e.g. key and leaf differ).
    pub fn new(identity: &IdentityCertificate) -> Result<Self, TlsSetupError> {
        let config = server_config(identity)?;
        let leaf = pem::certificates(&identity.certificate_chain_pem)
            .ok()
            .and_then(|chain| chain.into_iter().next());
        let server_cert_sha1 = leaf
            .map(|leaf| {
                hex::encode_upper(aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                    leaf.as_ref(),
                ))
            })
            .unwrap_or_default();
        Ok(Self {
            acceptor: TlsAcceptor::from(config),
            server_cert_sha1,
        })
    }

    /// Upper-case hex SHA-1 of the leaf certificate, as `<server-cert-hash>` carries it.
    pub fn server_cert_sha1(&self) -> &str {
        &self.server_cert_sha1
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("server_cert_sha1", &self.server_cert_sha1)
            .finish_non_exhaustive()
    }
}

/// The rustls server configuration of the headend for `identity`.
pub fn server_config(identity: &IdentityCertificate) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let trustpoint = identity.trustpoint.clone();
    let chain = pem::certificates(&identity.certificate_chain_pem).map_err(|source| {
        TlsSetupError::Chain {
            trustpoint: trustpoint.clone(),
            source,
        }
    })?;
    let key = pem::private_key(identity.private_key_pem.expose()).map_err(|source| {
        TlsSetupError::Key {
            trustpoint: trustpoint.clone(),
            source,
        }
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(RequestClientCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let rustls_error = |source| TlsSetupError::Rustls {
        trustpoint: trustpoint.clone(),
        source,
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(rustls_error)?;
    Ok(Arc::new(config))
}

/// What the handshake negotiated, as `show vpn-sessiondb detail` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedTls {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
    /// IANA name of the cipher suite, e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The client's certificate chain (leaf first), empty when none was sent.
    pub client_chain: Vec<CertificateDer<'static>>,
}

impl NegotiatedTls {
    /// Reads the negotiated parameters of a completed handshake.
    pub fn of(connection: &ServerConnection) -> Self {
        let version = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        let cipher_suite = connection
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .map(iana_suite_name)
            .unwrap_or_else(|| "unknown".to_owned());
        let client_chain = connection
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        Self {
            version,
            cipher_suite,
            client_chain,
        }
    }
}

/// rustls names TLS 1.3 suites `TLS13_*`; FTD and IANA print `TLS_*`.
fn iana_suite_name(rustls_name: &str) -> String {
    match rustls_name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => rustls_name.to_owned(),
    }
}

/// Requests a client certificate, accepts its absence, and checks only that the client
/// holds the key of the certificate it sent.
#[derive(Debug)]
struct RequestClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequestClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // openconnect sends its certificate whatever the CA list says; an empty list
        // also keeps the trusted CAs private before the profile is known.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Only refuse what cannot be a certificate; trust is decided per profile later.
        webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
