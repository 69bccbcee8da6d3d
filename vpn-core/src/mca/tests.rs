use std::time::Duration;

use proptest::prelude::*;
use rcgen::IsCa;

use super::testkit::{
    Ca, DATA, DIGESTED_DATA, Identity, KeyKind, bag_der, bag_der_with_signer, content_info,
    intermediate_ca, leaf, leaf_with, reply_body, root_ca, run_openssl, sign, start,
    wrapped_base64,
};
use super::*;
use crate::aggauth::{AuthReply, ClientMessage};
use crate::pki::fingerprint_sha256;

fn user_pki() -> (Ca, Ca) {
    let root = root_ca("Test User Root CA");
    let intermediate = intermediate_ca("Test User Intermediate CA", &root);
    (root, intermediate)
}

fn machine_identity() -> Identity {
    leaf(
        "machine.example.com",
        KeyKind::P256,
        &root_ca("Test Machine CA"),
    )
}

fn parse_reply(body: &[u8]) -> AuthReply {
    match ClientMessage::parse(body).expect("reply parses") {
        ClientMessage::AuthReply(reply) => reply,
        other => panic!("not an auth-reply: {other:?}"),
    }
}

/// One login in flight: the store, the machine certificate, the user and the challenge.
struct Login {
    store: ChallengeStore,
    machine: Identity,
    user: Identity,
    intermediate: Ca,
    handle: String,
    body: Vec<u8>,
    issued: std::time::Instant,
}

impl Login {
    fn new(user_kind: KeyKind) -> Login {
        let (_root, intermediate) = user_pki();
        let user = leaf("client.example.com", user_kind, &intermediate);
        let machine = machine_identity();
        let mut store = ChallengeStore::default();
        let issued = start();
        let challenge = McaChallenge::new("RAVPN-MultiCert", "1700000000000").unwrap();
        let handle = challenge.handle().to_owned();
        let body = challenge.body().to_vec();
        store.insert(challenge, &machine.der, issued).unwrap();
        Login {
            store,
            machine,
            user,
            intermediate,
            handle,
            body,
            issued,
        }
    }

    fn bag(&self) -> String {
        wrapped_base64(&bag_der(
            &[&self.user.der, self.intermediate.der()],
            DIGESTED_DATA,
        ))
    }

    fn reply(&self, hash: McaHash) -> AuthReply {
        let signature = sign(&self.user, hash, &self.body);
        parse_reply(&reply_body(
            &self.handle,
            &self.bag(),
            &signature,
            hash.as_str(),
        ))
    }

    fn verify(&mut self, reply: &AuthReply) -> Result<VerifiedMca, McaError> {
        let now = self.issued + Duration::from_secs(5);
        verify_reply(&mut self.store, reply, Some(&self.machine.der), now)
    }
}

// --- challenge and store ---------------------------------------------------------------

#[test]
fn challenge_body_is_the_documented_auth_request_with_fresh_handle_and_nonce() {
    let first = McaChallenge::new("RAVPN-MultiCert", "1700000000000").unwrap();
    let second = McaChallenge::new("RAVPN-MultiCert", "1700000000000").unwrap();
    let text = std::str::from_utf8(first.body()).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    assert!(text.contains(&format!(
        "<aggauth-handle>{}</aggauth-handle>\n",
        first.handle()
    )));
    assert!(text.contains("<tunnel-group>RAVPN-MultiCert</tunnel-group>\n"));
    assert!(text.contains("<cert-authenticated></cert-authenticated>\n"));
    for hash in ["sha256", "sha384", "sha512"] {
        assert!(text.contains(&format!("<hash-algorithm>{hash}</hash-algorithm>")));
    }
    let random = |text: &str| {
        let start = text.find("<random>").unwrap() + "<random>".len();
        let end = text.find("</random>").unwrap();
        text[start..end].to_owned()
    };
    let nonce = random(text);
    assert_eq!(nonce.len(), 64, "32 bytes as hex");
    assert!(nonce.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(nonce, random(std::str::from_utf8(second.body()).unwrap()));
    assert_ne!(first.handle(), second.handle());
    assert_eq!(first.handle().len(), 32);
    assert_eq!(first.offered(), &McaHash::ALL);
}

#[test]
fn challenge_offering_a_subset_lists_only_those_hashes() {
    let challenge = McaChallenge::offering("G", "1", &[McaHash::Sha384, McaHash::Sha384]).unwrap();
    let text = std::str::from_utf8(challenge.body()).unwrap();
    assert_eq!(text.matches("<hash-algorithm>").count(), 1);
    assert_eq!(challenge.offered(), &[McaHash::Sha384]);
    assert_eq!(
        McaChallenge::offering("G", "1", &[]),
        Err(McaError::NoHashOffered)
    );
}

#[test]
fn store_issue_returns_the_bytes_it_will_verify_against() {
    let machine = machine_identity();
    let mut store = ChallengeStore::default();
    let now = start();
    let body = store.issue("G", "1", &machine.der, now).unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    let start_tag = text.find("<aggauth-handle>").unwrap() + "<aggauth-handle>".len();
    let handle = &text[start_tag..start_tag + 32];
    let pending = store.take(handle, now).unwrap();
    assert_eq!(pending.challenge.body(), body.as_slice());
    assert_eq!(
        pending.machine_fingerprint,
        fingerprint_sha256(&machine.der)
    );
}

#[test]
fn store_hands_out_a_challenge_only_once() {
    let mut store = ChallengeStore::default();
    let now = start();
    let challenge = McaChallenge::new("G", "1").unwrap();
    let handle = challenge.handle().to_owned();
    store.insert(challenge, b"machine", now).unwrap();
    assert!(store.take(&handle, now).is_ok());
    assert_eq!(store.take(&handle, now), Err(McaError::UnknownHandle));
    assert!(store.is_empty());
}

#[test]
fn store_refuses_an_expired_challenge_and_forgets_it() {
    let mut store = ChallengeStore::default();
    let now = start();
    let challenge = McaChallenge::new("G", "1").unwrap();
    let handle = challenge.handle().to_owned();
    store.insert(challenge, b"machine", now).unwrap();
    let late = now + CHALLENGE_LIFETIME + Duration::from_secs(1);
    assert_eq!(store.take(&handle, late), Err(McaError::Expired));
    assert_eq!(store.take(&handle, now), Err(McaError::UnknownHandle));
}

#[test]
fn store_accepts_an_answer_at_the_end_of_the_lifetime() {
    let mut store = ChallengeStore::default();
    let now = start();
    let challenge = McaChallenge::new("G", "1").unwrap();
    let handle = challenge.handle().to_owned();
    store.insert(challenge, b"machine", now).unwrap();
    assert!(store.take(&handle, now + CHALLENGE_LIFETIME).is_ok());
}

#[test]
fn store_refuses_an_unknown_handle() {
    let mut store = ChallengeStore::default();
    assert_eq!(
        store.take("51eb8da181e71ff8", start()),
        Err(McaError::UnknownHandle)
    );
}

#[test]
fn store_refuses_new_challenges_when_full_until_old_ones_expire() {
    let mut store = ChallengeStore::new(2);
    let now = start();
    for _ in 0..2 {
        store
            .insert(McaChallenge::new("G", "1").unwrap(), b"m", now)
            .unwrap();
    }
    let refused = store.insert(McaChallenge::new("G", "1").unwrap(), b"m", now);
    assert_eq!(refused, Err(McaError::StoreFull { capacity: 2 }));
    assert_eq!(
        refused.unwrap_err().to_string(),
        "challenge store is full (2 pending challenges)"
    );
    let later = now + CHALLENGE_LIFETIME + Duration::from_secs(1);
    store
        .insert(McaChallenge::new("G", "1").unwrap(), b"m", later)
        .unwrap();
    assert_eq!(store.len(), 1, "the expired challenges were dropped");
}

// --- PKCS#7 bag ------------------------------------------------------------------------

#[test]
fn bag_with_digested_data_yields_the_leaf_and_its_intermediates() {
    let (root, intermediate) = user_pki();
    let user = leaf("client.example.com", KeyKind::P256, &intermediate);
    let der = bag_der(&[&user.der, intermediate.der()], DIGESTED_DATA);
    let bag = UserCertificateBag::from_base64(&wrapped_base64(&der)).unwrap();
    assert_eq!(bag.leaf, user.der);
    assert_eq!(bag.intermediates, vec![intermediate.der().clone()]);
    assert_eq!(bag.certificates()[0], user.der);
    drop(root);
}

#[test]
fn bag_order_does_not_decide_which_certificate_is_the_leaf() {
    let (root, intermediate) = user_pki();
    let user = leaf("client.example.com", KeyKind::P256, &intermediate);
    let der = bag_der(&[intermediate.der(), root.der(), &user.der], DIGESTED_DATA);
    let bag = UserCertificateBag::from_der(&der).unwrap();
    assert_eq!(bag.leaf, user.der);
    assert_eq!(bag.intermediates.len(), 2);
}

#[test]
fn bag_accepts_a_leaf_without_basic_constraints() {
    let (_root, intermediate) = user_pki();
    let user = leaf_with("client", KeyKind::P256, &intermediate, IsCa::NoCa);
    let bag = UserCertificateBag::from_der(&bag_der(&[&user.der], DIGESTED_DATA)).unwrap();
    assert_eq!(bag.leaf, user.der);
    assert!(bag.intermediates.is_empty());
}

#[test]
fn bag_made_by_openssl_crl2pkcs7_with_data_content_parses() {
    let (_root, intermediate) = user_pki();
    let user = leaf("client.example.com", KeyKind::Rsa2048, &intermediate);
    let pem = format!("{}{}", pem_of(&user.der), intermediate.pem());
    let der = run_openssl(
        &[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "/dev/stdin",
            "-outform",
            "DER",
        ],
        pem.as_bytes(),
    );
    let bag = UserCertificateBag::from_der(&der).unwrap();
    assert_eq!(bag.leaf, user.der);
    assert_eq!(bag.intermediates, vec![intermediate.der().clone()]);
    let also_cms = bag_der(&[&user.der], DATA);
    assert!(UserCertificateBag::from_der(&also_cms).is_ok());
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        body.join("\n")
    )
}

#[test]
fn bag_without_certificates_is_refused_as_empty() {
    let der = bag_der(&[], DIGESTED_DATA);
    assert_eq!(UserCertificateBag::from_der(&der), Err(McaError::BagEmpty));
}

#[test]
fn bag_with_eleven_certificates_is_refused() {
    let root = root_ca("Root");
    let cas: Vec<Ca> = (0..10)
        .map(|n| intermediate_ca(&format!("CA {n}"), &root))
        .collect();
    let user = leaf("client", KeyKind::P256, &root);
    let mut certificates: Vec<_> = cas.iter().map(|ca| ca.der()).collect();
    certificates.push(&user.der);
    let der = bag_der(&certificates, DIGESTED_DATA);
    assert_eq!(
        UserCertificateBag::from_der(&der),
        Err(McaError::BagTooManyCertificates {
            count: 11,
            limit: MAX_BAG_CERTIFICATES
        })
    );
    let ten = bag_der(&certificates[1..], DIGESTED_DATA);
    assert!(UserCertificateBag::from_der(&ten).is_ok());
}

#[test]
fn bag_with_two_leaves_is_refused() {
    let (_root, intermediate) = user_pki();
    let first = leaf("alice", KeyKind::P256, &intermediate);
    let second = leaf("bob", KeyKind::P256, &intermediate);
    let der = bag_der(&[&first.der, &second.der], DIGESTED_DATA);
    assert_eq!(
        UserCertificateBag::from_der(&der),
        Err(McaError::BagSeveralLeaves(2))
    );
}

#[test]
fn bag_of_ca_certificates_only_has_no_leaf() {
    let (root, intermediate) = user_pki();
    let der = bag_der(&[root.der(), intermediate.der()], DIGESTED_DATA);
    assert_eq!(UserCertificateBag::from_der(&der), Err(McaError::BagNoLeaf));
}

#[test]
fn bag_refuses_other_content_types_signers_and_garbage() {
    let (_root, intermediate) = user_pki();
    let user = leaf("client", KeyKind::P256, &intermediate);
    let enveloped = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
    let wrong_inner = bag_der(&[&user.der], enveloped);
    assert_eq!(
        UserCertificateBag::from_der(&wrong_inner),
        Err(McaError::BagContentType("1.2.840.113549.1.7.3".into()))
    );
    let good = bag_der(&[&user.der], DIGESTED_DATA);
    let octets = der::asn1::OctetString::new(good.clone()).unwrap();
    assert_eq!(
        UserCertificateBag::from_der(&content_info(DATA, &octets)),
        Err(McaError::BagContentType("1.2.840.113549.1.7.1".into()))
    );
    assert_eq!(
        UserCertificateBag::from_der(&bag_der_with_signer(&user.der)),
        Err(McaError::BagHasSigners)
    );
    assert!(matches!(
        UserCertificateBag::from_der(&good[..good.len() - 1]),
        Err(McaError::BagMalformed(_))
    ));
    assert!(matches!(
        UserCertificateBag::from_der(b"\x30\x03\x02\x01\x01"),
        Err(McaError::BagMalformed(_))
    ));
    assert_eq!(
        UserCertificateBag::from_base64("not*base64"),
        Err(McaError::BagNotBase64)
    );
}

#[test]
fn bag_refuses_base64_over_the_size_limit() {
    let huge = "A".repeat(MAX_BAG_BASE64_BYTES + 4);
    assert_eq!(
        UserCertificateBag::from_base64(&huge),
        Err(McaError::BagTooLarge {
            size: MAX_BAG_BASE64_BYTES + 4,
            limit: MAX_BAG_BASE64_BYTES
        })
    );
}

// --- signatures ------------------------------------------------------------------------

fn signs_and_verifies_with_every_hash(kind: KeyKind) {
    let (_root, intermediate) = user_pki();
    let user = leaf("client.example.com", kind, &intermediate);
    let challenge = McaChallenge::new("RAVPN-MultiCert", "1").unwrap();
    for hash in McaHash::ALL {
        let signature = sign(&user, hash, challenge.body());
        assert_eq!(
            verify_signature(challenge.body(), &user.der, hash, &signature),
            Ok(()),
            "{kind:?} with {hash}"
        );
    }
}

#[test]
fn mca_accepts_rsa_pkcs1_signatures_with_sha256_sha384_and_sha512() {
    signs_and_verifies_with_every_hash(KeyKind::Rsa2048);
}

#[test]
fn mca_accepts_ecdsa_p256_signatures_with_sha256_sha384_and_sha512() {
    signs_and_verifies_with_every_hash(KeyKind::P256);
}

#[test]
fn mca_accepts_ecdsa_p384_signatures_with_sha256_sha384_and_sha512() {
    signs_and_verifies_with_every_hash(KeyKind::P384);
}

#[test]
fn mca_rejects_signature_from_other_key() {
    let (_root, intermediate) = user_pki();
    for kind in [KeyKind::Rsa2048, KeyKind::P256] {
        let user = leaf("client", kind, &intermediate);
        let thief = leaf("client", kind, &intermediate);
        let data = McaChallenge::new("G", "1").unwrap().body().to_vec();
        let signature = sign(&thief, McaHash::Sha256, &data);
        assert_eq!(
            verify_signature(&data, &user.der, McaHash::Sha256, &signature),
            Err(McaError::BadSignature)
        );
    }
}

#[test]
fn mca_rejects_a_signature_when_one_byte_of_the_challenge_differs() {
    let (_root, intermediate) = user_pki();
    let user = leaf("client", KeyKind::Rsa2048, &intermediate);
    let data = McaChallenge::new("G", "1").unwrap().body().to_vec();
    let signature = sign(&user, McaHash::Sha512, &data);
    for index in [0, data.len() / 2, data.len() - 1] {
        let mut tampered = data.clone();
        tampered[index] ^= 0x01;
        assert_eq!(
            verify_signature(&tampered, &user.der, McaHash::Sha512, &signature),
            Err(McaError::BadSignature)
        );
    }
    let mut bad_signature = signature;
    bad_signature[10] ^= 0x80;
    assert_eq!(
        verify_signature(&data, &user.der, McaHash::Sha512, &bad_signature),
        Err(McaError::BadSignature)
    );
}

#[test]
fn mca_rejects_a_signature_made_with_another_hash_than_claimed() {
    let (_root, intermediate) = user_pki();
    for kind in [KeyKind::Rsa2048, KeyKind::P256, KeyKind::P384] {
        let user = leaf("client", kind, &intermediate);
        let data = McaChallenge::new("G", "1").unwrap().body().to_vec();
        let signature = sign(&user, McaHash::Sha256, &data);
        assert_eq!(
            verify_signature(&data, &user.der, McaHash::Sha512, &signature),
            Err(McaError::BadSignature),
            "{kind:?}"
        );
    }
}

#[test]
fn mca_rejects_keys_other_than_rsa_p256_and_p384() {
    let (_root, intermediate) = user_pki();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    let certificate = params.signed_by(&key, &intermediate).unwrap();
    assert_eq!(
        verify_signature(b"data", certificate.der(), McaHash::Sha512, &[0; 64]),
        Err(McaError::UnsupportedKey)
    );
    assert_eq!(
        verify_signature(b"data", b"not a certificate", McaHash::Sha512, &[0; 64]),
        Err(McaError::LeafCertificateInvalid)
    );
}

// --- the whole reply -------------------------------------------------------------------

#[test]
fn verify_reply_accepts_a_signed_reply_and_returns_the_user_chain() {
    for (kind, hash) in [
        (KeyKind::Rsa2048, McaHash::Sha512),
        (KeyKind::P256, McaHash::Sha256),
        (KeyKind::P384, McaHash::Sha384),
    ] {
        let mut login = Login::new(kind);
        let reply = login.reply(hash);
        let verified = login.verify(&reply).unwrap();
        assert_eq!(verified.user_bag.leaf, login.user.der);
        assert_eq!(
            verified.user_bag.intermediates,
            vec![login.intermediate.der().clone()]
        );
        assert_eq!(verified.hash, hash);
        assert_eq!(verified.tunnel_group, "RAVPN-MultiCert");
        assert_eq!(
            verified.machine_fingerprint,
            fingerprint_sha256(&login.machine.der)
        );
        assert!(login.store.is_empty());
    }
}

#[test]
fn verify_reply_refuses_a_reused_handle() {
    let mut login = Login::new(KeyKind::P256);
    let reply = login.reply(McaHash::Sha256);
    assert!(login.verify(&reply).is_ok());
    assert_eq!(login.verify(&reply), Err(McaError::UnknownHandle));
}

#[test]
fn verify_reply_refuses_an_expired_handle() {
    let mut login = Login::new(KeyKind::P256);
    let reply = login.reply(McaHash::Sha256);
    let late = login.issued + CHALLENGE_LIFETIME + Duration::from_secs(1);
    let result = verify_reply(&mut login.store, &reply, Some(&login.machine.der), late);
    assert_eq!(result, Err(McaError::Expired));
}

#[test]
fn verify_reply_refuses_an_unknown_or_missing_handle() {
    let mut login = Login::new(KeyKind::P256);
    let signature = sign(&login.user, McaHash::Sha256, &login.body);
    let forged = parse_reply(&reply_body(
        "0123456789abcdef0123456789abcdef",
        &login.bag(),
        &signature,
        "sha256",
    ));
    assert_eq!(login.verify(&forged), Err(McaError::UnknownHandle));
    let mut no_opaque = login.reply(McaHash::Sha256);
    no_opaque.opaque = None;
    assert_eq!(login.verify(&no_opaque), Err(McaError::MissingHandle));
}

#[test]
fn verify_reply_refuses_another_or_no_machine_certificate_and_burns_the_handle() {
    let mut login = Login::new(KeyKind::P256);
    let reply = login.reply(McaHash::Sha256);
    let other = machine_identity();
    let now = login.issued + Duration::from_secs(1);
    assert_eq!(
        verify_reply(&mut login.store, &reply, Some(&other.der), now),
        Err(McaError::MachineCertificateChanged)
    );
    assert_eq!(login.verify(&reply), Err(McaError::UnknownHandle));

    let mut login = Login::new(KeyKind::P256);
    let reply = login.reply(McaHash::Sha256);
    assert_eq!(
        verify_reply(&mut login.store, &reply, None, now),
        Err(McaError::NoMachineCertificate)
    );
}

#[test]
fn verify_reply_refuses_the_machine_certificate_in_the_user_slot() {
    let mut login = Login::new(KeyKind::P256);
    let bag = wrapped_base64(&bag_der(&[&login.machine.der], DIGESTED_DATA));
    let signature = sign(&login.machine, McaHash::Sha256, &login.body);
    let reply = parse_reply(&reply_body(&login.handle, &bag, &signature, "sha256"));
    assert_eq!(login.verify(&reply), Err(McaError::UserCertIsMachineCert));
}

#[test]
fn verify_reply_refuses_a_hash_that_was_not_offered() {
    let machine = machine_identity();
    let (_root, intermediate) = user_pki();
    let user = leaf("client", KeyKind::Rsa2048, &intermediate);
    let mut store = ChallengeStore::default();
    let now = start();
    let challenge = McaChallenge::offering("G", "1", &[McaHash::Sha256]).unwrap();
    let handle = challenge.handle().to_owned();
    let body = challenge.body().to_vec();
    store.insert(challenge, &machine.der, now).unwrap();
    let bag = wrapped_base64(&bag_der(&[&user.der], DIGESTED_DATA));
    let signature = sign(&user, McaHash::Sha512, &body);
    let reply = parse_reply(&reply_body(&handle, &bag, &signature, "sha512"));
    assert_eq!(
        verify_reply(&mut store, &reply, Some(&machine.der), now),
        Err(McaError::HashNotOffered(McaHash::Sha512))
    );
}

#[test]
fn verify_reply_refuses_sha1_and_md5() {
    for name in ["sha1", "md5"] {
        let mut login = Login::new(KeyKind::Rsa2048);
        let signature = sign(&login.user, McaHash::Sha256, &login.body);
        let reply = parse_reply(&reply_body(&login.handle, &login.bag(), &signature, name));
        assert_eq!(
            login.verify(&reply),
            Err(McaError::UnsupportedHash(name.into()))
        );
    }
}

#[test]
fn verify_reply_refuses_a_signature_by_another_key_or_over_other_bytes() {
    let mut login = Login::new(KeyKind::P256);
    let thief = leaf("client.example.com", KeyKind::P256, &login.intermediate);
    let signature = sign(&thief, McaHash::Sha256, &login.body);
    let reply = parse_reply(&reply_body(
        &login.handle,
        &login.bag(),
        &signature,
        "sha256",
    ));
    assert_eq!(login.verify(&reply), Err(McaError::BadSignature));

    let mut login = Login::new(KeyKind::P256);
    let other_challenge = McaChallenge::new("RAVPN-MultiCert", "1700000000000").unwrap();
    let signature = sign(&login.user, McaHash::Sha256, other_challenge.body());
    let reply = parse_reply(&reply_body(
        &login.handle,
        &login.bag(),
        &signature,
        "sha256",
    ));
    assert_eq!(login.verify(&reply), Err(McaError::BadSignature));
}

#[test]
fn verify_reply_refuses_replies_that_are_not_mca_or_not_via_protocol() {
    let mut login = Login::new(KeyKind::P256);
    let mut reply = login.reply(McaHash::Sha256);
    reply.mca = None;
    assert_eq!(login.verify(&reply), Err(McaError::NotAnMcaReply));

    let mut login = Login::new(KeyKind::P256);
    let mut reply = login.reply(McaHash::Sha256);
    if let Some(mca) = reply.mca.as_mut() {
        mca.machine_sent_via_protocol = false;
    }
    assert_eq!(
        login.verify(&reply),
        Err(McaError::MachineCertNotViaProtocol)
    );

    let mut login = Login::new(KeyKind::P256);
    let mut reply = login.reply(McaHash::Sha256);
    if let Some(mca) = reply.mca.as_mut() {
        mca.signature_base64 = "***".into();
    }
    assert_eq!(login.verify(&reply), Err(McaError::SignatureNotBase64));

    let mut login = Login::new(KeyKind::P256);
    let mut reply = login.reply(McaHash::Sha256);
    if let Some(mca) = reply.mca.as_mut() {
        mca.user_pkcs7_base64 = wrapped_base64(&bag_der(&[], DIGESTED_DATA));
    }
    assert_eq!(login.verify(&reply), Err(McaError::BagEmpty));
}

proptest! {
    #[test]
    fn bag_parsing_never_panics_on_arbitrary_bytes(der in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = UserCertificateBag::from_der(&der);
    }

    #[test]
    fn bag_parsing_never_panics_on_arbitrary_text(text in ".{0,512}") {
        let _ = UserCertificateBag::from_base64(&text);
    }
}

#[test]
fn bag_parsing_never_panics_on_mutated_bags() {
    let (_root, intermediate) = user_pki();
    let user = leaf("client", KeyKind::P256, &intermediate);
    let good = bag_der(&[&user.der, intermediate.der()], DIGESTED_DATA);
    proptest!(|(index in 0..good.len(), value in any::<u8>(), cut in 0..good.len())| {
        let mut mutated = good.clone();
        mutated[index] = value;
        let _ = UserCertificateBag::from_der(&mutated);
        let _ = UserCertificateBag::from_der(&good[..cut]);
    });
}
