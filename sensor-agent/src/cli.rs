//! The operator commands of the `sensor-agent` binary: the words typed after it are
//! parsed like FTD's CLI (abbreviations allowed) and sent to the running agent.

use vpn_core::cli::{CliParseError, Command, LOGOFF_CONFIRM_PROMPT};

/// The command typed as `words` (`["show", "vpn-sessiondb", "summary"]`).
pub fn parse_words<S: AsRef<str>>(words: &[S]) -> Result<Command, CliParseError> {
    let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    Command::parse(&words)
}

/// The question to ask before running `command`, if any (a logoff without `noconfirm`).
pub fn confirmation_prompt(command: &Command) -> Option<&'static str> {
    match command {
        Command::VpnSessionDbLogoff {
            noconfirm: false, ..
        } => Some(LOGOFF_CONFIRM_PROMPT),
        Command::VpnSessionDbLogoff { .. }
        | Command::ShowRunningConfig { .. }
        | Command::ShowVpnSessionDbSummary
        | Command::ShowVpnSessionDbAnyConnect { .. } => None,
    }
}

/// Whether the operator's answer to the prompt confirms: Enter or `y`/`yes`, as on FTD.
pub fn is_confirmation(answer: &str) -> bool {
    matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "" | "y" | "yes"
    )
}

#[cfg(test)]
mod tests {
    use vpn_core::cli::LogoffTarget;

    use super::*;

    #[test]
    fn abbreviated_words_parse_like_on_ftd() {
        assert_eq!(
            parse_words(&["sh", "vpn-sessiondb"]).unwrap(),
            Command::ShowVpnSessionDbSummary
        );
    }

    #[test]
    fn logoff_without_noconfirm_asks_first_and_enter_confirms() {
        let ask = parse_words(&["vpn-sessiondb", "logoff", "name", "alice"]).unwrap();
        assert_eq!(confirmation_prompt(&ask), Some(LOGOFF_CONFIRM_PROMPT));
        let quiet = parse_words(&["vpn-sessiondb", "logoff", "all", "noconfirm"]).unwrap();
        assert_eq!(
            quiet,
            Command::VpnSessionDbLogoff {
                target: LogoffTarget::All,
                noconfirm: true
            }
        );
        assert_eq!(confirmation_prompt(&quiet), None);
        assert!(is_confirmation("\n"));
        assert!(is_confirmation("Y"));
        assert!(!is_confirmation("n"));
    }
}
