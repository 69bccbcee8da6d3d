//! Test identities, PKCS#7 bags, signatures and reply bodies, generated at test time.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256,
    RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cms::cert::CertificateChoices;
use cms::cert::x509::Certificate;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Decode, Encode};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, RsaKeySize,
};
use rustls_pki_types::CertificateDer;

use super::McaHash;

pub(crate) const SIGNED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub(crate) const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub(crate) const DIGESTED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.5");

/// The key types openconnect users carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa2048,
    P256,
    P384,
}

/// A certificate and its private key.
pub(crate) struct Identity {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) key: KeyPair,
    pub(crate) kind: KeyKind,
}

pub(crate) type Ca = CertifiedIssuer<'static, KeyPair>;

/// `vpn-core` takes time as a parameter; tests need one real instant to start from.
#[allow(clippy::disallowed_methods)]
pub(crate) fn start() -> Instant {
    Instant::now()
}

pub(crate) fn key(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyKind::P256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        KeyKind::P384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
    }
    .expect("key generation")
}

fn params(cn: &str, is_ca: IsCa) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = is_ca;
    params
}

/// A self-signed root CA (P-256).
pub(crate) fn root_ca(cn: &str) -> Ca {
    let params = params(cn, IsCa::Ca(BasicConstraints::Unconstrained));
    CertifiedIssuer::self_signed(params, key(KeyKind::P256)).expect("root")
}

/// A CA certificate issued by `issuer`.
pub(crate) fn intermediate_ca(cn: &str, issuer: &Ca) -> Ca {
    let params = params(cn, IsCa::Ca(BasicConstraints::Unconstrained));
    CertifiedIssuer::signed_by(params, key(KeyKind::P256), issuer).expect("intermediate")
}

/// An end-entity certificate (`basicConstraints CA:FALSE`) issued by `issuer`.
pub(crate) fn leaf(cn: &str, kind: KeyKind, issuer: &Ca) -> Identity {
    leaf_with(cn, kind, issuer, IsCa::ExplicitNoCa)
}

/// An end-entity certificate with `is_ca` (e.g. `IsCa::NoCa`: no basicConstraints at all).
pub(crate) fn leaf_with(cn: &str, kind: KeyKind, issuer: &Ca, is_ca: IsCa) -> Identity {
    let key = key(kind);
    let certificate = params(cn, is_ca).signed_by(&key, issuer).expect("leaf");
    Identity {
        der: certificate.der().clone(),
        key,
        kind,
    }
}

/// Signs `data` as openconnect does: RSA PKCS#1 v1.5 or ECDSA (DER), with `hash`.
/// aws-lc-rs signs the curve's natural hash; the other pairs go through the openssl CLI.
pub(crate) fn sign(identity: &Identity, hash: McaHash, data: &[u8]) -> Vec<u8> {
    let pkcs8 = identity.key.serialized_der();
    let rng = SystemRandom::new();
    match (identity.kind, hash) {
        (KeyKind::Rsa2048, _) => {
            let key = RsaKeyPair::from_pkcs8(pkcs8).expect("rsa key");
            let encoding = match hash {
                McaHash::Sha256 => &RSA_PKCS1_SHA256,
                McaHash::Sha384 => &RSA_PKCS1_SHA384,
                McaHash::Sha512 => &RSA_PKCS1_SHA512,
            };
            let mut signature = vec![0u8; key.public_modulus_len()];
            key.sign(encoding, &rng, data, &mut signature)
                .expect("rsa sign");
            signature
        }
        (KeyKind::P256, McaHash::Sha256) => {
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).expect("p256 key");
            key.sign(&rng, data).expect("sign").as_ref().to_vec()
        }
        (KeyKind::P384, McaHash::Sha384) => {
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8).expect("p384 key");
            key.sign(&rng, data).expect("sign").as_ref().to_vec()
        }
        _ => openssl_sign(&identity.key.serialize_pem(), hash, data),
    }
}

fn openssl_sign(key_pem: &str, hash: McaHash, data: &[u8]) -> Vec<u8> {
    let dir = scratch_dir();
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, key_pem).expect("write key");
    let output = run_openssl(
        &[
            "dgst",
            &format!("-{}", hash.as_str()),
            "-sign",
            key_path.to_str().expect("utf-8 path"),
        ],
        data,
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
    output
}

/// A fresh private directory for one openssl run.
fn scratch_dir() -> std::path::PathBuf {
    let mut name = [0u8; 8];
    aws_lc_rs::rand::fill(&mut name).expect("random");
    let dir = std::env::temp_dir().join(format!("vpn-core-mca-{}", hex::encode(name)));
    std::fs::create_dir(&dir).expect("scratch dir");
    dir
}

/// Runs `openssl args...` with `input` on stdin and returns stdout.
pub(crate) fn run_openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("/usr/bin/openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let output = child.wait_with_output().expect("openssl output");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// DER of a PKCS#7 certificate bag as openconnect builds it: SignedData without signers,
/// inner content type `inner`, `certificates` in DER SET order.
pub(crate) fn bag_der(certificates: &[&CertificateDer<'_>], inner: ObjectIdentifier) -> Vec<u8> {
    let choices: Vec<CertificateChoices> = certificates
        .iter()
        .map(|der| CertificateChoices::Certificate(Certificate::from_der(der).expect("x509")))
        .collect();
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: inner,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(choices).expect("distinct certificates"),
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    content_info(SIGNED_DATA, &signed_data)
}

pub(crate) fn content_info(
    content_type: ObjectIdentifier,
    content: &(impl der::EncodeValue + der::Tagged),
) -> Vec<u8> {
    ContentInfo {
        content_type,
        content: Any::encode_from(content).expect("content"),
    }
    .to_der()
    .expect("content info")
}

/// The base64 text openconnect puts in `<client-cert>`: 64 columns, `\n` between lines.
pub(crate) fn wrapped_base64(der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("ascii"))
        .collect();
    lines.join("\n")
}

/// An MCA auth-reply body shaped like openconnect 9.01's (protocol.md §2.5).
pub(crate) fn reply_body(handle: &str, bag_base64: &str, signature: &[u8], hash: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"auth-reply\" \
         aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id>\
         <capabilities><auth-method>single-sign-on-v2</auth-method><auth-method>multiple-cert</auth-method>\
         </capabilities><session-token/><session-id/><opaque is-for=\"sg\">\n<tunnel-group>RAVPN-MultiCert\
         </tunnel-group>\n<aggauth-handle>{handle}</aggauth-handle>\n<auth-method>multiple-cert</auth-method>\n\
         <config-hash>1</config-hash>\n</opaque><auth><client-cert-chain cert-store=\"1M\">\
         <client-cert-sent-via-protocol/></client-cert-chain><client-cert-chain cert-store=\"1U\">\
         <client-cert cert-format=\"pkcs7\">{bag_base64}</client-cert><client-cert-auth-signature \
         hash-algorithm-chosen=\"{hash}\">{}</client-cert-auth-signature></client-cert-chain></auth>\
         </config-auth>",
        wrapped_base64(signature)
    )
    .into_bytes()
}

/// A bag whose signerInfos holds one (meaningless) signer: not a certificate bag.
pub(crate) fn bag_der_with_signer(certificate: &CertificateDer<'_>) -> Vec<u8> {
    use cms::cert::x509::ext::pkix::SubjectKeyIdentifier;
    use cms::cert::x509::spki::AlgorithmIdentifierOwned;
    use cms::signed_data::{SignerIdentifier, SignerInfo};
    use der::asn1::OctetString;

    let bag = ContentInfo::from_der(&bag_der(&[certificate], DIGESTED_DATA)).expect("bag");
    let mut signed_data: SignedData = bag.content.decode_as().expect("signed data");
    let sha256 = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1"),
        parameters: None,
    };
    let signer = SignerInfo {
        version: CmsVersion::V3,
        sid: SignerIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
            OctetString::new(vec![1, 2, 3]).expect("octets"),
        )),
        digest_alg: sha256.clone(),
        signed_attrs: None,
        signature_algorithm: sha256,
        signature: OctetString::new(vec![0; 8]).expect("octets"),
        unsigned_attrs: None,
    };
    signed_data.signer_infos.0.insert(signer).expect("signer");
    content_info(SIGNED_DATA, &signed_data)
}
