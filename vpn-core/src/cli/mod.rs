//! FTD-style command-line text: `show running-config ...`, `show vpn-sessiondb ...`
//! and `vpn-sessiondb logoff ...`.
//!
//! Everything here is a pure function of its inputs (config, session records, counters
//! and `now`), so the manager's deploy preview and the sensor's CLI print the same
//! text. Output is deterministic: sections keep the document's order and sessions are
//! listed by index. No line carries trailing whitespace; session fields use FTD's
//! fixed columns (13-character labels, right column at character 38).
//!
//! The sensor splits a line into words, calls [`Command::parse`], and either renders a
//! `show` with [`show`] or performs a logoff and prints [`logoff_result`].

mod command;
mod layout;
mod logoff;
mod running_config;
mod sessiondb;

use time::OffsetDateTime;

pub use command::{CliParseError, Command, MAX_WORD_LEN, MAX_WORDS};
pub use logoff::{LOGOFF_CONFIRM_PROMPT, LogoffTarget, logoff_result};
pub use running_config::{
    DEFAULT_GROUP_POLICY, RunningConfigSection, running_config, running_config_section,
};
pub use sessiondb::{
    NO_ACTIVE_SESSIONS, NO_MATCHING_SESSIONS, SessionFilter, SessionStats,
    vpn_sessiondb_anyconnect, vpn_sessiondb_detail_anyconnect, vpn_sessiondb_summary,
};

use crate::config::DeviceConfig;
use crate::session::SessionRecord;

/// What a device shows: its running config and its session database.
#[derive(Debug, Clone, Copy)]
pub struct DeviceState<'a> {
    pub config: &'a DeviceConfig,
    pub sessions: &'a [SessionRecord],
    pub stats: &'a SessionStats,
}

/// The text of a `show` command; `None` for commands that change state (logoff),
/// which the caller performs and reports with [`logoff_result`].
pub fn show(command: &Command, device: DeviceState<'_>, now: OffsetDateTime) -> Option<String> {
    match command {
        Command::ShowRunningConfig { section } => {
            Some(running_config_section(device.config, section))
        }
        Command::ShowVpnSessionDbSummary => {
            Some(vpn_sessiondb_summary(device.sessions, device.stats))
        }
        Command::ShowVpnSessionDbAnyConnect { detail, filter } => Some(if *detail {
            vpn_sessiondb_detail_anyconnect(device.sessions, filter.as_ref(), now)
        } else {
            vpn_sessiondb_anyconnect(device.sessions, filter.as_ref(), now)
        }),
        Command::VpnSessionDbLogoff { .. } => None,
    }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::session::fixtures::seed_session;

    fn run(line: &str) -> Option<String> {
        let config = fixtures::seed_config();
        let sessions = [seed_session()];
        let stats = SessionStats::default();
        let words: Vec<&str> = line.split_whitespace().collect();
        let command = Command::parse(&words).unwrap();
        show(
            &command,
            DeviceState {
                config: &config,
                sessions: &sessions,
                stats: &stats,
            },
            datetime!(2025-03-19 07:39:53 UTC),
        )
    }

    #[test]
    fn seed_commands_typed_on_the_sensor_print_the_seed_outputs() {
        assert_eq!(
            run("show run tunnel-group").as_deref(),
            Some(include_str!("golden/seed_show_run_tunnel-group.txt"))
        );
        assert_eq!(
            run("show vpn-sessiondb detail anyconnect").as_deref(),
            Some(include_str!(
                "golden/seed_show_vpn-sessiondb_detail_anyconnect.txt"
            ))
        );
    }

    #[test]
    fn other_show_commands_dispatch_to_their_renderers() {
        assert!(
            run("show vpn-sessiondb")
                .unwrap()
                .starts_with("---------------------------------------------------------------------------\nVPN Session Summary\n")
        );
        assert_eq!(
            run("show vpn-sessiondb anyconnect filter name nobody").as_deref(),
            Some("INFO: There are presently no active sessions of the type specified\n")
        );
        assert_eq!(
            run("show run").as_deref(),
            Some(include_str!("golden/seed_show_running-config.txt"))
        );
    }

    #[test]
    fn logoff_is_not_a_show_and_is_left_to_the_caller() {
        assert_eq!(run("vpn-sessiondb logoff all noconfirm"), None);
    }
}
