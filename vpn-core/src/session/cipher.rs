//! FTD's `Encryption` / `Hashing` words for a TLS or DTLS cipher suite.

/// Longest cipher-suite name looked at; longer input is not a cipher suite.
const MAX_NAME_LEN: usize = 128;

/// How FTD describes a negotiated cipher suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherSuiteDescription {
    /// The suite's name for the `Ciphersuite` line: IANA spelling for rustls names
    /// (`TLS13_AES_128_GCM_SHA256` becomes `TLS_AES_128_GCM_SHA256`), otherwise as given.
    pub name: String,
    /// `AES-GCM-128`, `AES-GCM-256`, `AES-CCM-128`, `AES256` (CBC), `CHACHA20-POLY1305`, `3DES`.
    pub encryption: String,
    /// `SHA256`, `SHA384`, `SHA512` or `SHA1`.
    pub hashing: String,
}

/// Describes a cipher suite named the rustls way (`TLS13_AES_128_GCM_SHA256`,
/// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`), the IANA way (`TLS_AES_128_GCM_SHA256`)
/// or the OpenSSL way (`ECDHE-ECDSA-AES256-GCM-SHA384`). `None` when the name has no
/// recognisable bulk cipher or is longer than 128 bytes.
pub fn describe_cipher_suite(name: &str) -> Option<CipherSuiteDescription> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return None;
    }
    let upper = name.to_ascii_uppercase().replace('-', "_");
    let tokens: Vec<&str> = upper.split('_').filter(|t| !t.is_empty()).collect();
    let encryption = bulk_cipher(&tokens)?;
    let hashing = hash(&tokens);
    let display = match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    };
    Some(CipherSuiteDescription {
        name: display,
        encryption,
        hashing: hashing.to_owned(),
    })
}

fn bulk_cipher(tokens: &[&str]) -> Option<String> {
    if tokens.contains(&"CHACHA20") {
        return Some("CHACHA20-POLY1305".to_owned());
    }
    if tokens.contains(&"3DES") || tokens.contains(&"CBC3") {
        return Some("3DES".to_owned());
    }
    let position = tokens.iter().position(|t| t.starts_with("AES"))?;
    let aes = tokens.get(position)?;
    // `AES128` (OpenSSL) or `AES` `128` (IANA).
    let (bits, mode_at) = match aes.strip_prefix("AES") {
        Some("") => (*tokens.get(position + 1)?, position + 2),
        Some(bits) => (bits, position + 1),
        None => return None,
    };
    if !matches!(bits, "128" | "192" | "256") {
        return None;
    }
    let mode = tokens.get(mode_at).copied().unwrap_or("");
    Some(match mode {
        "GCM" => format!("AES-GCM-{bits}"),
        "CCM" => format!("AES-CCM-{bits}"),
        _ => format!("AES{bits}"),
    })
}

fn hash(tokens: &[&str]) -> &'static str {
    match tokens.last().copied() {
        Some("SHA512") => "SHA512",
        Some("SHA384") => "SHA384",
        Some("SHA") => "SHA1",
        // SHA256 itself, and AEAD suites without a hash suffix (TLS 1.2 PRF).
        _ => "SHA256",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn words(name: &str) -> (String, String, String) {
        let d = describe_cipher_suite(name).unwrap();
        (d.name, d.encryption, d.hashing)
    }

    #[test]
    fn rustls_tls13_name_is_shown_in_iana_spelling() {
        assert_eq!(
            words("TLS13_AES_128_GCM_SHA256"),
            (
                "TLS_AES_128_GCM_SHA256".to_owned(),
                "AES-GCM-128".to_owned(),
                "SHA256".to_owned()
            )
        );
    }

    #[test]
    fn seed_suites_give_the_seed_encryption_and_hashing() {
        let (_, enc, hash) = words("TLS_AES_128_GCM_SHA256");
        assert_eq!((enc.as_str(), hash.as_str()), ("AES-GCM-128", "SHA256"));
        let (name, enc, hash) = words("ECDHE-ECDSA-AES256-GCM-SHA384");
        assert_eq!(name, "ECDHE-ECDSA-AES256-GCM-SHA384");
        assert_eq!((enc.as_str(), hash.as_str()), ("AES-GCM-256", "SHA384"));
    }

    #[test]
    fn tls12_rustls_names_are_understood() {
        let (_, enc, hash) = words("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
        assert_eq!((enc.as_str(), hash.as_str()), ("AES-GCM-256", "SHA384"));
        let (_, enc, hash) = words("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
        assert_eq!(
            (enc.as_str(), hash.as_str()),
            ("CHACHA20-POLY1305", "SHA256")
        );
        let (_, enc, hash) = words("TLS13_CHACHA20_POLY1305_SHA256");
        assert_eq!(
            (enc.as_str(), hash.as_str()),
            ("CHACHA20-POLY1305", "SHA256")
        );
    }

    #[test]
    fn cbc_and_legacy_suites_use_asa_words() {
        let (_, enc, hash) = words("AES256-SHA");
        assert_eq!((enc.as_str(), hash.as_str()), ("AES256", "SHA1"));
        let (_, enc, hash) = words("ECDHE-RSA-AES128-SHA256");
        assert_eq!((enc.as_str(), hash.as_str()), ("AES128", "SHA256"));
        let (_, enc, _) = words("DES-CBC3-SHA");
        assert_eq!(enc, "3DES");
        let (_, enc, hash) = words("ECDHE-RSA-CHACHA20-POLY1305");
        assert_eq!(
            (enc.as_str(), hash.as_str()),
            ("CHACHA20-POLY1305", "SHA256")
        );
    }

    #[test]
    fn names_without_a_bulk_cipher_are_not_described() {
        assert_eq!(describe_cipher_suite(""), None);
        assert_eq!(describe_cipher_suite("NULL-SHA"), None);
        assert_eq!(describe_cipher_suite("AES"), None);
        assert_eq!(describe_cipher_suite("AES_999_GCM_SHA256"), None);
    }

    #[test]
    fn names_longer_than_the_limit_are_not_described() {
        let long = format!("TLS_AES_128_GCM_SHA256{}", "_X".repeat(60));
        assert!(long.len() > MAX_NAME_LEN);
        assert_eq!(describe_cipher_suite(&long), None);
    }

    proptest! {
        #[test]
        fn describing_arbitrary_text_never_panics(name in ".{0,200}") {
            let _ = describe_cipher_suite(&name);
        }
    }
}
