//! Client certificate chain validation against trustpoints.
//!
//! A presented chain (leaf and intermediates in any order, 1–10 certificates) is tried
//! against each trustpoint in order; the first that validates it wins. For each
//! trustpoint the path is first followed by name (leaf → presented issuers → a CA of
//! the trustpoint) and checked by [`checks`](super::checks) so that a failure names
//! the certificate; then rustls-webpki verifies signatures, the path and, when the
//! trustpoint carries CRLs, revocation. Only the CA certificates of the trustpoint are
//! anchors: a root sent by the client is ignored.
//!
//! A trustpoint whose validation usage lacks `ssl-client` knows the issuer but refuses
//! to validate client certificates (FTD `validation-usage`).
//!
//! Intermediates always need the CA flag (webpki enforces it); `skip_ca_flag_check`
//! only relaxes the trustpoint's own CA certificate, as FTD's `no ca-check` does.

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, Error as WebPkiError, KeyUsage};
use x509_parser::prelude::X509Certificate;

use crate::config::{ConnectionProfile, DeviceConfig, Revocation, Trustpoint};
use crate::pki::certificate_info::{self, CertificateInfo, serial_hex};
use crate::pki::checks::{self, Member};
use crate::pki::pem;
use crate::pki::revocation::{self, CrlSet};

mod error;
pub use error::{CertificateId, CertificateRole, ChainError, TrustStoreError};

/// A client may present at most this many certificates.
pub const MAX_CHAIN_CERTIFICATES: usize = 10;
/// A trustpoint may hold at most this many CA certificates.
pub const MAX_TRUSTPOINT_CERTIFICATES: usize = 32;

/// A chain that validated: which trustpoint, and the path used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedChain {
    pub trustpoint: String,
    pub leaf: CertificateInfo,
    /// Leaf first, then intermediates, the trustpoint's CA certificate last.
    pub chain: Vec<CertificateDer<'static>>,
}

/// Parsed trustpoints, built once per configuration and reused for every client.
#[derive(Debug)]
pub struct TrustStore {
    trustpoints: Vec<LoadedTrustpoint>,
}

#[derive(Debug)]
struct LoadedTrustpoint {
    name: String,
    skip_ca_flag_check: bool,
    require_client_auth_eku: bool,
    ssl_client: bool,
    ca_certificates: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    crls: Option<CrlSet>,
}

impl TrustStore {
    pub fn new(trustpoints: &[&Trustpoint]) -> Result<Self, TrustStoreError> {
        if trustpoints.is_empty() {
            return Err(TrustStoreError::NoTrustpoints);
        }
        let trustpoints = trustpoints
            .iter()
            .map(|tp| LoadedTrustpoint::load(tp))
            .collect::<Result<_, _>>()?;
        Ok(Self { trustpoints })
    }

    /// The trustpoints a connection profile lists, in its order.
    pub fn for_profile(
        config: &DeviceConfig,
        profile: &ConnectionProfile,
    ) -> Result<Self, TrustStoreError> {
        let trustpoints = profile
            .trustpoints
            .iter()
            .map(|name| {
                config
                    .trustpoint(name)
                    .ok_or_else(|| TrustStoreError::UnknownTrustpoint {
                        profile: profile.name.clone(),
                        trustpoint: name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&trustpoints)
    }

    /// Names of the trustpoints, in the order they are tried.
    pub fn trustpoint_names(&self) -> impl Iterator<Item = &str> {
        self.trustpoints.iter().map(|tp| tp.name.as_str())
    }

    /// Validates a presented chain (any order) at `now` for client authentication.
    ///
    /// When no trustpoint validates it, the error is the first trustpoint's that got
    /// past "unknown issuer" (a trustpoint that knows the CA says more), else the first.
    pub fn validate(
        &self,
        presented: &[CertificateDer<'_>],
        now: OffsetDateTime,
    ) -> Result<ValidatedChain, ChainError> {
        self.validate_among(presented, now, |_| true)
    }

    /// Like [`Self::validate`], trying only the trustpoints whose name `allowed` accepts
    /// (an MCA slot bound to some of the profile's trustpoints).
    pub fn validate_among(
        &self,
        presented: &[CertificateDer<'_>],
        now: OffsetDateTime,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<ValidatedChain, ChainError> {
        if presented.is_empty() {
            return Err(ChainError::NoCertificate);
        }
        if presented.len() > MAX_CHAIN_CERTIFICATES {
            return Err(ChainError::TooManyCertificates {
                count: presented.len(),
                max: MAX_CHAIN_CERTIFICATES,
            });
        }
        let parsed = presented
            .iter()
            .enumerate()
            .map(|(i, der)| {
                certificate_info::parse(der.as_ref()).map_err(|e| ChainError::Malformed {
                    index: i + 1,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = find_leaf(&parsed)?;
        let mut best: Option<ChainError> = None;
        for tp in self.trustpoints.iter().filter(|tp| allowed(&tp.name)) {
            match tp.validate(presented, &parsed, leaf, now) {
                Ok(chain) => return Ok(chain),
                Err(e) => {
                    let more_telling = matches!(
                        best,
                        None | Some(
                            ChainError::UnknownIssuer { .. } | ChainError::SelfSignedLeaf { .. }
                        )
                    );
                    if more_telling {
                        best = Some(e);
                    }
                }
            }
        }
        Err(best.unwrap_or(ChainError::NoLeaf))
    }
}

impl LoadedTrustpoint {
    fn load(tp: &Trustpoint) -> Result<Self, TrustStoreError> {
        let trustpoint = tp.name.clone();
        let ca_certificates = pem::certificates(&tp.ca_certificates_pem).map_err(|source| {
            TrustStoreError::CaCertificates {
                trustpoint: trustpoint.clone(),
                source,
            }
        })?;
        if ca_certificates.len() > MAX_TRUSTPOINT_CERTIFICATES {
            return Err(TrustStoreError::TooManyCaCertificates {
                trustpoint,
                count: ca_certificates.len(),
                max: MAX_TRUSTPOINT_CERTIFICATES,
            });
        }
        let mut anchors = Vec::with_capacity(ca_certificates.len());
        for (i, der) in ca_certificates.iter().enumerate() {
            let unusable = |reason: String| TrustStoreError::CaCertificate {
                trustpoint: trustpoint.clone(),
                index: i + 1,
                reason,
            };
            certificate_info::parse(der.as_ref()).map_err(|e| unusable(e.to_string()))?;
            let anchor =
                webpki::anchor_from_trusted_cert(der).map_err(|e| unusable(format!("{e}")))?;
            anchors.push(anchor.to_owned());
        }
        let crls =
            match &tp.revocation {
                Revocation::None => None,
                Revocation::Crl { crls_pem } => Some(CrlSet::from_pem(crls_pem).map_err(
                    |source| TrustStoreError::Crl {
                        trustpoint: trustpoint.clone(),
                        source,
                    },
                )?),
            };
        Ok(Self {
            name: trustpoint,
            skip_ca_flag_check: tp.skip_ca_flag_check,
            require_client_auth_eku: tp.require_client_auth_eku,
            ssl_client: tp.validation_usage.ssl_client,
            ca_certificates,
            anchors,
            crls,
        })
    }

    fn validate(
        &self,
        presented: &[CertificateDer<'_>],
        parsed: &[X509Certificate<'_>],
        leaf: usize,
        now: OffsetDateTime,
    ) -> Result<ValidatedChain, ChainError> {
        let (indices, anchors) = self.path_by_name(parsed, leaf)?;
        if !self.ssl_client {
            let cert = parsed.get(leaf).ok_or(ChainError::NoLeaf)?;
            return Err(ChainError::TrustpointNotForSslClients {
                cert: id_of(cert, CertificateRole::Leaf),
                trustpoint: self.name.clone(),
            });
        }
        let mut path = Vec::with_capacity(indices.len() + 1);
        for (position, index) in indices.iter().enumerate() {
            let Some(cert) = parsed.get(*index) else {
                return Err(ChainError::NoLeaf);
            };
            let role = if position == 0 {
                CertificateRole::Leaf
            } else {
                CertificateRole::Intermediate
            };
            path.push(Member {
                id: id_of(cert, role),
                cert,
            });
        }
        // Several CA certificates may share the issuer's name (CA renewal): the first
        // that passes the checks is used; webpki then picks by signature, and the path
        // it verified is checked again below.
        let mut first_error = None;
        let mut checked = None;
        for anchor_der in anchors.iter().filter_map(|a| self.ca_certificates.get(*a)) {
            let Ok(anchor) = certificate_info::parse(anchor_der.as_ref()) else {
                continue;
            };
            match self.check(&path, &anchor, now) {
                Ok(()) => {
                    checked = Some(anchor);
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some(anchor) = checked else {
            return Err(first_error.unwrap_or(ChainError::NoLeaf));
        };
        path.push(Member {
            id: id_of(&anchor, CertificateRole::Anchor),
            cert: &anchor,
        });
        let validated = self.verify_with_webpki(presented, leaf, &path, now)?;
        self.recheck(&validated.chain, now)?;
        Ok(validated)
    }

    /// The checks webpki does not make, on a path without its anchor plus `anchor`.
    fn check(
        &self,
        below_anchor: &[Member<'_, '_>],
        anchor: &X509Certificate<'_>,
        now: OffsetDateTime,
    ) -> Result<(), ChainError> {
        let mut path: Vec<Member<'_, '_>> = below_anchor
            .iter()
            .map(|m| Member {
                id: m.id.clone(),
                cert: m.cert,
            })
            .collect();
        path.push(Member {
            id: id_of(anchor, CertificateRole::Anchor),
            cert: anchor,
        });
        checks::validity(&path, now)?;
        checks::algorithms(&path)?;
        checks::ca_flags(&path, self.skip_ca_flag_check)?;
        checks::path_len(&path)?;
        match path.first() {
            Some(leaf) => checks::leaf_eku(leaf, self.require_client_auth_eku),
            None => Err(ChainError::NoLeaf),
        }
    }

    /// Runs [`Self::check`] on the path webpki verified (leaf first, anchor last).
    fn recheck(&self, chain: &[CertificateDer<'_>], now: OffsetDateTime) -> Result<(), ChainError> {
        let parsed = chain
            .iter()
            .enumerate()
            .map(|(i, der)| {
                certificate_info::parse(der.as_ref()).map_err(|e| ChainError::Malformed {
                    index: i + 1,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some((anchor, below)) = parsed.split_last() else {
            return Err(ChainError::NoLeaf);
        };
        let path: Vec<Member<'_, '_>> = below
            .iter()
            .enumerate()
            .map(|(i, cert)| Member {
                id: id_of(
                    cert,
                    if i == 0 {
                        CertificateRole::Leaf
                    } else {
                        CertificateRole::Intermediate
                    },
                ),
                cert,
            })
            .collect();
        self.check(&path, anchor, now)
    }

    /// Leaf → presented issuers by name → a CA of this trustpoint.
    fn path_by_name(
        &self,
        parsed: &[X509Certificate<'_>],
        leaf: usize,
    ) -> Result<(Vec<usize>, Vec<usize>), ChainError> {
        let mut indices = vec![leaf];
        let mut current = leaf;
        loop {
            let Some(cert) = parsed.get(current) else {
                return Err(ChainError::NoLeaf);
            };
            let issuer = cert.issuer().as_raw();
            let anchors: Vec<usize> = (0..self.ca_certificates.len())
                .filter(|i| {
                    self.ca_certificates.get(*i).is_some_and(|ca| {
                        certificate_info::parse(ca.as_ref())
                            .is_ok_and(|ca| ca.subject().as_raw() == issuer)
                    })
                })
                .collect();
            if !anchors.is_empty() {
                return Ok((indices, anchors));
            }
            let next = parsed
                .iter()
                .enumerate()
                .find(|(i, c)| !indices.contains(i) && c.subject().as_raw() == issuer)
                .map(|(i, _)| i);
            match next {
                Some(next) => {
                    indices.push(next);
                    current = next;
                }
                None if current == leaf && cert.subject().as_raw() == issuer => {
                    return Err(ChainError::SelfSignedLeaf {
                        cert: id_of(cert, CertificateRole::Leaf),
                    });
                }
                None => {
                    let role = if current == leaf {
                        CertificateRole::Leaf
                    } else {
                        CertificateRole::Intermediate
                    };
                    return Err(ChainError::UnknownIssuer {
                        cert: id_of(cert, role),
                        issuer: cert.issuer().to_string(),
                    });
                }
            }
        }
    }

    fn verify_with_webpki(
        &self,
        presented: &[CertificateDer<'_>],
        leaf: usize,
        path: &[Member<'_, '_>],
        now: OffsetDateTime,
    ) -> Result<ValidatedChain, ChainError> {
        let leaf_der = presented.get(leaf).ok_or(ChainError::NoLeaf)?;
        let leaf_id = path
            .first()
            .map(|m| m.id.clone())
            .ok_or(ChainError::NoLeaf)?;
        let end_entity = EndEntityCert::try_from(leaf_der).map_err(|e| ChainError::Rejected {
            cert: leaf_id.clone(),
            reason: format!("{e}"),
        })?;
        let intermediates: Vec<CertificateDer<'_>> = presented
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leaf)
            .map(|(_, der)| CertificateDer::from(der.as_ref()))
            .collect();
        let crls = self
            .crls
            .as_ref()
            .map(CrlSet::webpki_crls)
            .unwrap_or_default();
        let revocation = revocation::options(&crls);
        let verified = end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                unix_time(now),
                KeyUsage::client_auth(),
                revocation,
                None,
            )
            .map_err(|e| self.explain(e, path, now))?;
        let mut chain = vec![CertificateDer::from(leaf_der.as_ref().to_vec())];
        chain.extend(
            verified
                .intermediate_certificates()
                .map(|c| CertificateDer::from(c.der().as_ref().to_vec())),
        );
        let anchor = self
            .anchors
            .iter()
            .position(|a| std::ptr::eq(a, verified.anchor()))
            .and_then(|i| self.ca_certificates.get(i));
        if let Some(anchor) = anchor {
            chain.push(anchor.clone());
        }
        let leaf_info =
            CertificateInfo::from_der(leaf_der.as_ref()).map_err(|e| ChainError::Malformed {
                index: leaf + 1,
                reason: e.to_string(),
            })?;
        Ok(ValidatedChain {
            trustpoint: self.name.clone(),
            leaf: leaf_info,
            chain,
        })
    }

    /// Turns a webpki error into one that names the certificate or CRL.
    fn explain(
        &self,
        error: WebPkiError,
        path: &[Member<'_, '_>],
        now: OffsetDateTime,
    ) -> ChainError {
        let below_anchor = || path.iter().filter(|m| m.id.role != CertificateRole::Anchor);
        let leaf = path.first().map(|m| m.id.clone()).unwrap_or(CertificateId {
            role: CertificateRole::Leaf,
            subject: String::new(),
            serial: String::new(),
        });
        let trustpoint = self.name.clone();
        let crls = self.crls.as_ref();
        match error {
            WebPkiError::CertRevoked => below_anchor()
                .find_map(|m| {
                    let at = crls?.revoked_at(m.cert)?;
                    Some(ChainError::Revoked {
                        cert: m.id.clone(),
                        revoked_at: Some(at),
                    })
                })
                .unwrap_or(ChainError::Revoked {
                    cert: leaf,
                    revoked_at: None,
                }),
            WebPkiError::UnknownRevocationStatus => {
                let uncovered = below_anchor()
                    .find(|m| !crls.is_some_and(|c| c.covers(m.cert)))
                    .map(|m| (m.id.clone(), m.cert.issuer().to_string()));
                let (cert, issuer) = uncovered.unwrap_or((leaf, String::new()));
                ChainError::RevocationUnknown {
                    cert,
                    issuer,
                    trustpoint,
                }
            }
            WebPkiError::CrlExpired { next_update, .. } => {
                let found = below_anchor().find_map(|m| crls?.expired_for(m.cert, now));
                let (crl_issuer, next_update) = found.unwrap_or((
                    String::new(),
                    OffsetDateTime::from_unix_timestamp(
                        i64::try_from(next_update.as_secs()).unwrap_or(0),
                    )
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                ));
                ChainError::CrlExpired {
                    crl_issuer,
                    trustpoint,
                    next_update,
                }
            }
            WebPkiError::InvalidCrlSignatureForPublicKey
            | WebPkiError::IssuerNotCrlSigner
            | WebPkiError::UnsupportedCrlSignatureAlgorithmContext(_)
            | WebPkiError::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => {
                let crl_issuer = below_anchor()
                    .find_map(|m| crls?.issuer_for(m.cert))
                    .unwrap_or_default();
                ChainError::CrlSignatureInvalid {
                    crl_issuer,
                    trustpoint,
                }
            }
            WebPkiError::InvalidSignatureForPublicKey
            | WebPkiError::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
            | WebPkiError::UnknownIssuer => ChainError::BadSignature { cert: leaf },
            WebPkiError::CaUsedAsEndEntity => ChainError::LeafIsCa { cert: leaf },
            WebPkiError::EndEntityUsedAsCa => ChainError::IssuerNotCa {
                cert: below_anchor().nth(1).map(|m| m.id.clone()).unwrap_or(leaf),
            },
            WebPkiError::RequiredEkuNotFoundContext(_) => ChainError::WrongEku {
                cert: leaf,
                found: Vec::new(),
            },
            other => ChainError::Rejected {
                cert: leaf,
                reason: format!("{other}"),
            },
        }
    }
}

/// The presented certificate that issues none of the others.
fn find_leaf(parsed: &[X509Certificate<'_>]) -> Result<usize, ChainError> {
    let leaves: Vec<usize> = (0..parsed.len())
        .filter(|&i| {
            let subject = parsed.get(i).map(|c| c.subject().as_raw());
            !parsed
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && Some(other.issuer().as_raw()) == subject)
        })
        .collect();
    match leaves.as_slice() {
        [] => Err(ChainError::NoLeaf),
        [one] => Ok(*one),
        many => Err(ChainError::MultipleLeaves {
            subjects: many
                .iter()
                .filter_map(|i| parsed.get(*i))
                .map(|c| c.subject().to_string())
                .collect(),
        }),
    }
}

fn id_of(cert: &X509Certificate<'_>, role: CertificateRole) -> CertificateId {
    CertificateId {
        role,
        subject: cert.subject().to_string(),
        serial: serial_hex(cert.raw_serial()),
    }
}

fn unix_time(now: OffsetDateTime) -> UnixTime {
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests;
