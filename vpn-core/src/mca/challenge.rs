//! The MCA challenge and the store of pending challenges.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::{McaError, McaHash};
use crate::aggauth::{McaRequest, SgOpaque, mca_auth_request};
use crate::pki::fingerprint_sha256;

/// How long a client has to answer a challenge.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(120);
/// A reasonable number of logins in flight for one headend.
pub const DEFAULT_STORE_CAPACITY: usize = 4096;

/// One MCA auth-request: random handle and nonce, and the exact bytes sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McaChallenge {
    handle: String,
    tunnel_group: String,
    offered: Vec<McaHash>,
    body: Vec<u8>,
}

impl McaChallenge {
    /// A fresh challenge for `tunnel_group` offering sha256, sha384 and sha512: 16 random
    /// bytes of handle, 32 random bytes of nonce.
    pub fn new(tunnel_group: &str, config_hash: &str) -> Result<McaChallenge, McaError> {
        McaChallenge::offering(tunnel_group, config_hash, &McaHash::ALL)
    }

    /// A fresh challenge offering only `hashes` (at least one; duplicates are dropped).
    pub fn offering(
        tunnel_group: &str,
        config_hash: &str,
        hashes: &[McaHash],
    ) -> Result<McaChallenge, McaError> {
        let mut offered: Vec<McaHash> = Vec::with_capacity(hashes.len());
        for hash in hashes {
            if !offered.contains(hash) {
                offered.push(*hash);
            }
        }
        if offered.is_empty() {
            return Err(McaError::NoHashOffered);
        }
        let rng = SystemRandom::new();
        let mut handle = [0u8; 16];
        let mut nonce = [0u8; 32];
        rng.fill(&mut handle).map_err(|_| McaError::Random)?;
        rng.fill(&mut nonce).map_err(|_| McaError::Random)?;
        let handle = hex::encode(handle);
        let body = mca_auth_request(&McaRequest {
            opaque: SgOpaque {
                tunnel_group,
                aggauth_handle: &handle,
                auth_method: "multiple-cert",
                config_hash,
            },
            hashes: &offered,
            random_hex: &hex::encode_upper(nonce),
        });
        Ok(McaChallenge {
            handle,
            tunnel_group: tunnel_group.to_owned(),
            offered,
            body,
        })
    }

    /// The `aggauth-handle` the client echoes in `<opaque>`.
    pub fn handle(&self) -> &str {
        &self.handle
    }

    pub fn tunnel_group(&self) -> &str {
        &self.tunnel_group
    }

    /// The hashes offered in `<multiple-client-cert-request>`.
    pub fn offered(&self) -> &[McaHash] {
        &self.offered
    }

    /// The exact response body: send these bytes, the client signs them.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// A challenge waiting for its answer, with the machine certificate seen at `init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChallenge {
    pub challenge: McaChallenge,
    /// SHA-256 of the machine certificate DER.
    pub machine_fingerprint: [u8; 32],
    pub issued_at: Instant,
}

/// Pending challenges by handle: bounded, single use, expiring after [`CHALLENGE_LIFETIME`].
#[derive(Debug, Clone)]
pub struct ChallengeStore {
    capacity: usize,
    pending: HashMap<String, PendingChallenge>,
}

impl ChallengeStore {
    pub fn new(capacity: usize) -> ChallengeStore {
        ChallengeStore {
            capacity,
            pending: HashMap::new(),
        }
    }

    /// Remembers `challenge`, issued at `now` to the holder of `machine_cert_der`.
    /// Expired entries are dropped first; a full store refuses new challenges.
    pub fn insert(
        &mut self,
        challenge: McaChallenge,
        machine_cert_der: &[u8],
        now: Instant,
    ) -> Result<(), McaError> {
        if self.pending.len() >= self.capacity {
            self.purge_expired(now);
        }
        if self.pending.len() >= self.capacity {
            return Err(McaError::StoreFull {
                capacity: self.capacity,
            });
        }
        if self.pending.contains_key(challenge.handle()) {
            return Err(McaError::DuplicateHandle);
        }
        let pending = PendingChallenge {
            machine_fingerprint: fingerprint_sha256(machine_cert_der),
            issued_at: now,
            challenge,
        };
        self.pending
            .insert(pending.challenge.handle.clone(), pending);
        Ok(())
    }

    /// Creates a challenge for `tunnel_group`, remembers it for the holder of
    /// `machine_cert_der`, and returns the exact body to send (and later verify against).
    pub fn issue(
        &mut self,
        tunnel_group: &str,
        config_hash: &str,
        machine_cert_der: &[u8],
        now: Instant,
    ) -> Result<Vec<u8>, McaError> {
        let challenge = McaChallenge::new(tunnel_group, config_hash)?;
        let body = challenge.body().to_vec();
        self.insert(challenge, machine_cert_der, now)?;
        Ok(body)
    }

    /// Removes the challenge for `handle` whatever happens next, and returns it unless it expired.
    pub fn take(&mut self, handle: &str, now: Instant) -> Result<PendingChallenge, McaError> {
        let pending = self.pending.remove(handle).ok_or(McaError::UnknownHandle)?;
        if is_expired(&pending, now) {
            return Err(McaError::Expired);
        }
        Ok(pending)
    }

    /// Drops every expired challenge.
    pub fn purge_expired(&mut self, now: Instant) {
        self.pending.retain(|_, pending| !is_expired(pending, now));
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl Default for ChallengeStore {
    fn default() -> Self {
        ChallengeStore::new(DEFAULT_STORE_CAPACITY)
    }
}

fn is_expired(pending: &PendingChallenge, now: Instant) -> bool {
    now.saturating_duration_since(pending.issued_at) > CHALLENGE_LIFETIME
}
