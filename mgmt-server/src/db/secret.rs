//! Encryption of private keys at rest: AES-256-GCM (aws-lc-rs) with a key the caller
//! provides (mgmt-server reads it from its key file; it is never stored in the
//! database).
//!
//! A sealed value is `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The
//! additional authenticated data names the row and column the value belongs to, so a
//! ciphertext copied into another row or column does not decrypt.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};

/// Length of an [`EncryptionKey`] in bytes.
pub const ENCRYPTION_KEY_LEN: usize = 32;
const FORMAT_V1: u8 = 1;
const TAG_LEN: usize = 16;

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("an encryption key is {expected} bytes long, this one is {found}")]
    KeyLength { expected: usize, found: usize },
    #[error("the system random number generator failed")]
    Random,
    #[error("encryption failed")]
    Seal,
    #[error(
        "the stored {what} cannot be decrypted: wrong encryption key, or the value was altered or moved from another row"
    )]
    Open { what: String },
    #[error("the stored {what} is not in a known encrypted format")]
    Format { what: String },
    #[error("the decrypted {what} is not UTF-8 text")]
    NotText { what: String },
    #[error("cannot use the key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "the key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFileOpen { path: PathBuf, mode: u32 },
}

/// The AES-256-GCM key that protects private keys in the database. `Debug` never shows it.
#[derive(Clone)]
pub struct EncryptionKey {
    key: [u8; ENCRYPTION_KEY_LEN],
}

impl EncryptionKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        let key: [u8; ENCRYPTION_KEY_LEN] =
            bytes.try_into().map_err(|_| SecretError::KeyLength {
                expected: ENCRYPTION_KEY_LEN,
                found: bytes.len(),
            })?;
        Ok(Self { key })
    }

    /// A fresh random key (for a new installation's key file, and tests).
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0_u8; ENCRYPTION_KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| SecretError::Random)?;
        Ok(Self { key })
    }

    /// Reads the key from `path` (64 hex digits), or creates the file with a new random
    /// key (mode 0600) on first start. A file other users can read is refused.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let key_file = |reason: String| SecretError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        match fs::metadata(path) {
            Ok(metadata) => {
                let mode = metadata.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SecretError::KeyFileOpen {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
                let text = fs::read_to_string(path).map_err(|e| key_file(e.to_string()))?;
                let bytes = hex::decode(text.trim()).map_err(|e| {
                    key_file(format!(
                        "expected {} hex digits: {e}",
                        2 * ENCRYPTION_KEY_LEN
                    ))
                })?;
                Self::from_bytes(&bytes).map_err(|e| key_file(e.to_string()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| key_file(e.to_string()))?;
                file.write_all(format!("{}\n", hex::encode(key.key)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| key_file(e.to_string()))?;
                Ok(key)
            }
            Err(error) => Err(key_file(error.to_string())),
        }
    }

    /// The raw key, for writing a key file.
    pub fn expose(&self) -> &[u8; ENCRYPTION_KEY_LEN] {
        &self.key
    }

    /// Encrypts `plaintext`, bound to `context` (which row and column it is for).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0_u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut in_out = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SecretError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts what [`EncryptionKey::seal`] made for the same `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        let format = || SecretError::Format {
            what: context.to_owned(),
        };
        let (&version, rest) = sealed.split_first().ok_or_else(format)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(format());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| format())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .aead()?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SecretError::Open {
                what: context.to_owned(),
            })?;
        Ok(plaintext.to_vec())
    }

    pub(crate) fn open_text(&self, sealed: &[u8], context: &str) -> Result<String, SecretError> {
        String::from_utf8(self.open(sealed, context)?).map_err(|_| SecretError::NotText {
            what: context.to_owned(),
        })
    }

    fn aead(&self) -> Result<LessSafeKey, SecretError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, &self.key).map_err(|_| SecretError::KeyLength {
                expected: ENCRYPTION_KEY_LEN,
                found: self.key.len(),
            })?;
        Ok(LessSafeKey::new(unbound))
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_with_the_same_key_and_context_only() {
        let key = EncryptionKey::generate().unwrap();
        let sealed = key.seal(b"-----BEGIN PRIVATE KEY-----", "row 1").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"BEGIN"));
        assert_eq!(
            key.open(&sealed, "row 1").unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(matches!(
            key.open(&sealed, "row 2"),
            Err(SecretError::Open { .. })
        ));
        let other = EncryptionKey::generate().unwrap();
        assert!(matches!(
            other.open(&sealed, "row 1"),
            Err(SecretError::Open { .. })
        ));
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let key = EncryptionKey::generate().unwrap();
        assert_ne!(key.seal(b"x", "c").unwrap(), key.seal(b"x", "c").unwrap());
    }

    #[test]
    fn tampered_or_truncated_values_are_refused() {
        let key = EncryptionKey::generate().unwrap();
        let mut sealed = key.seal(b"secret", "c").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(
            key.open(&sealed, "c"),
            Err(SecretError::Open { .. })
        ));
        assert!(matches!(
            key.open(&sealed[..10], "c"),
            Err(SecretError::Format { .. })
        ));
        assert!(matches!(
            key.open(&[], "c"),
            Err(SecretError::Format { .. })
        ));
    }

    #[test]
    fn a_key_file_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.key");
        let created = EncryptionKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = EncryptionKey::load_or_create(&path).unwrap();
        assert_eq!(loaded.expose(), created.expose());
        let sealed = created.seal(b"pem", "c").unwrap();
        assert_eq!(loaded.open(&sealed, "c").unwrap(), b"pem");
    }

    #[test]
    fn a_key_file_others_can_read_or_with_a_short_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.key");
        fs::write(&path, "00".repeat(32)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            EncryptionKey::load_or_create(&path),
            Err(SecretError::KeyFileOpen { mode: 0o644, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(EncryptionKey::load_or_create(&path).is_ok());
        fs::write(&path, "abcd").unwrap();
        let error = EncryptionKey::load_or_create(&path).unwrap_err();
        assert!(matches!(error, SecretError::KeyFile { .. }), "{error}");
    }

    #[test]
    fn keys_of_the_wrong_length_are_refused_and_never_printed() {
        assert_eq!(
            EncryptionKey::from_bytes(&[0; 16]).unwrap_err(),
            SecretError::KeyLength {
                expected: 32,
                found: 16
            }
        );
        let key = EncryptionKey::from_bytes(&[7; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "EncryptionKey(<redacted>)");
    }
}
