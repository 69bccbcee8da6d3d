//! Devices > VPN > Remote Access: the policy list, the Add wizard, the Edit page (tabs
//! Connection Profile | Access Interfaces | Advanced | Policy Assignments), the
//! connection profile dialog (tabs Client Address Assignment | AAA | Aliases) and a
//! preview of the CLI a policy produces.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, AuthenticationServer, CertificateField, GroupAlias,
    UsernameMapping, UsernameSource,
};

use super::auth::{Chrome, Current};
use super::form::{Errors, parse};
use super::listing::{ListQuery, Pager, paginate};
use super::{UiContext, UiError};
use crate::db::cert_enrollments::{self, CertEnrollment, EnrollmentContent};
use crate::db::devices::{self, Device, RegistrationState};
use crate::db::group_policies::{self, GroupPolicy};
use crate::db::policies::{RaVpnPolicy, RaVpnPolicyInput};
use crate::db::pools::{self, Ipv4AddressPool, Ipv6AddressPool};
use crate::db::profiles::{ConnectionProfile, ConnectionProfileInput};
use crate::db::{Page, device_policy};
use crate::ravpn::policies::{Field as PolicyField, WizardField};
use crate::ravpn::{self, profiles::Field as ProfileField};

/// What the dialogs offer to choose from.
pub(crate) struct Options {
    pub devices: Vec<Device>,
    pub group_policies: Vec<GroupPolicy>,
    pub ipv4_pools: Vec<Ipv4AddressPool>,
    pub ipv6_pools: Vec<Ipv6AddressPool>,
    /// CA-only enrollments (trustpoints for client certificates).
    pub trustpoints: Vec<CertEnrollment>,
    /// Identity enrollments (the headend certificate).
    pub identities: Vec<CertEnrollment>,
    pub fields: Vec<(&'static str, &'static str)>,
}

async fn options(context: &UiContext) -> Result<Options, UiError> {
    let (trustpoints, identities) =
        cert_enrollments::list(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items
            .into_iter()
            .partition(|e| matches!(e.content, EnrollmentContent::CaOnly(_)));
    Ok(Options {
        devices: devices::list(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        group_policies: group_policies::list(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        ipv4_pools: pools::list_ipv4(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        ipv6_pools: pools::list_ipv6(&context.pool, context.domain_id, Page::ALL)
            .await?
            .items,
        trustpoints,
        identities,
        fields: CertificateField::ALL
            .iter()
            .map(|f| (f.cli_token(), field_label(*f)))
            .collect(),
    })
}

/// FMC's labels for the username mapping fields.
fn field_label(field: CertificateField) -> &'static str {
    match field {
        CertificateField::C => "C (Country)",
        CertificateField::Cn => "CN (Common Name)",
        CertificateField::Dnq => "DNQ (DN Qualifier)",
        CertificateField::Ea => "EA (Email Address)",
        CertificateField::Genq => "GENQ (Generational Qualifier)",
        CertificateField::Gn => "GN (Given Name)",
        CertificateField::I => "I (Initials)",
        CertificateField::L => "L (Locality)",
        CertificateField::N => "N (Name)",
        CertificateField::O => "O (Organisation)",
        CertificateField::Ou => "OU (Organisational Unit)",
        CertificateField::Ser => "SER (Serial Number)",
        CertificateField::Sn => "SN (Surname)",
        CertificateField::Sp => "SP (State/Province)",
        CertificateField::T => "T (Title)",
        CertificateField::Uid => "UID (User ID)",
        CertificateField::Upn => "UPN (User Principal Name)",
    }
}

fn field_from_token(token: &str) -> Option<CertificateField> {
    CertificateField::ALL
        .into_iter()
        .find(|f| f.cli_token() == token)
}

fn method_label(method: AuthenticationMethod) -> &'static str {
    match method {
        AuthenticationMethod::AaaOnly => "AAA Only",
        AuthenticationMethod::ClientCertificateOnly => "Client Certificate Only",
        AuthenticationMethod::AaaAndClientCertificate => "Client Certificate & AAA",
    }
}

// ---------------------------------------------------------------------------------------
// The connection profile form (shared by the wizard and the dialog).

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    pub profile_name: String,
    #[serde(default)]
    pub profile_description: String,
    #[serde(default)]
    pub group_policy_id: String,
    #[serde(default)]
    pub ipv4_pool_ids: Vec<String>,
    #[serde(default)]
    pub ipv6_pool_ids: Vec<String>,
    #[serde(default)]
    pub trustpoint_ids: Vec<String>,
    /// MCA slot binding (none ticked: every trustpoint of the profile).
    #[serde(default)]
    pub machine_trustpoint_ids: Vec<String>,
    #[serde(default)]
    pub user_trustpoint_ids: Vec<String>,
    #[serde(default)]
    pub auth_method: String,
    #[serde(default)]
    pub auth_server: String,
    #[serde(default)]
    pub auth_server_name: String,
    pub fallback_to_local: Option<String>,
    pub mca: Option<String>,
    #[serde(default)]
    pub username_source: String,
    #[serde(default)]
    pub mapping: String,
    #[serde(default)]
    pub primary_field: String,
    #[serde(default)]
    pub secondary_field: String,
    pub prefill: Option<String>,
    pub hide_username: Option<String>,
    pub strip_realm: Option<String>,
    pub strip_group: Option<String>,
    #[serde(default)]
    pub aliases: String,
    /// The profile service's warnings about what is shown (not read from the form).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl ProfileForm {
    /// FMC's dialog defaults: AAA Only, LOCAL, Map specific field CN / OU, MCA off.
    fn fresh() -> Self {
        Self::from_profile_parts(
            "",
            "",
            None,
            &[],
            &[],
            &[],
            [&[], &[]],
            &AaaSettings::new(AuthenticationMethod::AaaOnly),
            &[],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn from_profile_parts(
        name: &str,
        description: &str,
        group_policy: Option<Uuid>,
        ipv4: &[Uuid],
        ipv6: &[Uuid],
        trustpoints: &[Uuid],
        [machine_trustpoints, user_trustpoints]: [&[Uuid]; 2],
        aaa: &AaaSettings,
        aliases: &[GroupAlias],
    ) -> Self {
        let (mapping, primary, secondary) = match aaa.username_mapping {
            UsernameMapping::SpecificField { primary, secondary } => (
                "specific",
                primary.cli_token().to_owned(),
                secondary
                    .map(|s| s.cli_token().to_owned())
                    .unwrap_or_default(),
            ),
            UsernameMapping::EntireDn => ("entire_dn", "CN".to_owned(), "OU".to_owned()),
        };
        let (server, server_name) = match &aaa.authentication_server {
            AuthenticationServer::Local => ("LOCAL", String::new()),
            AuthenticationServer::Radius { server_group } => ("RADIUS", server_group.clone()),
            AuthenticationServer::Ldap { realm } => ("LDAP", realm.clone()),
        };
        let on = |b: bool| b.then(|| "on".to_owned());
        Self {
            profile_name: name.to_owned(),
            profile_description: description.to_owned(),
            group_policy_id: group_policy.map(|g| g.to_string()).unwrap_or_default(),
            ipv4_pool_ids: ipv4.iter().map(Uuid::to_string).collect(),
            ipv6_pool_ids: ipv6.iter().map(Uuid::to_string).collect(),
            trustpoint_ids: trustpoints.iter().map(Uuid::to_string).collect(),
            machine_trustpoint_ids: machine_trustpoints.iter().map(Uuid::to_string).collect(),
            user_trustpoint_ids: user_trustpoints.iter().map(Uuid::to_string).collect(),
            auth_method: method_token(aaa.authentication_method).to_owned(),
            auth_server: server.to_owned(),
            auth_server_name: server_name,
            fallback_to_local: on(aaa.fallback_to_local),
            mca: on(aaa.enable_multiple_certificate_authentication),
            username_source: match aaa.username_from_certificate_source {
                UsernameSource::FirstCertificate => "FIRST_CERTIFICATE",
                UsernameSource::SecondCertificate => "SECOND_CERTIFICATE",
            }
            .to_owned(),
            mapping: mapping.to_owned(),
            primary_field: primary,
            secondary_field: secondary,
            prefill: on(aaa.prefill_username),
            hide_username: on(aaa.hide_username),
            strip_realm: on(aaa.strip_realm),
            strip_group: on(aaa.strip_group),
            aliases: aliases
                .iter()
                .map(|a| {
                    if a.enabled {
                        a.name.clone()
                    } else {
                        format!("{} (disabled)", a.name)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            warnings: ravpn::profiles::warnings(aaa, machine_trustpoints, user_trustpoints)
                .into_iter()
                .map(|w| w.message)
                .collect(),
        }
    }

    fn from_profile(profile: &ConnectionProfile) -> Self {
        let ids = |r: &[crate::db::Reference]| r.iter().map(|r| r.id).collect::<Vec<_>>();
        Self::from_profile_parts(
            &profile.name,
            &profile.description,
            Some(profile.group_policy.id),
            &ids(&profile.ipv4_pools),
            &ids(&profile.ipv6_pools),
            &ids(&profile.trustpoints),
            [
                &ids(&profile.machine_trustpoints),
                &ids(&profile.user_trustpoints),
            ],
            &profile.aaa,
            &profile.group_aliases,
        )
    }

    pub(crate) fn has_ipv4(&self, id: &Uuid) -> bool {
        self.ipv4_pool_ids.contains(&id.to_string())
    }
    pub(crate) fn has_ipv6(&self, id: &Uuid) -> bool {
        self.ipv6_pool_ids.contains(&id.to_string())
    }
    pub(crate) fn has_trustpoint(&self, id: &Uuid) -> bool {
        self.trustpoint_ids.contains(&id.to_string())
    }
    pub(crate) fn has_machine_trustpoint(&self, id: &Uuid) -> bool {
        self.machine_trustpoint_ids.contains(&id.to_string())
    }
    pub(crate) fn has_user_trustpoint(&self, id: &Uuid) -> bool {
        self.user_trustpoint_ids.contains(&id.to_string())
    }
    pub(crate) fn is_group_policy(&self, id: &Uuid) -> bool {
        self.group_policy_id == id.to_string()
    }

    /// Reads the form into a profile input; what cannot be read is an error on its field
    /// (the rules are the profile service's). Fields the chosen method hides are not
    /// read, as FMC's dialog ignores them.
    fn to_input(&self, errors: &mut Errors) -> ConnectionProfileInput {
        let group_policy_id = self.group_policy_id.parse::<Uuid>().unwrap_or_else(|_| {
            errors.add("group_policy_id", "Choose a group policy.");
            Uuid::nil()
        });
        let ids = |values: &[String], field: &str, errors: &mut Errors| -> Vec<Uuid> {
            values
                .iter()
                .filter_map(|v| match v.parse() {
                    Ok(id) => Some(id),
                    Err(_) => {
                        errors.add(field, "Choose from the list.");
                        None
                    }
                })
                .collect()
        };
        let ipv4_pool_ids = ids(&self.ipv4_pool_ids, "ipv4_pool_ids", errors);
        let ipv6_pool_ids = ids(&self.ipv6_pool_ids, "ipv4_pool_ids", errors);
        let trustpoint_ids = ids(&self.trustpoint_ids, "trustpoint_ids", errors);
        let mut machine_trustpoint_ids = Vec::new();
        let mut user_trustpoint_ids = Vec::new();
        let method = match self.auth_method.as_str() {
            "CLIENT_CERTIFICATE_ONLY" => AuthenticationMethod::ClientCertificateOnly,
            "AAA_AND_CLIENT_CERTIFICATE" => AuthenticationMethod::AaaAndClientCertificate,
            "AAA_ONLY" | "" => AuthenticationMethod::AaaOnly,
            _ => {
                errors.add("auth_method", "Choose an authentication method.");
                AuthenticationMethod::AaaOnly
            }
        };
        let mut aaa = AaaSettings::new(method);
        if method.uses_aaa() {
            let name = self.auth_server_name.trim().to_owned();
            aaa.authentication_server = match self.auth_server.as_str() {
                "RADIUS" => AuthenticationServer::Radius { server_group: name },
                "LDAP" => AuthenticationServer::Ldap { realm: name },
                _ => AuthenticationServer::Local,
            };
            aaa.fallback_to_local = self.fallback_to_local.is_some()
                && aaa.authentication_server != AuthenticationServer::Local;
        }
        if method.uses_certificates() {
            machine_trustpoint_ids = ids(
                &self.machine_trustpoint_ids,
                "machine_trustpoint_ids",
                errors,
            );
            user_trustpoint_ids = ids(&self.user_trustpoint_ids, "user_trustpoint_ids", errors);
            aaa.enable_multiple_certificate_authentication = self.mca.is_some();
            if aaa.enable_multiple_certificate_authentication {
                aaa.username_from_certificate_source =
                    if self.username_source == "FIRST_CERTIFICATE" {
                        UsernameSource::FirstCertificate
                    } else {
                        UsernameSource::SecondCertificate
                    };
            }
            aaa.username_mapping = if self.mapping == "entire_dn" {
                UsernameMapping::EntireDn
            } else {
                let primary = field_from_token(&self.primary_field);
                if primary.is_none() {
                    errors.add("primary_field", "Choose the primary field.");
                }
                let secondary = if self.secondary_field.is_empty() {
                    None
                } else {
                    let f = field_from_token(&self.secondary_field);
                    if f.is_none() {
                        errors.add("primary_field", "Choose the secondary field or None.");
                    }
                    f
                };
                UsernameMapping::SpecificField {
                    primary: primary.unwrap_or(CertificateField::Cn),
                    secondary,
                }
            };
            if method == AuthenticationMethod::AaaAndClientCertificate {
                aaa.prefill_username = self.prefill.is_some();
                aaa.hide_username = self.hide_username.is_some();
            }
        }
        aaa.strip_realm = self.strip_realm.is_some();
        aaa.strip_group = self.strip_group.is_some();
        let group_aliases = self
            .aliases
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| match line.strip_suffix("(disabled)") {
                Some(alias) => GroupAlias {
                    name: alias.trim().to_owned(),
                    enabled: false,
                },
                None => GroupAlias {
                    name: line.to_owned(),
                    enabled: true,
                },
            })
            .collect();
        ConnectionProfileInput {
            name: self.profile_name.trim().to_owned(),
            description: self.profile_description.clone(),
            group_policy_id,
            ipv4_pool_ids,
            ipv6_pool_ids,
            trustpoint_ids,
            machine_trustpoint_ids,
            user_trustpoint_ids,
            aaa,
            group_aliases,
            // Not on this dialog: an edit keeps those set over the API.
            group_urls: Vec::new(),
        }
    }
}

/// The form field a connection profile rule is shown on.
fn profile_form_field(field: ProfileField) -> &'static str {
    match field {
        ProfileField::Name => "profile_name",
        ProfileField::AddressPools => "ipv4_pool_ids",
        ProfileField::Trustpoints => "trustpoint_ids",
        ProfileField::MachineTrustpoints => "machine_trustpoint_ids",
        ProfileField::UserTrustpoints => "user_trustpoint_ids",
        ProfileField::AuthenticationServer => "auth_server_name",
        ProfileField::MultipleCertificates
        | ProfileField::UsernameSource
        | ProfileField::PrefillUsername
        | ProfileField::HideUsername => "auth_method",
        ProfileField::GroupAliases => "aliases",
        ProfileField::GroupUrls => "form",
    }
}

/// The form field an RA VPN policy rule is shown on.
fn policy_form_field(field: PolicyField) -> &'static str {
    match field {
        PolicyField::Name => "name",
        PolicyField::ConfigureIpsec => "form",
        PolicyField::AccessInterface => "access_interface",
        PolicyField::WebPort => "web_port",
        PolicyField::DtlsPort => "dtls_port",
    }
}

/// The form field a wizard rule is shown on.
fn wizard_form_field(field: WizardField) -> &'static str {
    match field {
        WizardField::Policy(field) => policy_form_field(field),
        WizardField::Profile(field) => profile_form_field(field),
    }
}

fn method_token(method: AuthenticationMethod) -> &'static str {
    match method {
        AuthenticationMethod::AaaOnly => "AAA_ONLY",
        AuthenticationMethod::ClientCertificateOnly => "CLIENT_CERTIFICATE_ONLY",
        AuthenticationMethod::AaaAndClientCertificate => "AAA_AND_CLIENT_CERTIFICATE",
    }
}

// ---------------------------------------------------------------------------------------
// Policy list.

pub(crate) struct PolicyRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub devices: String,
    pub profiles: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "ravpn/list.html")]
pub(crate) struct ListPage {
    chrome: Chrome,
    items: Vec<PolicyRow>,
    pager: Pager,
}

pub(crate) async fn list(
    State(context): State<UiContext>,
    current: Current,
    Query(query): Query<ListQuery>,
) -> Result<ListPage, UiError> {
    let mut items = Vec::new();
    for policy in ravpn::policies::list(&context.pool, context.domain_id, Page::ALL)
        .await?
        .items
    {
        let profiles =
            ravpn::profiles::list(&context.pool, context.domain_id, policy.id, Page::ALL)
                .await?
                .items;
        items.push(PolicyRow {
            id: policy.id,
            devices: policy
                .target_devices
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            profiles: profiles
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            name: policy.name,
            description: policy.description,
        });
    }
    let (items, pager) = paginate(items, &query, "/ravpn", |p| {
        format!("{} {} {} {}", p.name, p.description, p.devices, p.profiles)
    });
    Ok(ListPage {
        chrome: current.chrome("devices"),
        items,
        pager,
    })
}

// ---------------------------------------------------------------------------------------
// The Add wizard.

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PolicyForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub target_device_ids: Vec<String>,
    #[serde(default)]
    pub access_interface: String,
    #[serde(default)]
    pub web_port: String,
    pub dtls_enabled: Option<String>,
    #[serde(default)]
    pub dtls_port: String,
    #[serde(default)]
    pub identity_id: String,
    pub allow_selection: Option<String>,
    pub bypass_access_control: Option<String>,
    #[serde(default)]
    pub version: String,
}

impl PolicyForm {
    fn fresh() -> Self {
        Self::from_policy_input(&RaVpnPolicyInput::new(""), 0)
    }

    fn from_policy_input(input: &RaVpnPolicyInput, version: i32) -> Self {
        let on = |b: bool| b.then(|| "on".to_owned());
        Self {
            csrf: String::new(),
            name: input.name.clone(),
            description: input.description.clone(),
            target_device_ids: input
                .target_device_ids
                .iter()
                .map(Uuid::to_string)
                .collect(),
            access_interface: input.access_interface.clone(),
            web_port: input.web_port.to_string(),
            dtls_enabled: on(input.dtls_enabled),
            dtls_port: input.dtls_port.to_string(),
            identity_id: input
                .ssl_identity_certificate_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            allow_selection: on(input.allow_connection_profile_selection),
            bypass_access_control: on(input.bypass_access_control),
            version: version.to_string(),
        }
    }

    fn from_policy(policy: &RaVpnPolicy) -> Self {
        Self::from_policy_input(
            &RaVpnPolicyInput {
                name: policy.name.clone(),
                description: policy.description.clone(),
                configure_ssl: policy.configure_ssl,
                configure_ipsec: policy.configure_ipsec,
                access_interface: policy.access_interface.clone(),
                web_port: policy.web_port,
                dtls_enabled: policy.dtls_enabled,
                dtls_port: policy.dtls_port,
                allow_connection_profile_selection: policy.allow_connection_profile_selection,
                ssl_identity_certificate_id: policy.ssl_identity_certificate.as_ref().map(|r| r.id),
                bypass_access_control: policy.bypass_access_control,
                target_device_ids: policy.target_devices.iter().map(|d| d.id).collect(),
            },
            policy.version,
        )
    }

    pub(crate) fn targets(&self, id: &Uuid) -> bool {
        self.target_device_ids.contains(&id.to_string())
    }
    pub(crate) fn is_identity(&self, id: &Uuid) -> bool {
        self.identity_id == id.to_string()
    }

    /// Reads the form into a policy input; what cannot be read is an error on its field
    /// (the rules are the policy service's).
    fn to_input(&self, errors: &mut Errors) -> RaVpnPolicyInput {
        let mut input = RaVpnPolicyInput::new(self.name.trim());
        input.description = self.description.clone();
        for id in &self.target_device_ids {
            match id.parse() {
                Ok(id) => input.target_device_ids.push(id),
                Err(_) => errors.add("target_device_ids", "Choose devices from the list."),
            }
        }
        input.access_interface = self.access_interface.trim().to_owned();
        match self.web_port.trim().parse::<u16>() {
            Ok(p) => input.web_port = p,
            Err(_) => errors.add("web_port", "Enter a port from 1 to 65535."),
        }
        input.dtls_enabled = self.dtls_enabled.is_some();
        match self.dtls_port.trim().parse::<u16>() {
            Ok(p) => input.dtls_port = p,
            Err(_) => errors.add("dtls_port", "Enter a port from 1 to 65535."),
        }
        input.ssl_identity_certificate_id = if self.identity_id.is_empty() {
            None
        } else {
            match self.identity_id.parse() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add("identity_id", "Choose an identity certificate.");
                    None
                }
            }
        };
        input.allow_connection_profile_selection = self.allow_selection.is_some();
        input.bypass_access_control = self.bypass_access_control.is_some();
        input
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "ravpn/wizard.html")]
pub(crate) struct WizardPage {
    chrome: Chrome,
    policy: PolicyForm,
    profile: ProfileForm,
    options: Options,
    errors: Errors,
}

pub(crate) async fn wizard(
    State(context): State<UiContext>,
    current: Current,
) -> Result<WizardPage, UiError> {
    current.require_edit()?;
    Ok(WizardPage {
        chrome: current.chrome("devices"),
        policy: PolicyForm::fresh(),
        profile: ProfileForm::fresh(),
        options: options(&context).await?,
        errors: Errors::default(),
    })
}

pub(crate) async fn wizard_submit(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let policy_form: PolicyForm = parse(&body)?;
    let profile_form: ProfileForm = parse(&body)?;
    current.authorize_change(&policy_form.csrf)?;
    let mut errors = Errors::default();
    let policy_input = policy_form.to_input(&mut errors);
    let profile_input = profile_form.to_input(&mut errors);
    if errors.is_empty() {
        let created = ravpn::policies::create_with_profile(
            &context.pool,
            &current.actor(),
            context.domain_id,
            &policy_input,
            &profile_input,
        )
        .await;
        match created {
            Ok(policy) => {
                return Ok(Redirect::to(&format!("/ravpn/{}", policy.id)).into_response());
            }
            Err(e) => errors = Errors::from_change(e, wizard_form_field)?,
        }
    } else {
        // The fields that did read are still checked, so every problem shows at once.
        errors.add_problems(&ravpn::policies::check(&policy_input), policy_form_field);
        errors.add_problems(&ravpn::profiles::check(&profile_input), profile_form_field);
    }
    Ok(WizardPage {
        chrome: current.chrome("devices"),
        policy: policy_form,
        profile: profile_form,
        options: options(&context).await?,
        errors,
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------
// Edit.

pub(crate) struct ProfileRow {
    pub id: Uuid,
    pub name: String,
    pub group_policy: String,
    pub method: &'static str,
    pub mca: bool,
    pub pools: String,
    /// The profile service's warnings (e.g. MCA slots not separated).
    pub warnings: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "ravpn/edit.html")]
pub(crate) struct EditPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    policy: PolicyForm,
    profiles: Vec<ProfileRow>,
    options: Options,
    errors: Errors,
    saved: bool,
}

async fn edit_page(
    context: &UiContext,
    current: &Current,
    policy: &RaVpnPolicy,
    form: PolicyForm,
    errors: Errors,
    saved: bool,
) -> Result<EditPage, UiError> {
    let profiles = ravpn::profiles::list(&context.pool, context.domain_id, policy.id, Page::ALL)
        .await?
        .items
        .into_iter()
        .map(|p| ProfileRow {
            warnings: ravpn::profiles::profile_warnings(&p)
                .into_iter()
                .map(|w| w.message)
                .collect(),
            id: p.id,
            method: method_label(p.aaa.authentication_method),
            mca: p.aaa.requires_mca(),
            pools: p
                .ipv4_pools
                .iter()
                .chain(&p.ipv6_pools)
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            group_policy: p.group_policy.name,
            name: p.name,
        })
        .collect();
    Ok(EditPage {
        chrome: current.chrome("devices"),
        id: policy.id,
        title: policy.name.clone(),
        policy: form,
        profiles,
        options: options(context).await?,
        errors,
        saved,
    })
}

pub(crate) async fn edit(
    State(context): State<UiContext>,
    current: Current,
    Path(id): Path<Uuid>,
) -> Result<EditPage, UiError> {
    let policy = ravpn::policies::get(&context.pool, context.domain_id, id).await?;
    edit_page(
        &context,
        &current,
        &policy,
        PolicyForm::from_policy(&policy),
        Errors::default(),
        false,
    )
    .await
}

pub(crate) async fn edit_submit(
    State(context): State<UiContext>,
    current: Current,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: PolicyForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let policy = ravpn::policies::get(&context.pool, context.domain_id, id).await?;
    let mut errors = Errors::default();
    let input = form.to_input(&mut errors);
    let version = form.version.parse::<i32>().unwrap_or(policy.version);
    if errors.is_empty() {
        match ravpn::policies::update(
            &context.pool,
            &current.actor(),
            context.domain_id,
            id,
            version,
            &input,
        )
        .await
        {
            Ok(updated) => {
                return Ok(edit_page(
                    &context,
                    &current,
                    &updated,
                    PolicyForm::from_policy(&updated),
                    Errors::default(),
                    true,
                )
                .await?
                .into_response());
            }
            Err(e) => errors = Errors::from_change(e, policy_form_field)?,
        }
    } else {
        errors.add_problems(&ravpn::policies::check(&input), policy_form_field);
    }
    Ok(edit_page(&context, &current, &policy, form, errors, false)
        .await?
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Connection profile dialog.

#[derive(Template, WebTemplate)]
#[template(path = "ravpn/profile.html")]
pub(crate) struct ProfilePage {
    chrome: Chrome,
    policy_id: Uuid,
    policy_name: String,
    /// `None` while adding.
    profile_id: Option<Uuid>,
    version: i32,
    profile: ProfileForm,
    options: Options,
    errors: Errors,
}

#[derive(Debug, Deserialize)]
struct ProfileMeta {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
}

pub(crate) async fn profile_new(
    State(context): State<UiContext>,
    current: Current,
    Path(policy_id): Path<Uuid>,
) -> Result<ProfilePage, UiError> {
    current.require_edit()?;
    let policy = ravpn::policies::get(&context.pool, context.domain_id, policy_id).await?;
    Ok(ProfilePage {
        chrome: current.chrome("devices"),
        policy_id,
        policy_name: policy.name,
        profile_id: None,
        version: 0,
        profile: ProfileForm::fresh(),
        options: options(&context).await?,
        errors: Errors::default(),
    })
}

pub(crate) async fn profile_create(
    State(context): State<UiContext>,
    current: Current,
    Path(policy_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, UiError> {
    save_profile(context, current, policy_id, None, body).await
}

pub(crate) async fn profile_edit(
    State(context): State<UiContext>,
    current: Current,
    Path((policy_id, profile_id)): Path<(Uuid, Uuid)>,
) -> Result<ProfilePage, UiError> {
    let policy = ravpn::policies::get(&context.pool, context.domain_id, policy_id).await?;
    let profile =
        ravpn::profiles::get(&context.pool, context.domain_id, policy_id, profile_id).await?;
    Ok(ProfilePage {
        chrome: current.chrome("devices"),
        policy_id,
        policy_name: policy.name,
        profile_id: Some(profile_id),
        version: profile.version,
        profile: ProfileForm::from_profile(&profile),
        options: options(&context).await?,
        errors: Errors::default(),
    })
}

pub(crate) async fn profile_update(
    State(context): State<UiContext>,
    current: Current,
    Path((policy_id, profile_id)): Path<(Uuid, Uuid)>,
    body: Bytes,
) -> Result<Response, UiError> {
    save_profile(context, current, policy_id, Some(profile_id), body).await
}

async fn save_profile(
    context: UiContext,
    current: Current,
    policy_id: Uuid,
    profile_id: Option<Uuid>,
    body: Bytes,
) -> Result<Response, UiError> {
    let meta: ProfileMeta = parse(&body)?;
    let form: ProfileForm = parse(&body)?;
    current.authorize_change(&meta.csrf)?;
    let policy = ravpn::policies::get(&context.pool, context.domain_id, policy_id).await?;
    let version = meta.version.parse::<i32>().unwrap_or(0);
    let mut errors = Errors::default();
    let mut input = form.to_input(&mut errors);
    if errors.is_empty() {
        let (actor, domain) = (current.actor(), context.domain_id);
        let saved = match profile_id {
            None => ravpn::profiles::create(&context.pool, &actor, domain, policy_id, &input).await,
            Some(id) => {
                // The dialog has no group URLs: the profile keeps those it has.
                input.group_urls = ravpn::profiles::get(&context.pool, domain, policy_id, id)
                    .await?
                    .group_urls;
                ravpn::profiles::update(
                    &context.pool,
                    &actor,
                    domain,
                    policy_id,
                    id,
                    version,
                    &input,
                )
                .await
            }
        };
        match saved {
            Ok(_) => return Ok(Redirect::to(&format!("/ravpn/{policy_id}")).into_response()),
            Err(e) => {
                errors = Errors::from_change(e, profile_form_field)?;
                // A name clash is the repository's answer, on `name`.
                if errors.has("name") {
                    errors.add("profile_name", errors.of("name").to_owned());
                }
            }
        }
    } else {
        errors.add_problems(&ravpn::profiles::check(&input), profile_form_field);
    }
    let mut form = form;
    form.warnings = ravpn::profiles::warnings(
        &input.aaa,
        &input.machine_trustpoint_ids,
        &input.user_trustpoint_ids,
    )
    .into_iter()
    .map(|w| w.message)
    .collect();
    Ok(ProfilePage {
        chrome: current.chrome("devices"),
        policy_id,
        policy_name: policy.name,
        profile_id,
        version,
        profile: form,
        options: options(&context).await?,
        errors,
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------
// Preview.

#[derive(Template, WebTemplate)]
#[template(path = "ravpn/preview.html")]
pub(crate) struct PreviewPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    cli: String,
    problems: Vec<String>,
}

pub(crate) async fn preview(
    State(context): State<UiContext>,
    current: Current,
    Path(id): Path<Uuid>,
) -> Result<PreviewPage, UiError> {
    let policy = ravpn::policies::get(&context.pool, context.domain_id, id).await?;
    let now = OffsetDateTime::now_utc();
    let device = Device {
        id: Uuid::nil(),
        domain_id: context.domain_id,
        name: "preview".to_owned(),
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
    };
    let (pool, key, domain_id) = (context.pool.clone(), context.key.clone(), context.domain_id);
    let inputs = super::off_thread(move || async move {
        device_policy::load_for_policy(&pool, domain_id, id, device, &key).await
    })
    .await??;
    let config = crate::deploy::compile::device_config(&inputs, 0);
    let problems = match config.validate(now) {
        Ok(()) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    };
    Ok(PreviewPage {
        chrome: current.chrome("devices"),
        id,
        title: policy.name,
        cli: vpn_core::cli::running_config(&config),
        problems,
    })
}
