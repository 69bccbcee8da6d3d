use time::macros::datetime;

use super::*;
use crate::db;
use crate::db::devices::RegistrationState;
use uuid::Uuid;

fn device(host: &str) -> Device {
    Device {
        id: Uuid::from_u128(1),
        domain_id: db::GLOBAL_DOMAIN_ID,
        name: "FTD-1".to_owned(),
        description: String::new(),
        host_name: host.to_owned(),
        nat_id: None,
        registration_state: RegistrationState::Pending,
        registration_error: None,
        registered_at: None,
        sensor_certificate_pem: None,
        manager_certificate_pem: None,
        software_version: None,
        version: 1,
        created_at: datetime!(2026-11-27 0:00 UTC),
        updated_at: datetime!(2026-11-27 0:00 UTC),
    }
}

#[test]
fn device_hosts_are_read_with_the_default_management_port() {
    for (host, expected_host, expected_port) in [
        ("192.0.2.1", "192.0.2.1", 8305),
        ("192.0.2.1:9000", "192.0.2.1", 9000),
        ("2001:db8::1", "2001:db8::1", 8305),
        ("[2001:db8::1]:9000", "2001:db8::1", 9000),
        ("ftd.example.com", "ftd.example.com", 8305),
        ("ftd.example.com:8306", "ftd.example.com", 8306),
    ] {
        let endpoint = endpoint_of(&device(host)).unwrap();
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port),
            (expected_host, expected_port),
            "{host}"
        );
    }
}

#[test]
fn a_device_host_that_is_not_an_address_is_refused_with_its_name() {
    for host in ["", "ftd:port"] {
        let error = endpoint_of(&device(host)).unwrap_err().to_string();
        assert!(error.contains("FTD-1"), "{error}");
    }
}
