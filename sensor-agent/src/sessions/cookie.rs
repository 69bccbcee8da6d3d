//! The session cookie (`webvpn=<token>`): 256 random bits the client holds; the
//! database keeps only their SHA-256.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Random bytes in a cookie.
pub const COOKIE_BYTES: usize = 32;
/// Length of the cookie as the client sends it (lowercase or uppercase hex).
pub const COOKIE_HEX_LEN: usize = COOKIE_BYTES * 2;

/// A freshly issued cookie, handed to the client once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookie(String);

impl SessionCookie {
    /// The token to put in `<session-token>` and `Set-Cookie: webvpn=`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionCookie(<redacted>)")
    }
}

/// SHA-256 of a cookie's bytes: the key the database finds a session by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CookieHash([u8; 32]);

impl fmt::Debug for CookieHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not secret, but a prefix is enough to correlate.
        let prefix: String = self.0.iter().take(4).map(|b| format!("{b:02x}")).collect();
        write!(f, "CookieHash({prefix}…)")
    }
}

impl CookieHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// SHA-256 fingerprint of the machine certificate (DER) a session is bound to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MachineFingerprint([u8; 32]);

impl MachineFingerprint {
    /// Fingerprint of a certificate in DER.
    pub fn of_certificate_der(der: &[u8]) -> Self {
        Self(vpn_core::pki::fingerprint_sha256(der))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MachineFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MachineFingerprint({})", hex::encode(self.0))
    }
}

/// Why a cookie string could not be read or a cookie not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieFormatError {
    #[error("cookie is {len} characters long, expected {COOKIE_HEX_LEN} hex digits")]
    WrongLength { len: usize },
    #[error("cookie is not hexadecimal")]
    NotHex,
    #[error("the system random generator failed")]
    Random,
}

/// Issues a new cookie and the hash to store for it.
pub(crate) fn issue() -> Result<(SessionCookie, CookieHash), CookieFormatError> {
    let mut bytes = [0u8; COOKIE_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CookieFormatError::Random)?;
    Ok((
        SessionCookie(hex::encode_upper(bytes)),
        CookieHash(sha256(&bytes)),
    ))
}

/// The hash of a cookie the client presented; the length is checked before decoding.
pub(crate) fn hash_presented(cookie: &str) -> Result<CookieHash, CookieFormatError> {
    if cookie.len() != COOKIE_HEX_LEN {
        return Err(CookieFormatError::WrongLength { len: cookie.len() });
    }
    let mut bytes = [0u8; COOKIE_BYTES];
    hex::decode_to_slice(cookie, &mut bytes).map_err(|_| CookieFormatError::NotHex)?;
    Ok(CookieHash(sha256(&bytes)))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cookie_is_64_hex_digits_and_hashes_to_the_stored_hash() {
        let (cookie, stored) = issue().unwrap();
        assert_eq!(cookie.expose().len(), COOKIE_HEX_LEN);
        assert!(cookie.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash_presented(cookie.expose()).unwrap(), stored);
        // Case does not matter: the client may echo it lowercased.
        assert_eq!(
            hash_presented(&cookie.expose().to_ascii_lowercase()).unwrap(),
            stored
        );
    }

    #[test]
    fn two_cookies_differ() {
        let (a, _) = issue().unwrap();
        let (b, _) = issue().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn presented_cookie_of_wrong_length_or_alphabet_is_refused() {
        assert_eq!(
            hash_presented("abc"),
            Err(CookieFormatError::WrongLength { len: 3 })
        );
        let long = "a".repeat(10_000);
        assert_eq!(
            hash_presented(&long),
            Err(CookieFormatError::WrongLength { len: 10_000 })
        );
        assert_eq!(
            hash_presented(&"g".repeat(COOKIE_HEX_LEN)),
            Err(CookieFormatError::NotHex)
        );
    }

    #[test]
    fn debug_output_never_shows_the_cookie() {
        let (cookie, _) = issue().unwrap();
        let shown = format!("{cookie:?}");
        assert!(!shown.contains(cookie.expose()));
    }
}
