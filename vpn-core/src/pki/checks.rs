//! The checks webpki does not make (or makes without saying which certificate failed),
//! run on the path found by name before webpki verifies the signatures.
//!
//! Algorithm policy: signatures in the path (leaf and intermediates; the anchor's own
//! self-signature is not used) must be RSA PKCS#1 / RSA-PSS with SHA-256/384/512,
//! ECDSA with SHA-256/384/512, or Ed25519. Keys (all certificates, anchor included)
//! must be RSA ≥ 2048 bits, ECDSA P-256 or P-384, or Ed25519. Ed25519 is accepted:
//! it is strong, webpki verifies it, and only Secure Client's own store is RSA-only.

use time::OffsetDateTime;
use x509_parser::prelude::X509Certificate;

use crate::pki::certificate_info::{KeyType, is_ca, key_of};
use crate::pki::chain::{CertificateId, CertificateRole, ChainError};

/// Smallest RSA modulus accepted.
pub const MIN_RSA_BITS: u32 = 2048;

/// One certificate of the path, with who it is.
pub(crate) struct Member<'c, 'a> {
    pub(crate) id: CertificateId,
    pub(crate) cert: &'c X509Certificate<'a>,
}

pub(crate) fn validity(path: &[Member<'_, '_>], now: OffsetDateTime) -> Result<(), ChainError> {
    for m in path {
        let not_before = m.cert.validity().not_before.to_datetime();
        let not_after = m.cert.validity().not_after.to_datetime();
        if now < not_before {
            return Err(ChainError::NotYetValid {
                cert: m.id.clone(),
                not_before,
            });
        }
        if now > not_after {
            return Err(ChainError::Expired {
                cert: m.id.clone(),
                not_after,
            });
        }
    }
    Ok(())
}

pub(crate) fn algorithms(path: &[Member<'_, '_>]) -> Result<(), ChainError> {
    for m in path {
        if m.id.role != CertificateRole::Anchor {
            let oid = m.cert.signature_algorithm.algorithm.to_id_string();
            if let Err(algorithm) = signature_algorithm(&oid) {
                return Err(ChainError::WeakSignatureAlgorithm {
                    cert: m.id.clone(),
                    algorithm,
                });
            }
        }
        let cert = m.id.clone();
        match key_of(m.cert) {
            (KeyType::Rsa, bits) if bits < MIN_RSA_BITS => {
                return Err(ChainError::WeakRsaKey { cert, bits });
            }
            (KeyType::Rsa | KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::Ed25519, _) => {}
            (KeyType::EcdsaP521, _) => {
                let curve = "P-521".to_owned();
                return Err(ChainError::UnsupportedCurve { cert, curve });
            }
            (KeyType::EcdsaOther(curve), _) => {
                return Err(ChainError::UnsupportedCurve { cert, curve });
            }
            (KeyType::Other(algorithm), _) => {
                return Err(ChainError::UnsupportedKeyType { cert, algorithm });
            }
        }
    }
    Ok(())
}

/// Issuers must be CAs; the trust anchor's flag is skipped when the trustpoint says so.
pub(crate) fn ca_flags(path: &[Member<'_, '_>], skip_anchor: bool) -> Result<(), ChainError> {
    for m in path {
        let must_be_ca = match m.id.role {
            CertificateRole::Leaf => false,
            CertificateRole::Intermediate => true,
            CertificateRole::Anchor => !skip_anchor,
        };
        if must_be_ca && !is_ca(m.cert) {
            return Err(ChainError::IssuerNotCa { cert: m.id.clone() });
        }
    }
    Ok(())
}

/// basicConstraints pathLenConstraint of every issuer, the anchor's included.
pub(crate) fn path_len(path: &[Member<'_, '_>]) -> Result<(), ChainError> {
    for (position, m) in path.iter().enumerate().skip(1) {
        let below = position - 1;
        if let Ok(Some(bc)) = m.cert.basic_constraints()
            && let Some(limit) = bc.value.path_len_constraint
            && usize::try_from(limit).is_ok_and(|limit| below > limit)
        {
            return Err(ChainError::PathLenExceeded {
                cert: m.id.clone(),
                path_len: limit,
                intermediates_below: below,
            });
        }
    }
    Ok(())
}

/// The leaf must say clientAuth; without any EKU it passes only when not required.
pub(crate) fn leaf_eku(leaf: &Member<'_, '_>, required: bool) -> Result<(), ChainError> {
    match leaf.cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.client_auth => Ok(()),
        Ok(Some(eku)) => {
            let v = eku.value;
            let mut found: Vec<String> = [
                (v.any, "any"),
                (v.server_auth, "serverAuth"),
                (v.code_signing, "codeSigning"),
                (v.email_protection, "emailProtection"),
                (v.time_stamping, "timeStamping"),
                (v.ocsp_signing, "OCSPSigning"),
            ]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_owned())
            .collect();
            found.extend(v.other.iter().map(|oid| oid.to_id_string()));
            Err(ChainError::WrongEku {
                cert: leaf.id.clone(),
                found,
            })
        }
        Ok(None) if required => Err(ChainError::MissingClientAuthEku {
            cert: leaf.id.clone(),
        }),
        Ok(None) => Ok(()),
        Err(e) => Err(ChainError::Rejected {
            cert: leaf.id.clone(),
            reason: format!("unreadable extended key usage: {e}"),
        }),
    }
}

/// Accepted signature algorithm OIDs; `Err(name)` for the rest.
fn signature_algorithm(oid: &str) -> Result<(), String> {
    let name = match oid {
        "1.2.840.113549.1.1.11"
        | "1.2.840.113549.1.1.12"
        | "1.2.840.113549.1.1.13"
        | "1.2.840.113549.1.1.10"
        | "1.2.840.10045.4.3.2"
        | "1.2.840.10045.4.3.3"
        | "1.2.840.10045.4.3.4"
        | "1.3.101.112" => return Ok(()),
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.3" => "md4WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        other => other,
    };
    Err(name.to_owned())
}
