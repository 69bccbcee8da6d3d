use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::cli::fixtures::seed_config;
use crate::config::{CertificateField, GroupUrl, LocalUser, ValidationUsage};

fn tunnel_groups(config: &DeviceConfig) -> String {
    running_config_section(config, &RunningConfigSection::TunnelGroup(None))
}

fn seed_profile(config: &mut DeviceConfig) -> &mut ConnectionProfile {
    &mut config.connection_profiles[0]
}

#[test]
fn seed_configuration_renders_exactly_the_seed_tunnel_group_block() {
    assert_eq!(
        tunnel_groups(&seed_config()),
        include_str!("../golden/seed_show_run_tunnel-group.txt")
    );
}

#[test]
fn tunnel_group_by_name_shows_only_that_profile_and_nothing_for_unknown_names() {
    let mut config = seed_config();
    let mut other = config.connection_profiles[0].clone();
    other.name = "Other".to_owned();
    config.connection_profiles.push(other);
    let one = running_config_section(
        &config,
        &RunningConfigSection::TunnelGroup(Some("RA-VPN-Multi-Cert".to_owned())),
    );
    assert_eq!(
        one,
        include_str!("../golden/seed_show_run_tunnel-group.txt")
    );
    let none = running_config_section(
        &config,
        &RunningConfigSection::TunnelGroup(Some("Missing".to_owned())),
    );
    assert_eq!(none, "");
}

#[test]
fn first_certificate_with_cn_only_mapping_is_visible() {
    let mut config = seed_config();
    let aaa = &mut seed_profile(&mut config).aaa;
    aaa.username_from_certificate_source = UsernameSource::FirstCertificate;
    aaa.username_mapping = UsernameMapping::SpecificField {
        primary: CertificateField::Cn,
        secondary: None,
    };
    assert_eq!(
        tunnel_groups(&config),
        "tunnel-group RA-VPN-Multi-Cert type remote-access\n\
         tunnel-group RA-VPN-Multi-Cert general-attributes\n \
         address-pool RAVPN-MultiCert-Pool\n \
         default-group-policy RAVPN-Multi-Cert-GP\n \
         username-from-certificate CN\n \
         username-from-certificate-choice first-certificate\n\
         tunnel-group RA-VPN-Multi-Cert webvpn-attributes\n \
         authentication multiple-certificate\n \
         group-alias RAVPN-MultiCert enable\n"
    );
}

#[test]
fn entire_dn_mapping_renders_use_entire_name() {
    let mut config = seed_config();
    seed_profile(&mut config).aaa.username_mapping = UsernameMapping::EntireDn;
    assert!(tunnel_groups(&config).contains("\n username-from-certificate use-entire-name\n"));
}

#[test]
fn non_default_fields_are_rendered_in_primary_secondary_order() {
    let mut config = seed_config();
    seed_profile(&mut config).aaa.username_mapping = UsernameMapping::SpecificField {
        primary: CertificateField::Upn,
        secondary: Some(CertificateField::O),
    };
    assert!(tunnel_groups(&config).contains("\n username-from-certificate UPN O\n"));
}

#[test]
fn certificate_choice_is_not_rendered_without_mca() {
    let mut config = seed_config();
    let aaa = &mut seed_profile(&mut config).aaa;
    aaa.enable_multiple_certificate_authentication = false;
    aaa.username_from_certificate_source = UsernameSource::FirstCertificate;
    let text = tunnel_groups(&config);
    assert!(!text.contains("username-from-certificate-choice"));
    assert!(text.contains("\n authentication certificate\n"));
}

#[test]
fn certificate_and_aaa_with_mca_prefill_and_hide_renders_all_keywords() {
    let mut config = seed_config();
    let profile = seed_profile(&mut config);
    profile.aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
    profile.aaa.authentication_server = AuthenticationServer::Radius {
        server_group: "ISE-RADIUS".to_owned(),
    };
    profile.aaa.fallback_to_local = true;
    profile.aaa.prefill_username = true;
    profile.aaa.hide_username = true;
    profile.aaa.strip_realm = true;
    profile.aaa.strip_group = true;
    profile.ipv6_pools = vec!["V6-Pool".to_owned()];
    profile.group_urls = vec![GroupUrl {
        url: "https://vpn.example.com/mca".to_owned(),
        enabled: false,
    }];
    profile.group_aliases[0].enabled = false;
    assert_eq!(
        tunnel_groups(&config),
        "tunnel-group RA-VPN-Multi-Cert type remote-access\n\
         tunnel-group RA-VPN-Multi-Cert general-attributes\n \
         address-pool RAVPN-MultiCert-Pool\n \
         ipv6-address-pool V6-Pool\n \
         authentication-server-group ISE-RADIUS LOCAL\n \
         default-group-policy RAVPN-Multi-Cert-GP\n \
         strip-group\n \
         strip-realm\n\
         tunnel-group RA-VPN-Multi-Cert webvpn-attributes\n \
         authentication aaa multiple-certificate\n \
         group-alias RAVPN-MultiCert disable\n \
         group-url https://vpn.example.com/mca disable\n \
         pre-fill-username client hide\n"
    );
}

#[test]
fn prefill_without_hide_renders_plain_prefill() {
    let mut config = seed_config();
    let aaa = &mut seed_profile(&mut config).aaa;
    aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
    aaa.enable_multiple_certificate_authentication = false;
    aaa.prefill_username = true;
    let text = tunnel_groups(&config);
    assert!(text.contains("\n authentication aaa certificate\n"));
    assert!(text.ends_with("\n pre-fill-username client\n"));
}

#[test]
fn aaa_only_profile_with_local_server_and_default_policy_prints_only_its_type() {
    let mut config = seed_config();
    let profile = seed_profile(&mut config);
    profile.aaa = AaaSettings::new(AuthenticationMethod::AaaOnly);
    profile.aaa.enable_multiple_certificate_authentication = true;
    profile.group_policy = DEFAULT_GROUP_POLICY.to_owned();
    profile.ipv4_pools.clear();
    profile.group_aliases.clear();
    assert_eq!(
        tunnel_groups(&config),
        "tunnel-group RA-VPN-Multi-Cert type remote-access\n"
    );
}

#[test]
fn built_in_default_webvpn_group_has_no_type_line() {
    let mut config = seed_config();
    seed_profile(&mut config).name = "DefaultWEBVPNGroup".to_owned();
    assert!(
        tunnel_groups(&config).starts_with("tunnel-group DefaultWEBVPNGroup general-attributes\n")
    );
}

#[test]
fn default_group_policy_renders_only_the_protocol_line() {
    let config = seed_config();
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::GroupPolicy(None)),
        "group-policy RAVPN-Multi-Cert-GP internal\n\
         group-policy RAVPN-Multi-Cert-GP attributes\n \
         vpn-tunnel-protocol ssl-client\n"
    );
}

#[test]
fn group_policy_prints_every_value_that_differs_from_fmc_defaults() {
    let mut config = seed_config();
    let policy = &mut config.group_policies[0];
    policy.banner = Some("Authorized use only\nSecond line".to_owned());
    policy.dns_servers = vec![
        IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10)),
        "2001:db8::53".parse().unwrap(),
    ];
    policy.default_domain = Some("example.com".to_owned());
    policy.split_tunnel_policy = SplitTunnelPolicy::TunnelSpecified;
    policy.split_tunnel_networks = vec![
        "10.0.0.0/8".parse().unwrap(),
        "2001:db8:1::/48".parse().unwrap(),
    ];
    policy.ipv4_pools = vec!["GP-Pool".to_owned()];
    policy.mtu = 1300;
    policy.keepalive_secs = None;
    policy.gateway_dpd_secs = Some(60);
    policy.client_dpd_secs = None;
    policy.idle_timeout_minutes = None;
    policy.max_connect_time_minutes = Some(720);
    policy.simultaneous_logins = 1;
    policy.dtls_enabled = false;
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::GroupPolicy(None)),
        include_str!("../golden/group-policy_all_fields.txt")
    );
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::AccessList(None)),
        "access-list RAVPN-Multi-Cert-GP_split standard permit 10.0.0.0 255.0.0.0\n\
         access-list RAVPN-Multi-Cert-GP_split extended permit ip 2001:db8:1::/48 any6\n"
    );
}

#[test]
fn tunnel_all_policy_has_no_split_tunnel_access_list() {
    let mut config = seed_config();
    config.group_policies[0].split_tunnel_networks = vec!["10.0.0.0/8".parse().unwrap()];
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::AccessList(None)),
        ""
    );
}

#[test]
fn pools_render_in_asa_syntax() {
    let mut config = seed_config();
    config.ipv6_pools.push(Ipv6Pool {
        name: "v6pool".to_owned(),
        start: "2001:db8:1::1".parse().unwrap(),
        prefix_len: 64,
        count: 250,
    });
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::IpLocalPool(None)),
        "ip local pool RAVPN-MultiCert-Pool 192.168.13.1-192.168.13.100 mask 255.255.255.0\n"
    );
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::Ipv6LocalPool(None)),
        "ipv6 local pool v6pool 2001:db8:1::1/64 250\n"
    );
}

#[test]
fn trustpoints_render_identity_keypair_usage_ca_check_and_revocation() {
    let mut config = seed_config();
    let mut user_ca = config.trustpoints[0].clone();
    user_ca.name = "User-CA".to_owned();
    user_ca.skip_ca_flag_check = true;
    user_ca.require_client_auth_eku = false;
    user_ca.validation_usage = ValidationUsage {
        ssl_client: true,
        ssl_server: true,
        ipsec_client: true,
    };
    user_ca.revocation = Revocation::Crl {
        crls_pem: "placeholder".to_owned(),
    };
    let mut unused = config.trustpoints[0].clone();
    unused.name = "No-Usage".to_owned();
    unused.validation_usage = ValidationUsage {
        ssl_client: false,
        ssl_server: false,
        ipsec_client: false,
    };
    config.trustpoints.push(user_ca);
    config.trustpoints.push(unused);
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::CryptoCaTrustpoint(None)),
        "crypto ca trustpoint FTD-ID\n \
         enrollment terminal\n \
         keypair FTD-ID\n \
         crl configure\n\
         crypto ca trustpoint Cisco-CA\n \
         enrollment terminal\n \
         validation-usage ssl-client\n \
         crl configure\n\
         crypto ca trustpoint User-CA\n \
         enrollment terminal\n \
         validation-usage ipsec-client ssl-client ssl-server\n \
         no ca-check\n \
         no client-auth-eku-check\n \
         revocation-check crl\n \
         crl configure\n\
         crypto ca trustpoint No-Usage\n \
         enrollment terminal\n \
         no validation-usage\n \
         crl configure\n"
    );
    assert_eq!(
        running_config_section(
            &config,
            &RunningConfigSection::CryptoCaTrustpoint(Some("Cisco-CA".to_owned()))
        ),
        "crypto ca trustpoint Cisco-CA\n enrollment terminal\n validation-usage ssl-client\n crl configure\n"
    );
}

#[test]
fn webvpn_with_default_ports_lists_interface_and_profile_selection() {
    assert_eq!(
        running_config_section(&seed_config(), &RunningConfigSection::Webvpn),
        "webvpn\n enable outside\n anyconnect enable\n tunnel-group-list enable\n"
    );
}

#[test]
fn webvpn_shows_non_default_ports_and_tls_only_when_dtls_is_off() {
    let mut config = seed_config();
    config.headend.ssl_port = 8443;
    config.headend.dtls_port = 8443;
    config.headend.allow_profile_selection = false;
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::Webvpn),
        "webvpn\n port 8443\n enable outside\n dtls port 8443\n anyconnect enable\n"
    );
    config.headend.dtls_enabled = false;
    assert_eq!(
        running_config_section(&config, &RunningConfigSection::Webvpn),
        "webvpn\n port 8443\n enable outside tls-only\n anyconnect enable\n"
    );
}

#[test]
fn local_users_are_listed_without_their_password_hash() {
    let mut config = seed_config();
    config.local_users.push(LocalUser {
        name: "alice".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
    });
    let text = running_config(&config);
    assert!(text.contains("username alice password ***** argon2id\n"));
    assert!(!text.contains("argon2id$"));
}

#[test]
fn whole_running_config_of_the_seed_matches_the_golden_file() {
    assert_eq!(
        running_config(&seed_config()),
        include_str!("../golden/seed_show_running-config.txt")
    );
}

#[test]
fn rendering_is_deterministic_and_has_no_trailing_whitespace() {
    let config = seed_config();
    let first = running_config(&config);
    assert_eq!(first, running_config(&seed_config()));
    assert!(first.lines().all(|l| l == l.trim_end()));
}
