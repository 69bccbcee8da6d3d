//! The MCA test bench: a machine and a user certificate are checked against every
//! connection profile by the sensor's own decision, `vpn_core::login::
//! evaluate_certificates` (each chain against the trustpoints of its MCA slot, slot
//! binding, distinct keys, username mapping), without a client. The proof that the
//! client holds the user key (the signed aggregate-auth challenge) needs the key: the
//! bench says that step was not evaluated.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{AuthenticationMethod, ConnectionProfile, DeviceConfig};
use vpn_core::login::{
    CertificateVerdict, LoginRefusal, Slot, UsernameFrom, evaluate_certificates,
};
use vpn_core::pki::TrustStore;

use super::auth::{Chrome, Current};
use super::form::{Errors, parse};
use super::{UiContext, UiError};
use crate::db::devices::{Device, RegistrationState};
use crate::db::{Page, device_policy, policies};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct BenchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    machine_pem: String,
    #[serde(default)]
    user_pem: String,
}

/// What one profile would do with the two certificates.
pub(crate) struct Verdict {
    pub policy: String,
    pub profile: String,
    pub accepted: bool,
    /// The checks in order, each with its outcome.
    pub steps: Vec<Check>,
    pub username: String,
}

/// One line of a verdict.
pub(crate) struct Check {
    pub text: String,
    /// `ok`, `bad`, or `warn` for a step the bench cannot evaluate.
    pub class: &'static str,
}

impl Check {
    fn new(text: impl Into<String>, passed: bool) -> Self {
        Check {
            text: text.into(),
            class: if passed { "ok" } else { "bad" },
        }
    }

    fn not_evaluated(text: impl Into<String>) -> Self {
        Check {
            text: text.into(),
            class: "warn",
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "bench.html")]
pub(crate) struct BenchPage {
    chrome: Chrome,
    form: BenchForm,
    errors: Errors,
    verdicts: Vec<Verdict>,
    ran: bool,
}

pub(crate) async fn page(current: Current) -> BenchPage {
    BenchPage {
        chrome: current.chrome("devices"),
        form: BenchForm::default(),
        errors: Errors::default(),
        verdicts: Vec::new(),
        ran: false,
    }
}

pub(crate) async fn run(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: BenchForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    let mut errors = Errors::default();
    let machine = read_chain(&form.machine_pem, "machine_pem", &mut errors);
    let user = if form.user_pem.trim().is_empty() {
        Vec::new()
    } else {
        read_chain(&form.user_pem, "user_pem", &mut errors)
    };
    let mut verdicts = Vec::new();
    if errors.is_empty() {
        let now = OffsetDateTime::now_utc();
        for policy in policies::list(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items
        {
            let (pool, key, domain_id, id) = (
                context.pool.clone(),
                context.key.clone(),
                context.domain_id,
                policy.id,
            );
            let inputs = super::off_thread(move || async move {
                device_policy::load_for_policy(
                    &pool,
                    domain_id,
                    id,
                    bench_device(domain_id, now),
                    &key,
                )
                .await
            })
            .await??;
            let config = crate::deploy::compile::device_config(&inputs, 0);
            for profile in &config.connection_profiles {
                verdicts.push(judge(&config, profile, &policy.name, &machine, &user, now));
            }
        }
    }
    Ok(BenchPage {
        chrome: current.chrome("devices"),
        form,
        errors,
        verdicts,
        ran: true,
    }
    .into_response())
}

fn read_chain(pem: &str, field: &str, errors: &mut Errors) -> Vec<CertificateDer<'static>> {
    match vpn_core::pki::pem::certificates(pem) {
        Ok(chain) if !chain.is_empty() => chain,
        Ok(_) => {
            errors.add(
                field,
                "Paste or choose a PEM certificate (-----BEGIN CERTIFICATE-----).",
            );
            Vec::new()
        }
        Err(e) => {
            errors.add(field, format!("The PEM could not be read: {e}"));
            Vec::new()
        }
    }
}

fn bench_device(domain_id: Uuid, now: OffsetDateTime) -> Device {
    Device {
        id: Uuid::nil(),
        domain_id,
        name: "bench".to_owned(),
        description: String::new(),
        host_name: String::new(),
        nat_id: None,
        registration_state: RegistrationState::Pending,
        registration_error: None,
        registered_at: None,
        sensor_certificate_pem: None,
        manager_certificate_pem: None,
        software_version: None,
        version: 0,
        created_at: now,
        updated_at: now,
    }
}

/// What the sensor would decide for one profile, signature step aside.
fn judge(
    config: &DeviceConfig,
    profile: &ConnectionProfile,
    policy: &str,
    machine: &[CertificateDer<'static>],
    user: &[CertificateDer<'static>],
    now: OffsetDateTime,
) -> Verdict {
    let mut steps = Vec::new();
    let verdict = |accepted: bool, steps: Vec<Check>, username: String| Verdict {
        policy: policy.to_owned(),
        profile: profile.name.clone(),
        accepted,
        steps,
        username,
    };
    let aaa = &profile.aaa;
    if aaa.authentication_method == AuthenticationMethod::AaaOnly {
        steps.push(Check::new(
            "AAA Only: certificates are not used; the login asks for a username and password.",
            false,
        ));
        return verdict(false, steps, String::new());
    }
    let store = match TrustStore::for_profile(config, profile) {
        Ok(store) => store,
        Err(e) => {
            steps.push(Check::new(
                format!("The profile's trustpoints cannot be loaded: {e}"),
                false,
            ));
            return verdict(false, steps, String::new());
        }
    };
    let user_chain = if aaa.requires_mca() {
        if user.is_empty() {
            steps.push(Check::new("Multiple certificate authentication is on: a second (user) certificate is required.", false));
            return verdict(false, steps, String::new());
        }
        Some(user)
    } else {
        if !user.is_empty() {
            steps.push(Check::new(
                "MCA is off: the second certificate is not asked for.",
                true,
            ));
        }
        None
    };
    match evaluate_certificates(profile, &store, machine, user_chain, now) {
        Ok(passed) => {
            passed_steps(profile, &passed, &mut steps);
            verdict(true, steps, passed.identity.username)
        }
        Err(refusal) => {
            steps.push(Check::new(refusal_text(&refusal), false));
            verdict(false, steps, String::new())
        }
    }
}

/// The checks that passed, then what the bench cannot check.
fn passed_steps(profile: &ConnectionProfile, passed: &CertificateVerdict, steps: &mut Vec<Check>) {
    let slot = |s: Slot| match s.bound_trustpoints(profile) {
        [] => String::new(),
        bound => format!(" ({} slot bound to {})", s, bound.join(", ")),
    };
    steps.push(Check::new(
        format!(
            "First certificate ({}) chains to trustpoint {}{}.",
            passed.machine.leaf.subject,
            passed.machine.trustpoint,
            slot(Slot::Machine)
        ),
        true,
    ));
    if let Some(user) = &passed.user {
        steps.push(Check::new(
            format!(
                "Second certificate ({}) chains to trustpoint {}{}.",
                user.leaf.subject,
                user.trustpoint,
                slot(Slot::User)
            ),
            true,
        ));
        steps.push(Check::new(
            "The two certificates have different public keys.",
            true,
        ));
    }
    let identity = &passed.identity;
    let source = match identity.from {
        UsernameFrom::TheClientCertificate => "certificate",
        UsernameFrom::FirstCertificate => "first certificate",
        UsernameFrom::SecondCertificate => "second certificate",
    };
    steps.push(Check::new(
        format!(
            "Username {:?} from the {source}: {}.",
            identity.username, identity.mapping
        ),
        true,
    ));
    let aaa = &profile.aaa;
    if aaa.uses_aaa() {
        steps.push(Check::new(
            "Then the user's password is checked (Client Certificate & AAA).",
            true,
        ));
    }
    if aaa.requires_mca() {
        steps.push(Check::not_evaluated("Not evaluated: the client must also sign the aggregate-auth challenge with the user certificate's key, which the bench does not have."));
    }
}

/// The refusal as the bench words it: which certificate, and why.
fn refusal_text(refusal: &LoginRefusal) -> String {
    match refusal {
        LoginRefusal::Chain {
            slot: Slot::Machine,
            source,
        } => format!("First certificate refused: {source}"),
        LoginRefusal::Chain {
            slot: Slot::User,
            source,
        } => format!("Second certificate refused: {source}"),
        other => format!("Refused: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use vpn_core::pki::testpki::{LeafOptions, TestCa, TestCert};

    use super::*;

    struct Lab {
        config: DeviceConfig,
        user_ca: TestCa,
        machine: TestCert,
        user: TestCert,
    }

    /// One MCA profile trusting a machine CA and a user CA, `bind` saying whether each
    /// CA is bound to its slot.
    fn lab(bind: bool) -> Lab {
        let machine_ca = TestCa::root("Bench Machine CA").unwrap();
        let user_ca = TestCa::root("Bench User CA").unwrap();
        let machine = machine_ca.issue(&LeafOptions::client("laptop-01")).unwrap();
        let user = user_ca.issue(&LeafOptions::client("alice")).unwrap();
        let (machine_slot, user_slot) = if bind {
            (vec!["MACHINE-CA"], vec!["USER-CA"])
        } else {
            (Vec::new(), Vec::new())
        };
        let config = serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "version": 1,
            "device_id": "6f1c3f0e-8a2b-4d5e-9f00-1a2b3c4d5e6f",
            "headend": {
                "identity": { "trustpoint": "FTD-ID", "certificate_chain_pem": "", "private_key_pem": "" }
            },
            "connection_profiles": [{
                "name": "RAVPN-MCA",
                "group_policy": "GP",
                "aaa": {
                    "authentication_method": "CLIENT_CERTIFICATE_ONLY",
                    "enable_multiple_certificate_authentication": true,
                    "username_from_certificate_source": "SECOND_CERTIFICATE"
                },
                "trustpoints": ["MACHINE-CA", "USER-CA"],
                "machine_trustpoints": machine_slot,
                "user_trustpoints": user_slot
            }],
            "group_policies": [{ "name": "GP" }],
            "trustpoints": [
                { "name": "MACHINE-CA", "ca_certificates_pem": machine_ca.cert.cert_pem },
                { "name": "USER-CA", "ca_certificates_pem": user_ca.cert.cert_pem }
            ]
        }))
        .unwrap();
        Lab {
            config,
            user_ca,
            machine,
            user,
        }
    }

    fn judged(lab: &Lab, machine: &TestCert, user: &TestCert) -> Verdict {
        let der = |cert: &TestCert| vec![CertificateDer::from(cert.cert_der.clone())];
        let profile = &lab.config.connection_profiles[0];
        // Inside the test CA's validity (2025-2035).
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        judge(
            &lab.config,
            profile,
            "Policy",
            &der(machine),
            &der(user),
            now,
        )
    }

    fn texts(verdict: &Verdict) -> String {
        let lines: Vec<&str> = verdict.steps.iter().map(|c| c.text.as_str()).collect();
        lines.join("\n")
    }

    #[test]
    fn swapped_certificates_are_refused_with_the_reason_when_the_profile_binds_the_slots() {
        let lab = lab(true);
        let verdict = judged(&lab, &lab.user, &lab.machine);
        let steps = texts(&verdict);
        assert!(!verdict.accepted, "{steps}");
        assert!(
            steps.contains("Refused: the machine certificate chains to trustpoint \"USER-CA\""),
            "{steps}"
        );
        assert_eq!(verdict.username, "");
    }

    #[test]
    fn swapped_certificates_pass_when_no_slot_is_bound_as_on_fmc() {
        let lab = lab(false);
        let verdict = judged(&lab, &lab.user, &lab.machine);
        assert!(verdict.accepted, "{}", texts(&verdict));
        assert_eq!(verdict.username, "laptop-01");
    }

    #[test]
    fn the_same_key_in_both_certificates_is_refused() {
        let lab = lab(true);
        let same_key = lab
            .user_ca
            .issue_for_key_of(&LeafOptions::client("alice"), &lab.machine)
            .unwrap();
        let verdict = judged(&lab, &lab.machine, &same_key);
        let steps = texts(&verdict);
        assert!(!verdict.accepted, "{steps}");
        assert!(
            steps
                .contains("Refused: the machine and the user certificate have the same public key"),
            "{steps}"
        );
    }

    #[test]
    fn an_accepted_pair_names_the_slots_and_says_the_signature_was_not_evaluated() {
        let lab = lab(true);
        let verdict = judged(&lab, &lab.machine, &lab.user);
        let steps = texts(&verdict);
        assert!(verdict.accepted, "{steps}");
        assert_eq!(verdict.username, "alice");
        assert!(
            steps.contains("chains to trustpoint MACHINE-CA (machine slot bound to MACHINE-CA)"),
            "{steps}"
        );
        assert!(
            steps.contains("Username \"alice\" from the second certificate: CN"),
            "{steps}"
        );
        let last = verdict.steps.last().unwrap();
        assert_eq!(last.class, "warn");
        assert!(last.text.starts_with("Not evaluated"), "{}", last.text);
    }
}
