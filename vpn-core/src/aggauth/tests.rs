use proptest::prelude::*;

use super::limits::*;
use super::tree::read_tree;
use super::*;
use crate::mca::McaHash;

/// The `init` openconnect 9.01 sent in protocol.md §8.1 (with `--mca-certificate`).
const OPENCONNECT_INIT: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id><capabilities><auth-method>single-sign-on-v2</auth-method><auth-method>single-sign-on-external-browser</auth-method><auth-method>multiple-cert</auth-method></capabilities><group-access>https://localhost:8443/RAVPN-MultiCert</group-access></config-auth>\n";

/// The opaque block of protocol.md §2.5, as the client echoes it.
const ECHOED_OPAQUE: &str = "<opaque is-for=\"sg\">\n<tunnel-group>RAVPN-MultiCert</tunnel-group>\n<aggauth-handle>51eb8da181e71ff8</aggauth-handle>\n<auth-method>multiple-cert</auth-method>\n<config-hash>1700000000000</config-hash>\n</opaque>";

/// The MCA auth-request of protocol.md §8.1, byte for byte (643 bytes).
const TRANSCRIPT_MCA_REQUEST: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"auth-request\" aggregate-auth-version=\"2\">\n<opaque is-for=\"sg\">\n<tunnel-group>RAVPN-MultiCert</tunnel-group>\n<aggauth-handle>51eb8da181e71ff8</aggauth-handle>\n<auth-method>multiple-cert</auth-method>\n<config-hash>1700000000000</config-hash>\n</opaque>\n<multiple-client-cert-request>\n<hash-algorithm>sha256</hash-algorithm>\n<hash-algorithm>sha384</hash-algorithm>\n<hash-algorithm>sha512</hash-algorithm>\n</multiple-client-cert-request>\n<random>C32101C37CD8895C7798C529CE04212095937885C1423C41BB90389699EECBD1</random>\n<cert-authenticated></cert-authenticated>\n</config-auth>\n";

const CAPABILITIES: &str = "<capabilities><auth-method>single-sign-on-v2</auth-method><auth-method>single-sign-on-external-browser</auth-method><auth-method>multiple-cert</auth-method></capabilities>";

/// An MCA auth-reply shaped like protocol.md §8.1, with 64-column base64.
fn mca_reply_body(pkcs7_base64: &str, signature_base64: &str, hash: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"auth-reply\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id>{CAPABILITIES}<session-token/><session-id/>{ECHOED_OPAQUE}<auth><client-cert-chain cert-store=\"1M\"><client-cert-sent-via-protocol/></client-cert-chain><client-cert-chain cert-store=\"1U\"><client-cert cert-format=\"pkcs7\">{}</client-cert><client-cert-auth-signature hash-algorithm-chosen=\"{hash}\">{}</client-cert-auth-signature></client-cert-chain></auth></config-auth>\n",
        wrap64(pkcs7_base64),
        wrap64(signature_base64),
    )
}

fn wrap64(text: &str) -> String {
    text.as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse(body: &str) -> Result<ClientMessage, AggAuthError> {
    ClientMessage::parse(body.as_bytes())
}

fn wrap_root(inner: &str) -> String {
    format!(
        "<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\">{inner}</config-auth>"
    )
}

#[test]
fn parses_the_init_openconnect_sends_with_an_mca_certificate() {
    let Ok(ClientMessage::Init(init)) = parse(OPENCONNECT_INIT) else {
        panic!("not an init");
    };
    assert_eq!(init.version.as_deref(), Some("v9.01-3"));
    assert_eq!(
        init.device_id,
        Some(DeviceId {
            name: "linux-64".into(),
            attributes: vec![]
        })
    );
    assert_eq!(
        init.auth_methods,
        [
            "single-sign-on-v2",
            "single-sign-on-external-browser",
            "multiple-cert"
        ]
    );
    assert!(init.offers_multiple_cert());
    assert_eq!(
        init.group_access.as_deref(),
        Some("https://localhost:8443/RAVPN-MultiCert")
    );
    assert_eq!(init.group_select, None);
    assert!(!init.client_cert_fail);
}

#[test]
fn init_without_mca_certificate_does_not_offer_multiple_cert() {
    let body = OPENCONNECT_INIT.replace("<auth-method>multiple-cert</auth-method>", "");
    let Ok(ClientMessage::Init(init)) = parse(&body) else {
        panic!("not an init");
    };
    assert!(!init.offers_multiple_cert());
}

#[test]
fn init_retry_reports_client_cert_fail_and_group_select() {
    let body = OPENCONNECT_INIT.replace(
        "</config-auth>",
        "<client-cert-fail/><group-select>RAVPN-MultiCert</group-select></config-auth>",
    );
    let Ok(ClientMessage::Init(init)) = parse(&body) else {
        panic!("not an init");
    };
    assert!(init.client_cert_fail);
    assert_eq!(init.group_select.as_deref(), Some("RAVPN-MultiCert"));
}

#[test]
fn init_keeps_device_id_attributes_and_ignores_unknown_elements() {
    let body = wrap_root(
        "<version who=\"vpn\">4.10.07061</version><device-id computer-name=\"PC1\" platform-version=\"10.0.19044\" unique-id=\"ABC\">win</device-id><mac-address-list><mac-address>00-11</mac-address></mac-address-list><capabilities><auth-method>future-method</auth-method><auth-method>multiple-cert</auth-method></capabilities>",
    );
    let Ok(ClientMessage::Init(init)) = parse(&body) else {
        panic!("not an init");
    };
    let device = init.device_id.clone().expect("device-id");
    assert_eq!(device.name, "win");
    assert!(
        device
            .attributes
            .contains(&("platform-version".into(), "10.0.19044".into()))
    );
    assert!(init.offers_multiple_cert());
}

#[test]
fn parses_an_mca_auth_reply_and_strips_base64_line_breaks() {
    let bag = "MIIDYwYJKoZIhvcNAQcCoIIDVDCCA1ACAQExADALBgkqhkiG9w0BBwWgggM4MIIDNDCCAhygAwIBAgIUNrzsGpfyv21J".repeat(3);
    let signature =
        "Cbb+m0u+qDRi0NO9IviwL/c436JDzGePe++eDPTDU+Oqfz+rP3bTivqkOB56WOZnrhfI4SO6C8Cu0wXV3CyFBw==";
    let Ok(ClientMessage::AuthReply(reply)) = parse(&mca_reply_body(&bag, signature, "sha512"))
    else {
        panic!("not an auth-reply");
    };
    let opaque = reply.opaque.expect("opaque");
    assert_eq!(opaque.aggauth_handle.as_deref(), Some("51eb8da181e71ff8"));
    assert_eq!(opaque.tunnel_group.as_deref(), Some("RAVPN-MultiCert"));
    assert_eq!(opaque.raw, ECHOED_OPAQUE);
    let mca = reply.mca.expect("mca");
    assert!(mca.machine_sent_via_protocol);
    assert_eq!(mca.user_pkcs7_base64, bag);
    assert_eq!(mca.signature_base64, signature);
    assert_eq!(mca.hash_algorithm_chosen, "sha512");
    assert_eq!(mca.user_chains, 1);
    assert_eq!(reply.credentials, None);
}

#[test]
fn an_mca_reply_with_two_user_chains_keeps_the_first_and_counts_both() {
    let body = mca_reply_body("Rmlyc3Q=", "U2ln", "sha256");
    let start = body.find("<client-cert-chain cert-store=\"1U\">").unwrap();
    let end = body.find("</auth>").unwrap();
    let second = body[start..end].replace("Rmlyc3Q=", "U2Vjb25k");
    let two = body.replace("</auth>", &format!("{second}</auth>"));
    let Ok(ClientMessage::AuthReply(reply)) = parse(&two) else {
        panic!("not an auth-reply");
    };
    let mca = reply.mca.expect("mca");
    assert_eq!(mca.user_chains, 2);
    assert_eq!(mca.user_pkcs7_base64, "Rmlyc3Q=");
}

#[test]
fn mca_reply_without_sent_via_protocol_is_reported_as_such() {
    let body =
        mca_reply_body("AAAA", "AAAA", "sha256").replace("<client-cert-sent-via-protocol/>", "");
    let Ok(ClientMessage::AuthReply(reply)) = parse(&body) else {
        panic!("not an auth-reply");
    };
    assert!(!reply.mca.expect("mca").machine_sent_via_protocol);
}

#[test]
fn mca_reply_with_a_non_pkcs7_user_cert_is_refused() {
    let body = mca_reply_body("AAAA", "AAAA", "sha256").replace("\"pkcs7\"", "\"pem\"");
    assert_eq!(
        parse(&body),
        Err(AggAuthError::UnsupportedCertFormat("pem".into()))
    );
}

#[test]
fn mca_reply_without_signature_is_incomplete() {
    let body = mca_reply_body("AAAA", "AAAA", "sha256").replace(
        "<client-cert-auth-signature hash-algorithm-chosen=\"sha256\">AAAA</client-cert-auth-signature>",
        "",
    );
    assert!(matches!(
        parse(&body),
        Err(AggAuthError::IncompleteMcaReply(_))
    ));
}

#[test]
fn a_pkcs7_of_ten_large_certificates_fits_in_a_reply() {
    // Ten 4096-bit RSA certificates: about 2 KiB of DER each, 27 KiB of base64.
    let bag = "A".repeat(28 * 1024);
    let body = mca_reply_body(&bag, &"B".repeat(700), "sha512");
    let Ok(ClientMessage::AuthReply(reply)) = parse(&body) else {
        panic!("not an auth-reply");
    };
    assert_eq!(reply.mca.expect("mca").user_pkcs7_base64.len(), bag.len());
}

#[test]
fn parses_form_credentials_and_never_shows_the_password_in_debug() {
    let body = format!(
        "<config-auth client=\"vpn\" type=\"auth-reply\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id>{CAPABILITIES}{ECHOED_OPAQUE}<auth><username>client.example.com</username><password>s3cr&amp;t</password></auth></config-auth>"
    );
    let Ok(ClientMessage::AuthReply(reply)) = parse(&body) else {
        panic!("not an auth-reply");
    };
    let credentials = reply.credentials.clone().expect("credentials");
    assert_eq!(credentials.username.as_deref(), Some("client.example.com"));
    assert_eq!(credentials.password.expose(), "s3cr&t");
    let shown = format!("{reply:?}");
    assert!(!shown.contains("s3cr"), "{shown}");
    assert!(shown.contains("redacted"));
}

#[test]
fn password_only_reply_has_no_username() {
    let body = "<config-auth client=\"vpn\" type=\"auth-reply\"><auth><password>pw</password></auth><group-select>G</group-select></config-auth>";
    let Ok(ClientMessage::AuthReply(reply)) = parse(body) else {
        panic!("not an auth-reply");
    };
    assert_eq!(reply.credentials.expect("credentials").username, None);
    assert_eq!(reply.group_select.as_deref(), Some("G"));
}

#[test]
fn logout_is_recognised() {
    assert_eq!(
        parse(
            "<config-auth client=\"vpn\" type=\"logout\"><session-token>x</session-token></config-auth>"
        ),
        Ok(ClientMessage::Logout)
    );
}

#[test]
fn refuses_other_roots_and_unknown_types() {
    assert_eq!(
        parse("<html/>"),
        Err(AggAuthError::NotConfigAuth("html".into()))
    );
    assert_eq!(
        parse("<config-auth type=\"hello\"/>"),
        Err(AggAuthError::UnknownType("hello".into()))
    );
    assert!(matches!(parse(""), Err(AggAuthError::Malformed(_))));
    assert!(matches!(
        parse("<config-auth type=\"init\"><a></b></config-auth>"),
        Err(AggAuthError::Malformed(_))
    ));
    assert!(matches!(
        parse("<config-auth type=\"init\"/><config-auth type=\"init\"/>"),
        Err(AggAuthError::Malformed(_))
    ));
}

#[test]
fn refuses_a_body_over_the_size_limit() {
    let padding = " ".repeat(MAX_BODY_BYTES);
    let body = format!("{OPENCONNECT_INIT}{padding}");
    assert_eq!(
        parse(&body),
        Err(AggAuthError::BodyTooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES
        })
    );
}

#[test]
fn refuses_nesting_deeper_than_the_limit() {
    let at_limit = wrap_root(&format!(
        "{}{}",
        "<a>".repeat(MAX_DEPTH - 1),
        "</a>".repeat(MAX_DEPTH - 1)
    ));
    assert!(parse(&at_limit).is_ok());
    let too_deep = wrap_root(&format!(
        "{}{}",
        "<a>".repeat(MAX_DEPTH),
        "</a>".repeat(MAX_DEPTH)
    ));
    assert_eq!(
        parse(&too_deep),
        Err(AggAuthError::TooDeep { limit: MAX_DEPTH })
    );
}

#[test]
fn refuses_more_elements_than_the_limit() {
    assert!(parse(&wrap_root(&"<a/>".repeat(MAX_ELEMENTS - 1))).is_ok());
    assert_eq!(
        parse(&wrap_root(&"<a/>".repeat(MAX_ELEMENTS))),
        Err(AggAuthError::TooManyElements {
            limit: MAX_ELEMENTS
        })
    );
}

#[test]
fn refuses_text_longer_than_the_limit_even_when_split_by_entities() {
    let half = "x".repeat(MAX_TEXT_BYTES / 2);
    let body = wrap_root(&format!("<version>{half}&amp;{half}</version>"));
    assert_eq!(
        parse(&body),
        Err(AggAuthError::TextTooLong {
            element: "version".into(),
            limit: MAX_TEXT_BYTES
        })
    );
}

#[test]
fn refuses_long_attributes_and_too_many_attributes() {
    let long = wrap_root(&format!(
        "<device-id unique-id=\"{}\">x</device-id>",
        "a".repeat(MAX_ATTRIBUTE_BYTES + 1)
    ));
    assert_eq!(
        parse(&long),
        Err(AggAuthError::AttributeTooLong {
            element: "device-id".into(),
            limit: MAX_ATTRIBUTE_BYTES
        })
    );
    let many: String = (0..=MAX_ATTRIBUTES_PER_ELEMENT)
        .map(|i| format!(" a{i}=\"v\""))
        .collect();
    assert_eq!(
        parse(&wrap_root(&format!("<device-id{many}>x</device-id>"))),
        Err(AggAuthError::TooManyAttributes {
            element: "device-id".into(),
            limit: MAX_ATTRIBUTES_PER_ELEMENT
        })
    );
}

#[test]
fn refuses_doctype_and_entity_declarations() {
    let billion_laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><config-auth type=\"init\"><version>&lol2;</version></config-auth>";
    assert_eq!(parse(billion_laughs), Err(AggAuthError::DtdRefused));
    let external =
        "<!DOCTYPE config-auth SYSTEM \"file:///etc/passwd\"><config-auth type=\"init\"/>";
    assert_eq!(parse(external), Err(AggAuthError::DtdRefused));
}

#[test]
fn refuses_undeclared_entities_but_resolves_predefined_and_character_references() {
    assert_eq!(
        parse(&wrap_root("<version>&xxe;</version>")),
        Err(AggAuthError::UnknownEntity("xxe".into()))
    );
    let Ok(ClientMessage::Init(init)) = parse(&wrap_root(
        "<version>&lt;&#65;&#x42;&gt;&quot;&apos;</version>",
    )) else {
        panic!("not an init");
    };
    assert_eq!(init.version.as_deref(), Some("<AB>\"'"));
}

#[test]
fn refuses_bodies_that_are_not_utf8() {
    assert_eq!(
        ClientMessage::parse(b"<config-auth type=\"init\">\xff</config-auth>"),
        Err(AggAuthError::NotUtf8)
    );
}

#[test]
fn mca_auth_request_matches_the_verified_transcript_byte_for_byte() {
    let body = mca_auth_request(&McaRequest {
        opaque: SgOpaque {
            tunnel_group: "RAVPN-MultiCert",
            aggauth_handle: "51eb8da181e71ff8",
            auth_method: "multiple-cert",
            config_hash: "1700000000000",
        },
        hashes: &McaHash::ALL,
        random_hex: "C32101C37CD8895C7798C529CE04212095937885C1423C41BB90389699EECBD1",
    });
    assert_eq!(String::from_utf8_lossy(&body), TRANSCRIPT_MCA_REQUEST);
    assert_eq!(body.len(), 643);
}

#[test]
fn mca_auth_request_offers_only_the_given_hashes() {
    let body = mca_auth_request(&McaRequest {
        opaque: SgOpaque {
            tunnel_group: "G",
            aggauth_handle: "h",
            auth_method: "multiple-cert",
            config_hash: "1",
        },
        hashes: &[McaHash::Sha256],
        random_hex: "00",
    });
    let tree = read_tree(&body).expect("own output parses");
    let request = tree.child("multiple-client-cert-request").expect("request");
    let offered: Vec<&str> = request
        .children_named("hash-algorithm")
        .map(|hash| hash.trimmed_text())
        .collect();
    assert_eq!(offered, ["sha256"]);
    assert!(tree.child("cert-authenticated").is_some());
}

#[test]
fn client_cert_request_has_no_cert_authenticated() {
    let tree = read_tree(&client_cert_request()).expect("own output parses");
    assert_eq!(tree.attribute("type"), Some("auth-request"));
    assert!(tree.child("client-cert-request").is_some());
    assert!(tree.child("cert-authenticated").is_none());
}

fn input_names(body: &[u8]) -> Vec<(String, String)> {
    let tree = read_tree(body).expect("own output parses");
    let form = tree
        .child("auth")
        .and_then(|auth| auth.child("form"))
        .expect("form");
    form.children_named("input")
        .map(|input| {
            (
                input.attribute("type").unwrap_or_default().to_owned(),
                input.attribute("name").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn login_form_with_hidden_username_asks_only_for_the_password() {
    let opaque = SgOpaque {
        tunnel_group: "RAVPN-MultiCert",
        aggauth_handle: "abc",
        auth_method: "multiple-cert",
        config_hash: "1",
    };
    let body = login_form(&LoginForm {
        opaque: Some(opaque),
        title: "Login",
        message: Some("Please enter your password."),
        username: UsernameInput::Hidden,
        error: None,
    });
    assert_eq!(
        input_names(&body),
        [("password".to_owned(), "password".to_owned())]
    );
    let tree = read_tree(&body).expect("parses");
    assert_eq!(
        tree.child("auth").and_then(|a| a.attribute("id")),
        Some("main")
    );
    let echoed = tree.child("opaque").expect("opaque");
    assert_eq!(
        echoed.child("aggauth-handle").map(|h| h.trimmed_text()),
        Some("abc")
    );
}

#[test]
fn login_form_with_visible_username_asks_for_username_and_password() {
    let body = login_form(&LoginForm {
        opaque: None,
        title: "Login",
        message: None,
        username: UsernameInput::Visible {
            prefill: Some("client.example.com"),
        },
        error: Some("Login failed."),
    });
    assert_eq!(
        input_names(&body),
        [
            ("text".to_owned(), "username".to_owned()),
            ("password".to_owned(), "password".to_owned())
        ]
    );
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("value=\"client.example.com\""));
    assert!(text.contains("<error>Login failed.</error>"));
}

#[test]
fn error_form_has_an_error_and_no_inputs() {
    let body = error_form("Certificate Validation Failure");
    let tree = read_tree(&body).expect("parses");
    let auth = tree.child("auth").expect("auth");
    assert_eq!(auth.attribute("id"), Some("main"));
    assert_eq!(
        auth.child("error").map(|e| e.trimmed_text()),
        Some("Certificate Validation Failure")
    );
    assert!(auth.child("form").is_none());
}

#[test]
fn group_select_form_lists_aliases_escaped() {
    let aliases = ["RAVPN", "<script>alert(1)</script>", "a&b \"q\" 'x'"];
    let body = group_select_form(&aliases, None);
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("<script>"));
    let tree = read_tree(&body).expect("parses");
    let select = tree
        .child("auth")
        .and_then(|auth| auth.child("form"))
        .and_then(|form| form.child("select"))
        .expect("select");
    assert_eq!(select.attribute("name"), Some("group_list"));
    let values: Vec<&str> = select
        .children_named("option")
        .map(|option| option.attribute("value").unwrap_or_default())
        .collect();
    assert_eq!(values, aliases);
}

#[test]
fn complete_carries_token_banner_and_server_cert_hash() {
    let body = complete(&Completion {
        session_id: "58C2FFAE",
        session_token: "644E7C5F",
        banner: Some("Authorized use only & <b>logged</b>"),
        server_cert_hash: "80D66A",
    });
    let tree = read_tree(&body).expect("parses");
    assert_eq!(tree.attribute("type"), Some("complete"));
    assert_eq!(
        tree.child("session-token").map(|t| t.trimmed_text()),
        Some("644E7C5F")
    );
    assert_eq!(
        tree.child("session-id").map(|t| t.trimmed_text()),
        Some("58C2FFAE")
    );
    let auth = tree.child("auth").expect("auth");
    assert_eq!(auth.attribute("id"), Some("success"));
    assert_eq!(
        auth.child("banner").map(|b| b.trimmed_text()),
        Some("Authorized use only & <b>logged</b>")
    );
    let hash = tree
        .child("config")
        .and_then(|c| c.child("vpn-base-config"))
        .and_then(|c| c.child("server-cert-hash"))
        .map(|h| h.trimmed_text());
    assert_eq!(hash, Some("80D66A"));
}

#[test]
fn every_server_value_is_escaped() {
    let hostile = "<script>&\"'";
    let opaque = SgOpaque {
        tunnel_group: hostile,
        aggauth_handle: hostile,
        auth_method: hostile,
        config_hash: hostile,
    };
    let bodies = [
        mca_auth_request(&McaRequest {
            opaque,
            hashes: &McaHash::ALL,
            random_hex: hostile,
        }),
        login_form(&LoginForm {
            opaque: Some(opaque),
            title: hostile,
            message: Some(hostile),
            username: UsernameInput::Visible {
                prefill: Some(hostile),
            },
            error: Some(hostile),
        }),
        error_form(hostile),
        complete(&Completion {
            session_id: hostile,
            session_token: hostile,
            banner: Some(hostile),
            server_cert_hash: hostile,
        }),
    ];
    for body in bodies {
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("<script>"), "{text}");
        assert!(read_tree(&body).is_ok(), "{text}");
    }
}

#[test]
fn server_values_with_control_characters_stay_well_formed_and_have_no_nul() {
    let body = error_form("bad\u{0}name\u{1b}[31m");
    assert!(
        !body.contains(&0),
        "a NUL would cut short the bytes the client signs"
    );
    let tree = read_tree(&body).expect("well-formed");
    let error = tree
        .child("auth")
        .and_then(|auth| auth.child("error"))
        .expect("error");
    assert_eq!(error.trimmed_text(), "bad\u{fffd}name\u{fffd}[31m");
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = ClientMessage::parse(&body);
    }

    #[test]
    fn parse_never_panics_on_mutated_valid_messages(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let base = match which {
            0 => OPENCONNECT_INIT.to_owned(),
            1 => mca_reply_body("MIIDYwYJKoZIhvcNAQcC", "Cbb+m0u+", "sha512"),
            _ => format!("<config-auth type=\"auth-reply\">{ECHOED_OPAQUE}<auth><username>u</username><password>p</password></auth></config-auth>"),
        };
        let mut body = base.into_bytes();
        for (index, byte) in edits {
            let at = index.index(body.len());
            body[at] = byte;
        }
        body.truncate(cut.index(body.len() + 1));
        let _ = ClientMessage::parse(&body);
    }

    #[test]
    fn group_select_values_round_trip_through_escaping(
        aliases in proptest::collection::vec("[ -~]{0,20}", 0..5)
    ) {
        let refs: Vec<&str> = aliases.iter().map(String::as_str).collect();
        let body = group_select_form(&refs, Some("x"));
        let tree = read_tree(&body).expect("own output parses");
        let select = tree
            .child("auth")
            .and_then(|auth| auth.child("form"))
            .and_then(|form| form.child("select"))
            .expect("select");
        let values: Vec<String> = select
            .children_named("option")
            .map(|option| option.attribute("value").unwrap_or_default().to_owned())
            .collect();
        prop_assert_eq!(values, aliases);
    }
}
