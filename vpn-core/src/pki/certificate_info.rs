//! What an administrator wants to see of a certificate: names, serial, dates,
//! fingerprint, key.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// A certificate larger than this is refused unread.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateInfoError {
    #[error("the certificate is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("the certificate is not valid DER X.509: {reason}")]
    Malformed { reason: String },
}

/// The public key algorithm of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    /// An EC key on a curve other than the three NIST ones above (curve OID).
    EcdsaOther(String),
    Ed25519,
    /// Any other algorithm (its OID).
    Other(String),
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa => f.write_str("RSA"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
            Self::EcdsaP521 => f.write_str("ECDSA P-521"),
            Self::EcdsaOther(curve) => write!(f, "EC curve {curve}"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Other(oid) => write!(f, "key algorithm {oid}"),
        }
    }
}

/// A certificate summarised for display and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN, attributes in certificate order (`C=JP, O=Example, CN=client`).
    pub subject: String,
    pub issuer: String,
    /// Certificate serial number, hex upper-case without separators.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// SHA-256 over the DER, hex upper-case.
    pub fingerprint_sha256: String,
    pub key_type: KeyType,
    /// Key size in bits (RSA modulus, curve size, 256 for Ed25519, 0 when unknown).
    pub key_bits: u32,
    /// basicConstraints CA flag.
    pub is_ca: bool,
}

impl CertificateInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateInfoError> {
        let cert = parse(der)?;
        let (key_type, key_bits) = key_of(&cert);
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            fingerprint_sha256: hex::encode_upper(fingerprint_sha256(der)),
            key_type,
            key_bits,
            is_ca: is_ca(&cert),
        })
    }
}

/// SHA-256 of the DER encoding: equal fingerprints mean the same certificate.
pub fn fingerprint_sha256(der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, der).as_ref());
    out
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo: equal values mean the same key,
/// whatever else differs between the certificates.
pub fn public_key_sha256(der: &[u8]) -> Result<[u8; 32], CertificateInfoError> {
    let cert = parse(der)?;
    Ok(fingerprint_sha256(cert.public_key().raw))
}

/// Parses one DER certificate, refusing trailing bytes and oversize input.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertificateInfoError> {
    if der.len() > MAX_CERTIFICATE_BYTES {
        return Err(CertificateInfoError::TooLarge {
            len: der.len(),
            max: MAX_CERTIFICATE_BYTES,
        });
    }
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(CertificateInfoError::Malformed {
            reason: format!("{} bytes after the certificate", rest.len()),
        }),
        Err(e) => Err(CertificateInfoError::Malformed {
            reason: e.to_string(),
        }),
    }
}

/// Serial number bytes as upper-case hex, leading zero bytes dropped (`00` stays).
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let trimmed = match raw.iter().position(|b| *b != 0) {
        Some(first) => raw.get(first..).unwrap_or(raw),
        None => raw.get(raw.len().saturating_sub(1)..).unwrap_or(raw),
    };
    hex::encode_upper(trimmed)
}

pub(crate) fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

pub(crate) fn key_of(cert: &X509Certificate<'_>) -> (KeyType, u32) {
    let spki = cert.public_key();
    let algorithm = spki.algorithm.algorithm.to_id_string();
    match algorithm.as_str() {
        "1.3.101.112" => (KeyType::Ed25519, 256),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => (KeyType::EcdsaP256, 256),
                "1.3.132.0.34" => (KeyType::EcdsaP384, 384),
                "1.3.132.0.35" => (KeyType::EcdsaP521, 521),
                _ => (KeyType::EcdsaOther(curve), 0),
            }
        }
        _ => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => (KeyType::Rsa, rsa_bits(rsa.modulus)),
            _ => (KeyType::Other(algorithm), 0),
        },
    }
}

fn rsa_bits(modulus: &[u8]) -> u32 {
    let Some(first) = modulus.iter().position(|b| *b != 0) else {
        return 0;
    };
    let significant = modulus.len() - first;
    let top = modulus.get(first).copied().unwrap_or(0);
    u32::try_from(significant * 8).unwrap_or(u32::MAX) - top.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testpki::{LeafOptions, TestCa, TestKeyType};

    #[test]
    fn info_shows_names_serial_dates_and_key() {
        let ca = TestCa::root("Info Root").unwrap();
        let mut options = LeafOptions::client("client.cisco.com");
        options.key_type = TestKeyType::Rsa2048;
        let leaf = ca.issue(&options).unwrap();
        let info = CertificateInfo::from_der(&leaf.cert_der).unwrap();
        assert_eq!(info.subject, "CN=client.cisco.com");
        assert_eq!(info.issuer, "CN=Info Root");
        assert_eq!(info.serial, hex::encode_upper(&leaf.serial));
        assert_eq!(info.key_type, KeyType::Rsa);
        assert_eq!(info.key_bits, 2048);
        assert!(!info.is_ca);
        assert_eq!(info.not_before, crate::pki::testpki::DEFAULT_NOT_BEFORE);
        assert_eq!(info.fingerprint_sha256.len(), 64);
        let root = CertificateInfo::from_der(&ca.cert.cert_der).unwrap();
        assert!(root.is_ca);
        assert_eq!((root.key_type, root.key_bits), (KeyType::EcdsaP256, 256));
    }

    #[test]
    fn fingerprints_tell_certificates_apart() {
        let ca = TestCa::root("Fp Root").unwrap();
        let a = ca.issue(&LeafOptions::client("a")).unwrap();
        let b = ca.issue(&LeafOptions::client("a")).unwrap();
        assert_eq!(
            fingerprint_sha256(&a.cert_der),
            fingerprint_sha256(&a.cert_der)
        );
        assert_ne!(
            fingerprint_sha256(&a.cert_der),
            fingerprint_sha256(&b.cert_der)
        );
    }

    #[test]
    fn oversize_and_garbage_certificates_are_refused() {
        let big = vec![0x30; MAX_CERTIFICATE_BYTES + 1];
        assert!(matches!(
            CertificateInfo::from_der(&big),
            Err(CertificateInfoError::TooLarge { .. })
        ));
        assert!(matches!(
            CertificateInfo::from_der(b"not a certificate"),
            Err(CertificateInfoError::Malformed { .. })
        ));
    }

    #[test]
    fn serial_drops_leading_zero_bytes() {
        assert_eq!(serial_hex(&[0x00, 0x8a, 0x01]), "8A01");
        assert_eq!(serial_hex(&[0x00]), "00");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = CertificateInfo::from_der(&bytes);
        }
    }
}
