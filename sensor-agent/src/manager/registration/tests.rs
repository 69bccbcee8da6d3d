use std::net::Ipv4Addr;

use time::macros::datetime;
use uuid::Uuid;
use vpn_core::channel::{NatId, RegistrationKey};

use super::*;

fn pending(address: &str, nat_id: Option<&str>) -> PendingManager {
    PendingManager {
        address: address.parse().unwrap(),
        registration_key: RegistrationKey::new("cisco123").unwrap(),
        nat_id: nat_id.map(|id| NatId::new(id).unwrap()),
        added_at: datetime!(2026-11-27 0:00 UTC),
    }
}

fn request(nat_id: Option<&str>) -> RegistrationRequest {
    RegistrationRequest {
        challenge: String::new(),
        device_id: Uuid::from_u128(1),
        device_name: "FTD-1".to_owned(),
        nat_id: nat_id.map(str::to_owned),
        manager_name: "fmc".to_owned(),
        ca_certificate_pem: String::new(),
        manager_certificate_pem: String::new(),
        sensor_certificate_pem: String::new(),
        manager_proof: String::new(),
    }
}

const MANAGER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66));

#[test]
fn a_challenge_is_answered_once() {
    let mut challenges = Challenges::default();
    let now = Instant::now();
    let challenge = hex::encode(challenges.issue(now).unwrap());
    assert!(challenges.take(&challenge, now).is_ok());
    assert_eq!(
        challenges.take(&challenge, now),
        Err(RegistrationRefusal::UnknownChallenge)
    );
}

#[test]
fn a_challenge_expires_after_its_lifetime() {
    let mut challenges = Challenges::default();
    let now = Instant::now();
    let challenge = hex::encode(challenges.issue(now).unwrap());
    assert_eq!(
        challenges.take(&challenge, now + CHALLENGE_LIFETIME),
        Err(RegistrationRefusal::UnknownChallenge)
    );
}

#[test]
fn outstanding_challenges_are_bounded_and_the_oldest_goes_first() {
    let mut challenges = Challenges::default();
    let now = Instant::now();
    let first = hex::encode(challenges.issue(now).unwrap());
    let mut last = String::new();
    for _ in 0..MAX_OUTSTANDING_CHALLENGES {
        last = hex::encode(challenges.issue(now).unwrap());
    }
    assert_eq!(
        challenges.take(&first, now),
        Err(RegistrationRefusal::UnknownChallenge)
    );
    assert!(challenges.take(&last, now).is_ok());
}

#[test]
fn five_wrong_keys_in_a_row_lock_registration_out_for_a_while() {
    let mut challenges = Challenges::default();
    let now = Instant::now();
    for _ in 0..MAX_FAILED_PROOFS {
        challenges.issue(now).unwrap();
        challenges.record_failure(now);
    }
    assert!(matches!(
        challenges.issue(now),
        Err(RegistrationRefusal::LockedOut { secs: 300 })
    ));
    assert!(challenges.issue(now + LOCKOUT).is_ok());
}

#[test]
fn a_success_resets_the_count_of_wrong_keys() {
    let mut challenges = Challenges::default();
    let now = Instant::now();
    for _ in 0..MAX_FAILED_PROOFS - 1 {
        challenges.record_failure(now);
    }
    challenges.record_success();
    challenges.record_failure(now);
    assert!(challenges.issue(now).is_ok());
}

#[test]
fn only_the_configured_manager_address_may_register() {
    let pending = pending("192.0.2.10", None);
    assert_eq!(check_address(&pending, MANAGER, &[]), Ok(()));
    let mapped: IpAddr = "::ffff:192.0.2.10".parse().unwrap();
    assert_eq!(check_address(&pending, mapped, &[]), Ok(()));
    let refusal = check_address(&pending, OTHER, &[]).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "the call comes from 192.0.2.66, but the manager configured on this sensor is 192.0.2.10:8305"
    );
}

#[test]
fn a_manager_host_name_admits_the_addresses_it_resolves_to() {
    let pending = pending("fmc.example.com", None);
    assert_eq!(check_address(&pending, MANAGER, &[MANAGER]), Ok(()));
    assert!(check_address(&pending, OTHER, &[MANAGER]).is_err());
    assert!(check_address(&pending, MANAGER, &[]).is_err());
}

#[test]
fn dontresolve_admits_any_address() {
    let pending = pending("DONTRESOLVE", Some("nat-1"));
    assert_eq!(check_address(&pending, OTHER, &[]), Ok(()));
}

#[test]
fn the_nat_ids_must_match_or_both_be_absent() {
    assert_eq!(
        check_nat_id(
            &pending("DONTRESOLVE", Some("nat-1")),
            &request(Some("nat-1"))
        ),
        Ok(())
    );
    assert_eq!(
        check_nat_id(&pending("192.0.2.10", None), &request(None)),
        Ok(())
    );
    for (configured, offered) in [
        (Some("nat-1"), Some("nat-2")),
        (Some("nat-1"), None),
        (None, Some("nat-1")),
    ] {
        let refusal =
            check_nat_id(&pending("192.0.2.10", configured), &request(offered)).unwrap_err();
        assert_eq!(refusal, RegistrationRefusal::NatIdMismatch);
        assert!(!refusal.to_string().contains("nat-1"));
    }
}
