//! TLS client settings of the channel: during registration any sensor certificate is
//! taken (the registration key proof binds it); afterwards only the exact certificate
//! issued to that sensor, chained to the internal CA, is accepted, and the manager
//! authenticates with its own certificate.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

use super::SensorClientError;

/// The client configuration for the two registration calls.
pub(super) fn registration_config() -> Result<ClientConfig, SensorClientError> {
    let provider = provider();
    Ok(ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(SensorClientError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SensorVerifier {
            provider,
            pinned: None,
        }))
        .with_no_client_auth())
}

/// The client configuration of a registered sensor.
pub(super) fn channel_config(
    ca_der: CertificateDer<'static>,
    sensor_der: CertificateDer<'static>,
    manager_chain: Vec<CertificateDer<'static>>,
    manager_key: PrivateKeyDer<'static>,
) -> Result<ClientConfig, SensorClientError> {
    let provider = provider();
    // Parse once now so a broken CA shows here, not on every connection.
    webpki::anchor_from_trusted_cert(&ca_der)
        .map_err(|e| SensorClientError::Certificates(format!("the internal CA: {e}")))?;
    let verifier = SensorVerifier {
        provider: Arc::clone(&provider),
        pinned: Some(Pinned { ca_der, sensor_der }),
    };
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SensorClientError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(manager_chain, manager_key)
        .map_err(SensorClientError::Tls)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Checks the sensor's certificate. Unpinned (registration), any certificate is taken,
/// but the handshake signature is still checked, so the sensor proves it holds the key
/// the registration proof is bound to. Pinned, only the certificate issued to this
/// sensor, valid and chained to the CA, is accepted: the sensor is named by that
/// certificate, not by the host name used to reach it.
#[derive(Debug)]
struct SensorVerifier {
    provider: Arc<CryptoProvider>,
    pinned: Option<Pinned>,
}

#[derive(Debug)]
struct Pinned {
    ca_der: CertificateDer<'static>,
    sensor_der: CertificateDer<'static>,
}

impl ServerCertVerifier for SensorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(pinned) = &self.pinned else {
            return Ok(ServerCertVerified::assertion());
        };
        if end_entity.as_ref() != pinned.sensor_der.as_ref() {
            return Err(Error::General(
                "the sensor presented a certificate other than the one issued to it at registration"
                    .to_owned(),
            ));
        }
        let anchor = webpki::anchor_from_trusted_cert(&pinned.ca_der)
            .map_err(|e| Error::General(format!("the internal CA: {e}")))?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| Error::General(format!("the sensor certificate: {e}")))?;
        cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &[anchor],
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| Error::General(format!("the sensor certificate: {e}")))?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
