//! Objects: IPv4/IPv6 address pools, group policies, PKI cert enrollments and LOCAL realm
//! users.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ipnet::IpNet;
use serde::Deserialize;
use vpn_core::pki::CertificateInfo;

use super::auth::{Chrome, Current};
use super::form::{Errors, checked, parse};
use super::listing::{ListQuery, Pager, paginate};
use super::pool_overrides::{self, OverridesSection};
use super::{UiContext, UiError};
use crate::db::Page;
use crate::db::cert_enrollments::{
    CaOnlySettings, CertEnrollment, CertEnrollmentInput, EnrollmentContent, EnrollmentInput,
    EnrollmentType,
};
use crate::db::group_policies::{self, GroupPolicy, GroupPolicyInput};
use crate::db::local_users::LocalUser;
use crate::db::pools::{Ipv4AddressPool, Ipv4AddressPoolInput, Ipv6AddressPoolInput};
use crate::objects::cert_enrollments::Field as EnrollmentField;
use crate::objects::group_policies::Field as GroupPolicyField;
use crate::objects::local_users::{Field as LocalUserField, LocalUserChange};
use crate::objects::pools::Field as PoolField;
use crate::objects::{self};

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
    /// Set when the form edits a pool (with the version it was read at).
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
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

/// One row of the pools table, IPv4 or IPv6.
pub(crate) struct PoolRow {
    pub id: uuid::Uuid,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    pub name: String,
    pub description: String,
    pub range: String,
    /// Mask (IPv4) or number of addresses (IPv6).
    pub size: String,
    pub overridable: bool,
    pub version: i32,
}

impl PoolRow {
    fn text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.name, self.family, self.range, self.size, self.description
        )
    }

    pub(crate) fn form(&self) -> PoolForm {
        PoolForm {
            id: self.id.to_string(),
            version: self.version.to_string(),
            family: self.family.to_owned(),
            name: self.name.clone(),
            description: self.description.clone(),
            range: self.range.clone(),
            mask: if self.family == "ipv4" {
                self.size.clone()
            } else {
                String::new()
            },
            count: if self.family == "ipv6" {
                self.size.clone()
            } else {
                String::new()
            },
            overridable: self.overridable.then(|| "on".to_owned()),
            ..PoolForm::default()
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "objects/pools.html")]
pub(crate) struct PoolsPage {
    chrome: Chrome,
    rows: Vec<PoolRow>,
    pager: Pager,
    form: PoolForm,
    errors: Errors,
    open: bool,
    /// The overrides of the pool being edited.
    overrides: Option<OverridesSection>,
}

impl PoolsPage {
    pub(crate) fn with_overrides(mut self, overrides: OverridesSection) -> Self {
        self.overrides = Some(overrides);
        self
    }
}

pub(crate) async fn pools(
    State(context): State<UiContext>,
    current: Current,
    Query(query): Query<ListQuery>,
) -> Result<PoolsPage, UiError> {
    let all = pool_rows(&context).await?;
    let edited = query.edit.and_then(|id| all.iter().find(|r| r.id == id));
    let overrides = match edited {
        Some(row) => Some(pool_overrides::section(&context, row, None, Errors::default()).await?),
        None => None,
    };
    let form = match edited {
        Some(row) => row.form(),
        None => PoolForm {
            family: "ipv4".into(),
            mask: "255.255.255.0".into(),
            ..PoolForm::default()
        },
    };
    let open = query.edit.is_some();
    let page = pools_page(&current, all, &query, form, Errors::default(), open)?;
    Ok(match overrides {
        Some(overrides) => page.with_overrides(overrides),
        None => page,
    })
}

pub(crate) async fn pool_rows(context: &UiContext) -> Result<Vec<PoolRow>, UiError> {
    let ipv4 = objects::pools::list_ipv4(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    let ipv6 = objects::pools::list_ipv6(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    let mut rows: Vec<PoolRow> = ipv4
        .into_iter()
        .map(|p| PoolRow {
            id: p.id,
            family: "ipv4",
            name: p.name,
            description: p.description,
            range: format!("{}-{}", p.start, p.end),
            size: p.mask.to_string(),
            overridable: p.overridable,
            version: p.version,
        })
        .chain(ipv6.into_iter().map(|p| PoolRow {
            id: p.id,
            family: "ipv6",
            name: p.name,
            description: p.description,
            range: format!("{}/{}", p.start, p.prefix_length),
            size: p.number_of_addresses.to_string(),
            overridable: p.overridable,
            version: p.version,
        }))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

pub(crate) fn pools_page(
    current: &Current,
    all: Vec<PoolRow>,
    query: &ListQuery,
    form: PoolForm,
    errors: Errors,
    open: bool,
) -> Result<PoolsPage, UiError> {
    let (rows, pager) = paginate(all, query, "/objects/pools", PoolRow::text);
    Ok(PoolsPage {
        chrome: current.chrome("objects"),
        rows,
        pager,
        form,
        errors,
        open,
        overrides: None,
    })
}

pub(crate) async fn pool_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: PoolForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let mut errors = Errors::default();
    let name = form.name.trim().to_owned();
    let overridable = checked(&form.overridable);
    let editing = editing(&form.id, &form.version)?;
    let (actor, domain, db) = (current.actor(), context.domain_id, &context.pool);
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
        let count = form.count.trim().parse::<u32>().ok();
        if count.is_none() {
            errors.add(
                "count",
                "Enter how many addresses the pool has (1 or more).",
            );
        }
        match (errors.is_empty(), parsed, count) {
            (true, Some((start, prefix_length)), Some(number_of_addresses)) => {
                let input = Ipv6AddressPoolInput {
                    name,
                    description: form.description.clone(),
                    start,
                    prefix_length,
                    number_of_addresses,
                    overridable,
                };
                match editing {
                    Some((id, version)) => {
                        objects::pools::update_ipv6(db, &actor, domain, id, version, &input)
                            .await
                            .map(|_| ())
                    }
                    None => objects::pools::create_ipv6(db, &actor, domain, &input)
                        .await
                        .map(|_| ()),
                }
            }
            _ => Ok(()),
        }
    } else {
        let range = form.range.trim().split_once('-').and_then(|(a, b)| {
            Some((
                a.trim().parse::<Ipv4Addr>().ok()?,
                b.trim().parse::<Ipv4Addr>().ok()?,
            ))
        });
        if range.is_none() {
            errors.add(
                "range",
                "Enter a range as first-last, e.g. 10.10.10.1-10.10.10.100.",
            );
        }
        let mask = form.mask.trim().parse::<Ipv4Addr>().ok();
        if mask.is_none() {
            errors.add("mask", "Enter a netmask such as 255.255.255.0.");
        }
        match (errors.is_empty(), range, mask) {
            (true, Some((start, end)), Some(mask)) => {
                let input = Ipv4AddressPoolInput {
                    name,
                    description: form.description.clone(),
                    start,
                    end,
                    mask,
                    overridable,
                };
                match editing {
                    Some((id, version)) => {
                        objects::pools::update_ipv4(db, &actor, domain, id, version, &input)
                            .await
                            .map(|_| ())
                    }
                    None => objects::pools::create_ipv4(db, &actor, domain, &input)
                        .await
                        .map(|_| ()),
                }
            }
            _ => Ok(()),
        }
    };
    if let Err(e) = result {
        errors = Errors::from_change(e, pool_form_field)?;
    }
    if errors.is_empty() {
        return Ok(Redirect::to("/objects/pools").into_response());
    }
    let all = pool_rows(&context).await?;
    let edited = editing.and_then(|(id, _)| all.iter().find(|r| r.id == id));
    let overrides = match edited {
        Some(row) => Some(pool_overrides::section(&context, row, None, Errors::default()).await?),
        None => None,
    };
    let page = pools_page(&current, all, &ListQuery::default(), form, errors, true)?;
    Ok(match overrides {
        Some(overrides) => page.with_overrides(overrides),
        None => page,
    }
    .into_response())
}

/// The form field a pool rule is shown on.
pub(crate) fn pool_form_field(field: PoolField) -> &'static str {
    match field {
        PoolField::Name => "name",
        PoolField::Ipv4Range | PoolField::Ipv6Start => "range",
        PoolField::Mask => "mask",
        PoolField::NumberOfAddresses => "count",
    }
}

/// The object an edit form is for: its id and the version it was read at (`None` when
/// the form adds one).
pub(crate) fn editing(id: &str, version: &str) -> Result<Option<(uuid::Uuid, i32)>, UiError> {
    if id.is_empty() {
        return Ok(None);
    }
    let id = id
        .parse()
        .map_err(|_| UiError::BadForm(format!("{id:?} is not an object id")))?;
    let version = version
        .parse()
        .map_err(|_| UiError::BadForm(format!("{version:?} is not an object version")))?;
    Ok(Some((id, version)))
}

// ---------------------------------------------------------------------------------------
// Group policies.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct GroupPolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
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
    fn of(policy: &GroupPolicy) -> Self {
        let join = |items: Vec<String>| items.join(", ");
        Self {
            id: policy.id.to_string(),
            version: policy.version.to_string(),
            name: policy.name.clone(),
            description: policy.description.clone(),
            banner: policy.banner.clone().unwrap_or_default(),
            dns_servers: join(policy.dns_servers.iter().map(ToString::to_string).collect()),
            default_domain: policy.default_domain.clone().unwrap_or_default(),
            split_tunnel_networks: join(
                policy
                    .split_tunnel_networks
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            ipv4_pool_ids: policy.ipv4_pools.iter().map(|p| p.id.to_string()).collect(),
            simultaneous_logins: policy.simultaneous_logins.to_string(),
            idle_timeout: policy
                .idle_timeout_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
            ..Self::default()
        }
    }

    pub(crate) fn has_pool(&self, id: &uuid::Uuid) -> bool {
        self.ipv4_pool_ids.iter().any(|p| *p == id.to_string())
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "objects/group_policies.html")]
pub(crate) struct GroupPoliciesPage {
    chrome: Chrome,
    items: Vec<GroupPolicy>,
    pager: Pager,
    pools: Vec<Ipv4AddressPool>,
    form: GroupPolicyForm,
    errors: Errors,
    open: bool,
}

pub(crate) async fn group_policies(
    State(context): State<UiContext>,
    current: Current,
    Query(query): Query<ListQuery>,
) -> Result<GroupPoliciesPage, UiError> {
    let all = group_policies::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    let form = match query.edit.and_then(|id| all.iter().find(|g| g.id == id)) {
        Some(policy) => GroupPolicyForm::of(policy),
        None => {
            let defaults = GroupPolicyInput::new("");
            GroupPolicyForm {
                simultaneous_logins: defaults.simultaneous_logins.to_string(),
                idle_timeout: defaults
                    .idle_timeout_minutes
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                ..GroupPolicyForm::default()
            }
        }
    };
    let open = query.edit.is_some();
    group_policies_page(
        &context,
        &current,
        all,
        &query,
        form,
        Errors::default(),
        open,
    )
    .await
}

async fn group_policies_page(
    context: &UiContext,
    current: &Current,
    all: Vec<GroupPolicy>,
    query: &ListQuery,
    form: GroupPolicyForm,
    errors: Errors,
    open: bool,
) -> Result<GroupPoliciesPage, UiError> {
    let (items, pager) = paginate(all, query, "/objects/group-policies", |g| {
        format!("{} {} {:?}", g.name, g.description, g.split_tunnel_networks)
    });
    Ok(GroupPoliciesPage {
        chrome: current.chrome("objects"),
        items,
        pager,
        pools: objects::pools::list_ipv4(&context.pool, context.domain_id, Page::ALL)
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
    current.authorize_change(&form.csrf)?;
    let mut errors = Errors::default();
    let name = form.name.trim().to_owned();
    let editing = editing(&form.id, &form.version)?;
    // An edit changes the fields of this form and keeps the others (API-only settings).
    let mut input = match editing {
        Some((id, _)) => GroupPolicyInput::from(
            &objects::group_policies::get(&context.pool, context.domain_id, id).await?,
        ),
        None => GroupPolicyInput::new(""),
    };
    input.name = name;
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
    {
        use vpn_core::config::SplitTunnelPolicy::{ExcludeSpecified, TunnelAll, TunnelSpecified};
        // The page lists networks to tunnel; an exclude list set over the API stays one.
        input.split_tunnel_policy = match (networks.is_empty(), input.split_tunnel_policy) {
            (true, _) => TunnelAll,
            (false, ExcludeSpecified) => ExcludeSpecified,
            (false, _) => TunnelSpecified,
        };
    }
    input.split_tunnel_networks = networks;
    input.ipv4_pool_ids.clear();
    for id in &form.ipv4_pool_ids {
        match id.parse() {
            Ok(id) => input.ipv4_pool_ids.push(id),
            Err(_) => errors.add("ipv4_pool_ids", "Choose pools from the list."),
        }
    }
    match form.simultaneous_logins.trim().parse::<u32>() {
        // The range is the group policy service's rule, checked below.
        Ok(n) => input.simultaneous_logins = n,
        Err(_) => errors.add(
            "simultaneous_logins",
            "Enter a number from 0 (nobody may log in) to 2147483647.",
        ),
    }
    let idle = form.idle_timeout.trim();
    if idle.is_empty() {
        input.idle_timeout_minutes = None;
    } else {
        match idle.parse::<u32>() {
            Ok(n) => input.idle_timeout_minutes = Some(n),
            Err(_) => errors.add(
                "idle_timeout",
                "Enter minutes (1 or more), or leave empty for none.",
            ),
        }
    }
    if errors.is_empty() {
        let (actor, domain) = (current.actor(), context.domain_id);
        let saved = match editing {
            Some((id, version)) => {
                objects::group_policies::update(&context.pool, &actor, domain, id, version, &input)
                    .await
            }
            None => objects::group_policies::create(&context.pool, &actor, domain, &input).await,
        };
        match saved {
            Ok(_) => return Ok(Redirect::to("/objects/group-policies").into_response()),
            Err(e) => errors = Errors::from_change(e, group_policy_form_field)?,
        }
    } else {
        // The fields that did read are still checked, so every problem shows at once.
        errors.add_problems(
            &objects::group_policies::check(&input),
            group_policy_form_field,
        );
    }
    let all = objects::group_policies::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    Ok(group_policies_page(
        &context,
        &current,
        all,
        &ListQuery::default(),
        form,
        errors,
        true,
    )
    .await?
    .into_response())
}

/// The form field a group policy rule is shown on.
fn group_policy_form_field(field: GroupPolicyField) -> &'static str {
    match field {
        GroupPolicyField::SimultaneousLogins => "simultaneous_logins",
        GroupPolicyField::SplitTunnelNetworks => "split_tunnel_networks",
        GroupPolicyField::IdleTimeout | GroupPolicyField::MaxConnectTime => "idle_timeout",
        GroupPolicyField::DnsServers => "dns_servers",
        GroupPolicyField::Banner => "banner",
        GroupPolicyField::DefaultDomain => "default_domain",
        // Set over the REST API only; shown with the name, the top of the form.
        GroupPolicyField::Name
        | GroupPolicyField::Mtu
        | GroupPolicyField::Keepalive
        | GroupPolicyField::GatewayDpd
        | GroupPolicyField::ClientDpd => "name",
    }
}

// ---------------------------------------------------------------------------------------
// Cert enrollments.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EnrollmentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// `ca` (manual, CA only), `pem` (identity from PEM), `pkcs12` (identity from a
    /// PKCS#12 file), `internal` (issued by the manager's internal CA).
    #[serde(default)]
    kind: String,
    #[serde(default)]
    ca_pem: String,
    #[serde(default)]
    identity_pem: String,
    #[serde(default)]
    key_pem: String,
    /// The PKCS#12 file, base64 (the page's file chooser fills it).
    #[serde(default)]
    pkcs12: String,
    #[serde(default)]
    pkcs12_passphrase: String,
    #[serde(default)]
    subject_names: String,
    skip_ca_flag_check: Option<String>,
}

impl EnrollmentForm {
    /// The edit form of a stored enrollment; keys and PKCS#12 files are never sent back.
    fn of(enrollment: &CertEnrollment) -> Self {
        let mut form = Self {
            id: enrollment.id.to_string(),
            version: enrollment.version.to_string(),
            name: enrollment.name.clone(),
            description: enrollment.description.clone(),
            ..Self::default()
        };
        match &enrollment.content {
            EnrollmentContent::CaOnly(settings) => {
                form.kind = "ca".into();
                form.ca_pem = settings.ca_certificates_pem.clone();
                form.skip_ca_flag_check = settings.skip_ca_flag_check.then(|| "on".to_owned());
            }
            EnrollmentContent::Identity {
                certificate_chain_pem,
            } => {
                form.kind = match enrollment.enrollment_type {
                    EnrollmentType::Pkcs12 => "pkcs12",
                    EnrollmentType::SelfSignedCertificate => "internal",
                    EnrollmentType::Manual => "pem",
                }
                .into();
                form.identity_pem = certificate_chain_pem.clone();
            }
        }
        form
    }
}

pub(crate) struct EnrollmentRow {
    pub id: uuid::Uuid,
    pub name: String,
    pub kind: &'static str,
    pub certificates: Vec<CertificateInfo>,
    pub problem: String,
}

impl EnrollmentRow {
    fn text(&self) -> String {
        let mut text = format!("{} {} {}", self.name, self.kind, self.problem);
        for c in &self.certificates {
            text.push_str(&format!(
                " {} {} {}",
                c.subject, c.issuer, c.fingerprint_sha256
            ));
        }
        text
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "objects/cert_enrollments.html")]
pub(crate) struct EnrollmentsPage {
    chrome: Chrome,
    items: Vec<EnrollmentRow>,
    pager: Pager,
    form: EnrollmentForm,
    errors: Errors,
    open: bool,
}

pub(crate) async fn enrollments(
    State(context): State<UiContext>,
    current: Current,
    Query(query): Query<ListQuery>,
) -> Result<EnrollmentsPage, UiError> {
    let all = objects::cert_enrollments::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    let form = match query.edit.and_then(|id| all.iter().find(|e| e.id == id)) {
        Some(enrollment) => EnrollmentForm::of(enrollment),
        None => EnrollmentForm {
            kind: "ca".into(),
            ..EnrollmentForm::default()
        },
    };
    let open = query.edit.is_some();
    Ok(enrollments_page(
        &current,
        all,
        &query,
        form,
        Errors::default(),
        open,
    ))
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

fn enrollments_page(
    current: &Current,
    all: Vec<CertEnrollment>,
    query: &ListQuery,
    form: EnrollmentForm,
    errors: Errors,
    open: bool,
) -> EnrollmentsPage {
    let rows = all.into_iter().map(enrollment_row).collect();
    let (items, pager) = paginate(
        rows,
        query,
        "/objects/cert-enrollments",
        EnrollmentRow::text,
    );
    EnrollmentsPage {
        chrome: current.chrome("objects"),
        items,
        pager,
        form,
        errors,
        open,
    }
}

/// A PKCS#12 file's identity as PEM: the certificate chain (leaf first) and the key.
pub(crate) fn pkcs12_identity(
    base64_file: &str,
    passphrase: &str,
) -> Result<(String, String), String> {
    use base64::Engine as _;
    let compact: String = base64_file.split_whitespace().collect();
    if compact.is_empty() {
        return Err("Choose a PKCS#12 file (.p12 or .pfx).".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| {
            "The PKCS#12 file did not arrive intact (it is not base64); choose it again.".to_owned()
        })?;
    let parsed = openssl::pkcs12::Pkcs12::from_der(&der)
        .map_err(|_| "This is not a PKCS#12 file.".to_owned())?
        .parse2(passphrase)
        .map_err(|_| {
            "The PKCS#12 file could not be opened: wrong passphrase, or an unsupported encryption."
                .to_owned()
        })?;
    let (Some(cert), Some(key)) = (parsed.cert, parsed.pkey) else {
        return Err("The PKCS#12 file holds no certificate with its private key.".into());
    };
    let mut chain = String::new();
    let mut push = |c: &openssl::x509::X509Ref| -> Result<(), String> {
        let pem = c
            .to_pem()
            .map_err(|e| format!("A certificate of the file cannot be written as PEM: {e}"))?;
        chain.push_str(&String::from_utf8_lossy(&pem));
        Ok(())
    };
    push(&cert)?;
    for ca in parsed.ca.iter().flatten() {
        push(ca)?;
    }
    let key = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| format!("The private key cannot be written as PEM: {e}"))?;
    Ok((chain, String::from_utf8_lossy(&key).into_owned()))
}

pub(crate) async fn enrollment_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let mut form: EnrollmentForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    // Browsers send a textarea's line breaks as CRLF; PEM is stored with LF.
    for pem in [&mut form.ca_pem, &mut form.identity_pem, &mut form.key_pem] {
        *pem = pem.replace("\r\n", "\n");
    }
    let mut errors = Errors::default();
    let name = form.name.trim().to_owned();
    let editing = editing(&form.id, &form.version)?;
    let stored = match editing {
        Some((id, _)) => {
            Some(objects::cert_enrollments::get(&context.pool, context.domain_id, id).await?)
        }
        None => None,
    };
    let pkcs12 = form.kind == "pkcs12";
    let field_of = move |field: EnrollmentField| match field {
        EnrollmentField::Name => "name",
        EnrollmentField::CaCertificates | EnrollmentField::Crls => "ca_pem",
        EnrollmentField::IdentityChain if pkcs12 => "pkcs12",
        EnrollmentField::IdentityChain => "identity_pem",
        EnrollmentField::PrivateKey if pkcs12 => "pkcs12",
        EnrollmentField::PrivateKey => "key_pem",
        EnrollmentField::SubjectNames => "subject_names",
    };
    let content = match form.kind.as_str() {
        "pem" | "pkcs12" => {
            let key = if pkcs12 && !form.pkcs12.trim().is_empty() {
                match pkcs12_identity(&form.pkcs12, &form.pkcs12_passphrase) {
                    Ok((chain, key)) => {
                        form.identity_pem = chain;
                        Some(vpn_core::config::PrivateKeyPem(key))
                    }
                    Err(e) => {
                        errors.add("pkcs12", e);
                        None
                    }
                }
            } else if pkcs12 && stored.is_none() {
                errors.add("pkcs12", "Choose a PKCS#12 file (.p12 or .pfx).");
                None
            } else if form.key_pem.trim().is_empty() {
                None // an edit without a new key keeps the stored one
            } else {
                Some(vpn_core::config::PrivateKeyPem(form.key_pem.clone()))
            };
            let enrollment_type = if pkcs12 {
                EnrollmentType::Pkcs12
            } else {
                EnrollmentType::Manual
            };
            Some((
                enrollment_type,
                EnrollmentInput::Identity {
                    certificate_chain_pem: form.identity_pem.clone(),
                    private_key_pem: key,
                },
            ))
        }
        "internal" if stored.is_some() => Some((
            // Renaming an issued identity keeps its certificate and key.
            EnrollmentType::SelfSignedCertificate,
            EnrollmentInput::Identity {
                certificate_chain_pem: form.identity_pem.clone(),
                private_key_pem: None,
            },
        )),
        "internal" => {
            let names: Vec<String> = form
                .subject_names
                .split([',', ' '])
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect();
            match objects::cert_enrollments::issue_internal_identity(
                context.services.sensors.ca(),
                &names,
                time::OffsetDateTime::now_utc(),
            ) {
                Ok(content) => Some((EnrollmentType::SelfSignedCertificate, content)),
                Err(e) => {
                    for (field, message) in Errors::from_change(e, field_of)?.fields() {
                        errors.add(field, message);
                    }
                    None
                }
            }
        }
        _ => {
            // An edit keeps the settings this page does not show (usage, revocation).
            let mut settings = match stored.as_ref().map(|e| &e.content) {
                Some(EnrollmentContent::CaOnly(settings)) => settings.clone(),
                _ => CaOnlySettings::new(String::new()),
            };
            settings.ca_certificates_pem = form.ca_pem.trim().to_owned() + "\n";
            settings.skip_ca_flag_check = form.skip_ca_flag_check.is_some();
            Some((EnrollmentType::Manual, EnrollmentInput::CaOnly(settings)))
        }
    };
    // Secrets are never sent back in the page.
    form.key_pem.clear();
    form.pkcs12.clear();
    form.pkcs12_passphrase.clear();
    if let Some((enrollment_type, content)) = content
        && errors.is_empty()
    {
        let input = CertEnrollmentInput {
            name,
            description: form.description.clone(),
            enrollment_type,
            content,
        };
        let (actor, domain, db, key) = (
            current.actor(),
            context.domain_id,
            &context.pool,
            &context.key,
        );
        let saved = match editing {
            Some((id, version)) => {
                objects::cert_enrollments::update(db, key, &actor, domain, id, version, &input)
                    .await
            }
            None => objects::cert_enrollments::create(db, key, &actor, domain, &input).await,
        };
        match saved {
            Ok(_) => return Ok(Redirect::to("/objects/cert-enrollments").into_response()),
            Err(e) => errors = Errors::from_change(e, field_of)?,
        }
    }
    let all = objects::cert_enrollments::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    Ok(enrollments_page(&current, all, &ListQuery::default(), form, errors, true).into_response())
}

// ---------------------------------------------------------------------------------------
// LOCAL realm users.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LocalUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
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
    pager: Pager,
    form: LocalUserForm,
    errors: Errors,
    open: bool,
}

pub(crate) async fn local_users(
    State(context): State<UiContext>,
    current: Current,
    Query(query): Query<ListQuery>,
) -> Result<LocalUsersPage, UiError> {
    let all = objects::local_users::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    let form = match query.edit.and_then(|id| all.iter().find(|u| u.id == id)) {
        Some(user) => LocalUserForm {
            id: user.id.to_string(),
            version: user.version.to_string(),
            name: user.name.clone(),
            ..LocalUserForm::default()
        },
        None => LocalUserForm::default(),
    };
    let open = query.edit.is_some();
    Ok(local_users_page(
        &current,
        all,
        &query,
        form,
        Errors::default(),
        open,
    ))
}

fn local_users_page(
    current: &Current,
    all: Vec<LocalUser>,
    query: &ListQuery,
    form: LocalUserForm,
    errors: Errors,
    open: bool,
) -> LocalUsersPage {
    let (items, pager) = paginate(all, query, "/objects/local-users", |u| u.name.clone());
    LocalUsersPage {
        chrome: current.chrome("objects"),
        items,
        pager,
        form,
        errors,
        open,
    }
}

pub(crate) async fn local_user_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let mut form: LocalUserForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let name = form.name.trim().to_owned();
    let editing = editing(&form.id, &form.version)?;
    let change = LocalUserChange {
        name,
        password: Some(std::mem::take(&mut form.password)).filter(|p| !p.is_empty()),
    };
    let (actor, domain, db) = (current.actor(), context.domain_id, &context.pool);
    let saved = match editing {
        Some((id, version)) => {
            objects::local_users::update(db, &actor, domain, id, version, change).await
        }
        None => objects::local_users::create(db, &actor, domain, change).await,
    };
    let errors = match saved {
        Ok(_) => return Ok(Redirect::to("/objects/local-users").into_response()),
        Err(e) => Errors::from_change(e, |field| match field {
            LocalUserField::Name => "name",
            LocalUserField::Password => "password",
        })?,
    };
    let all = objects::local_users::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items;
    Ok(local_users_page(&current, all, &ListQuery::default(), form, errors, true).into_response())
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
    current.authorize_change(&form.csrf)?;
    let (actor, domain, db) = (current.actor(), context.domain_id, &context.pool);
    let back = match kind.as_str() {
        "ipv4-pool" => {
            objects::pools::delete_ipv4(db, &actor, domain, id, None).await?;
            "/objects/pools"
        }
        "ipv6-pool" => {
            objects::pools::delete_ipv6(db, &actor, domain, id, None).await?;
            "/objects/pools"
        }
        "group-policy" => {
            objects::group_policies::delete(db, &actor, domain, id, None).await?;
            "/objects/group-policies"
        }
        "cert-enrollment" => {
            objects::cert_enrollments::delete(db, &actor, domain, id, None).await?;
            "/objects/cert-enrollments"
        }
        "local-user" => {
            objects::local_users::delete(db, &actor, domain, id, None).await?;
            "/objects/local-users"
        }
        "ravpn" => {
            crate::ravpn::policies::delete(db, &actor, domain, id, None).await?;
            "/ravpn"
        }
        other => return Err(UiError::BadForm(format!("unknown object kind {other:?}"))),
    };
    Ok(Redirect::to(back).into_response())
}
