//! The user certificate bag: base64 PKCS#7 SignedData with no signers (protocol.md §2.5).
//!
//! openconnect 9.01 (GnuTLS) puts `digestedData` as the encapsulated content type, which
//! strict CMS decoders refuse; `openssl crl2pkcs7` puts `data`. Both are accepted. The
//! structure is walked with `der`, and only the `certificates` field is read, keeping
//! each certificate's exact DER.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::asn1::{AnyRef, ContextSpecific, ObjectIdentifier};
use der::{Decode, Header, Reader, SliceReader, Tag, TagNumber, Tagged};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::McaError;

/// Most certificates accepted in a bag (the user certificate and its intermediates).
pub const MAX_BAG_CERTIFICATES: usize = 10;
/// Longest accepted base64 bag, whitespace removed (ten 4096-bit RSA certificates fit).
pub const MAX_BAG_BASE64_BYTES: usize = 96 * 1024;

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const DIGESTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.5");

/// The user certificate and the other certificates the client sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCertificateBag {
    /// The single end-entity certificate (not CA by basicConstraints).
    pub leaf: CertificateDer<'static>,
    /// The CA certificates, in bag order (path candidates, not a verified chain).
    pub intermediates: Vec<CertificateDer<'static>>,
}

impl UserCertificateBag {
    /// Every certificate, leaf first: what `pki` chain validation takes.
    pub fn certificates(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once(self.leaf.clone())
            .chain(self.intermediates.iter().cloned())
            .collect()
    }

    /// Decodes the text of `<client-cert cert-format="pkcs7">` (whitespace is ignored).
    pub fn from_base64(text: &str) -> Result<UserCertificateBag, McaError> {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if compact.len() > MAX_BAG_BASE64_BYTES {
            return Err(McaError::BagTooLarge {
                size: compact.len(),
                limit: MAX_BAG_BASE64_BYTES,
            });
        }
        let der = STANDARD
            .decode(compact)
            .map_err(|_| McaError::BagNotBase64)?;
        UserCertificateBag::from_der(&der)
    }

    /// Decodes a DER ContentInfo{signedData} certificate bag.
    pub fn from_der(der: &[u8]) -> Result<UserCertificateBag, McaError> {
        let certificates = certificates(der)?;
        if certificates.is_empty() {
            return Err(McaError::BagEmpty);
        }
        if certificates.len() > MAX_BAG_CERTIFICATES {
            return Err(McaError::BagTooManyCertificates {
                count: certificates.len(),
                limit: MAX_BAG_CERTIFICATES,
            });
        }
        let mut leaves = Vec::new();
        let mut intermediates = Vec::new();
        for (index, raw) in certificates.into_iter().enumerate() {
            if is_ca(raw).ok_or(McaError::BagCertificateInvalid { index })? {
                intermediates.push(CertificateDer::from(raw.to_vec()));
            } else {
                leaves.push(CertificateDer::from(raw.to_vec()));
            }
        }
        let count = leaves.len();
        match leaves.pop() {
            Some(leaf) if count == 1 => Ok(UserCertificateBag {
                leaf,
                intermediates,
            }),
            Some(_) => Err(McaError::BagSeveralLeaves(count)),
            None => Err(McaError::BagNoLeaf),
        }
    }
}

/// The raw DER of every entry of SignedData.certificates.
fn certificates(der: &[u8]) -> Result<Vec<&[u8]>, McaError> {
    let content_info = AnyRef::from_der(der).map_err(malformed)?;
    let (content_type, content) = content_info
        .sequence(|reader| {
            let content_type = ObjectIdentifier::decode(reader)?;
            let content = ContextSpecific::<AnyRef<'_>>::decode_explicit(reader, TagNumber::N0)?;
            Ok((content_type, content.map(|field| field.value)))
        })
        .map_err(malformed)?;
    if content_type != SIGNED_DATA {
        return Err(McaError::BagContentType(content_type.to_string()));
    }
    let content = content.ok_or_else(|| McaError::BagMalformed("no SignedData".into()))?;
    let (encapsulated, certificates, signer_infos) = content
        .sequence(|reader| {
            let _version = AnyRef::decode(reader)?;
            let _digest_algorithms = AnyRef::decode(reader)?;
            let encapsulated = AnyRef::decode(reader)?;
            let mut certificates: &[u8] = &[];
            if reader.peek_tag()? == context_tag(TagNumber::N0) {
                let header = Header::decode(reader)?;
                certificates = reader.read_slice(header.length)?;
            }
            if reader.peek_tag()? == context_tag(TagNumber::N1) {
                let _crls = AnyRef::decode(reader)?;
            }
            let signer_infos = AnyRef::decode(reader)?;
            Ok((encapsulated, certificates, signer_infos))
        })
        .map_err(malformed)?;
    let encapsulated_type = encapsulated
        .sequence(|reader| {
            let content_type = ObjectIdentifier::decode(reader)?;
            if !reader.is_finished() {
                let _content = AnyRef::decode(reader)?;
            }
            Ok(content_type)
        })
        .map_err(malformed)?;
    if encapsulated_type != DIGESTED_DATA && encapsulated_type != DATA {
        return Err(McaError::BagContentType(encapsulated_type.to_string()));
    }
    if signer_infos.tag() != Tag::Set {
        return Err(McaError::BagMalformed("signerInfos is not a SET".into()));
    }
    if !signer_infos.value().is_empty() {
        return Err(McaError::BagHasSigners);
    }
    split_certificates(certificates)
}

fn split_certificates(content: &[u8]) -> Result<Vec<&[u8]>, McaError> {
    let mut reader = SliceReader::new(content).map_err(malformed)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        let start = offset(reader.position())?;
        let entry = AnyRef::decode(&mut reader).map_err(malformed)?;
        let end = offset(reader.position())?;
        if entry.tag() != Tag::Sequence {
            return Err(McaError::BagMalformed(
                "a certificate choice other than an X.509 certificate".into(),
            ));
        }
        let raw = content
            .get(start..end)
            .ok_or_else(|| McaError::BagMalformed("certificate outside the bag".into()))?;
        out.push(raw);
    }
    Ok(out)
}

/// `Some(true)` for a CA certificate, `Some(false)` for an end entity, `None` if unparsable.
fn is_ca(der: &[u8]) -> Option<bool> {
    let (rest, certificate) = X509Certificate::from_der(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let constraints = certificate.basic_constraints().ok()?;
    Some(constraints.is_some_and(|extension| extension.value.ca))
}

fn context_tag(number: TagNumber) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number,
    }
}

fn offset(position: der::Length) -> Result<usize, McaError> {
    usize::try_from(position).map_err(malformed)
}

fn malformed(err: der::Error) -> McaError {
    McaError::BagMalformed(err.to_string())
}
