//! Proofs of the registration key (HMAC-SHA-256 keyed with it), one for each side.
//!
//! The manager's proof covers the sensor's single-use challenge, the certificate the
//! sensor presented in the TLS handshake the manager saw, and every field of the
//! registration request. A relay in the middle presents its own certificate, so the
//! proof the manager computes never verifies at the real sensor; a replay meets a spent
//! challenge. The sensor answers with its own proof over the challenge and the
//! manager's proof, which tells the manager it reached the sensor holding the key.
//! The sensor only answers once the manager's proof verified, so nobody without the
//! key obtains a value to guess the key against offline.

use aws_lc_rs::{digest, hmac};

use super::identifiers::RegistrationKey;
use super::messages::RegistrationRequest;

/// Size of a registration challenge.
pub const CHALLENGE_BYTES: usize = 32;

const MANAGER_LABEL: &[u8] = b"vpn-platform sensor registration v1: manager";
const SENSOR_LABEL: &[u8] = b"vpn-platform sensor registration v1: sensor";

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the proof is not hex")]
    NotHex,
    #[error("the registration key does not match")]
    Mismatch,
}

/// The manager's proof (hex) for `request`, sent on the connection where the sensor
/// presented `sensor_certificate_der`. `request.manager_proof` is not covered.
pub fn manager_proof(
    key: &RegistrationKey,
    challenge: &[u8],
    sensor_certificate_der: &[u8],
    request: &RegistrationRequest,
) -> String {
    let message = manager_message(challenge, sensor_certificate_der, request);
    hex::encode(hmac::sign(&hmac_key(key), &message).as_ref())
}

/// Checks `request.manager_proof` in constant time.
pub fn verify_manager_proof(
    key: &RegistrationKey,
    challenge: &[u8],
    sensor_certificate_der: &[u8],
    request: &RegistrationRequest,
) -> Result<(), ProofError> {
    let offered = hex::decode(&request.manager_proof).map_err(|_| ProofError::NotHex)?;
    let message = manager_message(challenge, sensor_certificate_der, request);
    hmac::verify(&hmac_key(key), &message, &offered).map_err(|_| ProofError::Mismatch)
}

/// The sensor's answer (hex) to a verified manager proof.
pub fn sensor_proof(key: &RegistrationKey, challenge: &[u8], manager_proof: &str) -> String {
    let message = sensor_message(challenge, manager_proof);
    hex::encode(hmac::sign(&hmac_key(key), &message).as_ref())
}

/// Checks the sensor's answer in constant time.
pub fn verify_sensor_proof(
    key: &RegistrationKey,
    challenge: &[u8],
    manager_proof: &str,
    offered: &str,
) -> Result<(), ProofError> {
    let offered = hex::decode(offered).map_err(|_| ProofError::NotHex)?;
    let message = sensor_message(challenge, manager_proof);
    hmac::verify(&hmac_key(key), &message, &offered).map_err(|_| ProofError::Mismatch)
}

fn hmac_key(key: &RegistrationKey) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes())
}

/// Label, then every field length-prefixed so no two requests share a message.
fn manager_message(
    challenge: &[u8],
    sensor_certificate_der: &[u8],
    request: &RegistrationRequest,
) -> Vec<u8> {
    let mut message = Transcript::new(MANAGER_LABEL);
    message.field(challenge);
    message.field(digest::digest(&digest::SHA256, sensor_certificate_der).as_ref());
    message.field(request.challenge.as_bytes());
    message.field(request.device_id.as_bytes());
    message.field(request.device_name.as_bytes());
    message.field(request.nat_id.as_ref().map_or(&b""[..], |id| id.as_bytes()));
    message.field(request.manager_name.as_bytes());
    message.field(request.ca_certificate_pem.as_bytes());
    message.field(request.manager_certificate_pem.as_bytes());
    message.field(request.sensor_certificate_pem.as_bytes());
    message.0
}

fn sensor_message(challenge: &[u8], manager_proof: &str) -> Vec<u8> {
    let mut message = Transcript::new(SENSOR_LABEL);
    message.field(challenge);
    message.field(manager_proof.as_bytes());
    message.0
}

struct Transcript(Vec<u8>);

impl Transcript {
    fn new(label: &[u8]) -> Self {
        let mut transcript = Self(Vec::with_capacity(1024));
        transcript.field(label);
        transcript
    }

    fn field(&mut self, bytes: &[u8]) {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn request() -> RegistrationRequest {
        RegistrationRequest {
            challenge: "00".repeat(CHALLENGE_BYTES),
            device_id: Uuid::from_u128(7),
            device_name: "FTD-1".to_owned(),
            nat_id: Some("nat-1".to_owned()),
            manager_name: "fmc".to_owned(),
            ca_certificate_pem: "CA".to_owned(),
            manager_certificate_pem: "MANAGER".to_owned(),
            sensor_certificate_pem: "SENSOR".to_owned(),
            manager_proof: String::new(),
        }
    }

    fn key(text: &str) -> RegistrationKey {
        RegistrationKey::new(text).unwrap()
    }

    fn signed(
        key: &RegistrationKey,
        cert: &[u8],
        mut request: RegistrationRequest,
    ) -> RegistrationRequest {
        request.manager_proof = manager_proof(key, b"challenge", cert, &request);
        request
    }

    #[test]
    fn a_proof_made_with_the_same_key_verifies() {
        let request = signed(&key("cisco123"), b"sensor-cert", request());
        assert_eq!(
            verify_manager_proof(&key("cisco123"), b"challenge", b"sensor-cert", &request),
            Ok(())
        );
    }

    #[test]
    fn a_proof_made_with_another_key_is_a_mismatch() {
        let request = signed(&key("wrong-key"), b"sensor-cert", request());
        assert_eq!(
            verify_manager_proof(&key("cisco123"), b"challenge", b"sensor-cert", &request),
            Err(ProofError::Mismatch)
        );
    }

    #[test]
    fn a_proof_relayed_through_another_certificate_is_a_mismatch() {
        let request = signed(&key("cisco123"), b"relay-cert", request());
        assert_eq!(
            verify_manager_proof(&key("cisco123"), b"challenge", b"sensor-cert", &request),
            Err(ProofError::Mismatch)
        );
    }

    #[test]
    fn a_proof_for_another_challenge_is_a_mismatch() {
        let request = signed(&key("cisco123"), b"sensor-cert", request());
        assert_eq!(
            verify_manager_proof(&key("cisco123"), b"other", b"sensor-cert", &request),
            Err(ProofError::Mismatch)
        );
    }

    #[test]
    fn changing_any_request_field_after_signing_breaks_the_proof() {
        let good = signed(&key("k"), b"cert", request());
        let edits: [fn(&mut RegistrationRequest); 7] = [
            |r| r.device_id = Uuid::from_u128(8),
            |r| r.device_name.push('x'),
            |r| r.nat_id = None,
            |r| r.manager_name.push('x'),
            |r| r.ca_certificate_pem.push('x'),
            |r| r.manager_certificate_pem.push('x'),
            |r| r.sensor_certificate_pem.push('x'),
        ];
        for edit in edits {
            let mut tampered = good.clone();
            edit(&mut tampered);
            assert_eq!(
                verify_manager_proof(&key("k"), b"challenge", b"cert", &tampered),
                Err(ProofError::Mismatch)
            );
        }
    }

    #[test]
    fn a_proof_that_is_not_hex_is_reported_as_such() {
        let mut request = request();
        request.manager_proof = "zz".to_owned();
        assert_eq!(
            verify_manager_proof(&key("k"), b"challenge", b"cert", &request),
            Err(ProofError::NotHex)
        );
    }

    #[test]
    fn the_sensor_proof_verifies_only_with_the_key_and_the_manager_proof() {
        let answer = sensor_proof(&key("cisco123"), b"challenge", "abcd");
        assert_eq!(
            verify_sensor_proof(&key("cisco123"), b"challenge", "abcd", &answer),
            Ok(())
        );
        assert_eq!(
            verify_sensor_proof(&key("other"), b"challenge", "abcd", &answer),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            verify_sensor_proof(&key("cisco123"), b"challenge", "abce", &answer),
            Err(ProofError::Mismatch)
        );
    }

    #[test]
    fn the_two_sides_proofs_differ_for_the_same_inputs() {
        let request = signed(&key("k"), b"cert", request());
        let answer = sensor_proof(&key("k"), b"challenge", &request.manager_proof);
        assert_ne!(answer, request.manager_proof);
        assert_eq!(answer.len(), 64);
    }
}
