//! The login decision with certificates generated at test time: the seed scenario
//! (profile `RA-VPN-Multi-Cert`, trustpoints `Machine-CA` and `User-CA`).

mod certificates;
mod flow;
mod password;

use rustls_pki_types::CertificateDer;

use super::*;
use crate::aggauth::{AuthReply, ClientMessage, Init};
use crate::config::{DeviceConfig, fixture};
use crate::mca::testkit::{self, Identity, KeyKind};
use crate::mca::{ChallengeStore, McaHash, take_challenge};
use crate::pki::testpki::{LeafOptions, TestCa, TestCert};

const PROFILE: &str = "RA-VPN-Multi-Cert";

struct Lab {
    config: DeviceConfig,
    machine_ca: TestCa,
    user_ca: TestCa,
    machine: TestCert,
    user: TestCert,
}

fn lab() -> Lab {
    let machine_ca = TestCa::root("Machine CA").unwrap();
    let user_ca = TestCa::root("User CA").unwrap();
    let mut config = fixture::seed_config();
    for trustpoint in &mut config.trustpoints {
        trustpoint.ca_certificates_pem = match trustpoint.name.as_str() {
            "Machine-CA" => machine_ca.cert.cert_pem.clone(),
            "User-CA" => user_ca.cert.cert_pem.clone(),
            other => panic!("unexpected trustpoint {other} in the seed fixture"),
        };
    }
    let machine = machine_ca
        .issue(&LeafOptions::client("machine.example.com"))
        .unwrap();
    let user = user_ca
        .issue(&LeafOptions::client("client.example.com"))
        .unwrap();
    Lab {
        config,
        machine_ca,
        user_ca,
        machine,
        user,
    }
}

impl Lab {
    /// The seed profile with the machine slot bound to `Machine-CA` and the user slot
    /// to `User-CA`.
    fn bind_slots(mut self) -> Self {
        let profile = self.profile_mut();
        profile.machine_trustpoints = vec!["Machine-CA".into()];
        profile.user_trustpoints = vec!["User-CA".into()];
        self
    }

    fn profile_mut(&mut self) -> &mut ConnectionProfile {
        self.config
            .connection_profiles
            .iter_mut()
            .find(|p| p.name == PROFILE)
            .unwrap()
    }

    fn profile(&self) -> &ConnectionProfile {
        self.config.connection_profile(PROFILE).unwrap()
    }

    fn context<'c>(&'c self, peer_chain: &'c [CertificateDer<'static>]) -> LoginContext<'c> {
        LoginContext {
            config: &self.config,
            trust: &ParseEachTime,
            peer_chain,
            now: fixture::seed_now(),
        }
    }
}

fn der(cert: &TestCert) -> CertificateDer<'static> {
    CertificateDer::from(cert.cert_der.clone())
}

fn identity(cert: &TestCert) -> Identity {
    Identity {
        der: der(cert),
        key: rcgen::KeyPair::from_pem(&cert.key_pem).unwrap(),
        kind: KeyKind::P256,
    }
}

fn init(multiple_cert: bool, client_cert_fail: bool) -> Init {
    let mca = if multiple_cert {
        "<auth-method>multiple-cert</auth-method>"
    } else {
        ""
    };
    let fail = if client_cert_fail {
        "<client-cert-fail/>"
    } else {
        ""
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id><capabilities><auth-method>single-sign-on-v2</auth-method>{mca}</capabilities><group-access>https://vpn.example.com/RAVPN-MultiCert</group-access>{fail}</config-auth>"
    );
    match ClientMessage::parse(body.as_bytes()).unwrap() {
        ClientMessage::Init(init) => init,
        other => panic!("not an init: {other:?}"),
    }
}

fn parse_reply(body: &[u8]) -> AuthReply {
    match ClientMessage::parse(body).unwrap() {
        ClientMessage::AuthReply(reply) => reply,
        other => panic!("not an auth-reply: {other:?}"),
    }
}

/// An MCA login as openconnect runs it: `tls` in the handshake, `init`, the challenge,
/// then `user`'s bag signed by `signer`; `edit` may reshape the reply body. Returns the
/// decision on the reply (or on `init` when that one does not issue a challenge).
fn mca_login<'c>(
    lab: &'c Lab,
    peer_chain: &'c [CertificateDer<'static>],
    user: &TestCert,
    signer: &TestCert,
    edit: impl FnOnce(String) -> String,
) -> Next<'c> {
    let context = lab.context(peer_chain);
    let profile = match on_init(&context, "/RAVPN-MultiCert", &init(true, false)) {
        Next::McaChallenge { profile } => profile,
        other => return other,
    };
    let started = testkit::start();
    let mut store = ChallengeStore::default();
    let body = store
        .issue(&profile.name, "1", peer_chain[0].as_ref(), started)
        .unwrap();
    let text = String::from_utf8(body.clone()).unwrap();
    let handle = text
        .split("<aggauth-handle>")
        .nth(1)
        .and_then(|rest| rest.split("</aggauth-handle>").next())
        .unwrap();
    let bag = testkit::bag_der(&[&der(user)], testkit::DIGESTED_DATA);
    let signature = testkit::sign(&identity(signer), McaHash::Sha512, &body);
    let reply = testkit::reply_body(handle, &testkit::wrapped_base64(&bag), &signature, "sha512");
    let reply = edit(String::from_utf8(reply).unwrap());
    let reply = parse_reply(reply.as_bytes());
    let challenge = take_challenge(&mut store, &reply, started);
    on_mca_reply(&context, challenge, &reply)
}

fn admitted(next: Next<'_>) -> Admission<'_> {
    match next {
        Next::Admit(admission) => admission,
        other => panic!("expected a login, got {other:?}"),
    }
}

fn refused(next: Next<'_>) -> LoginRefusal {
    match next {
        Next::Refuse { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
