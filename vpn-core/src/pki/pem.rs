//! Strict PEM decoding of certificates, CRLs and keys as they travel in a `DeviceConfig`.

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// Why a PEM text could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("no {what} found in the PEM text")]
    Empty { what: &'static str },
    #[error("malformed PEM: {0}")]
    Malformed(String),
}

/// Every `CERTIFICATE` block, in order. At least one is required.
pub fn certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, PemError> {
    collect(
        CertificateDer::pem_slice_iter(text.as_bytes()),
        "certificate",
    )
}

/// Every `X509 CRL` block, in order. At least one is required.
pub fn crls(text: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, PemError> {
    collect(
        CertificateRevocationListDer::pem_slice_iter(text.as_bytes()),
        "CRL",
    )
}

/// The first private key (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(text: &str) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => PemError::Empty {
            what: "private key",
        },
        other => PemError::Malformed(other.to_string()),
    })
}

fn collect<T>(
    items: impl Iterator<Item = Result<T, pem::Error>>,
    what: &'static str,
) -> Result<Vec<T>, PemError> {
    let items = items
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::Malformed(e.to_string()))?;
    if items.is_empty() {
        return Err(PemError::Empty { what });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_certificate_is_empty_error() {
        assert_eq!(
            certificates("hello").unwrap_err(),
            PemError::Empty {
                what: "certificate"
            }
        );
    }

    #[test]
    fn generated_certificate_round_trips() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let text = format!("{}{}", cert.pem(), cert.pem());
        let parsed = certificates(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].as_ref(), cert.der().as_ref());
        assert!(private_key(&key.serialize_pem()).is_ok());
    }

    #[test]
    fn corrupted_base64_is_malformed() {
        let text = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(certificates(text), Err(PemError::Malformed(_))));
    }
}
