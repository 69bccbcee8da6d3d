//! The MCA test bench: a machine and a user certificate are checked against every
//! connection profile as the sensor would check them (trustpoint chain validation, MCA,
//! username mapping), without a client. The proof that the client holds the user key
//! (the signed aggregate-auth challenge) needs the key and is not part of the bench.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{AuthenticationMethod, ConnectionProfile, DeviceConfig, UsernameSource};
use vpn_core::pki::{TrustStore, map_username};

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
    pub steps: Vec<(String, bool)>,
    pub username: String,
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

/// The sensor's order of checks for one profile.
fn judge(
    config: &DeviceConfig,
    profile: &ConnectionProfile,
    policy: &str,
    machine: &[CertificateDer<'static>],
    user: &[CertificateDer<'static>],
    now: OffsetDateTime,
) -> Verdict {
    let mut steps = Vec::new();
    let verdict = |accepted: bool, steps: Vec<(String, bool)>, username: String| Verdict {
        policy: policy.to_owned(),
        profile: profile.name.clone(),
        accepted,
        steps,
        username,
    };
    let aaa = &profile.aaa;
    if aaa.authentication_method == AuthenticationMethod::AaaOnly {
        steps.push((
            "AAA Only: certificates are not used; the login asks for a username and password."
                .to_owned(),
            false,
        ));
        return verdict(false, steps, String::new());
    }
    let store = match TrustStore::for_profile(config, profile) {
        Ok(store) => store,
        Err(e) => {
            steps.push((
                format!("The profile's trustpoints cannot be loaded: {e}"),
                false,
            ));
            return verdict(false, steps, String::new());
        }
    };
    let first = match store.validate(machine, now) {
        Ok(chain) => {
            steps.push((
                format!(
                    "First certificate ({}) chains to trustpoint {}.",
                    chain.leaf.subject, chain.trustpoint
                ),
                true,
            ));
            chain
        }
        Err(e) => {
            steps.push((format!("First certificate refused: {e}"), false));
            return verdict(false, steps, String::new());
        }
    };
    let mut username_from = first.chain.first().cloned();
    if aaa.requires_mca() {
        if user.is_empty() {
            steps.push(("Multiple certificate authentication is on: a second (user) certificate is required.".to_owned(), false));
            return verdict(false, steps, String::new());
        }
        match store.validate(user, now) {
            Ok(chain) => {
                steps.push((
                    format!(
                        "Second certificate ({}) chains to trustpoint {}.",
                        chain.leaf.subject, chain.trustpoint
                    ),
                    true,
                ));
                if aaa.username_from_certificate_source == UsernameSource::SecondCertificate {
                    username_from = chain.chain.first().cloned();
                }
            }
            Err(e) => {
                steps.push((format!("Second certificate refused: {e}"), false));
                return verdict(false, steps, String::new());
            }
        }
    } else if !user.is_empty() {
        steps.push((
            "MCA is off: the second certificate is not asked for.".to_owned(),
            true,
        ));
    }
    let Some(leaf) = username_from else {
        steps.push(("No certificate to map the username from.".to_owned(), false));
        return verdict(false, steps, String::new());
    };
    let username = match map_username(leaf.as_ref(), &aaa.username_mapping) {
        Ok(mapped) => {
            let source = if aaa.requires_mca() {
                match aaa.username_from_certificate_source {
                    UsernameSource::FirstCertificate => "first certificate",
                    UsernameSource::SecondCertificate => "second certificate",
                }
            } else {
                "certificate"
            };
            steps.push((
                format!(
                    "Username {:?} from the {source}: {}.",
                    mapped.username, mapped.derivation
                ),
                true,
            ));
            mapped.username
        }
        Err(e) => {
            steps.push((format!("No username: {e}"), false));
            return verdict(false, steps, String::new());
        }
    };
    if aaa.uses_aaa() {
        steps.push((
            "Then the user's password is checked (Client Certificate & AAA).".to_owned(),
            true,
        ));
    }
    if aaa.requires_mca() {
        steps.push(("The client must also sign the aggregate-auth challenge with the user certificate's key.".to_owned(), true));
    }
    verdict(true, steps, username)
}
