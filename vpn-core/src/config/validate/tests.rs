//! One test per problem kind, each proving the exact path, on top of the seed scenario.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::date_time_ymd;
use time::Duration;

use super::*;
use crate::config::fixture::{
    ca_and_crl_pem, identity_pem, identity_pem_with, other_key_pem, seed_config, seed_now,
    self_signed_pem,
};
use crate::config::{
    AuthenticationServer, GroupAlias, GroupPolicy, GroupUrl, Ipv4Pool, Ipv6Pool, LocalUser,
    PrivateKeyPem, Revocation,
};

const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$QmFzZTY0SGFzaEJhc2U2NEhhc2hCYXNlNjRIYXNo";

fn problems_after(edit: impl FnOnce(&mut DeviceConfig)) -> Vec<ConfigProblem> {
    let mut config = seed_config();
    edit(&mut config);
    config.validate(seed_now()).err().unwrap_or_default()
}

/// The edit causes exactly one problem, and it is this one.
fn assert_only(edit: impl FnOnce(&mut DeviceConfig), path: &str, kind: ProblemKind) {
    let problems = problems_after(edit);
    let expected = ConfigProblem {
        path: path.into(),
        kind,
    };
    assert_eq!(problems, vec![expected]);
}

/// The edit causes exactly one problem, at `path`; returns its kind.
fn only_kind_at(edit: impl FnOnce(&mut DeviceConfig), path: &str) -> ProblemKind {
    let mut problems = problems_after(edit);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let problem = problems.remove(0);
    assert_eq!(problem.path, path, "{problem}");
    problem.kind
}

fn other_profile(name: &str) -> crate::config::ConnectionProfile {
    let mut profile = seed_config().connection_profiles.remove(0);
    profile.name = name.into();
    profile.group_aliases.clear();
    profile
}

fn pool(name: &str, start: [u8; 4], end: [u8; 4], mask: [u8; 4]) -> Ipv4Pool {
    Ipv4Pool {
        name: name.into(),
        start: start.into(),
        end: end.into(),
        mask: mask.into(),
    }
}

fn v6_pool(name: &str, start: &str, prefix_len: u8, count: u32) -> Ipv6Pool {
    Ipv6Pool {
        name: name.into(),
        start: start.parse().unwrap(),
        prefix_len,
        count,
    }
}

#[test]
fn seed_config_is_valid_and_has_no_warnings() {
    let config = seed_config();
    assert_eq!(config.validate(seed_now()), Ok(()));
    assert_eq!(config.warnings(seed_now()), vec![]);
}

#[test]
fn problem_displays_as_path_then_message() {
    let problem = ConfigProblem {
        path: "$.connection_profiles[2].aaa.hide_username".into(),
        kind: ProblemKind::HideWithoutPrefill,
    };
    assert_eq!(
        problem.to_string(),
        "$.connection_profiles[2].aaa.hide_username: hide username needs prefill username from certificate to be on"
    );
}

#[test]
fn unknown_schema_version_is_a_problem() {
    assert_only(
        |c| c.schema_version = 7,
        "$.schema_version",
        ProblemKind::UnsupportedSchemaVersion {
            found: 7,
            supported: 1,
        },
    );
}

#[test]
fn empty_profile_name_is_a_problem() {
    assert_only(
        |c| c.connection_profiles[0].name.clear(),
        "$.connection_profiles[0].name",
        ProblemKind::EmptyName {
            kind: ObjectKind::ConnectionProfile,
        },
    );
}

#[test]
fn trustpoint_name_longer_than_64_characters_is_a_problem() {
    let name = "T".repeat(65);
    let kind = only_kind_at(
        |c| {
            c.trustpoints[0].name = name.clone();
            c.connection_profiles[0].trustpoints[0] = name.clone();
        },
        "$.trustpoints[0].name",
    );
    assert_eq!(
        kind,
        ProblemKind::NameTooLong {
            kind: ObjectKind::Trustpoint,
            name,
            length: 65,
            max: 64
        }
    );
}

#[test]
fn group_policy_name_with_a_space_is_a_problem() {
    assert_only(
        |c| {
            c.group_policies[0].name = "RAVPN GP".into();
            c.connection_profiles[0].group_policy = "RAVPN GP".into();
        },
        "$.group_policies[0].name",
        ProblemKind::NameHasForbiddenCharacter {
            kind: ObjectKind::GroupPolicy,
            name: "RAVPN GP".into(),
            character: ' ',
        },
    );
}

#[test]
fn pool_name_with_a_control_character_is_a_problem() {
    let kind = only_kind_at(
        |c| {
            c.ipv4_pools[0].name = "Pool\u{7}".into();
            c.connection_profiles[0].ipv4_pools[0] = "Pool\u{7}".into();
        },
        "$.ipv4_pools[0].name",
    );
    assert!(matches!(
        kind,
        ProblemKind::NameHasForbiddenCharacter {
            character: '\u{7}',
            ..
        }
    ));
}

#[test]
fn second_profile_with_the_same_name_is_a_duplicate() {
    assert_only(
        |c| {
            let copy = other_profile("RA-VPN-Multi-Cert");
            c.connection_profiles.push(copy);
        },
        "$.connection_profiles[1].name",
        ProblemKind::DuplicateName {
            kind: ObjectKind::ConnectionProfile,
            name: "RA-VPN-Multi-Cert".into(),
        },
    );
}

#[test]
fn group_policy_names_must_be_unique() {
    assert_only(
        |c| {
            c.group_policies
                .push(GroupPolicy::new("RAVPN-Multi-Cert-GP"))
        },
        "$.group_policies[1].name",
        ProblemKind::DuplicateName {
            kind: ObjectKind::GroupPolicy,
            name: "RAVPN-Multi-Cert-GP".into(),
        },
    );
}

#[test]
fn ipv6_pool_may_not_reuse_an_ipv4_pool_name() {
    assert_only(
        |c| {
            c.ipv6_pools
                .push(v6_pool("RAVPN-MultiCert-Pool", "2001:db8::1", 64, 10))
        },
        "$.ipv6_pools[0].name",
        ProblemKind::DuplicateName {
            kind: ObjectKind::AddressPool,
            name: "RAVPN-MultiCert-Pool".into(),
        },
    );
}

#[test]
fn identity_trustpoint_may_not_reuse_a_ca_trustpoint_name() {
    assert_only(
        |c| c.headend.identity.trustpoint = "User-CA".into(),
        "$.headend.identity.trustpoint",
        ProblemKind::DuplicateName {
            kind: ObjectKind::Trustpoint,
            name: "User-CA".into(),
        },
    );
}

#[test]
fn duplicate_ca_trustpoints_are_a_problem() {
    assert_only(
        |c| {
            let copy = c.trustpoints[1].clone();
            c.trustpoints.push(copy);
        },
        "$.trustpoints[2].name",
        ProblemKind::DuplicateName {
            kind: ObjectKind::Trustpoint,
            name: "User-CA".into(),
        },
    );
}

#[test]
fn duplicate_local_users_are_a_problem() {
    assert_only(
        |c| {
            for _ in 0..2 {
                c.local_users.push(LocalUser {
                    name: "alice".into(),
                    password_hash: HASH.into(),
                });
            }
        },
        "$.local_users[1].name",
        ProblemKind::DuplicateName {
            kind: ObjectKind::LocalUser,
            name: "alice".into(),
        },
    );
}

#[test]
fn alias_reused_by_another_profile_in_other_case_is_a_problem() {
    assert_only(
        |c| {
            let mut other = other_profile("Engineering");
            other.group_aliases.push(GroupAlias {
                name: "ravpn-multicert".into(),
                enabled: false,
            });
            c.connection_profiles.push(other);
        },
        "$.connection_profiles[1].group_aliases[0].name",
        ProblemKind::DuplicateGroupAlias {
            alias: "ravpn-multicert".into(),
            profile: "RA-VPN-Multi-Cert".into(),
        },
    );
}

#[test]
fn alias_naming_another_profile_is_a_problem() {
    assert_only(
        |c| {
            c.connection_profiles.push(other_profile("Engineering"));
            c.connection_profiles[0].group_aliases.push(GroupAlias {
                name: "ENGINEERING".into(),
                enabled: true,
            });
        },
        "$.connection_profiles[0].group_aliases[1].name",
        ProblemKind::GroupAliasNamesOtherProfile {
            alias: "ENGINEERING".into(),
            profile: "Engineering".into(),
        },
    );
}

#[test]
fn group_url_must_be_an_absolute_http_url() {
    let url = |u: &str| GroupUrl {
        url: u.into(),
        enabled: true,
    };
    let problems = problems_after(|c| {
        c.connection_profiles[0].group_urls = vec![
            url("vpn.example.com/eng"),
            url("ftp://vpn.example.com/eng"),
            url("https:///eng"),
            url("https://vpn.example.com/my eng"),
            url("https://user@vpn.example.com/"),
            url("https://vpn.example.com/eng"),
        ];
    });
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        (0..5)
            .map(|j| format!("$.connection_profiles[0].group_urls[{j}].url"))
            .collect::<Vec<_>>()
    );
    assert!(
        problems
            .iter()
            .all(|p| matches!(p.kind, ProblemKind::InvalidGroupUrl { .. }))
    );
    assert!(
        problems[2].to_string().contains("no host"),
        "{}",
        problems[2]
    );
}

#[test]
fn group_url_reused_by_another_profile_is_a_problem() {
    assert_only(
        |c| {
            c.connection_profiles[0].group_urls.push(GroupUrl {
                url: "https://vpn.example.com/eng".into(),
                enabled: true,
            });
            let mut other = other_profile("Engineering");
            other.group_urls.push(GroupUrl {
                url: "HTTPS://VPN.example.com/eng/".into(),
                enabled: true,
            });
            c.connection_profiles.push(other);
        },
        "$.connection_profiles[1].group_urls[0].url",
        ProblemKind::DuplicateGroupUrl {
            url: "HTTPS://VPN.example.com/eng/".into(),
            profile: "RA-VPN-Multi-Cert".into(),
        },
    );
}

#[test]
fn every_dangling_reference_is_reported_at_its_path() {
    let problems = problems_after(|c| {
        let profile = &mut c.connection_profiles[0];
        profile.group_policy = "Missing-GP".into();
        profile.ipv4_pools.push("Missing-v4".into());
        profile.ipv6_pools.push("Missing-v6".into());
        profile.trustpoints.push("Missing-CA".into());
        c.group_policies[0].ipv4_pools.push("Missing-GP-v4".into());
    });
    let unknown = |path: &str, kind, name: &str| ConfigProblem {
        path: path.into(),
        kind: ProblemKind::UnknownReference {
            kind,
            name: name.into(),
        },
    };
    assert_eq!(
        problems,
        vec![
            unknown(
                "$.connection_profiles[0].group_policy",
                ObjectKind::GroupPolicy,
                "Missing-GP"
            ),
            unknown(
                "$.connection_profiles[0].ipv4_pools[1]",
                ObjectKind::Ipv4Pool,
                "Missing-v4"
            ),
            unknown(
                "$.connection_profiles[0].ipv6_pools[0]",
                ObjectKind::Ipv6Pool,
                "Missing-v6"
            ),
            unknown(
                "$.connection_profiles[0].trustpoints[2]",
                ObjectKind::Trustpoint,
                "Missing-CA"
            ),
            unknown(
                "$.group_policies[0].ipv4_pools[0]",
                ObjectKind::Ipv4Pool,
                "Missing-GP-v4"
            ),
        ]
    );
}

#[test]
fn profile_without_any_pool_is_a_problem_unless_its_group_policy_has_one() {
    assert_only(
        |c| c.connection_profiles[0].ipv4_pools.clear(),
        "$.connection_profiles[0].ipv4_pools",
        ProblemKind::NoAddressPool {
            group_policy: "RAVPN-Multi-Cert-GP".into(),
        },
    );
    assert_eq!(
        problems_after(|c| {
            c.connection_profiles[0].ipv4_pools.clear();
            c.group_policies[0]
                .ipv4_pools
                .push("RAVPN-MultiCert-Pool".into());
        }),
        vec![]
    );
}

#[test]
fn pool_starting_after_its_end_is_a_problem() {
    assert_only(
        |c| {
            c.ipv4_pools[0] = pool(
                "RAVPN-MultiCert-Pool",
                [192, 168, 13, 254],
                [192, 168, 13, 1],
                [255, 255, 255, 0],
            )
        },
        "$.ipv4_pools[0]",
        ProblemKind::PoolStartAfterEnd {
            start: Ipv4Addr::new(192, 168, 13, 254),
            end: Ipv4Addr::new(192, 168, 13, 1),
        },
    );
}

#[test]
fn pool_spanning_two_subnets_of_its_mask_is_a_problem() {
    assert_only(
        |c| c.ipv4_pools[0].end = Ipv4Addr::new(192, 168, 14, 10),
        "$.ipv4_pools[0]",
        ProblemKind::PoolSpansSubnets {
            start: Ipv4Addr::new(192, 168, 13, 1),
            end: Ipv4Addr::new(192, 168, 14, 10),
            mask: Ipv4Addr::new(255, 255, 255, 0),
        },
    );
}

#[test]
fn non_contiguous_mask_is_a_problem() {
    assert_only(
        |c| c.ipv4_pools[0].mask = Ipv4Addr::new(255, 0, 255, 0),
        "$.ipv4_pools[0].mask",
        ProblemKind::NonContiguousMask {
            mask: Ipv4Addr::new(255, 0, 255, 0),
        },
    );
}

#[test]
fn pool_of_more_than_65536_addresses_is_a_problem() {
    assert_only(
        |c| {
            c.ipv4_pools[0] = pool(
                "RAVPN-MultiCert-Pool",
                [10, 0, 0, 0],
                [10, 1, 0, 0],
                [255, 0, 0, 0],
            )
        },
        "$.ipv4_pools[0]",
        ProblemKind::PoolTooLarge {
            addresses: 65_537,
            max: MAX_POOL_ADDRESSES,
        },
    );
    assert_eq!(
        problems_after(|c| c.ipv4_pools[0] = pool(
            "RAVPN-MultiCert-Pool",
            [10, 0, 0, 0],
            [10, 0, 255, 255],
            [255, 0, 0, 0]
        )),
        vec![]
    );
}

#[test]
fn ipv6_pool_shape_problems_are_each_reported() {
    let problems = problems_after(|c| {
        c.ipv6_pools = vec![
            v6_pool("long-prefix", "2001:db8::1", 129, 10),
            v6_pool("empty", "2001:db8:1::1", 64, 0),
            v6_pool("past-prefix", "2001:db8:2::ff00", 120, 512),
            v6_pool("huge", "2001:db8:3::1", 64, 65_537),
        ];
    });
    assert_eq!(
        problems,
        vec![
            ConfigProblem {
                path: "$.ipv6_pools[0].prefix_len".into(),
                kind: ProblemKind::Ipv6PrefixTooLong { prefix_len: 129 },
            },
            ConfigProblem {
                path: "$.ipv6_pools[1].count".into(),
                kind: ProblemKind::EmptyIpv6Pool,
            },
            ConfigProblem {
                path: "$.ipv6_pools[2]".into(),
                kind: ProblemKind::Ipv6PoolOutsidePrefix {
                    start: "2001:db8:2::ff00".parse().unwrap(),
                    prefix_len: 120,
                    count: 512,
                },
            },
            ConfigProblem {
                path: "$.ipv6_pools[3]".into(),
                kind: ProblemKind::PoolTooLarge {
                    addresses: 65_537,
                    max: MAX_POOL_ADDRESSES,
                },
            },
        ]
    );
}

#[test]
fn overlapping_ipv4_pools_are_reported_on_the_later_one() {
    assert_only(
        |c| {
            c.ipv4_pools.insert(
                0,
                pool(
                    "Low",
                    [192, 168, 13, 200],
                    [192, 168, 13, 210],
                    [255, 255, 255, 0],
                ),
            );
            c.ipv4_pools.push(pool(
                "Apart",
                [10, 0, 0, 1],
                [10, 0, 0, 9],
                [255, 255, 255, 0],
            ));
        },
        "$.ipv4_pools[1]",
        ProblemKind::PoolsOverlap {
            other: "Low".into(),
        },
    );
}

#[test]
fn overlapping_ipv6_pools_are_a_problem() {
    assert_only(
        |c| {
            c.ipv6_pools.push(v6_pool("A", "2001:db8::1", 64, 100));
            c.ipv6_pools.push(v6_pool("B", "2001:db8::64", 64, 100));
            c.ipv6_pools.push(v6_pool("C", "2001:db8::1000", 64, 100));
        },
        "$.ipv6_pools[1]",
        ProblemKind::PoolsOverlap { other: "A".into() },
    );
}

#[test]
fn mca_on_an_aaa_only_profile_is_a_problem() {
    assert_only(
        |c| c.connection_profiles[0].aaa.authentication_method = AuthenticationMethod::AaaOnly,
        "$.connection_profiles[0].aaa.enable_multiple_certificate_authentication",
        ProblemKind::McaWithoutCertificates {
            method: AuthenticationMethod::AaaOnly,
        },
    );
}

#[test]
fn prefill_and_hide_on_certificate_only_are_both_problems() {
    let problems = problems_after(|c| {
        c.connection_profiles[0].aaa.prefill_username = true;
        c.connection_profiles[0].aaa.hide_username = true;
    });
    let method = AuthenticationMethod::ClientCertificateOnly;
    assert_eq!(
        problems,
        vec![
            ConfigProblem {
                path: "$.connection_profiles[0].aaa.prefill_username".into(),
                kind: ProblemKind::PrefillNeedsCertificateAndAaa { method },
            },
            ConfigProblem {
                path: "$.connection_profiles[0].aaa.hide_username".into(),
                kind: ProblemKind::HideNeedsCertificateAndAaa { method },
            },
        ]
    );
    assert!(
        problems[0]
            .to_string()
            .contains("not Client Certificate Only")
    );
}

#[test]
fn hide_without_prefill_is_a_problem() {
    assert_only(
        |c| {
            let aaa = &mut c.connection_profiles[0].aaa;
            aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
            aaa.hide_username = true;
        },
        "$.connection_profiles[0].aaa.hide_username",
        ProblemKind::HideWithoutPrefill,
    );
}

#[test]
fn prefill_and_hide_on_certificate_and_aaa_are_fine() {
    let problems = problems_after(|c| {
        let aaa = &mut c.connection_profiles[0].aaa;
        aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
        aaa.prefill_username = true;
        aaa.hide_username = true;
    });
    assert_eq!(problems, vec![]);
}

#[test]
fn certificate_method_without_trustpoint_is_a_problem() {
    assert_only(
        |c| c.connection_profiles[0].trustpoints.clear(),
        "$.connection_profiles[0].trustpoints",
        ProblemKind::CertificateMethodWithoutTrustpoint {
            method: AuthenticationMethod::ClientCertificateOnly,
        },
    );
}

#[test]
fn trustpoint_without_ssl_client_usage_is_a_problem_for_certificate_profiles() {
    assert_only(
        |c| c.trustpoints[1].validation_usage.ssl_client = false,
        "$.connection_profiles[0].trustpoints[1]",
        ProblemKind::TrustpointNotForSslClients {
            trustpoint: "User-CA".into(),
        },
    );
}

#[test]
fn aaa_profile_with_local_server_and_no_users_is_fine() {
    let problems = problems_after(|c| {
        let aaa = &mut c.connection_profiles[0].aaa;
        aaa.authentication_method = AuthenticationMethod::AaaOnly;
        aaa.enable_multiple_certificate_authentication = false;
    });
    assert_eq!(problems, vec![]);
}

#[test]
fn trustpoint_pem_without_certificates_is_a_problem() {
    let kind = only_kind_at(
        |c| c.trustpoints[0].ca_certificates_pem = "not a certificate".into(),
        "$.trustpoints[0].ca_certificates_pem",
    );
    assert!(matches!(kind, ProblemKind::UnreadablePem { .. }), "{kind}");
}

#[test]
fn certificate_block_that_is_not_x509_is_a_problem() {
    let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    let kind = only_kind_at(
        |c| c.trustpoints[1].ca_certificates_pem.push_str(garbage),
        "$.trustpoints[1].ca_certificates_pem",
    );
    assert!(
        matches!(kind, ProblemKind::UnparsableCertificate { index: 2, .. }),
        "{kind}"
    );
}

#[test]
fn leaf_certificate_in_a_trustpoint_is_a_problem_unless_the_ca_check_is_skipped() {
    let leaf = self_signed_pem(
        "Not A CA",
        false,
        date_time_ymd(2025, 1, 1),
        date_time_ymd(2030, 1, 1),
    );
    assert_only(
        |c| c.trustpoints[0].ca_certificates_pem = leaf.clone(),
        "$.trustpoints[0].ca_certificates_pem",
        ProblemKind::NotACaCertificate {
            index: 1,
            subject: "CN=Not A CA, O=Example Corp".into(),
        },
    );
    let problems = problems_after(|c| {
        c.trustpoints[0].ca_certificates_pem = leaf;
        c.trustpoints[0].skip_ca_flag_check = true;
    });
    assert_eq!(problems, vec![]);
}

#[test]
fn expired_ca_certificate_is_a_problem() {
    let expired = self_signed_pem(
        "Old CA",
        true,
        date_time_ymd(2020, 1, 1),
        date_time_ymd(2026, 1, 1),
    );
    let kind = only_kind_at(
        |c| c.trustpoints[1].ca_certificates_pem.push_str(&expired),
        "$.trustpoints[1].ca_certificates_pem",
    );
    assert_eq!(
        kind,
        ProblemKind::CertificateExpired {
            index: 2,
            subject: "CN=Old CA, O=Example Corp".into(),
            not_after: date_time_ymd(2026, 1, 1),
        }
    );
    assert!(
        kind.to_string().contains("expired at 2026-01-01T00:00:00Z"),
        "{kind}"
    );
}

#[test]
fn unreadable_crl_text_is_a_problem() {
    let kind = only_kind_at(
        |c| {
            c.trustpoints[0].revocation = Revocation::Crl {
                crls_pem: String::new(),
            }
        },
        "$.trustpoints[0].revocation.crls_pem",
    );
    assert!(matches!(kind, ProblemKind::UnreadablePem { .. }), "{kind}");
}

#[test]
fn crl_block_that_is_not_a_crl_is_a_problem() {
    let crls_pem =
        "-----BEGIN X509 CRL-----\naGVsbG8gd29ybGQ=\n-----END X509 CRL-----\n".to_owned();
    let kind = only_kind_at(
        |c| c.trustpoints[0].revocation = Revocation::Crl { crls_pem },
        "$.trustpoints[0].revocation.crls_pem",
    );
    assert!(
        matches!(kind, ProblemKind::UnparsableCrl { index: 1, .. }),
        "{kind}"
    );
}

#[test]
fn crl_issued_by_a_trustpoint_ca_is_accepted() {
    let (ca, crls_pem) = ca_and_crl_pem("Machine CA");
    let problems = problems_after(|c| {
        c.trustpoints[0].ca_certificates_pem = ca;
        c.trustpoints[0].revocation = Revocation::Crl { crls_pem };
    });
    assert_eq!(problems, vec![]);
}

/// It may be an intermediate's CRL (clients send intermediates); if no chain passes
/// through such a CA it is never used: a warning, not an error.
#[test]
fn crl_of_an_issuer_the_trustpoint_does_not_hold_is_a_warning_not_an_error() {
    let (_, crls_pem) = ca_and_crl_pem("Stranger CA");
    let mut config = seed_config();
    config.trustpoints[0].revocation = Revocation::Crl { crls_pem };
    assert_eq!(config.validate(seed_now()), Ok(()));
    let kind = ProblemKind::CrlFromUnknownIssuer {
        index: 1,
        issuer: "CN=Stranger CA, O=Example Corp".into(),
    };
    assert!(kind.is_warning());
    assert_eq!(
        config.warnings(seed_now()),
        vec![ConfigProblem {
            path: "$.trustpoints[0].revocation.crls_pem".into(),
            kind,
        }]
    );
}

#[test]
fn unreadable_identity_chain_is_a_problem() {
    let kind = only_kind_at(
        |c| c.headend.identity.certificate_chain_pem = "-----BEGIN CERTIFICATE-----\n!!\n".into(),
        "$.headend.identity.certificate_chain_pem",
    );
    assert!(matches!(kind, ProblemKind::UnreadablePem { .. }), "{kind}");
}

#[test]
fn unreadable_identity_key_is_a_problem() {
    let kind = only_kind_at(
        |c| c.headend.identity.private_key_pem = PrivateKeyPem("no key here".into()),
        "$.headend.identity.private_key_pem",
    );
    assert!(
        matches!(kind, ProblemKind::UnreadablePrivateKey { .. }),
        "{kind}"
    );
}

#[test]
fn identity_key_of_no_usable_algorithm_is_a_problem() {
    let junk = "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
    let kind = only_kind_at(
        |c| c.headend.identity.private_key_pem = PrivateKeyPem(junk.into()),
        "$.headend.identity.private_key_pem",
    );
    assert!(kind.to_string().contains("not a usable"), "{kind}");
}

#[test]
fn expired_identity_certificate_is_a_problem() {
    let (chain, key) = identity_pem(date_time_ymd(2024, 1, 1), date_time_ymd(2026, 5, 1));
    let kind = only_kind_at(
        |c| {
            c.headend.identity.certificate_chain_pem = chain;
            c.headend.identity.private_key_pem = PrivateKeyPem(key);
        },
        "$.headend.identity.certificate_chain_pem",
    );
    assert!(
        matches!(&kind, ProblemKind::CertificateExpired { index: 1, subject, .. } if subject.contains("vpn.example.com")),
        "{kind}"
    );
}

#[test]
fn identity_certificate_not_yet_valid_is_a_problem() {
    let (chain, key) = identity_pem(date_time_ymd(2026, 7, 1), date_time_ymd(2028, 1, 1));
    let kind = only_kind_at(
        |c| {
            c.headend.identity.certificate_chain_pem = chain;
            c.headend.identity.private_key_pem = PrivateKeyPem(key);
        },
        "$.headend.identity.certificate_chain_pem",
    );
    assert!(
        matches!(kind, ProblemKind::CertificateNotYetValid { index: 1, not_before, .. } if not_before == date_time_ymd(2026, 7, 1))
    );
}

#[test]
fn identity_key_from_another_pair_is_a_problem() {
    assert_only(
        |c| c.headend.identity.private_key_pem = PrivateKeyPem(other_key_pem()),
        "$.headend.identity.private_key_pem",
        ProblemKind::KeyDoesNotMatchCertificate {
            subject: "CN=vpn.example.com, O=Example Corp".into(),
        },
    );
}

#[test]
fn identity_keys_of_other_curves_and_ed25519_match_their_certificates() {
    for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
        let (chain, key) =
            identity_pem_with(alg, date_time_ymd(2025, 1, 1), date_time_ymd(2027, 1, 1));
        let problems = problems_after(|c| {
            c.headend.identity.certificate_chain_pem = chain;
            c.headend.identity.private_key_pem = PrivateKeyPem(key);
        });
        assert_eq!(problems, vec![]);
    }
}

#[test]
fn zero_ports_are_problems() {
    let problems = problems_after(|c| {
        c.headend.ssl_port = 0;
        c.headend.dtls_port = 0;
    });
    assert_eq!(
        problems,
        vec![
            ConfigProblem {
                path: "$.headend.ssl_port".into(),
                kind: ProblemKind::PortZero
            },
            ConfigProblem {
                path: "$.headend.dtls_port".into(),
                kind: ProblemKind::PortZero
            },
        ]
    );
}

#[test]
fn empty_access_interface_is_a_problem() {
    assert_only(
        |c| c.headend.access_interface.clear(),
        "$.headend.access_interface",
        ProblemKind::EmptyName {
            kind: ObjectKind::AccessInterface,
        },
    );
}

#[test]
fn group_policy_values_outside_fmc_ranges_are_each_reported() {
    let problems = problems_after(|c| {
        let gp = &mut c.group_policies[0];
        gp.mtu = 1500;
        gp.keepalive_secs = Some(10);
        gp.gateway_dpd_secs = Some(4);
        gp.client_dpd_secs = Some(3601);
        gp.idle_timeout_minutes = Some(0);
        gp.max_connect_time_minutes = Some(4_473_925);
        gp.simultaneous_logins = 2_147_483_648;
    });
    let range = |field: &str, value, min, max, unit| ConfigProblem {
        path: format!("$.group_policies[0].{field}"),
        kind: ProblemKind::OutOfRange {
            value,
            min,
            max,
            unit,
        },
    };
    assert_eq!(
        problems,
        vec![
            range("mtu", 1500, 576, 1462, "bytes"),
            range("keepalive_secs", 10, 15, 600, "seconds"),
            range("gateway_dpd_secs", 4, 5, 3600, "seconds"),
            range("client_dpd_secs", 3601, 5, 3600, "seconds"),
            range("idle_timeout_minutes", 0, 1, 4_473_924, "minutes"),
            range(
                "max_connect_time_minutes",
                4_473_925,
                1,
                4_473_924,
                "minutes"
            ),
            range(
                "simultaneous_logins",
                2_147_483_648,
                0,
                2_147_483_647,
                "logins"
            ),
        ]
    );
    assert_eq!(
        problems[0].to_string(),
        "$.group_policies[0].mtu: 1500 bytes is outside the allowed range 576–1462 bytes"
    );
}

#[test]
fn disabled_timers_are_not_range_checked() {
    let problems = problems_after(|c| {
        let gp = &mut c.group_policies[0];
        gp.keepalive_secs = None;
        gp.gateway_dpd_secs = None;
        gp.client_dpd_secs = None;
        gp.idle_timeout_minutes = None;
    });
    assert_eq!(problems, vec![]);
}

#[test]
fn banner_line_over_497_characters_is_a_problem() {
    assert_only(
        |c| {
            c.group_policies[0].banner = Some(format!("Authorized use only\r\n{}", "é".repeat(498)))
        },
        "$.group_policies[0].banner",
        ProblemKind::BannerLineTooLong {
            line: 2,
            length: 498,
            max: 497,
        },
    );
}

#[test]
fn split_tunnel_policy_without_networks_is_a_problem() {
    assert_only(
        |c| c.group_policies[0].split_tunnel_policy = SplitTunnelPolicy::ExcludeSpecified,
        "$.group_policies[0].split_tunnel_networks",
        ProblemKind::SplitTunnelWithoutNetworks {
            policy: SplitTunnelPolicy::ExcludeSpecified,
        },
    );
}

#[test]
fn more_than_two_dns_servers_is_a_problem() {
    assert_only(
        |c| {
            c.group_policies[0].dns_servers = ["10.0.0.53", "10.0.1.53", "2001:db8::53"]
                .iter()
                .map(|a| a.parse::<IpAddr>().unwrap())
                .collect()
        },
        "$.group_policies[0].dns_servers",
        ProblemKind::TooManyDnsServers { count: 3, max: 2 },
    );
}

#[test]
fn malformed_default_domains_are_problems() {
    for (domain, reason) in [
        ("", "empty"),
        ("corp..example.com", "empty label"),
        ("corp_example.com", "letters, digits"),
        ("-corp.example.com", "hyphen"),
        (&format!("{}.com", "a".repeat(64)), "63"),
        (&format!("{}com", "abc.".repeat(64)), "253"),
    ] {
        let kind = only_kind_at(
            |c| c.group_policies[0].default_domain = Some(domain.to_owned()),
            "$.group_policies[0].default_domain",
        );
        assert!(
            matches!(&kind, ProblemKind::InvalidDomainName { reason: r, .. } if r.contains(reason)),
            "{domain}: {kind}"
        );
    }
    assert_eq!(
        problems_after(|c| c.group_policies[0].default_domain = Some("corp.example.com".into())),
        vec![]
    );
}

#[test]
fn password_hash_that_is_not_argon2id_is_a_problem() {
    assert_only(
        |c| {
            c.local_users.push(LocalUser {
                name: "alice".into(),
                password_hash: "$2b$12$abcdefghijklmnopqrstuv".into(),
            })
        },
        "$.local_users[0].password_hash",
        ProblemKind::InvalidPasswordHash {
            reason: "it does not start with $argon2id$",
        },
    );
}

#[test]
fn document_with_many_problems_reports_every_one() {
    let problems = problems_after(|c| {
        c.schema_version = 9; // 1
        c.headend.ssl_port = 0; // 2
        c.headend.identity.private_key_pem = PrivateKeyPem(other_key_pem()); // 3
        let profile = &mut c.connection_profiles[0];
        profile.group_policy = "Nope".into(); // 4, and 5: no pool via a group policy
        profile.ipv4_pools.clear();
        profile.trustpoints.clear(); // 6
        profile.aaa.prefill_username = true; // 7
        profile.aaa.hide_username = true; // 8 (prefill is on, so not also HideWithoutPrefill)
        let gp = &mut c.group_policies[0];
        gp.mtu = 100; // 9
        gp.dns_servers = vec![Ipv4Addr::LOCALHOST.into(); 3]; // 10
        c.ipv4_pools.push(pool(
            "Bad Name",
            [10, 0, 0, 9],
            [10, 0, 0, 1],
            [255, 255, 0, 255],
        )); // 11, 12, 13
        c.ipv6_pools.push(v6_pool("v6", "::1", 130, 0)); // 14, 15
        c.trustpoints[0].ca_certificates_pem.clear(); // 16
        c.local_users.push(LocalUser {
            name: String::new(),           // 17
            password_hash: "plain".into(), // 18
        });
    });
    for problem in &problems {
        assert!(!problem.kind.is_warning(), "{problem}");
    }
    assert_eq!(problems.len(), 18, "{problems:#?}");
}

#[test]
fn identity_certificate_expiring_within_30_days_is_a_warning() {
    let mut config = seed_config();
    let now = date_time_ymd(2026, 12, 12);
    assert_eq!(config.validate(now), Ok(()));
    let warnings = config.warnings(now);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, "$.headend.identity.certificate_chain_pem");
    assert!(matches!(
        warnings[0].kind,
        ProblemKind::CertificateExpiresSoon {
            index: 1,
            days_left: 20,
            ..
        }
    ));
    assert!(warnings[0].kind.is_warning());
    config.headend.identity.certificate_chain_pem.clear();
    assert_eq!(
        config.warnings(now),
        vec![],
        "unreadable chains are errors, not warnings"
    );
}

#[test]
fn ca_certificate_expiring_within_30_days_is_a_warning() {
    let soon = seed_now() + Duration::days(3);
    let mut config = seed_config();
    config.trustpoints[1].ca_certificates_pem =
        self_signed_pem("Ending CA", true, date_time_ymd(2025, 1, 1), soon);
    assert_eq!(config.validate(seed_now()), Ok(()));
    let warnings = config.warnings(seed_now());
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, "$.trustpoints[1].ca_certificates_pem");
    assert!(
        warnings[0].to_string().contains("in 3 days"),
        "{}",
        warnings[0]
    );
}

#[test]
fn radius_server_without_local_fallback_is_a_warning() {
    let mut config = seed_config();
    let aaa = &mut config.connection_profiles[0].aaa;
    aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
    aaa.authentication_server = AuthenticationServer::Radius {
        server_group: "ISE".into(),
    };
    assert_eq!(config.validate(seed_now()), Ok(()));
    assert_eq!(
        config.warnings(seed_now()),
        vec![ConfigProblem {
            path: "$.connection_profiles[0].aaa.authentication_server".into(),
            kind: ProblemKind::ServerWithoutLocalFallback {
                server: "RADIUS \"ISE\"".into()
            },
        }]
    );
    config.connection_profiles[0].aaa.fallback_to_local = true;
    assert_eq!(config.warnings(seed_now()), vec![]);
}

#[test]
fn ldap_server_on_a_certificate_only_profile_is_not_a_warning() {
    let mut config = seed_config();
    config.connection_profiles[0].aaa.authentication_server = AuthenticationServer::Ldap {
        realm: "corp".into(),
    };
    assert_eq!(config.warnings(seed_now()), vec![]);
}

#[test]
fn a_slot_trustpoint_that_is_not_a_trustpoint_of_the_profile_is_a_problem_naming_profile_and_field()
{
    assert_only(
        |c| {
            let profile = &mut c.connection_profiles[0];
            profile.machine_trustpoints = vec!["Machine-CA".into()];
            profile.user_trustpoints = vec!["User-CA".into(), "Partner-CA".into()];
        },
        "$.connection_profiles[0].user_trustpoints[1]",
        ProblemKind::SlotTrustpointNotInProfile {
            profile: "RA-VPN-Multi-Cert".into(),
            field: "user_trustpoints",
            trustpoint: "Partner-CA".into(),
        },
    );
    let problems = problems_after(|c| {
        c.connection_profiles[0].machine_trustpoints = vec!["Missing-CA".into()];
    });
    let text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("connection profile \"RA-VPN-Multi-Cert\": machine_trustpoints names trustpoint \"Missing-CA\""),
        "{text}"
    );
}

#[test]
fn documents_without_slot_binding_still_load_and_bind_nothing() {
    let mut json = serde_json::to_value(seed_config()).unwrap();
    let profile = json["connection_profiles"][0].as_object_mut().unwrap();
    profile.remove("machine_trustpoints");
    profile.remove("user_trustpoints");
    let config: DeviceConfig = serde_json::from_value(json).unwrap();
    assert!(config.connection_profiles[0].machine_trustpoints.is_empty());
    assert!(config.connection_profiles[0].user_trustpoints.is_empty());
    assert_eq!(config.validate(seed_now()), Ok(()));
}
