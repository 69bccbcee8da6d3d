//! Trustpoints (CA certificates, CRLs) and the headend (ports, identity certificate
//! and key).
//!
//! Certificates are counted from 1 in their PEM text (`certificate #1` is the first
//! block). A CA certificate outside its validity period is an error, like an identity
//! certificate: no client certificate can chain to it.

use aws_lc_rs::error::KeyRejected;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::{Findings, ProblemKind};
use crate::config::{DeviceConfig, Revocation};
use crate::pki::pem;

/// A certificate expiring within this many days is reported by `warnings()`.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

pub(super) fn check(config: &DeviceConfig, now: OffsetDateTime, found: &mut Findings) {
    for (i, trustpoint) in config.trustpoints.iter().enumerate() {
        let path = format!("$.trustpoints[{i}].ca_certificates_pem");
        let skip_ca_check = trustpoint.skip_ca_flag_check;
        let pem_text = &trustpoint.ca_certificates_pem;
        for_each_certificate(pem_text, &path, found, |index, cert, found| {
            let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
            if !is_ca && !skip_ca_check {
                let subject = cert.subject().to_string();
                found.push(
                    path.clone(),
                    ProblemKind::NotACaCertificate { index, subject },
                );
            }
            check_validity(cert, index, now, &path, found);
        });
        if let Revocation::Crl { crls_pem } = &trustpoint.revocation {
            let path = format!("$.trustpoints[{i}].revocation.crls_pem");
            for_each_crl(crls_pem, &path, found, |_, _, _| {});
        }
    }
    check_headend(config, now, found);
}

pub(super) fn warn(config: &DeviceConfig, now: OffsetDateTime, found: &mut Findings) {
    let mut quiet = Findings::default();
    let identity = &config.headend.identity.certificate_chain_pem;
    let path = "$.headend.identity.certificate_chain_pem".to_owned();
    for_each_certificate(identity, &path, &mut quiet, |index, cert, _| {
        warn_expiry(cert, index, now, &path, found);
    });
    for (i, trustpoint) in config.trustpoints.iter().enumerate() {
        let path = format!("$.trustpoints[{i}].ca_certificates_pem");
        for_each_certificate(
            &trustpoint.ca_certificates_pem,
            &path,
            &mut quiet,
            |index, cert, _| {
                warn_expiry(cert, index, now, &path, found);
            },
        );
        if let Revocation::Crl { crls_pem } = &trustpoint.revocation {
            warn_crl_issuers(&trustpoint.ca_certificates_pem, crls_pem, i, found);
        }
    }
}

/// A CRL not issued by one of the trustpoint's CA certificates can only be for an
/// intermediate CA that clients send in their chain (each CRL is verified against the
/// certificate that issued it when a chain is checked, in `pki`): nothing here knows
/// such a CA, so if no client chain passes through it the CRL is never used. A warning.
fn warn_crl_issuers(ca_pem: &str, crls_pem: &str, i: usize, found: &mut Findings) {
    let mut quiet = Findings::default();
    let mut ca_subjects: Vec<Vec<u8>> = Vec::new();
    for_each_certificate(ca_pem, "", &mut quiet, |_, cert, _| {
        ca_subjects.push(cert.subject().as_raw().to_vec());
    });
    let path = format!("$.trustpoints[{i}].revocation.crls_pem");
    for_each_crl(crls_pem, &path, &mut quiet, |index, crl, _| {
        let issuer = crl.issuer();
        if !ca_subjects.iter().any(|s| s.as_slice() == issuer.as_raw()) {
            let issuer = issuer.to_string();
            found.push(
                path.clone(),
                ProblemKind::CrlFromUnknownIssuer { index, issuer },
            );
        }
    });
}

fn check_headend(config: &DeviceConfig, now: OffsetDateTime, found: &mut Findings) {
    let headend = &config.headend;
    if headend.ssl_port == 0 {
        found.push("$.headend.ssl_port", ProblemKind::PortZero);
    }
    if headend.dtls_port == 0 {
        found.push("$.headend.dtls_port", ProblemKind::PortZero);
    }
    let identity = &headend.identity;
    let chain_path = "$.headend.identity.certificate_chain_pem".to_owned();
    let mut leaf_key: Option<(Vec<u8>, String)> = None;
    for_each_certificate(
        &identity.certificate_chain_pem,
        &chain_path,
        found,
        |index, cert, found| {
            if index == 1 {
                let spki = cert.public_key().subject_public_key.data.to_vec();
                leaf_key = Some((spki, cert.subject().to_string()));
            }
            check_validity(cert, index, now, &chain_path, found);
        },
    );
    let key_path = "$.headend.identity.private_key_pem";
    let key = match pem::private_key(identity.private_key_pem.expose()) {
        Ok(key) => key,
        Err(e) => {
            let reason = e.to_string();
            found.push(key_path, ProblemKind::UnreadablePrivateKey { reason });
            return;
        }
    };
    let Some(public_key) = public_key_of(&key) else {
        let reason =
            "it is not a usable RSA (2048–8192 bits), ECDSA (P-256, P-384, P-521) or Ed25519 key"
                .to_owned();
        found.push(key_path, ProblemKind::UnreadablePrivateKey { reason });
        return;
    };
    if let Some((spki, subject)) = leaf_key
        && spki != public_key
    {
        found.push(
            key_path,
            ProblemKind::KeyDoesNotMatchCertificate { subject },
        );
    }
}

/// Decodes every certificate of a PEM text and hands each parsed one (numbered from 1)
/// to `each`; what cannot be decoded or parsed is reported at `path`.
fn for_each_certificate(
    text: &str,
    path: &str,
    found: &mut Findings,
    mut each: impl FnMut(usize, &X509Certificate<'_>, &mut Findings),
) {
    let ders: Vec<CertificateDer<'static>> = match pem::certificates(text) {
        Ok(ders) => ders,
        Err(e) => {
            found.push(
                path,
                ProblemKind::UnreadablePem {
                    reason: e.to_string(),
                },
            );
            return;
        }
    };
    for (position, der) in ders.iter().enumerate() {
        let index = position + 1;
        match X509Certificate::from_der(der.as_ref()) {
            Ok((_, cert)) => each(index, &cert, found),
            Err(e) => {
                let reason = e.to_string();
                found.push(path, ProblemKind::UnparsableCertificate { index, reason });
            }
        }
    }
}

/// Calls `each` with every CRL of `text` that parses; the others are problems (the
/// signature is checked where revocation is checked, in `pki`).
fn for_each_crl(
    text: &str,
    path: &str,
    found: &mut Findings,
    mut each: impl FnMut(usize, &CertificateRevocationList<'_>, &mut Findings),
) {
    let ders = match pem::crls(text) {
        Ok(ders) => ders,
        Err(e) => {
            found.push(
                path,
                ProblemKind::UnreadablePem {
                    reason: e.to_string(),
                },
            );
            return;
        }
    };
    for (position, der) in ders.iter().enumerate() {
        let index = position + 1;
        match x509_parser::parse_x509_crl(der.as_ref()) {
            Err(e) => {
                let reason = e.to_string();
                found.push(path, ProblemKind::UnparsableCrl { index, reason });
            }
            Ok((_, crl)) => each(index, &crl, found),
        }
    }
}

fn check_validity(
    cert: &X509Certificate<'_>,
    index: usize,
    now: OffsetDateTime,
    path: &str,
    found: &mut Findings,
) {
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    let subject = cert.subject().to_string();
    if now > not_after {
        found.push(
            path,
            ProblemKind::CertificateExpired {
                index,
                subject,
                not_after,
            },
        );
    } else if now < not_before {
        found.push(
            path,
            ProblemKind::CertificateNotYetValid {
                index,
                subject,
                not_before,
            },
        );
    }
}

fn warn_expiry(
    cert: &X509Certificate<'_>,
    index: usize,
    now: OffsetDateTime,
    path: &str,
    found: &mut Findings,
) {
    let not_after = cert.validity().not_after.to_datetime();
    let left = not_after - now;
    if left >= Duration::ZERO && left < Duration::days(EXPIRY_WARNING_DAYS) {
        let (subject, days_left) = (cert.subject().to_string(), left.whole_days());
        let kind = ProblemKind::CertificateExpiresSoon {
            index,
            subject,
            not_after,
            days_left,
        };
        found.push(path, kind);
    }
}

/// The public key bytes (as in a certificate's subjectPublicKey BIT STRING) of a
/// private key aws-lc-rs can load, or `None`.
fn public_key_of(key: &PrivateKeyDer<'_>) -> Option<Vec<u8>> {
    match key {
        PrivateKeyDer::Pkcs8(pkcs8) => {
            let der = pkcs8.secret_pkcs8_der();
            ecdsa_public_key(der, EcdsaKeyPair::from_pkcs8)
                .or_else(|| {
                    RsaKeyPair::from_pkcs8(der)
                        .ok()
                        .map(|k| k.public_key().as_ref().to_vec())
                })
                .or_else(|| {
                    let k = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?;
                    Some(k.public_key().as_ref().to_vec())
                })
        }
        PrivateKeyDer::Pkcs1(pkcs1) => RsaKeyPair::from_der(pkcs1.secret_pkcs1_der())
            .ok()
            .map(|k| k.public_key().as_ref().to_vec()),
        PrivateKeyDer::Sec1(sec1) => {
            ecdsa_public_key(sec1.secret_sec1_der(), EcdsaKeyPair::from_private_key_der)
        }
        _ => None,
    }
}

type EcdsaParser = fn(&'static EcdsaSigningAlgorithm, &[u8]) -> Result<EcdsaKeyPair, KeyRejected>;

/// Tries each curve the sensor supports in turn.
fn ecdsa_public_key(der: &[u8], parse: EcdsaParser) -> Option<Vec<u8>> {
    let curves: [&'static EcdsaSigningAlgorithm; 3] = [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        &ECDSA_P521_SHA512_ASN1_SIGNING,
    ];
    curves
        .into_iter()
        .find_map(|curve| parse(curve, der).ok())
        .map(|k| k.public_key().as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use rcgen::date_time_ymd;

    use super::*;
    use crate::config::PrivateKeyPem;
    use crate::config::fixture::{identity_pem_with, seed_config, seed_now};

    /// The PKCS#1 or SEC1 key inside a PKCS#8 PrivateKeyInfo, PEM-encoded under `label`.
    fn traditional_pem(pkcs8_pem: &str, label: &str) -> String {
        let Ok(PrivateKeyDer::Pkcs8(pkcs8)) = pem::private_key(pkcs8_pem) else {
            panic!("rcgen writes PKCS#8");
        };
        let (_, info, _) = tlv(pkcs8.secret_pkcs8_der());
        let (_, _version, rest) = tlv(info);
        let (_, _algorithm, rest) = tlv(rest);
        let (tag, inner, _) = tlv(rest);
        assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
        let body = STANDARD.encode(inner);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// One DER element: tag, contents, what follows.
    fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let (tag, first) = (der[0], der[1]);
        let (length, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            let length = der[2..2 + n]
                .iter()
                .fold(0, |acc, b| acc << 8 | usize::from(*b));
            (length, 2 + n)
        };
        (tag, &der[header..header + length], &der[header + length..])
    }

    fn problems_with_identity(chain: String, key: String) -> Vec<crate::config::ConfigProblem> {
        let mut config = seed_config();
        config.headend.identity.certificate_chain_pem = chain;
        config.headend.identity.private_key_pem = PrivateKeyPem(key);
        config.validate(seed_now()).err().unwrap_or_default()
    }

    #[test]
    fn rsa_identity_key_matches_in_pkcs8_and_pkcs1_form() {
        let (from, until) = (date_time_ymd(2025, 1, 1), date_time_ymd(2027, 1, 1));
        let (chain, key) = identity_pem_with(&rcgen::PKCS_RSA_SHA256, from, until);
        let pkcs1 = traditional_pem(&key, "RSA PRIVATE KEY");
        assert!(matches!(
            pem::private_key(&pkcs1),
            Ok(PrivateKeyDer::Pkcs1(_))
        ));
        assert_eq!(problems_with_identity(chain.clone(), key), vec![]);
        assert_eq!(problems_with_identity(chain, pkcs1), vec![]);
    }

    #[test]
    fn ecdsa_identity_key_matches_in_sec1_form_and_a_foreign_one_does_not() {
        let (from, until) = (date_time_ymd(2025, 1, 1), date_time_ymd(2027, 1, 1));
        let (chain, key) = identity_pem_with(&rcgen::PKCS_ECDSA_P384_SHA384, from, until);
        let sec1 = traditional_pem(&key, "EC PRIVATE KEY");
        assert!(matches!(
            pem::private_key(&sec1),
            Ok(PrivateKeyDer::Sec1(_))
        ));
        assert_eq!(problems_with_identity(chain.clone(), sec1), vec![]);

        let (_, foreign) = identity_pem_with(&rcgen::PKCS_ECDSA_P384_SHA384, from, until);
        let foreign = traditional_pem(&foreign, "EC PRIVATE KEY");
        let problems = problems_with_identity(chain, foreign);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(matches!(
            problems[0].kind,
            ProblemKind::KeyDoesNotMatchCertificate { .. }
        ));
    }
}
