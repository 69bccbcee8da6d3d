//! Typed commands from the words an operator typed (sensor CLI and control socket).
//!
//! Keywords may be abbreviated to any unambiguous prefix, as on FTD (`sh run tun`);
//! an exact keyword wins over longer ones (`ip` is not ambiguous with `ipv6`).
//! Names and addresses are taken verbatim.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::logoff::LogoffTarget;
use super::running_config::RunningConfigSection;
use super::sessiondb::SessionFilter;

/// Most words a command line may have.
pub const MAX_WORDS: usize = 16;
/// Longest word accepted (names on FTD are at most 64 characters; URLs are longer).
pub const MAX_WORD_LEN: usize = 256;

/// A command the sensor understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// `show running-config [section [name]]`.
    ShowRunningConfig { section: RunningConfigSection },
    /// `show vpn-sessiondb [summary]`.
    ShowVpnSessionDbSummary,
    /// `show vpn-sessiondb [detail] anyconnect [filter name|a-ipaddress|tunnel-group X]`.
    ShowVpnSessionDbAnyConnect {
        detail: bool,
        filter: Option<SessionFilter>,
    },
    /// `vpn-sessiondb logoff name|ipaddress|tunnel-group|index X | anyconnect | all [noconfirm]`.
    VpnSessionDbLogoff {
        target: LogoffTarget,
        noconfirm: bool,
    },
}

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliParseError {
    #[error("empty command")]
    Empty,
    #[error("too many words: {count} (at most {MAX_WORDS})")]
    TooManyWords { count: usize },
    #[error("word {position} is {len} bytes long (at most {MAX_WORD_LEN})")]
    WordTooLong { position: usize, len: usize },
    #[error("unknown keyword {word:?} at word {position}; expected one of: {}", expected.join(", "))]
    UnknownKeyword {
        position: usize,
        word: String,
        expected: Vec<&'static str>,
    },
    #[error("ambiguous keyword {word:?} at word {position}: could be {}", candidates.join(", "))]
    AmbiguousKeyword {
        position: usize,
        word: String,
        candidates: Vec<&'static str>,
    },
    #[error("incomplete command: {expected} expected after {after:?}")]
    Incomplete {
        after: String,
        expected: &'static str,
    },
    #[error("{word:?} at word {position} is not an IP address")]
    InvalidIpAddress { position: usize, word: String },
    #[error("{word:?} at word {position} is not a session index")]
    InvalidIndex { position: usize, word: String },
    #[error("unexpected {word:?} at word {position}: the command is already complete")]
    Unexpected { position: usize, word: String },
}

impl Command {
    /// Parses a command line already split into words (`["show", "run", "tunnel-group"]`).
    pub fn parse(words: &[&str]) -> Result<Self, CliParseError> {
        if words.is_empty() {
            return Err(CliParseError::Empty);
        }
        if words.len() > MAX_WORDS {
            return Err(CliParseError::TooManyWords { count: words.len() });
        }
        if let Some((position, word)) = words
            .iter()
            .enumerate()
            .find(|(_, w)| w.len() > MAX_WORD_LEN)
        {
            return Err(CliParseError::WordTooLong {
                position: position + 1,
                len: word.len(),
            });
        }
        let mut words = Words { words, next: 0 };
        let command = match words.keyword(&["show", "vpn-sessiondb"], "a command")? {
            "show" => match words.keyword(&["running-config", "vpn-sessiondb"], "what to show")? {
                "running-config" => Self::ShowRunningConfig {
                    section: running_config_section(&mut words)?,
                },
                _ => show_vpn_sessiondb(&mut words)?,
            },
            _ => {
                words.keyword(&["logoff"], "logoff")?;
                logoff(&mut words)?
            }
        };
        words.end()?;
        Ok(command)
    }
}

fn running_config_section(words: &mut Words<'_>) -> Result<RunningConfigSection, CliParseError> {
    const SECTIONS: [&str; 9] = [
        "access-list",
        "crypto",
        "group-policy",
        "ip",
        "ipv6",
        "ssl",
        "tunnel-group",
        "username",
        "webvpn",
    ];
    let Some(section) = words.optional_keyword(&SECTIONS)? else {
        return Ok(RunningConfigSection::All);
    };
    Ok(match section {
        "access-list" => RunningConfigSection::AccessList(words.optional_name()),
        "crypto" => {
            words.keyword(&["ca"], "ca")?;
            words.keyword(&["trustpoint"], "trustpoint")?;
            RunningConfigSection::CryptoCaTrustpoint(words.optional_name())
        }
        "group-policy" => RunningConfigSection::GroupPolicy(words.optional_name()),
        "ip" => {
            words.keyword(&["local"], "local")?;
            words.keyword(&["pool"], "pool")?;
            RunningConfigSection::IpLocalPool(words.optional_name())
        }
        "ipv6" => {
            words.keyword(&["local"], "local")?;
            words.keyword(&["pool"], "pool")?;
            RunningConfigSection::Ipv6LocalPool(words.optional_name())
        }
        "ssl" => RunningConfigSection::Ssl,
        "tunnel-group" => RunningConfigSection::TunnelGroup(words.optional_name()),
        "username" => RunningConfigSection::Username(words.optional_name()),
        _ => RunningConfigSection::Webvpn,
    })
}

fn show_vpn_sessiondb(words: &mut Words<'_>) -> Result<Command, CliParseError> {
    let detail = match words.optional_keyword(&["anyconnect", "detail", "summary"])? {
        None | Some("summary") => return Ok(Command::ShowVpnSessionDbSummary),
        Some("detail") => {
            words.keyword(&["anyconnect"], "anyconnect")?;
            true
        }
        Some(_) => false,
    };
    const FILTERS: [&str; 4] = ["a-ipaddress", "filter", "name", "tunnel-group"];
    let filter = match words.optional_keyword(&FILTERS)? {
        None => None,
        Some(first) => {
            let kind = if first == "filter" {
                words.keyword(&["a-ipaddress", "name", "tunnel-group"], "a filter")?
            } else {
                first
            };
            Some(match kind {
                "a-ipaddress" => SessionFilter::AssignedAddress(words.ip_address()?),
                "name" => SessionFilter::Name(words.name("a username")?.to_owned()),
                _ => SessionFilter::TunnelGroup(words.name("a tunnel group")?.to_owned()),
            })
        }
    };
    Ok(Command::ShowVpnSessionDbAnyConnect { detail, filter })
}

fn logoff(words: &mut Words<'_>) -> Result<Command, CliParseError> {
    const TARGETS: [&str; 6] = [
        "all",
        "anyconnect",
        "index",
        "ipaddress",
        "name",
        "tunnel-group",
    ];
    let target = match words.keyword(&TARGETS, "what to log off")? {
        "all" => LogoffTarget::All,
        "anyconnect" => LogoffTarget::AnyConnect,
        "index" => LogoffTarget::Index(words.index()?),
        "ipaddress" => LogoffTarget::IpAddress(words.ip_address()?),
        "name" => LogoffTarget::Name(words.name("a username")?.to_owned()),
        _ => LogoffTarget::TunnelGroup(words.name("a tunnel group")?.to_owned()),
    };
    let noconfirm = words.optional_keyword(&["noconfirm"])?.is_some();
    Ok(Command::VpnSessionDbLogoff { target, noconfirm })
}

/// The words of one command line and how far parsing got.
struct Words<'a> {
    words: &'a [&'a str],
    next: usize,
}

impl<'a> Words<'a> {
    /// 1-based position of the next word, for messages.
    fn position(&self) -> usize {
        self.next + 1
    }

    fn previous(&self) -> String {
        self.next
            .checked_sub(1)
            .and_then(|i| self.words.get(i))
            .map_or_else(String::new, |w| (*w).to_owned())
    }

    fn take(&mut self) -> Option<&'a str> {
        let word = self.words.get(self.next).copied()?;
        self.next += 1;
        Some(word)
    }

    fn keyword(
        &mut self,
        choices: &[&'static str],
        expected: &'static str,
    ) -> Result<&'static str, CliParseError> {
        self.optional_keyword(choices)?
            .ok_or_else(|| CliParseError::Incomplete {
                after: self.previous(),
                expected,
            })
    }

    /// The keyword `word` abbreviates, or `None` at the end of the line.
    fn optional_keyword(
        &mut self,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, CliParseError> {
        let position = self.position();
        let Some(word) = self.take() else {
            return Ok(None);
        };
        let lower = word.to_ascii_lowercase();
        if let Some(exact) = choices.iter().find(|c| **c == lower) {
            return Ok(Some(exact));
        }
        let candidates: Vec<&'static str> = choices
            .iter()
            .copied()
            .filter(|c| c.starts_with(lower.as_str()))
            .collect();
        match candidates.as_slice() {
            [only] => Ok(Some(only)),
            [] => Err(CliParseError::UnknownKeyword {
                position,
                word: word.to_owned(),
                expected: choices.to_vec(),
            }),
            _ => Err(CliParseError::AmbiguousKeyword {
                position,
                word: word.to_owned(),
                candidates,
            }),
        }
    }

    fn name(&mut self, expected: &'static str) -> Result<&'a str, CliParseError> {
        let after = self.previous();
        self.take()
            .ok_or(CliParseError::Incomplete { after, expected })
    }

    fn optional_name(&mut self) -> Option<String> {
        self.take().map(str::to_owned)
    }

    fn ip_address(&mut self) -> Result<IpAddr, CliParseError> {
        let position = self.position();
        let word = self.name("an IP address")?;
        word.parse().map_err(|_| CliParseError::InvalidIpAddress {
            position,
            word: word.to_owned(),
        })
    }

    fn index(&mut self) -> Result<u32, CliParseError> {
        let position = self.position();
        let word = self.name("a session index")?;
        word.parse().map_err(|_| CliParseError::InvalidIndex {
            position,
            word: word.to_owned(),
        })
    }

    fn end(&self) -> Result<(), CliParseError> {
        match self.words.get(self.next) {
            None => Ok(()),
            Some(word) => Err(CliParseError::Unexpected {
                position: self.position(),
                word: (*word).to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
