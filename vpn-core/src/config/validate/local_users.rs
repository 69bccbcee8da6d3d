//! LOCAL users: the password hash must be an argon2id PHC string.
//!
//! The structure is checked without a new dependency:
//! `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`, where `v=` may be
//! absent, salt and hash are unpadded standard base64, the salt is at least 8 bytes and
//! the hash at least 16 bytes. (Name syntax and duplicates are checked with the other
//! names.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::{Findings, ProblemKind};
use crate::config::DeviceConfig;

const MAX_HASH_CHARS: usize = 512;
const MIN_SALT_BYTES: usize = 8;
const MIN_HASH_BYTES: usize = 16;

pub(super) fn check(config: &DeviceConfig, found: &mut Findings) {
    for (i, user) in config.local_users.iter().enumerate() {
        if let Err(reason) = check_phc(&user.password_hash) {
            let path = format!("$.local_users[{i}].password_hash");
            found.push(path, ProblemKind::InvalidPasswordHash { reason });
        }
    }
}

fn check_phc(hash: &str) -> Result<(), &'static str> {
    if hash.len() > MAX_HASH_CHARS {
        return Err("it is longer than 512 characters");
    }
    let rest = hash
        .strip_prefix("$argon2id$")
        .ok_or("it does not start with $argon2id$")?;
    let mut fields: Vec<&str> = rest.split('$').collect();
    if fields.first().is_some_and(|f| f.starts_with("v=")) {
        let version = fields.remove(0);
        if version != "v=19" && version != "v=16" {
            return Err("its version is neither v=19 nor v=16");
        }
    }
    let [params, salt, digest] = fields[..] else {
        return Err("it does not have the fields $m=..,t=..,p=..$salt$hash");
    };
    check_params(params)?;
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|_| "its salt is not unpadded base64")?;
    if salt.len() < MIN_SALT_BYTES {
        return Err("its salt is shorter than 8 bytes");
    }
    let digest = STANDARD_NO_PAD
        .decode(digest)
        .map_err(|_| "its hash is not unpadded base64")?;
    if digest.len() < MIN_HASH_BYTES {
        return Err("its hash is shorter than 16 bytes");
    }
    Ok(())
}

/// `m=..,t=..,p=..` in that order, each a positive decimal number.
fn check_params(params: &str) -> Result<(), &'static str> {
    let mut parts = params.split(',');
    for key in ["m=", "t=", "p="] {
        let value = parts
            .next()
            .and_then(|part| part.strip_prefix(key))
            .ok_or("its parameters are not m=..,t=..,p=..")?;
        match value.parse::<u32>() {
            Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err("a parameter is not a positive decimal number"),
        }
    }
    if parts.next().is_some() {
        return Err("it has parameters besides m, t and p");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2hCYXNlNjRIYXNo";

    #[test]
    fn argon2id_phc_string_is_accepted_with_or_without_version() {
        assert_eq!(check_phc(GOOD), Ok(()));
        assert_eq!(check_phc(&GOOD.replace("v=19$", "")), Ok(()));
    }

    #[test]
    fn malformed_phc_strings_are_refused_with_a_reason() {
        let cases = [
            (
                "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "does not start",
            ),
            (
                "$argon2id$v=20$m=1,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "version",
            ),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0", "fields"),
            (
                "$argon2id$v=19$t=2,m=1,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "m=..,t=..,p=..",
            ),
            (
                "$argon2id$v=19$m=0,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "positive",
            ),
            (
                "$argon2id$v=19$m=+5,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "positive",
            ),
            (
                "$argon2id$v=19$m=5,t=2,p=1,x=3$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "besides",
            ),
            (
                "$argon2id$v=19$m=5,t=2,p=1$c2FsdA$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "salt is shorter",
            ),
            (
                "$argon2id$v=19$m=5,t=2,p=1$c2Fs*HNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g",
                "salt is not",
            ),
            (
                "$argon2id$v=19$m=5,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0",
                "hash is shorter",
            ),
            (
                "$argon2id$v=19$m=5,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2g=",
                "hash is not",
            ),
        ];
        for (hash, reason) in cases {
            let error = check_phc(hash).unwrap_err();
            assert!(error.contains(reason), "{hash}: {error}");
        }
        assert!(check_phc(&"a".repeat(513)).unwrap_err().contains("512"));
    }
}
