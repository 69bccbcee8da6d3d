//! Every check of an MCA auth-reply, in one place.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{
    ChallengeStore, McaError, McaHash, PendingChallenge, UserCertificateBag, verify_signature,
};
use crate::aggauth::AuthReply;
use crate::pki::fingerprint_sha256;

/// What a successful MCA proved: the user certificate (still to be path-validated by
/// `pki`), the machine certificate's fingerprint, the connection profile and the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMca {
    pub user_bag: UserCertificateBag,
    /// SHA-256 of the machine certificate DER.
    pub machine_fingerprint: [u8; 32],
    pub tunnel_group: String,
    pub hash: McaHash,
}

/// Checks an MCA auth-reply received at `now` on a TLS connection whose client
/// certificate is `tls_machine_cert_der`. The challenge is consumed whatever the outcome.
pub fn verify_reply(
    store: &mut ChallengeStore,
    reply: &AuthReply,
    tls_machine_cert_der: Option<&[u8]>,
    now: Instant,
) -> Result<VerifiedMca, McaError> {
    let pending = take_challenge(store, reply, now)?;
    verify_answer(pending, reply, tls_machine_cert_der)
}

/// Removes the challenge the reply answers (named by its `aggauth-handle`) from the
/// store, so the headend can release its lock before the answer is checked.
pub fn take_challenge(
    store: &mut ChallengeStore,
    reply: &AuthReply,
    now: Instant,
) -> Result<PendingChallenge, McaError> {
    let handle = reply
        .opaque
        .as_ref()
        .and_then(|opaque| opaque.aggauth_handle.as_deref())
        .ok_or(McaError::MissingHandle)?;
    store.take(handle, now)
}

/// Checks the reply against a challenge already taken from the store.
pub fn verify_answer(
    pending: PendingChallenge,
    reply: &AuthReply,
    tls_machine_cert_der: Option<&[u8]>,
) -> Result<VerifiedMca, McaError> {
    let machine_der = tls_machine_cert_der.ok_or(McaError::NoMachineCertificate)?;
    let machine_fingerprint = fingerprint_sha256(machine_der);
    if machine_fingerprint != pending.machine_fingerprint {
        return Err(McaError::MachineCertificateChanged);
    }
    let mca = reply.mca.as_ref().ok_or(McaError::NotAnMcaReply)?;
    if !mca.machine_sent_via_protocol {
        return Err(McaError::MachineCertNotViaProtocol);
    }
    let hash = McaHash::parse(&mca.hash_algorithm_chosen, pending.challenge.offered())?;
    let user_bag = UserCertificateBag::from_base64(&mca.user_pkcs7_base64)?;
    if fingerprint_sha256(&user_bag.leaf) == machine_fingerprint {
        return Err(McaError::UserCertIsMachineCert);
    }
    let signature = STANDARD
        .decode(&mca.signature_base64)
        .map_err(|_| McaError::SignatureNotBase64)?;
    verify_signature(pending.challenge.body(), &user_bag.leaf, hash, &signature)?;
    Ok(VerifiedMca {
        user_bag,
        machine_fingerprint,
        tunnel_group: pending.challenge.tunnel_group().to_owned(),
        hash,
    })
}
