//! Objects: IPv4/IPv6 address pools, group policies, PKI cert enrollments and LOCAL realm
//! users.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use ipnet::IpNet;
use serde::Deserialize;
use vpn_core::pki::CertificateInfo;

use super::auth::{Chrome, Current};
use super::form::{self, Errors, checked, parse};
use super::{UiContext, UiError};
use crate::db::cert_enrollments::{
    self, CaOnlySettings, CertEnrollment, CertEnrollmentInput, EnrollmentContent, EnrollmentInput,
    EnrollmentType,
};
use crate::db::group_policies::{self, GroupPolicy, GroupPolicyInput};
use crate::db::local_users::{self, LocalUser, LocalUserInput};
use crate::db::pools::{
    self, Ipv4AddressPool, Ipv4AddressPoolInput, Ipv6AddressPool, Ipv6AddressPoolInput,
};
use crate::db::{Page, PasswordHash};

/// Reads every certificate of a PEM text.
pub(crate) fn certificate_infos(pem: &str) -> Result<Vec<CertificateInfo>, String> {
    let ders = vpn_core::pki::pem::certificates(pem).map_err(|e| e.to_string())?;
    if ders.is_empty() {
        return Err(
            "No certificate found: paste a PEM block starting with -----BEGIN CERTIFICATE-----."
                .into(),
        );
    }
    ders.iter()
        .map(|der| CertificateInfo::from_der(der.as_ref()).map_err(|e| e.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Address pools.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PoolForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    family: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// IPv4: `start-end`; IPv6: `start/prefix`.
    #[serde(default)]
    range: String,
    #[serde(default)]
    mask: String,
    #[serde(default)]
    count: String,
    overridable: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "objects/pools.html")]
pub(crate) struct PoolsPage {
    chrome: Chrome,
    ipv4: Vec<Ipv4AddressPool>,
    ipv6: Vec<Ipv6AddressPool>,
    form: PoolForm,
    errors: Errors,
    open: bool,
}

pub(crate) async fn pools(
    State(context): State<UiContext>,
    current: Current,
) -> Result<PoolsPage, UiError> {
    pools_page(
        &context,
        &current,
        PoolForm {
            family: "ipv4".into(),
            mask: "255.255.255.0".into(),
            ..PoolForm::default()
        },
        Errors::default(),
        false,
    )
    .await
}

async fn pools_page(
    context: &UiContext,
    current: &Current,
    form: PoolForm,
    errors: Errors,
    open: bool,
) -> Result<PoolsPage, UiError> {
    let ipv4 = pools::list_ipv4(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    let ipv6 = pools::list_ipv6(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    Ok(PoolsPage {
        chrome: current.chrome("objects"),
        ipv4,
        ipv6,
        form,
        errors,
        open,
    })
}

pub(crate) async fn pool_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: PoolForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    current.require_edit()?;
    let mut errors = Errors::default();
    let name = form.name.trim().to_owned();
    check_object_name(&mut errors, &name);
    let overridable = checked(&form.overridable);
    let mut conn = form::connection(&context.pool).await?;
    let result = if form.family == "ipv6" {
        let parsed = form.range.trim().split_once('/').and_then(|(a, p)| {
            Some((
                a.trim().parse::<Ipv6Addr>().ok()?,
                p.trim().parse::<u8>().ok()?,
            ))
        });
        if parsed.is_none() {
            errors.add(
                "range",
                "Enter the first address and prefix, e.g. 2001:db8::1/64.",
            );
        }
        let count = form.count.trim().parse::<u32>().ok().filter(|c| *c > 0);
        if count.is_none() {
            errors.add(
                "count",
                "Enter how many addresses the pool has (1 or more).",
            );
        }
        match (errors.is_empty(), parsed, count) {
            (true, Some((start, prefix_length)), Some(number_of_addresses)) => pools::create_ipv6(
                &mut conn,
                &current.actor(),
                context.domain_id,
                &Ipv6AddressPoolInput {
                    name,
                    description: form.description.clone(),
                    start,
                    prefix_length,
                    number_of_addresses,
                    overridable,
                },
            )
            .await
            .map(|_| ()),
            _ => Ok(()),
        }
    } else {
        let range = form.range.trim().split_once('-').and_then(|(a, b)| {
            Some((
                a.trim().parse::<Ipv4Addr>().ok()?,
                b.trim().parse::<Ipv4Addr>().ok()?,
            ))
        });
        match range {
            None => errors.add(
                "range",
                "Enter a range as first-last, e.g. 10.10.10.1-10.10.10.100.",
            ),
            Some((a, b)) if u32::from(a) > u32::from(b) => {
                errors.add("range", "The first address comes after the last one.")
            }
            Some(_) => {}
        }
        let mask = form.mask.trim().parse::<Ipv4Addr>().ok().filter(|m| {
            let bits = u32::from(*m);
            bits.leading_ones() + bits.trailing_zeros() == 32
        });
        if mask.is_none() {
            errors.add("mask", "Enter a netmask such as 255.255.255.0.");
        }
        match (errors.is_empty(), range, mask) {
            (true, Some((start, end)), Some(mask)) => pools::create_ipv4(
                &mut conn,
                &current.actor(),
                context.domain_id,
                &Ipv4AddressPoolInput {
                    name,
                    description: form.description.clone(),
                    start,
                    end,
                    mask,
                    overridable,
                },
            )
            .await
            .map(|_| ()),
            _ => Ok(()),
        }
    };
    drop(conn);
    if let Err(e) = result {
        errors = Errors::from_db(&e).ok_or(e)?;
    }
    if errors.is_empty() {
        return Ok(Redirect::to("/objects/pools").into_response());
    }
    Ok(pools_page(&context, &current, form, errors, true)
        .await?
        .into_response())
}

pub(crate) fn check_object_name(errors: &mut Errors, name: &str) {
    if name.is_empty() {
        errors.add("name", "Enter a name.");
    } else if name.len() > 128 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add("name", "Names are up to 128 characters without spaces.");
    }
}

// ---------------------------------------------------------------------------------------
// Group policies.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct GroupPolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    banner: String,
    #[serde(default)]
    dns_servers: String,
    #[serde(default)]
    default_domain: String,
    #[serde(default)]
    split_tunnel_networks: String,
    #[serde(default)]
    ipv4_pool_ids: Vec<String>,
    #[serde(default)]
    simultaneous_logins: String,
    #[serde(default)]
    idle_timeout: String,
}

impl GroupPolicyForm {
    pub(crate) fn has_pool(&self, id: &uuid::Uuid) -> bool {
        self.ipv4_pool_ids.iter().any(|p| *p == id.to_string())
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "objects/group_policies.html")]
pub(crate) struct GroupPoliciesPage {
    chrome: Chrome,
    items: Vec<GroupPolicy>,
    pools: Vec<Ipv4AddressPool>,
    form: GroupPolicyForm,
    errors: Errors,
    open: bool,
}

pub(crate) async fn group_policies(
    State(context): State<UiContext>,
    current: Current,
) -> Result<GroupPoliciesPage, UiError> {
    let defaults = GroupPolicyInput::new("");
    let form = GroupPolicyForm {
        simultaneous_logins: defaults.simultaneous_logins.to_string(),
        idle_timeout: defaults
            .idle_timeout_minutes
            .map(|m| m.to_string())
            .unwrap_or_default(),
        ..GroupPolicyForm::default()
    };
    group_policies_page(&context, &current, form, Errors::default(), false).await
}

async fn group_policies_page(
    context: &UiContext,
    current: &Current,
    form: GroupPolicyForm,
    errors: Errors,
    open: bool,
) -> Result<GroupPoliciesPage, UiError> {
    Ok(GroupPoliciesPage {
        chrome: current.chrome("objects"),
        items: group_policies::list(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        pools: pools::list_ipv4(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        form,
        errors,
        open,
    })
}

pub(crate) async fn group_policy_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: GroupPolicyForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    current.require_edit()?;
    let mut errors = Errors::default();
    let name = form.name.trim().to_owned();
    check_object_name(&mut errors, &name);
    let mut input = GroupPolicyInput::new(name);
    input.description = form.description.clone();
    input.banner = Some(form.banner.trim().to_owned()).filter(|b| !b.is_empty());
    input.default_domain = Some(form.default_domain.trim().to_owned()).filter(|b| !b.is_empty());
    input.dns_servers.clear();
    for word in form.dns_servers.split([',', ' ']).filter(|w| !w.is_empty()) {
        match word.parse::<IpAddr>() {
            Ok(a) => input.dns_servers.push(a),
            Err(_) => errors.add("dns_servers", format!("{word:?} is not an IP address.")),
        }
    }
    let mut networks = Vec::new();
    for word in form
        .split_tunnel_networks
        .split([',', ' ', '\n', '\r'])
        .filter(|w| !w.is_empty())
    {
        match word.parse::<IpNet>() {
            Ok(n) => networks.push(n),
            Err(_) => errors.add(
                "split_tunnel_networks",
                format!("{word:?} is not a network such as 10.0.0.0/8."),
            ),
        }
    }
    if !networks.is_empty() {
        input.split_tunnel_policy = vpn_core::config::SplitTunnelPolicy::TunnelSpecified;
        input.split_tunnel_networks = networks;
    }
    for id in &form.ipv4_pool_ids {
        match id.parse() {
            Ok(id) => input.ipv4_pool_ids.push(id),
            Err(_) => errors.add("ipv4_pool_ids", "Choose pools from the list."),
        }
    }
    match form.simultaneous_logins.trim().parse::<u32>() {
        Ok(n) if (1..=2147483647).contains(&n) => input.simultaneous_logins = n,
        _ => errors.add("simultaneous_logins", "Enter a number of 1 or more."),
    }
    let idle = form.idle_timeout.trim();
    if idle.is_empty() {
        input.idle_timeout_minutes = None;
    } else {
        match idle.parse::<u32>() {
            Ok(n) if n > 0 => input.idle_timeout_minutes = Some(n),
            _ => errors.add(
                "idle_timeout",
                "Enter minutes (1 or more), or leave empty for none.",
            ),
        }
    }
    if errors.is_empty() {
        let mut conn = form::connection(&context.pool).await?;
        match group_policies::create(&mut conn, &current.actor(), context.domain_id, &input).await {
            Ok(_) => return Ok(Redirect::to("/objects/group-policies").into_response()),
            Err(e) => errors = Errors::from_db(&e).ok_or(e)?,
        }
    }
    Ok(group_policies_page(&context, &current, form, errors, true)
        .await?
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Cert enrollments.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EnrollmentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// `ca` (manual, CA only), `pem` (identity from PEM), `internal` (issued by the
    /// manager's internal CA).
    #[serde(default)]
    kind: String,
    #[serde(default)]
    ca_pem: String,
    #[serde(default)]
    identity_pem: String,
    #[serde(default)]
    key_pem: String,
    #[serde(default)]
    subject_names: String,
    skip_ca_flag_check: Option<String>,
}

pub(crate) struct EnrollmentRow {
    pub id: uuid::Uuid,
    pub name: String,
    pub kind: &'static str,
    pub certificates: Vec<CertificateInfo>,
    pub problem: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "objects/cert_enrollments.html")]
pub(crate) struct EnrollmentsPage {
    chrome: Chrome,
    items: Vec<EnrollmentRow>,
    form: EnrollmentForm,
    errors: Errors,
    open: bool,
}

pub(crate) async fn enrollments(
    State(context): State<UiContext>,
    current: Current,
) -> Result<EnrollmentsPage, UiError> {
    enrollments_page(
        &context,
        &current,
        EnrollmentForm {
            kind: "ca".into(),
            ..EnrollmentForm::default()
        },
        Errors::default(),
        false,
    )
    .await
}

fn enrollment_row(enrollment: CertEnrollment) -> EnrollmentRow {
    let (kind, pem) = match &enrollment.content {
        EnrollmentContent::CaOnly(s) => ("Manual (CA Only)", s.ca_certificates_pem.as_str()),
        EnrollmentContent::Identity {
            certificate_chain_pem,
        } => (
            match enrollment.enrollment_type {
                EnrollmentType::Pkcs12 => "PKCS12 (identity)",
                EnrollmentType::SelfSignedCertificate => "Internal CA (identity)",
                EnrollmentType::Manual => "Manual (identity)",
            },
            certificate_chain_pem.as_str(),
        ),
    };
    let (certificates, problem) = match certificate_infos(pem) {
        Ok(c) => (c, String::new()),
        Err(e) => (Vec::new(), e),
    };
    EnrollmentRow {
        id: enrollment.id,
        name: enrollment.name,
        kind,
        certificates,
        problem,
    }
}

async fn enrollments_page(
    context: &UiContext,
    current: &Current,
    form: EnrollmentForm,
    errors: Errors,
    open: bool,
) -> Result<EnrollmentsPage, UiError> {
    let items = cert_enrollments::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items
        .into_iter()
        .map(enrollment_row)
        .collect();
    Ok(EnrollmentsPage {
        chrome: current.chrome("objects"),
        items,
        form,
        errors,
        open,
    })
}

pub(crate) async fn enrollment_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: EnrollmentForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    current.require_edit()?;
    let mut errors = Errors::default();
    let name = form.name.trim().to_owned();
    check_object_name(&mut errors, &name);
    let content = match form.kind.as_str() {
        "pem" => {
            if let Err(e) = certificate_infos(&form.identity_pem) {
                errors.add("identity_pem", e);
            }
            let key = match vpn_core::pki::pem::private_key(&form.key_pem) {
                Ok(_) => Some(vpn_core::config::PrivateKeyPem(form.key_pem.clone())),
                Err(e) => {
                    errors.add("key_pem", format!("The private key could not be read: {e}"));
                    None
                }
            };
            (
                EnrollmentType::Manual,
                EnrollmentInput::Identity {
                    certificate_chain_pem: form.identity_pem.clone(),
                    private_key_pem: key,
                },
            )
        }
        "internal" => {
            let names: Vec<String> = form
                .subject_names
                .split([',', ' '])
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect();
            if names.is_empty() {
                errors.add(
                    "subject_names",
                    "Enter the names clients connect to, e.g. vpn.example.com.",
                );
                (
                    EnrollmentType::SelfSignedCertificate,
                    EnrollmentInput::Identity {
                        certificate_chain_pem: String::new(),
                        private_key_pem: None,
                    },
                )
            } else {
                match context
                    .engine
                    .ca()
                    .issue_server_identity(&names, time::OffsetDateTime::now_utc())
                {
                    Ok(identity) => (
                        EnrollmentType::SelfSignedCertificate,
                        EnrollmentInput::Identity {
                            certificate_chain_pem: identity.certificate_pem,
                            private_key_pem: Some(vpn_core::config::PrivateKeyPem(
                                identity.private_key_pem,
                            )),
                        },
                    ),
                    Err(e) => {
                        errors.add("subject_names", format!("The internal CA refused: {e}"));
                        (
                            EnrollmentType::SelfSignedCertificate,
                            EnrollmentInput::Identity {
                                certificate_chain_pem: String::new(),
                                private_key_pem: None,
                            },
                        )
                    }
                }
            }
        }
        _ => {
            match certificate_infos(&form.ca_pem) {
                Ok(infos) if infos.iter().all(|i| i.is_ca) || form.skip_ca_flag_check.is_some() => {}
                Ok(_) => errors.add("ca_pem", "This is not a CA certificate (no basicConstraints CA flag). Tick \"Skip Check for CA flag\" to use it anyway."),
                Err(e) => errors.add("ca_pem", e),
            }
            let mut settings = CaOnlySettings::new(form.ca_pem.trim().to_owned() + "\n");
            settings.skip_ca_flag_check = form.skip_ca_flag_check.is_some();
            (EnrollmentType::Manual, EnrollmentInput::CaOnly(settings))
        }
    };
    if errors.is_empty() {
        let mut conn = form::connection(&context.pool).await?;
        let input = CertEnrollmentInput {
            name,
            description: form.description.clone(),
            enrollment_type: content.0,
            content: content.1,
        };
        match cert_enrollments::create(
            &mut conn,
            &current.actor(),
            context.domain_id,
            &input,
            &context.key,
        )
        .await
        {
            Ok(_) => return Ok(Redirect::to("/objects/cert-enrollments").into_response()),
            Err(e) => errors = Errors::from_db(&e).ok_or(e)?,
        }
    }
    Ok(enrollments_page(&context, &current, form, errors, true)
        .await?
        .into_response())
}

// ---------------------------------------------------------------------------------------
// LOCAL realm users.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LocalUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "objects/local_users.html")]
pub(crate) struct LocalUsersPage {
    chrome: Chrome,
    items: Vec<LocalUser>,
    form: LocalUserForm,
    errors: Errors,
    open: bool,
}

pub(crate) async fn local_users(
    State(context): State<UiContext>,
    current: Current,
) -> Result<LocalUsersPage, UiError> {
    Ok(LocalUsersPage {
        chrome: current.chrome("objects"),
        items: local_users::list(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        form: LocalUserForm::default(),
        errors: Errors::default(),
        open: false,
    })
}

pub(crate) async fn local_user_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let mut form: LocalUserForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    current.require_edit()?;
    let mut errors = Errors::default();
    let name = form.name.trim().to_owned();
    check_object_name(&mut errors, &name);
    if form.password.is_empty() {
        errors.add("password", "Enter a password.");
    }
    if errors.is_empty() {
        let password = std::mem::take(&mut form.password);
        let hash = tokio::task::spawn_blocking(move || PasswordHash::new(&password))
            .await
            .map_err(|_| UiError::Task)?
            .map_err(|e| UiError::BadForm(e.to_string()))?;
        let mut conn = form::connection(&context.pool).await?;
        match local_users::create(
            &mut conn,
            &current.actor(),
            context.domain_id,
            &LocalUserInput {
                name,
                password_hash: hash,
            },
        )
        .await
        {
            Ok(_) => return Ok(Redirect::to("/objects/local-users").into_response()),
            Err(e) => errors = Errors::from_db(&e).ok_or(e)?,
        }
    }
    form.password.clear();
    Ok(LocalUsersPage {
        chrome: current.chrome("objects"),
        items: local_users::list(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        form,
        errors,
        open: true,
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------
// Deleting objects.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

/// Deletes an object of `kind`; an object still in use is refused with the reason.
pub(crate) async fn delete(
    State(context): State<UiContext>,
    current: Current,
    axum::extract::Path((kind, id)): axum::extract::Path<(String, uuid::Uuid)>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: DeleteForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    current.require_edit()?;
    let mut conn = form::connection(&context.pool).await?;
    let (actor, domain) = (current.actor(), context.domain_id);
    let back = match kind.as_str() {
        "ipv4-pool" => {
            pools::delete_ipv4(&mut conn, &actor, domain, id, None).await?;
            "/objects/pools"
        }
        "ipv6-pool" => {
            pools::delete_ipv6(&mut conn, &actor, domain, id, None).await?;
            "/objects/pools"
        }
        "group-policy" => {
            group_policies::delete(&mut conn, &actor, domain, id, None).await?;
            "/objects/group-policies"
        }
        "cert-enrollment" => {
            cert_enrollments::delete(&mut conn, &actor, domain, id, None).await?;
            "/objects/cert-enrollments"
        }
        "local-user" => {
            local_users::delete(&mut conn, &actor, domain, id, None).await?;
            "/objects/local-users"
        }
        "ravpn" => {
            crate::db::policies::delete(&mut conn, &actor, domain, id, None).await?;
            "/ravpn"
        }
        other => return Err(UiError::BadForm(format!("unknown object kind {other:?}"))),
    };
    Ok(Redirect::to(back).into_response())
}
