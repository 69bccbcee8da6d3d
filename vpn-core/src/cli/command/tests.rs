use proptest::prelude::*;

use super::*;

fn parse(line: &str) -> Result<Command, CliParseError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    Command::parse(&words)
}

fn section(line: &str) -> RunningConfigSection {
    match parse(line) {
        Ok(Command::ShowRunningConfig { section }) => section,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn show_run_tunnel_group_parses_in_full_and_abbreviated_forms() {
    assert_eq!(
        section("show running-config tunnel-group"),
        RunningConfigSection::TunnelGroup(None)
    );
    assert_eq!(
        section("sh run tun"),
        RunningConfigSection::TunnelGroup(None)
    );
    assert_eq!(
        section("SHOW RUN tunnel-group RA-VPN-Multi-Cert"),
        RunningConfigSection::TunnelGroup(Some("RA-VPN-Multi-Cert".to_owned()))
    );
}

#[test]
fn every_running_config_section_parses() {
    assert_eq!(section("show run"), RunningConfigSection::All);
    assert_eq!(
        section("show run group-policy GP"),
        RunningConfigSection::GroupPolicy(Some("GP".to_owned()))
    );
    assert_eq!(
        section("show run ip local pool"),
        RunningConfigSection::IpLocalPool(None)
    );
    assert_eq!(
        section("show run ipv6 local pool v6"),
        RunningConfigSection::Ipv6LocalPool(Some("v6".to_owned()))
    );
    assert_eq!(
        section("show run crypto ca trustpoint"),
        RunningConfigSection::CryptoCaTrustpoint(None)
    );
    assert_eq!(section("show run webvpn"), RunningConfigSection::Webvpn);
    assert_eq!(section("show run ssl"), RunningConfigSection::Ssl);
    assert_eq!(
        section("show run username"),
        RunningConfigSection::Username(None)
    );
    assert_eq!(
        section("show run access-list"),
        RunningConfigSection::AccessList(None)
    );
}

#[test]
fn sessiondb_views_parse_with_and_without_detail_and_filters() {
    assert_eq!(
        parse("show vpn-sessiondb").unwrap(),
        Command::ShowVpnSessionDbSummary
    );
    assert_eq!(
        parse("show vpn-sessiondb summary").unwrap(),
        Command::ShowVpnSessionDbSummary
    );
    assert_eq!(
        parse("show vpn-sessiondb anyconnect").unwrap(),
        Command::ShowVpnSessionDbAnyConnect {
            detail: false,
            filter: None
        }
    );
    assert_eq!(
        parse("show vpn-sessiondb detail anyconnect filter name client.cisco.com").unwrap(),
        Command::ShowVpnSessionDbAnyConnect {
            detail: true,
            filter: Some(SessionFilter::Name("client.cisco.com".to_owned()))
        }
    );
    assert_eq!(
        parse("show vpn-sessiondb anyconnect filter a-ipaddress 192.168.13.1").unwrap(),
        Command::ShowVpnSessionDbAnyConnect {
            detail: false,
            filter: Some(SessionFilter::AssignedAddress(
                "192.168.13.1".parse().unwrap()
            ))
        }
    );
    assert_eq!(
        parse("sh vpn det any tunnel-group RA-VPN-Multi-Cert").unwrap(),
        Command::ShowVpnSessionDbAnyConnect {
            detail: true,
            filter: Some(SessionFilter::TunnelGroup("RA-VPN-Multi-Cert".to_owned()))
        }
    );
}

#[test]
fn logoff_forms_parse_with_optional_noconfirm() {
    let cases = [
        (
            "vpn-sessiondb logoff name client.cisco.com noconfirm",
            LogoffTarget::Name("client.cisco.com".to_owned()),
            true,
        ),
        (
            "vpn-sessiondb logoff ipaddress 192.168.13.1",
            LogoffTarget::IpAddress("192.168.13.1".parse().unwrap()),
            false,
        ),
        (
            "vpn-sessiondb logoff tunnel-group RA-VPN-Multi-Cert noconfirm",
            LogoffTarget::TunnelGroup("RA-VPN-Multi-Cert".to_owned()),
            true,
        ),
        (
            "vpn-sessiondb logoff index 28",
            LogoffTarget::Index(28),
            false,
        ),
        (
            "vpn-sessiondb logoff anyconnect noconfirm",
            LogoffTarget::AnyConnect,
            true,
        ),
        ("vpn-sessiondb logoff all", LogoffTarget::All, false),
    ];
    for (line, target, noconfirm) in cases {
        assert_eq!(
            parse(line).unwrap(),
            Command::VpnSessionDbLogoff { target, noconfirm },
            "{line}"
        );
    }
}

#[test]
fn empty_line_is_refused() {
    assert_eq!(Command::parse(&[]), Err(CliParseError::Empty));
}

#[test]
fn unknown_keyword_names_the_word_its_position_and_the_choices() {
    let err = parse("show startup-config").unwrap_err();
    assert_eq!(
        err,
        CliParseError::UnknownKeyword {
            position: 2,
            word: "startup-config".to_owned(),
            expected: vec!["running-config", "vpn-sessiondb"],
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown keyword \"startup-config\" at word 2; expected one of: running-config, vpn-sessiondb"
    );
}

#[test]
fn ambiguous_abbreviation_lists_the_candidates() {
    assert_eq!(
        parse("vpn-sessiondb logoff a").unwrap_err(),
        CliParseError::AmbiguousKeyword {
            position: 3,
            word: "a".to_owned(),
            candidates: vec!["all", "anyconnect"],
        }
    );
}

#[test]
fn exact_keyword_wins_over_a_longer_one_with_the_same_prefix() {
    assert_eq!(
        section("show run ip local pool"),
        RunningConfigSection::IpLocalPool(None)
    );
}

#[test]
fn missing_argument_says_what_was_expected() {
    let err = parse("vpn-sessiondb logoff name").unwrap_err();
    assert_eq!(
        err,
        CliParseError::Incomplete {
            after: "name".to_owned(),
            expected: "a username"
        }
    );
    assert_eq!(
        err.to_string(),
        "incomplete command: a username expected after \"name\""
    );
    assert!(matches!(
        parse("show").unwrap_err(),
        CliParseError::Incomplete { .. }
    ));
    assert!(matches!(
        parse("show vpn-sessiondb detail").unwrap_err(),
        CliParseError::Incomplete { .. }
    ));
}

#[test]
fn bad_address_and_index_are_refused() {
    assert_eq!(
        parse("vpn-sessiondb logoff ipaddress 300.1.1.1").unwrap_err(),
        CliParseError::InvalidIpAddress {
            position: 4,
            word: "300.1.1.1".to_owned()
        }
    );
    assert_eq!(
        parse("vpn-sessiondb logoff index -1").unwrap_err(),
        CliParseError::InvalidIndex {
            position: 4,
            word: "-1".to_owned()
        }
    );
}

#[test]
fn words_after_a_complete_command_are_refused() {
    assert_eq!(
        parse("show vpn-sessiondb summary now").unwrap_err(),
        CliParseError::Unexpected {
            position: 4,
            word: "now".to_owned()
        }
    );
    assert!(matches!(
        parse("show run ssl extra").unwrap_err(),
        CliParseError::Unexpected { position: 4, .. }
    ));
}

#[test]
fn more_than_the_word_limit_is_refused() {
    let words = vec!["show"; MAX_WORDS + 1];
    assert_eq!(
        Command::parse(&words),
        Err(CliParseError::TooManyWords {
            count: MAX_WORDS + 1
        })
    );
}

#[test]
fn word_longer_than_the_limit_is_refused() {
    let long = "x".repeat(MAX_WORD_LEN + 1);
    assert_eq!(
        Command::parse(&["show", "run", "tunnel-group", &long]),
        Err(CliParseError::WordTooLong {
            position: 4,
            len: MAX_WORD_LEN + 1
        })
    );
    let longest = "x".repeat(MAX_WORD_LEN);
    assert!(Command::parse(&["show", "run", "tunnel-group", &longest]).is_ok());
}

#[test]
fn commands_serialize_for_the_control_socket() {
    let command = parse("vpn-sessiondb logoff name alice noconfirm").unwrap();
    let json = serde_json::to_string(&command).unwrap();
    assert_eq!(
        json,
        r#"{"command":"vpn-session-db-logoff","target":{"by":"name","value":"alice"},"noconfirm":true}"#
    );
    let back: Command = serde_json::from_str(&json).unwrap();
    assert_eq!(back, command);
}

proptest! {
    #[test]
    fn parsing_arbitrary_words_never_panics(words in proptest::collection::vec(".{0,20}", 0..20)) {
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let _ = Command::parse(&refs);
    }

    #[test]
    fn parsing_keyword_soup_never_panics(words in proptest::collection::vec(
        prop::sample::select(vec![
            "show", "run", "vpn-sessiondb", "detail", "anyconnect", "filter", "name",
            "a-ipaddress", "tunnel-group", "logoff", "index", "all", "noconfirm", "ip",
            "ipv6", "local", "pool", "crypto", "ca", "trustpoint", "1.2.3.4", "7", "x",
        ]),
        0..10,
    )) {
        let _ = Command::parse(&words);
    }
}
