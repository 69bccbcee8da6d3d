//! Multiple Certificate Authentication (protocol.md §2.5), sans-IO.
//!
//! The headend issues an [`McaChallenge`] (keeping the exact bytes it sends), remembers it
//! in a [`ChallengeStore`] with the machine certificate seen on that TLS connection, and
//! checks the client's answer with [`verify_reply`]: same machine certificate, a PKCS#7
//! bag with one user certificate, and a signature by that certificate's key over the
//! challenge bytes. Path validation of the user certificate is the `pki` module's job.

mod challenge;
mod hash;
mod pkcs7;
mod signature;
mod verify;

pub use challenge::{
    CHALLENGE_LIFETIME, ChallengeStore, DEFAULT_STORE_CAPACITY, McaChallenge, PendingChallenge,
};
pub use hash::McaHash;
pub use pkcs7::{MAX_BAG_BASE64_BYTES, MAX_BAG_CERTIFICATES, UserCertificateBag};
pub use signature::verify_signature;
pub use verify::{VerifiedMca, take_challenge, verify_answer, verify_reply};

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

/// Why an MCA step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McaError {
    #[error("could not draw random bytes for the challenge")]
    Random,
    #[error("a challenge must offer at least one hash algorithm")]
    NoHashOffered,
    #[error("challenge store is full ({capacity} pending challenges)")]
    StoreFull { capacity: usize },
    #[error("duplicate aggauth-handle")]
    DuplicateHandle,
    #[error("the reply carries no aggauth-handle")]
    MissingHandle,
    #[error("unknown or already used aggauth-handle")]
    UnknownHandle,
    #[error("the challenge expired")]
    Expired,
    #[error("no machine certificate on this TLS connection")]
    NoMachineCertificate,
    #[error("the machine certificate differs from the one seen at init")]
    MachineCertificateChanged,
    #[error("the reply has no MCA certificate chains")]
    NotAnMcaReply,
    #[error("the 1M chain does not say client-cert-sent-via-protocol")]
    MachineCertNotViaProtocol,
    #[error("hash algorithm {0:?} is not supported (sha256, sha384, sha512 only)")]
    UnsupportedHash(String),
    #[error("hash algorithm {0} was not offered")]
    HashNotOffered(McaHash),
    #[error("user certificate bag is not valid base64")]
    BagNotBase64,
    #[error("user certificate bag of {size} bytes exceeds the {limit}-byte limit")]
    BagTooLarge { size: usize, limit: usize },
    #[error("user certificate bag is not a PKCS#7 certificate bag: {0}")]
    BagMalformed(String),
    #[error("user certificate bag has content type {0}, expected digestedData or data")]
    BagContentType(String),
    #[error("user certificate bag carries signers")]
    BagHasSigners,
    #[error("user certificate bag is empty")]
    BagEmpty,
    #[error("user certificate bag has {count} certificates, limit {limit}")]
    BagTooManyCertificates { count: usize, limit: usize },
    #[error("certificate {index} of the bag is not a valid X.509 certificate")]
    BagCertificateInvalid { index: usize },
    #[error("user certificate bag has no end-entity certificate")]
    BagNoLeaf,
    #[error("user certificate bag has {0} end-entity certificates, expected one")]
    BagSeveralLeaves(usize),
    #[error("the user certificate is not a valid X.509 certificate")]
    LeafCertificateInvalid,
    #[error("the user certificate is the machine certificate")]
    UserCertIsMachineCert,
    #[error("signature is not valid base64")]
    SignatureNotBase64,
    #[error("the user certificate's key type is not RSA, EC P-256 or EC P-384")]
    UnsupportedKey,
    #[error("the signature does not verify with the user certificate's key")]
    BadSignature,
}
