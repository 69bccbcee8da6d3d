//! CRLs carried by a trustpoint: parsed once, handed to webpki for the real check
//! (signature, nextUpdate, serial lookup), and read again to say *which* certificate
//! or CRL made the check fail.
//!
//! Policy: fail closed. Every certificate of the path below the trust anchor (leaf and
//! intermediates) must be covered by a CRL of its issuer; a CRL whose signature does not
//! verify, or whose nextUpdate has passed, makes validation fail.

use time::OffsetDateTime;
use webpki::{
    CertRevocationList, ExpirationPolicy, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptions, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::pki::pem::{self, PemError};

/// At most this many CRLs per trustpoint.
pub const MAX_CRLS_PER_TRUSTPOINT: usize = 32;
/// A CRL larger than this is refused.
pub const MAX_CRL_BYTES: usize = 4 * 1024 * 1024;

/// Why a trustpoint's CRL text could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("{0}")]
    Pem(#[from] PemError),
    #[error("{count} CRLs, more than the {max} allowed")]
    TooMany { count: usize, max: usize },
    #[error("CRL #{index} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        index: usize,
        len: usize,
        max: usize,
    },
    #[error("CRL #{index} cannot be read: {reason}")]
    Malformed { index: usize, reason: String },
}

/// The CRLs of one trustpoint.
#[derive(Debug)]
pub(crate) struct CrlSet {
    crls: Vec<StoredCrl>,
}

#[derive(Debug)]
struct StoredCrl {
    der: Vec<u8>,
    checked: CertRevocationList<'static>,
    issuer_raw: Vec<u8>,
    issuer: String,
    next_update: Option<OffsetDateTime>,
}

impl CrlSet {
    pub(crate) fn from_pem(text: &str) -> Result<Self, CrlError> {
        let ders = pem::crls(text)?;
        if ders.len() > MAX_CRLS_PER_TRUSTPOINT {
            return Err(CrlError::TooMany {
                count: ders.len(),
                max: MAX_CRLS_PER_TRUSTPOINT,
            });
        }
        let mut crls = Vec::with_capacity(ders.len());
        for (i, der) in ders.iter().enumerate() {
            let index = i + 1;
            let der = der.as_ref().to_vec();
            if der.len() > MAX_CRL_BYTES {
                return Err(CrlError::TooLarge {
                    index,
                    len: der.len(),
                    max: MAX_CRL_BYTES,
                });
            }
            let malformed = |reason: String| CrlError::Malformed { index, reason };
            let checked = OwnedCertRevocationList::from_der(&der)
                .map_err(|e| malformed(format!("{e:?}")))?
                .into();
            let (issuer_raw, issuer, next_update) = {
                let (_, parsed) = CertificateRevocationList::from_der(&der)
                    .map_err(|e| malformed(e.to_string()))?;
                (
                    parsed.issuer().as_raw().to_vec(),
                    parsed.issuer().to_string(),
                    parsed.next_update().map(|t| t.to_datetime()),
                )
            };
            crls.push(StoredCrl {
                der,
                checked,
                issuer_raw,
                issuer,
                next_update,
            });
        }
        Ok(Self { crls })
    }

    /// The CRLs as webpki wants them, to build [`RevocationOptions`] with [`options`].
    pub(crate) fn webpki_crls(&self) -> Vec<&CertRevocationList<'static>> {
        self.crls.iter().map(|c| &c.checked).collect()
    }

    /// The serial of `cert` listed in a CRL of its issuer: `Some(revocation time)`.
    pub(crate) fn revoked_at(&self, cert: &X509Certificate<'_>) -> Option<OffsetDateTime> {
        self.for_issuer(cert).find_map(|crl| {
            let (_, parsed) = CertificateRevocationList::from_der(&crl.der).ok()?;
            parsed
                .iter_revoked_certificates()
                .find(|r| r.raw_serial() == cert.raw_serial())
                .map(|r| r.revocation_date.to_datetime())
        })
    }

    /// Whether a CRL of `cert`'s issuer is present.
    pub(crate) fn covers(&self, cert: &X509Certificate<'_>) -> bool {
        self.for_issuer(cert).next().is_some()
    }

    /// A CRL of `cert`'s issuer whose nextUpdate is before `now`: (issuer, nextUpdate).
    pub(crate) fn expired_for(
        &self,
        cert: &X509Certificate<'_>,
        now: OffsetDateTime,
    ) -> Option<(String, OffsetDateTime)> {
        self.for_issuer(cert).find_map(|crl| {
            crl.next_update
                .filter(|next| *next < now)
                .map(|next| (crl.issuer.clone(), next))
        })
    }

    /// The issuer DN of the first CRL that covers `cert`.
    pub(crate) fn issuer_for(&self, cert: &X509Certificate<'_>) -> Option<String> {
        self.for_issuer(cert).next().map(|c| c.issuer.clone())
    }

    fn for_issuer<'s>(&'s self, cert: &X509Certificate<'_>) -> impl Iterator<Item = &'s StoredCrl> {
        let issuer = cert.issuer().as_raw().to_vec();
        self.crls.iter().filter(move |c| c.issuer_raw == issuer)
    }
}

/// Fail-closed options: whole chain, unknown status denied, expired CRLs enforced.
pub(crate) fn options<'a>(crls: &'a [&'a CertRevocationList<'a>]) -> Option<RevocationOptions<'a>> {
    let builder = RevocationOptionsBuilder::new(crls).ok()?;
    Some(
        builder
            .with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Deny)
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn pem_block(der: &[u8]) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn oversize_crl_is_refused_unparsed() {
        let text = pem_block(&vec![0u8; MAX_CRL_BYTES + 1]);
        assert!(matches!(
            CrlSet::from_pem(&text),
            Err(CrlError::TooLarge { index: 1, .. })
        ));
    }

    #[test]
    fn garbage_crl_is_malformed_with_its_position() {
        assert!(matches!(
            CrlSet::from_pem(&pem_block(&[0x30, 0x01, 0x00])),
            Err(CrlError::Malformed { index: 1, .. })
        ));
    }
}
