//! A small PKI generated at test time (rcgen): root and intermediate CAs, client
//! certificates with chosen subject, SANs, validity, EKU and key type, and CRLs.
//!
//! Built only for tests and with the `test-pki` feature, so the sensor and the
//! end-to-end tests can reuse it. Nothing here is secret: every key is fresh.

use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    OtherNameValue, RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub use rcgen::Error as TestPkiError;

/// The instant the test matrix validates at: inside the default validity window.
pub const TEST_NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
/// Default start of validity of generated certificates.
pub const DEFAULT_NOT_BEFORE: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
/// Default end of validity of generated certificates.
pub const DEFAULT_NOT_AFTER: OffsetDateTime = datetime!(2035-01-01 0:00 UTC);

/// OID of the Microsoft User Principal Name otherName.
pub const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

/// Key algorithm of a generated certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestKeyType {
    Rsa2048,
    #[default]
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

/// Extended key usages a generated leaf can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEku {
    ClientAuth,
    ServerAuth,
}

/// What a generated leaf (or intermediate) looks like.
#[derive(Debug, Clone)]
pub struct LeafOptions {
    pub common_name: Option<String>,
    /// Further subject attributes in order: attribute OID arcs and value.
    pub subject: Vec<(Vec<u64>, String)>,
    /// A UPN otherName in the subjectAltName.
    pub upn: Option<String>,
    /// An rfc822Name in the subjectAltName.
    pub email_san: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Empty: no EKU extension at all.
    pub eku: Vec<TestEku>,
    pub is_ca: bool,
    pub key_type: TestKeyType,
}

impl LeafOptions {
    /// A client certificate `CN=<cn>`, EKU clientAuth, ECDSA P-256, valid 2025–2035.
    pub fn client(cn: &str) -> Self {
        Self {
            common_name: Some(cn.to_owned()),
            subject: Vec::new(),
            upn: None,
            email_san: None,
            not_before: DEFAULT_NOT_BEFORE,
            not_after: DEFAULT_NOT_AFTER,
            eku: vec![TestEku::ClientAuth],
            is_ca: false,
            key_type: TestKeyType::default(),
        }
    }

    /// Adds a subject attribute by OID arcs (e.g. `[2, 5, 4, 11]` for OU).
    pub fn with_attribute(mut self, oid: &[u64], value: &str) -> Self {
        self.subject.push((oid.to_vec(), value.to_owned()));
        self
    }
}

/// A generated certificate with its key.
#[derive(Debug, Clone)]
pub struct TestCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    /// The serial number, big-endian bytes.
    pub serial: Vec<u8>,
}

/// A generated CRL.
#[derive(Debug, Clone)]
pub struct TestCrl {
    pub pem: String,
    pub der: Vec<u8>,
}

/// A certificate authority that can issue certificates, sub-CAs and CRLs.
#[derive(Debug)]
pub struct TestCa {
    pub cert: TestCert,
    params: CertificateParams,
    key: KeyPair,
}

impl TestCa {
    /// A self-signed root CA `CN=<cn>` (ECDSA P-256, valid 2025–2035, no path length limit).
    pub fn root(cn: &str) -> Result<Self, TestPkiError> {
        Self::root_with(cn, TestKeyType::default(), None, DEFAULT_NOT_AFTER)
    }

    /// A self-signed root with a chosen key, path length limit and end of validity.
    pub fn root_with(
        cn: &str,
        key_type: TestKeyType,
        path_len: Option<u8>,
        not_after: OffsetDateTime,
    ) -> Result<Self, TestPkiError> {
        let key = generate_key(key_type)?;
        let mut params = ca_params(cn, path_len);
        params.not_after = not_after;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert: test_cert(cert.pem(), cert.der().to_vec(), &key, &params),
            params,
            key,
        })
    }

    /// A self-signed certificate that carries the same subject as this CA but a new key:
    /// a rogue CA impersonating this one.
    pub fn impostor(&self) -> Result<Self, TestPkiError> {
        let key = generate_key(TestKeyType::default())?;
        let mut params = self.params.clone();
        params.serial_number = Some(next_serial());
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert: test_cert(cert.pem(), cert.der().to_vec(), &key, &params),
            params,
            key,
        })
    }

    /// A sub-CA `CN=<cn>` signed by this CA.
    pub fn intermediate(&self, cn: &str, path_len: Option<u8>) -> Result<Self, TestPkiError> {
        let key = generate_key(TestKeyType::default())?;
        let params = ca_params(cn, path_len);
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(Self {
            cert: test_cert(cert.pem(), cert.der().to_vec(), &key, &params),
            params,
            key,
        })
    }

    /// A certificate issued by this CA.
    pub fn issue(&self, options: &LeafOptions) -> Result<TestCert, TestPkiError> {
        let key = generate_key(options.key_type)?;
        let params = leaf_params(options)?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(test_cert(cert.pem(), cert.der().to_vec(), &key, &params))
    }

    /// A certificate issued by this CA for the key of `holder`: two certificates, one key.
    pub fn issue_for_key_of(
        &self,
        options: &LeafOptions,
        holder: &TestCert,
    ) -> Result<TestCert, TestPkiError> {
        let key = KeyPair::from_pem(&holder.key_pem)?;
        let params = leaf_params(options)?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(test_cert(cert.pem(), cert.der().to_vec(), &key, &params))
    }

    /// Like [`TestCa::issue`], also returning the result as a CA able to sign further
    /// certificates (used for issuers without the CA flag and over-long chains).
    pub fn issue_signer(&self, options: &LeafOptions) -> Result<Self, TestPkiError> {
        let key = generate_key(options.key_type)?;
        let params = leaf_params(options)?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(Self {
            cert: test_cert(cert.pem(), cert.der().to_vec(), &key, &params),
            params,
            key,
        })
    }

    /// A CRL signed by this CA listing `revoked` serials (revoked at `this_update`).
    pub fn crl(
        &self,
        revoked: &[&[u8]],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<TestCrl, TestPkiError> {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: next_serial(),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: this_update,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer())?;
        Ok(TestCrl {
            pem: crl.pem()?,
            der: crl.der().to_vec(),
        })
    }

    /// The CA key, PEM (PKCS#8), for tools like the openssl CLI.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn ca_params(cn: &str, path_len: Option<u8>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = DEFAULT_NOT_BEFORE;
    params.not_after = DEFAULT_NOT_AFTER;
    params.serial_number = Some(next_serial());
    params
}

fn leaf_params(options: &LeafOptions) -> Result<CertificateParams, TestPkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = &options.common_name {
        params
            .distinguished_name
            .push(DnType::CommonName, cn.as_str());
    }
    for (oid, value) in &options.subject {
        params.distinguished_name.push(dn_type(oid), value.as_str());
    }
    if let Some(upn) = &options.upn {
        params.subject_alt_names.push(SanType::OtherName((
            UPN_OID.to_vec(),
            OtherNameValue::Utf8String(upn.clone()),
        )));
    }
    if let Some(email) = &options.email_san {
        params
            .subject_alt_names
            .push(SanType::Rfc822Name(email.as_str().try_into()?));
    }
    params.not_before = options.not_before;
    params.not_after = options.not_after;
    params.extended_key_usages = options
        .eku
        .iter()
        .map(|eku| match eku {
            TestEku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            TestEku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        })
        .collect();
    params.is_ca = if options.is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if options.is_ca {
        params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    }
    params.serial_number = Some(next_serial());
    Ok(params)
}

fn dn_type(oid: &[u64]) -> DnType {
    match oid {
        [2, 5, 4, 3] => DnType::CommonName,
        [2, 5, 4, 6] => DnType::CountryName,
        [2, 5, 4, 7] => DnType::LocalityName,
        [2, 5, 4, 8] => DnType::StateOrProvinceName,
        [2, 5, 4, 10] => DnType::OrganizationName,
        [2, 5, 4, 11] => DnType::OrganizationalUnitName,
        other => DnType::CustomDnType(other.to_vec()),
    }
}

fn generate_key(key_type: TestKeyType) -> Result<KeyPair, TestPkiError> {
    KeyPair::generate_for(match key_type {
        TestKeyType::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        TestKeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        TestKeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        TestKeyType::Ed25519 => &rcgen::PKCS_ED25519,
    })
}

fn test_cert(pem: String, der: Vec<u8>, key: &KeyPair, params: &CertificateParams) -> TestCert {
    TestCert {
        cert_pem: pem,
        cert_der: der,
        key_pem: key.serialize_pem(),
        serial: params
            .serial_number
            .as_ref()
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default(),
    }
}

/// Serials unique within the process, positive, 8 bytes.
fn next_serial() -> SerialNumber {
    static NEXT: AtomicU64 = AtomicU64::new(0x1000_0000_0000_0001);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    SerialNumber::from_slice(&n.to_be_bytes())
}
