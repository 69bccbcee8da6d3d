//! The hash algorithms a server may offer in `<multiple-client-cert-request>`.

use super::McaError;

/// A hash the server offers for the user-certificate signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum McaHash {
    Sha256,
    Sha384,
    Sha512,
}

impl McaHash {
    /// Every hash we offer, in the order they appear in the auth-request.
    pub const ALL: [McaHash; 3] = [McaHash::Sha256, McaHash::Sha384, McaHash::Sha512];

    /// The name used in the XML (`sha256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            McaHash::Sha256 => "sha256",
            McaHash::Sha384 => "sha384",
            McaHash::Sha512 => "sha512",
        }
    }

    /// Reads a client's `hash-algorithm-chosen`: only sha256/384/512, and only one we offered.
    pub fn parse(name: &str, offered: &[McaHash]) -> Result<McaHash, McaError> {
        let hash = match name {
            "sha256" => McaHash::Sha256,
            "sha384" => McaHash::Sha384,
            "sha512" => McaHash::Sha512,
            other => return Err(McaError::UnsupportedHash(other.chars().take(32).collect())),
        };
        if offered.contains(&hash) {
            Ok(hash)
        } else {
            Err(McaError::HashNotOffered(hash))
        }
    }
}

impl std::fmt::Display for McaHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parse_accepts_offered_sha2_names() {
        for hash in McaHash::ALL {
            assert_eq!(McaHash::parse(hash.as_str(), &McaHash::ALL), Ok(hash));
        }
    }

    #[test]
    fn hash_parse_refuses_sha1_md5_and_unknown_names() {
        for name in ["sha1", "md5", "SHA256", "", "sha3-256"] {
            assert!(matches!(
                McaHash::parse(name, &McaHash::ALL),
                Err(McaError::UnsupportedHash(_))
            ));
        }
    }

    #[test]
    fn hash_parse_refuses_a_hash_that_was_not_offered() {
        assert_eq!(
            McaHash::parse("sha512", &[McaHash::Sha256]),
            Err(McaError::HashNotOffered(McaHash::Sha512))
        );
    }
}
