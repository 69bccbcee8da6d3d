//! What `configure manager add <host[:port]> <registration-key> [<nat-id>]` takes, with
//! FTD's rules: key and NAT ID are 1 to 37 characters of `[A-Za-z0-9-]`; the host is an
//! address, a DNS name, or `DONTRESOLVE` when the sensor cannot reach the manager (the
//! NAT ID is then required).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest registration key or NAT ID.
pub const MAX_IDENTIFIER_LEN: usize = 37;
/// The manager's port when `<host>` has none (FMC's sftunnel port).
pub const DEFAULT_MANAGER_PORT: u16 = 8305;
/// Longest DNS name.
const MAX_HOSTNAME_LEN: usize = 253;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("the {what} is empty")]
    Empty { what: &'static str },
    #[error("the {what} has {len} characters; at most {MAX_IDENTIFIER_LEN} are allowed")]
    TooLong { what: &'static str, len: usize },
    #[error(
        "the {what} has {character:?} at position {position}; only letters, digits and '-' are allowed"
    )]
    BadCharacter {
        what: &'static str,
        character: char,
        position: usize,
    },
    #[error("the manager address {0:?} is not an IP address, a host name or DONTRESOLVE")]
    BadHost(String),
    #[error("the manager port in {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    #[error("DONTRESOLVE needs a NAT ID: the manager identifies this sensor by it")]
    NatIdRequired,
}

/// The one-time registration key both administrators type.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegistrationKey(String);

impl RegistrationKey {
    pub fn new(value: &str) -> Result<Self, IdentifierError> {
        check_identifier("registration key", value)?;
        Ok(Self(value.to_owned()))
    }

    /// The key itself, for the proof computation. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RegistrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RegistrationKey(<redacted>)")
    }
}

impl TryFrom<String> for RegistrationKey {
    type Error = IdentifierError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<RegistrationKey> for String {
    fn from(key: RegistrationKey) -> Self {
        key.0
    }
}

/// The NAT ID: names a device when only one side can reach the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NatId(String);

impl NatId {
    pub fn new(value: &str) -> Result<Self, IdentifierError> {
        check_identifier("NAT ID", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NatId {
    type Error = IdentifierError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<NatId> for String {
    fn from(id: NatId) -> Self {
        id.0
    }
}

/// `<host>` of `configure manager add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagerHost {
    Address(IpAddr),
    Name(String),
    /// The manager is not reachable from the sensor; it connects from anywhere and is
    /// identified by the NAT ID and the key.
    DontResolve,
}

/// `<host[:port]>` of `configure manager add`: `192.0.2.10`, `fmc.example.com:8305`,
/// `[2001:db8::10]:8305`, `2001:db8::10` or `DONTRESOLVE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerAddress {
    pub host: ManagerHost,
    pub port: u16,
}

impl FromStr for ManagerAddress {
    type Err = IdentifierError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad_host = || IdentifierError::BadHost(text.to_owned());
        let port_of = |digits: &str| match digits.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(IdentifierError::BadPort(text.to_owned())),
        };
        if text.eq_ignore_ascii_case("DONTRESOLVE") {
            return Ok(Self {
                host: ManagerHost::DontResolve,
                port: DEFAULT_MANAGER_PORT,
            });
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(Self {
                host: ManagerHost::Address(address),
                port: DEFAULT_MANAGER_PORT,
            });
        }
        if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(bad_host)?;
            let address: IpAddr = inside.parse().map_err(|_| bad_host())?;
            let port = match after.strip_prefix(':') {
                Some(digits) => port_of(digits)?,
                None if after.is_empty() => DEFAULT_MANAGER_PORT,
                None => return Err(bad_host()),
            };
            return Ok(Self {
                host: ManagerHost::Address(address),
                port,
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, digits)) => (host, port_of(digits)?),
            None => (text, DEFAULT_MANAGER_PORT),
        };
        let host = match host.parse::<IpAddr>() {
            Ok(address) => ManagerHost::Address(address),
            Err(_) if is_hostname(host) => ManagerHost::Name(host.to_ascii_lowercase()),
            Err(_) => return Err(bad_host()),
        };
        Ok(Self { host, port })
    }
}

impl fmt::Display for ManagerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            ManagerHost::DontResolve => f.write_str("DONTRESOLVE"),
            ManagerHost::Address(IpAddr::V6(address)) => write!(f, "[{address}]:{}", self.port),
            ManagerHost::Address(address) => write!(f, "{address}:{}", self.port),
            ManagerHost::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

fn check_identifier(what: &'static str, value: &str) -> Result<(), IdentifierError> {
    if value.is_empty() {
        return Err(IdentifierError::Empty { what });
    }
    if let Some((position, character)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(IdentifierError::BadCharacter {
            what,
            character,
            position: position + 1,
        });
    }
    let len = value.chars().count();
    if len > MAX_IDENTIFIER_LEN {
        return Err(IdentifierError::TooLong { what, len });
    }
    Ok(())
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HOSTNAME_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn keys_of_letters_digits_and_hyphens_up_to_37_characters_are_accepted() {
        let longest = "a".repeat(37);
        for key in ["cisco123", "Reg-Key-01", longest.as_str(), "1"] {
            assert_eq!(
                RegistrationKey::new(key).map(|k| k.expose().to_owned()),
                Ok(key.to_owned())
            );
        }
    }

    #[test]
    fn a_38_character_key_is_refused_with_its_length() {
        let error = RegistrationKey::new(&"k".repeat(38)).unwrap_err();
        assert_eq!(
            error,
            IdentifierError::TooLong {
                what: "registration key",
                len: 38
            }
        );
        assert_eq!(
            error.to_string(),
            "the registration key has 38 characters; at most 37 are allowed"
        );
    }

    #[test]
    fn characters_outside_the_set_are_refused_with_their_position() {
        let error = NatId::new("nat_id").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the NAT ID has '_' at position 4; only letters, digits and '-' are allowed"
        );
        assert!(RegistrationKey::new("kéy").is_err());
        assert!(RegistrationKey::new("key with space").is_err());
        assert_eq!(
            NatId::new(""),
            Err(IdentifierError::Empty { what: "NAT ID" })
        );
    }

    #[test]
    fn a_key_never_shows_in_debug_output() {
        let key = RegistrationKey::new("SuperSecret1").unwrap();
        assert!(!format!("{key:?}").contains("SuperSecret1"));
    }

    #[test]
    fn keys_read_from_json_are_checked() {
        assert!(serde_json::from_str::<RegistrationKey>("\"ok-key\"").is_ok());
        assert!(serde_json::from_str::<RegistrationKey>("\"bad key\"").is_err());
        assert!(serde_json::from_str::<NatId>(&format!("\"{}\"", "n".repeat(38))).is_err());
    }

    #[test]
    fn manager_addresses_parse_in_every_form_ftd_takes() {
        let cases = [
            (
                "192.0.2.10",
                ManagerHost::Address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
                8305,
            ),
            (
                "192.0.2.10:9443",
                ManagerHost::Address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
                9443,
            ),
            (
                "2001:db8::10",
                ManagerHost::Address(IpAddr::V6("2001:db8::10".parse::<Ipv6Addr>().unwrap())),
                8305,
            ),
            (
                "[2001:db8::10]:8443",
                ManagerHost::Address(IpAddr::V6("2001:db8::10".parse::<Ipv6Addr>().unwrap())),
                8443,
            ),
            (
                "FMC.example.com",
                ManagerHost::Name("fmc.example.com".to_owned()),
                8305,
            ),
            ("fmc:1", ManagerHost::Name("fmc".to_owned()), 1),
            ("dontresolve", ManagerHost::DontResolve, 8305),
        ];
        for (text, host, port) in cases {
            assert_eq!(
                text.parse::<ManagerAddress>(),
                Ok(ManagerAddress { host, port }),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_manager_addresses_say_what_is_wrong() {
        for (text, expected) in [
            ("fmc:0", IdentifierError::BadPort("fmc:0".to_owned())),
            (
                "fmc:99999",
                IdentifierError::BadPort("fmc:99999".to_owned()),
            ),
            ("fmc:x", IdentifierError::BadPort("fmc:x".to_owned())),
            ("bad_host", IdentifierError::BadHost("bad_host".to_owned())),
            ("-fmc", IdentifierError::BadHost("-fmc".to_owned())),
            ("[::1", IdentifierError::BadHost("[::1".to_owned())),
            ("", IdentifierError::BadHost(String::new())),
        ] {
            assert_eq!(text.parse::<ManagerAddress>(), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn manager_addresses_print_back_with_their_port() {
        for (text, printed) in [
            ("192.0.2.10", "192.0.2.10:8305"),
            ("2001:db8::1", "[2001:db8::1]:8305"),
            ("fmc.example.com:9000", "fmc.example.com:9000"),
            ("DONTRESOLVE", "DONTRESOLVE"),
        ] {
            assert_eq!(text.parse::<ManagerAddress>().unwrap().to_string(), printed);
        }
    }
}
