//! Password checks with bounded memory and the same cost for every username.
//!
//! An argon2 check with the default cost needs about 19 MiB. The checks run on
//! blocking threads; without a bound, a flood of wrong passwords grows the process by
//! that much per thread, and the allocator keeps it. So at most
//! [`PASSWORD_CHECKS_AT_ONCE`] checks run at once, each in one of that many memory
//! buffers allocated once and reused; the others wait their turn. A hash asking for
//! more than [`MAX_MEMORY_KIB`] is refused rather than computed.
//!
//! A username that is not a LOCAL user is checked against a dummy hash with the same
//! parameters as the configured users' (the first one's), so known and unknown names
//! take the same time and cannot be told apart.

use std::sync::{Condvar, LazyLock, Mutex, PoisonError};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Password checks running at once, in the whole process.
pub const PASSWORD_CHECKS_AT_ONCE: usize = 2;
/// Most memory one password hash may ask for (64 MiB).
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// Why a stored hash could not be checked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    #[error("not a PHC string")]
    NotPhc,
    #[error("not an argon2 hash: {0}")]
    Unsupported(String),
    #[error("asks for {m_cost} KiB, more than the {MAX_MEMORY_KIB} KiB allowed")]
    TooCostly { m_cost: u32 },
}

/// The process's password checker.
pub(crate) static PASSWORD_CHECKS: LazyLock<PasswordChecks> = LazyLock::new(PasswordChecks::new);

/// Memory buffers, one per check that may run, and the dummy hash.
pub(crate) struct PasswordChecks {
    buffers: Mutex<Vec<Vec<Block>>>,
    returned: Condvar,
    /// The dummy hash of the last parameters asked for.
    dummy: Mutex<Option<(Params, String)>>,
}

impl PasswordChecks {
    fn new() -> Self {
        Self {
            buffers: Mutex::new((0..PASSWORD_CHECKS_AT_ONCE).map(|_| Vec::new()).collect()),
            returned: Condvar::new(),
            dummy: Mutex::new(None),
        }
    }

    /// Whether `password` matches the PHC string `stored`.
    pub(crate) fn verify(&self, stored: &str, password: &[u8]) -> Result<bool, HashError> {
        let hash = PasswordHash::new(stored).map_err(|_| HashError::NotPhc)?;
        let algorithm = Algorithm::try_from(hash.algorithm)
            .map_err(|e| HashError::Unsupported(e.to_string()))?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).map_err(|e| HashError::Unsupported(e.to_string()))?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).map_err(|e| HashError::Unsupported(e.to_string()))?;
        if params.m_cost() > MAX_MEMORY_KIB {
            return Err(HashError::TooCostly {
                m_cost: params.m_cost(),
            });
        }
        let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
            return Err(HashError::Unsupported("no salt or no hash".to_owned()));
        };
        let mut salt_bytes = [0u8; 64];
        let salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| HashError::Unsupported(e.to_string()))?;
        let blocks = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        let computed = self.with_buffer(blocks, |memory| {
            argon.hash_password_into_with_memory(password, salt, &mut out, memory)
        });
        computed.map_err(|e| HashError::Unsupported(e.to_string()))?;
        // `Output` compares in constant time.
        Ok(argon2::password_hash::Output::new(&out).is_ok_and(|out| out == expected))
    }

    /// Spends the time of a check of `like` (a stored hash) on a password that cannot
    /// match, for a username that has no hash.
    pub(crate) fn verify_dummy(&self, like: Option<&str>, password: &[u8]) {
        let params = like
            .and_then(|stored| PasswordHash::new(stored).ok())
            .and_then(|hash| Params::try_from(&hash).ok())
            .filter(|params| params.m_cost() <= MAX_MEMORY_KIB)
            .unwrap_or_default();
        let Some(dummy) = self.dummy_hash(params) else {
            return;
        };
        let _ = self.verify(&dummy, password);
    }

    fn dummy_hash(&self, params: Params) -> Option<String> {
        let mut dummy = self.dummy.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, hash)) = dummy.as_ref()
            && *known == params
        {
            return Some(hash.clone());
        }
        let mut secret = [0u8; 32];
        let mut salt = [0u8; 16];
        let rng = SystemRandom::new();
        rng.fill(&mut secret).ok()?;
        rng.fill(&mut salt).ok()?;
        let salt = SaltString::encode_b64(&salt).ok()?;
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(&secret, &salt)
            .ok()?
            .to_string();
        *dummy = Some((params, hash.clone()));
        Some(hash)
    }

    /// Runs `work` with a buffer of `blocks` blocks, waiting for one to be free.
    fn with_buffer<R>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> R) -> R {
        let mut buffers = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut buffer = loop {
            if let Some(buffer) = buffers.pop() {
                break buffer;
            }
            buffers = self
                .returned
                .wait(buffers)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(buffers);
        if buffer.len() < blocks {
            buffer.resize(blocks, Block::default());
        }
        let result = work(buffer.get_mut(..blocks).unwrap_or_default());
        self.buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buffer);
        self.returned.notify_one();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(password: &str, m_cost: u32) -> String {
        let params = Params::new(m_cost, 1, 1, None).unwrap();
        let salt = SaltString::from_b64("c2Vuc29yLWFnZW50LXRlc3Q").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_right_password_matches_and_others_do_not() {
        let checks = PasswordChecks::new();
        let stored = hash("s3cret", 64);
        assert!(checks.verify(&stored, b"s3cret").unwrap());
        assert!(!checks.verify(&stored, b"S3cret").unwrap());
        assert!(!checks.verify(&stored, b"").unwrap());
        // The same answers as the argon2 crate's own check.
        use argon2::password_hash::PasswordVerifier as _;
        let parsed = PasswordHash::new(&stored).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"s3cret", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn unreadable_and_too_costly_hashes_are_refused_without_computing() {
        let checks = PasswordChecks::new();
        assert!(matches!(
            checks.verify("not-a-phc-string", b"x"),
            Err(HashError::NotPhc)
        ));
        let costly = "$argon2id$v=19$m=4194304,t=1,p=1$c2Vuc29yLWFnZW50LXRlc3Q$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(
            checks.verify(costly, b"x"),
            Err(HashError::TooCostly { m_cost: 4194304 })
        ));
        assert!(matches!(
            checks.verify("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ", b"x"),
            Err(HashError::Unsupported(_))
        ));
    }

    #[test]
    fn the_dummy_check_uses_the_parameters_of_the_hash_it_stands_for() {
        let checks = PasswordChecks::new();
        checks.verify_dummy(Some(&hash("s3cret", 64)), b"guess");
        let dummy = checks.dummy.lock().unwrap().clone().unwrap();
        assert_eq!(dummy.0.m_cost(), 64);
        assert!(!checks.verify(&dummy.1, b"guess").unwrap());
    }
}
