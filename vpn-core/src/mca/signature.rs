//! The user certificate's signature over the challenge bytes.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{McaError, McaHash};

/// Checks `signature` over `signed` with the public key of the certificate `leaf_der`:
/// RSA PKCS#1 v1.5 (2048–8192 bits) or ECDSA P-256/P-384 (DER), with `hash`.
pub fn verify_signature(
    signed: &[u8],
    leaf_der: &[u8],
    hash: McaHash,
    signature: &[u8],
) -> Result<(), McaError> {
    let (_, certificate) =
        X509Certificate::from_der(leaf_der).map_err(|_| McaError::LeafCertificateInvalid)?;
    let key_info = &certificate.tbs_certificate.subject_pki;
    let key_type = key_type(&key_info.algorithm)?;
    let algorithm: &'static dyn VerificationAlgorithm = match (key_type, hash) {
        (KeyType::Rsa, McaHash::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyType::Rsa, McaHash::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyType::Rsa, McaHash::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyType::P256, McaHash::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyType::P256, McaHash::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyType::P256, McaHash::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
        (KeyType::P384, McaHash::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyType::P384, McaHash::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (KeyType::P384, McaHash::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
    };
    UnparsedPublicKey::new(algorithm, &key_info.subject_public_key.data)
        .verify(signed, signature)
        .map_err(|_| McaError::BadSignature)
}

#[derive(Debug, Clone, Copy)]
enum KeyType {
    Rsa,
    P256,
    P384,
}

fn key_type(algorithm: &x509_parser::x509::AlgorithmIdentifier<'_>) -> Result<KeyType, McaError> {
    if algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        return Ok(KeyType::Rsa);
    }
    if algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return Err(McaError::UnsupportedKey);
    }
    let curve = algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.as_oid().ok())
        .ok_or(McaError::UnsupportedKey)?;
    if curve == OID_EC_P256 {
        Ok(KeyType::P256)
    } else if curve == OID_NIST_EC_P384 {
        Ok(KeyType::P384)
    } else {
        Err(McaError::UnsupportedKey)
    }
}
