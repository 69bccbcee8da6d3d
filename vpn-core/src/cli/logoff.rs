//! `vpn-sessiondb logoff ...`: which sessions it selects and what it prints.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::session::SessionRecord;

/// Asked before logging sessions off unless `noconfirm` was given.
pub const LOGOFF_CONFIRM_PROMPT: &str = "Do you want to logoff the VPN session(s)? [confirm]";

/// The sessions a `vpn-sessiondb logoff` applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "kebab-case")]
pub enum LogoffTarget {
    /// `logoff name <user>`.
    Name(String),
    /// `logoff ipaddress <ip>`: the session's assigned address.
    IpAddress(IpAddr),
    /// `logoff tunnel-group <profile>`.
    TunnelGroup(String),
    /// `logoff index <n>`.
    Index(u32),
    /// `logoff anyconnect`: every AnyConnect session.
    AnyConnect,
    /// `logoff all`.
    All,
}

impl LogoffTarget {
    pub fn matches(&self, session: &SessionRecord) -> bool {
        match self {
            Self::Name(name) => session.username == *name,
            Self::IpAddress(address) => session.has_assigned_address(*address),
            Self::TunnelGroup(group) => session.tunnel_group == *group,
            Self::Index(index) => session.index == *index,
            Self::AnyConnect | Self::All => true,
        }
    }
}

/// The line printed after logging `count` sessions off. The `name` form is FTD's
/// (scripts match `"<user>" logged off : 0`); the other forms follow its wording.
pub fn logoff_result(target: &LogoffTarget, count: usize) -> String {
    match target {
        LogoffTarget::Name(name) => {
            format!("INFO: Number of sessions with name \"{name}\" logged off : {count}")
        }
        LogoffTarget::IpAddress(address) => {
            format!("INFO: Number of sessions with IP address \"{address}\" logged off : {count}")
        }
        LogoffTarget::TunnelGroup(group) => {
            format!("INFO: Number of sessions from TunnelGroup \"{group}\" logged off : {count}")
        }
        LogoffTarget::Index(index) => {
            format!("INFO: Number of sessions with index \"{index}\" logged off : {count}")
        }
        LogoffTarget::AnyConnect => {
            format!("INFO: Number of sessions of type \"AnyConnect\" logged off : {count}")
        }
        LogoffTarget::All => format!("INFO: Number of sessions logged off : {count}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::fixtures::seed_session;

    #[test]
    fn logoff_by_name_prints_the_ftd_line() {
        assert_eq!(
            logoff_result(&LogoffTarget::Name("client.cisco.com".to_owned()), 1),
            "INFO: Number of sessions with name \"client.cisco.com\" logged off : 1"
        );
    }

    #[test]
    fn logoff_of_unknown_user_reports_zero_so_scripts_can_detect_it() {
        let line = logoff_result(&LogoffTarget::Name("nobody".to_owned()), 0);
        assert!(line.ends_with("\"nobody\" logged off : 0"));
    }

    #[test]
    fn every_logoff_form_names_its_target_and_count() {
        let cases = [
            (
                LogoffTarget::IpAddress("192.168.13.1".parse().unwrap()),
                "INFO: Number of sessions with IP address \"192.168.13.1\" logged off : 2",
            ),
            (
                LogoffTarget::TunnelGroup("RA-VPN-Multi-Cert".to_owned()),
                "INFO: Number of sessions from TunnelGroup \"RA-VPN-Multi-Cert\" logged off : 2",
            ),
            (
                LogoffTarget::Index(28),
                "INFO: Number of sessions with index \"28\" logged off : 2",
            ),
            (
                LogoffTarget::AnyConnect,
                "INFO: Number of sessions of type \"AnyConnect\" logged off : 2",
            ),
            (LogoffTarget::All, "INFO: Number of sessions logged off : 2"),
        ];
        for (target, expected) in cases {
            assert_eq!(logoff_result(&target, 2), expected);
        }
    }

    #[test]
    fn logoff_targets_select_the_sessions_they_name() {
        let session = seed_session();
        assert!(LogoffTarget::Name("client.cisco.com".to_owned()).matches(&session));
        assert!(!LogoffTarget::Name("machine.cisco.com".to_owned()).matches(&session));
        assert!(LogoffTarget::IpAddress("192.168.13.1".parse().unwrap()).matches(&session));
        // The public address is not an assigned address.
        assert!(!LogoffTarget::IpAddress("10.106.56.89".parse().unwrap()).matches(&session));
        assert!(LogoffTarget::TunnelGroup("RA-VPN-Multi-Cert".to_owned()).matches(&session));
        assert!(!LogoffTarget::TunnelGroup("Other".to_owned()).matches(&session));
        assert!(LogoffTarget::Index(28).matches(&session));
        assert!(!LogoffTarget::Index(29).matches(&session));
        assert!(LogoffTarget::AnyConnect.matches(&session));
        assert!(LogoffTarget::All.matches(&session));
    }
}
