//! The aggregate-auth exchange (protocol.md §2): profile selection, the MCA challenge,
//! certificate validation, the optional password step and the login.
//!
//! openconnect opens a new TLS connection for every step of the init/MCA loop, so no
//! state lives in the connection: the MCA challenge waits in the shared
//! [`ChallengeStore`] under its `aggauth-handle`, and a login that still needs a
//! password waits in [`PendingLogins`] under a handle of its own. Both are single use,
//! expire, and are bound to the machine certificate of the connection that created them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use vpn_core::aggauth::server::{
    CERTIFICATE_VALIDATION_FAILURE, Completion, LoginForm, SgOpaque, UsernameInput,
    client_cert_request, complete, error_form, group_select_form, login_form,
};
use vpn_core::aggauth::{AuthReply, ClientMessage, DeviceId, Init};
use vpn_core::config::{AuthenticationServer, ConnectionProfile, DeviceConfig, UsernameSource};
use vpn_core::mca::verify_reply;
use vpn_core::pki::{CertificateInfo, ValidatedChain, map_username};
use vpn_core::session::{AuthMode, CertificateSummary, ClientInfo};

use super::http::{Request, Response};
use super::{Connection, Headend};
use crate::sessions::{MachineFingerprint, NewSession};

/// Text of the error form when a profile needs MCA and the client did not offer it.
pub const MCA_REQUIRED: &str = "Multiple certificate authentication required";
/// Text of the error form for a refused password or an unusable request.
pub const LOGIN_FAILED: &str = "Login failed.";
/// How long a login waits for its password.
pub const PENDING_LOGIN_LIFETIME: Duration = Duration::from_secs(120);
/// Most logins waiting for a password at once.
pub const MAX_PENDING_LOGINS: usize = 4096;

/// Answers one aggregate-auth POST. `now` is the wall clock, `instant` the monotonic one.
pub(crate) fn handle_post(
    headend: &Headend,
    connection: &Connection,
    request: &Request,
    now: OffsetDateTime,
    instant: Instant,
) -> Response {
    let config = headend.config();
    let message = match ClientMessage::parse(&request.body) {
        Ok(message) => message,
        Err(e) => {
            tracing::info!(error = %e, "unreadable aggregate-auth request");
            return Response::xml(error_form(LOGIN_FAILED));
        }
    };
    let step = Step {
        headend,
        connection,
        config: &config,
        user_agent: request.header("user-agent").unwrap_or_default(),
        now,
        instant,
    };
    match message {
        ClientMessage::Init(init) => step.init(&request.path, &init),
        ClientMessage::AuthReply(reply) => step.reply(&reply),
        ClientMessage::Logout => Response::xml(error_form("Logged out.")),
    }
}

/// Answers the legacy `GET` openconnect falls back to after a refused certificate: an
/// error form, whose text the client prints before giving up.
pub(crate) fn legacy_get() -> Response {
    Response::xml(error_form(LOGIN_FAILED))
}

/// Which connection profile a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selection<'c> {
    Profile(&'c ConnectionProfile),
    /// No group named: offer these enabled aliases.
    AskGroup(Vec<&'c str>),
    /// The named group is unknown or disabled, or selection is not allowed.
    Refused,
}

/// Picks the profile by group URL / alias in the request path or `<group-access>`,
/// then by `<group-select>`, else offers the aliases when profile selection is allowed.
pub(crate) fn select_profile<'c>(
    config: &'c DeviceConfig,
    path: &str,
    group_access: Option<&str>,
    group_select: Option<&str>,
) -> Selection<'c> {
    let access_path = group_access.map(url_path).unwrap_or_default();
    for name in [path_name(path), path_name(access_path)] {
        if name.is_empty() {
            continue;
        }
        return match profile_for_name(config, name) {
            Some(profile) => Selection::Profile(profile),
            None => Selection::Refused,
        };
    }
    if let Some(alias) = group_select {
        return match profile_for_alias(config, alias) {
            Some(profile) => Selection::Profile(profile),
            None => Selection::Refused,
        };
    }
    if config.headend.allow_profile_selection {
        let aliases: Vec<&str> = config
            .connection_profiles
            .iter()
            .flat_map(|p| p.group_aliases.iter())
            .filter(|a| a.enabled)
            .map(|a| a.name.as_str())
            .collect();
        if !aliases.is_empty() {
            return Selection::AskGroup(aliases);
        }
    }
    Selection::Refused
}

/// Logins whose certificates (if any) passed and that wait for a password.
#[derive(Debug, Default)]
pub(crate) struct PendingLogins {
    pending: HashMap<String, PendingLogin>,
}

#[derive(Debug, Clone)]
struct PendingLogin {
    tunnel_group: String,
    machine: Option<MachineFingerprint>,
    identity: Option<CertificateIdentity>,
    client: ClientInfo,
    issued_at: Instant,
}

/// Who the certificates say the client is.
#[derive(Debug, Clone)]
struct CertificateIdentity {
    username: String,
    derivation: String,
    machine: Option<CertificateSummary>,
    user: Option<CertificateSummary>,
}

impl PendingLogins {
    fn insert(&mut self, login: PendingLogin, now: Instant) -> Option<String> {
        self.pending
            .retain(|_, p| now.saturating_duration_since(p.issued_at) <= PENDING_LOGIN_LIFETIME);
        if self.pending.len() >= MAX_PENDING_LOGINS {
            return None;
        }
        let mut handle = [0u8; 16];
        SystemRandom::new().fill(&mut handle).ok()?;
        let handle = hex::encode(handle);
        self.pending.insert(handle.clone(), login);
        Some(handle)
    }

    fn take(&mut self, handle: &str, now: Instant) -> Option<PendingLogin> {
        let login = self.pending.remove(handle)?;
        (now.saturating_duration_since(login.issued_at) <= PENDING_LOGIN_LIFETIME).then_some(login)
    }
}

/// One request being answered.
struct Step<'a> {
    headend: &'a Headend,
    connection: &'a Connection,
    config: &'a DeviceConfig,
    user_agent: &'a str,
    now: OffsetDateTime,
    instant: Instant,
}

impl Step<'_> {
    fn init(&self, path: &str, init: &Init) -> Response {
        let profile = match select_profile(
            self.config,
            path,
            init.group_access.as_deref(),
            init.group_select.as_deref(),
        ) {
            Selection::Profile(profile) => profile,
            Selection::AskGroup(aliases) => {
                return Response::xml(group_select_form(&aliases, None));
            }
            Selection::Refused => {
                tracing::info!(
                    path,
                    "login refused: unknown or disabled connection profile"
                );
                return Response::xml(error_form(LOGIN_FAILED));
            }
        };
        let client = self.client_info(init.device_id.as_ref(), init.version.as_deref());
        let aaa = &profile.aaa;
        if !aaa.uses_certificates() {
            return self.ask_password(profile, None, client);
        }
        let Some(machine) = self.connection.machine_certificate() else {
            if init.client_cert_fail {
                tracing::info!(group = %profile.name, "no client certificate; login refused");
                return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
            }
            return Response::xml(client_cert_request());
        };
        if aaa.requires_mca() && !init.offers_multiple_cert() {
            tracing::info!(group = %profile.name, "client did not offer multiple-cert; login refused");
            return Response::xml(error_form(MCA_REQUIRED));
        }
        let Some(machine_chain) = self.validate(profile, &self.connection.tls.client_chain) else {
            return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
        };
        if aaa.requires_mca() {
            let issued = self.headend.challenges().issue(
                &profile.name,
                &self.config.version.to_string(),
                machine.as_ref(),
                self.instant,
            );
            return match issued {
                Ok(body) => Response::xml(body),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot issue an MCA challenge");
                    Response::xml(error_form(LOGIN_FAILED))
                }
            };
        }
        let Some(identity) = self.identity(profile, machine, Some(&machine_chain), None) else {
            return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
        };
        self.after_certificates(profile, identity, client)
    }

    fn reply(&self, reply: &AuthReply) -> Response {
        let client = self.client_info(reply.device_id.as_ref(), reply.version.as_deref());
        if reply.mca.is_some() {
            return self.mca_reply(reply, client);
        }
        let Some(credentials) = &reply.credentials else {
            return Response::xml(error_form(LOGIN_FAILED));
        };
        let handle = reply
            .opaque
            .as_ref()
            .and_then(|o| o.aggauth_handle.as_deref())
            .unwrap_or_default();
        let Some(pending) = self.headend.pending_logins().take(handle, self.instant) else {
            tracing::info!("password reply for an unknown or expired login");
            return Response::xml(error_form(LOGIN_FAILED));
        };
        let Some(profile) = self.config.connection_profile(&pending.tunnel_group) else {
            return Response::xml(error_form(LOGIN_FAILED));
        };
        if pending.machine.is_some() && pending.machine != self.connection.machine_fingerprint() {
            tracing::info!(group = %profile.name, "password reply on a connection with another machine certificate");
            return Response::xml(error_form(LOGIN_FAILED));
        }
        let typed = credentials
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let username = match (&pending.identity, typed) {
            (Some(identity), Some(typed)) if typed != identity.username => {
                tracing::info!(target: "syslog", syslog_id = 113005, "AAA user authentication Rejected : reason = username differs from the certificate : user = {typed} : user IP = {}", self.connection.peer.ip());
                return Response::xml(error_form(LOGIN_FAILED));
            }
            (Some(identity), _) => identity.username.clone(),
            (None, Some(typed)) => typed.to_owned(),
            (None, None) => return Response::xml(error_form(LOGIN_FAILED)),
        };
        if !check_password(
            self.config,
            profile,
            &username,
            credentials.password.expose(),
        ) {
            tracing::info!(target: "syslog", syslog_id = 113005, "AAA user authentication Rejected : reason = AAA failure : server = LOCAL : user = {username} : user IP = {}", self.connection.peer.ip());
            return Response::xml(error_form(LOGIN_FAILED));
        }
        tracing::info!(target: "syslog", syslog_id = 113004, "AAA user authentication Successful : server = LOCAL : user = {username}");
        let identity = pending.identity.unwrap_or(CertificateIdentity {
            username: username.clone(),
            derivation: String::new(),
            machine: None,
            user: None,
        });
        let identity = CertificateIdentity {
            username,
            ..identity
        };
        self.login(profile, identity, pending.machine, pending.client)
    }

    fn mca_reply(&self, reply: &AuthReply, client: ClientInfo) -> Response {
        let machine = self.connection.machine_certificate();
        let verified = {
            let mut store = self.headend.challenges();
            verify_reply(&mut store, reply, machine.map(AsRef::as_ref), self.instant)
        };
        let verified = match verified {
            Ok(verified) => verified,
            Err(e) => {
                tracing::info!(target: "syslog", syslog_id = 716039, peer = %self.connection.peer, "Multiple certificate authentication rejected: {e}");
                return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
            }
        };
        let Some(profile) = self
            .config
            .connection_profile(&verified.tunnel_group)
            .filter(|p| p.aaa.requires_mca())
        else {
            tracing::info!(group = %verified.tunnel_group, "the profile of the MCA challenge no longer requires MCA");
            return Response::xml(error_form(LOGIN_FAILED));
        };
        let Some(machine) = machine else {
            return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
        };
        let Some(machine_chain) = self.validate(profile, &self.connection.tls.client_chain) else {
            return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
        };
        let Some(user_chain) = self.validate(profile, &verified.user_bag.certificates()) else {
            return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
        };
        let Some(identity) = self.identity(
            profile,
            machine,
            Some(&machine_chain),
            Some((&verified.user_bag.leaf, &user_chain)),
        ) else {
            return Response::xml(error_form(CERTIFICATE_VALIDATION_FAILURE));
        };
        self.after_certificates(profile, identity, client)
    }

    /// Certificates passed: ask for the password if the profile also uses AAA, else log in.
    fn after_certificates(
        &self,
        profile: &ConnectionProfile,
        identity: CertificateIdentity,
        client: ClientInfo,
    ) -> Response {
        if profile.aaa.uses_aaa() {
            return self.ask_password(profile, Some(identity), client);
        }
        let machine = self.connection.machine_fingerprint();
        self.login(profile, identity, machine, client)
    }

    fn ask_password(
        &self,
        profile: &ConnectionProfile,
        identity: Option<CertificateIdentity>,
        client: ClientInfo,
    ) -> Response {
        let aaa = &profile.aaa;
        let username = match &identity {
            Some(_) if aaa.hide_username => UsernameInput::Hidden,
            Some(identity) if aaa.prefill_username => UsernameInput::Visible {
                prefill: Some(identity.username.as_str()),
            },
            _ => UsernameInput::Visible { prefill: None },
        };
        let form = |handle: &str| {
            login_form(&LoginForm {
                opaque: Some(SgOpaque {
                    tunnel_group: &profile.name,
                    aggauth_handle: handle,
                    auth_method: if aaa.requires_mca() {
                        "multiple-cert"
                    } else if aaa.uses_certificates() {
                        "single-cert"
                    } else {
                        "password"
                    },
                    config_hash: &self.config.version.to_string(),
                }),
                title: "Login",
                message: Some("Please enter your username and password."),
                username,
                error: None,
            })
        };
        let pending = PendingLogin {
            tunnel_group: profile.name.clone(),
            machine: self.connection.machine_fingerprint(),
            identity: identity.clone(),
            client,
            issued_at: self.instant,
        };
        match self.headend.pending_logins().insert(pending, self.instant) {
            Some(handle) => Response::xml(form(&handle)),
            None => {
                tracing::warn!("too many logins waiting for a password");
                Response::xml(error_form(LOGIN_FAILED))
            }
        }
    }

    fn login(
        &self,
        profile: &ConnectionProfile,
        identity: CertificateIdentity,
        machine: Option<MachineFingerprint>,
        client: ClientInfo,
    ) -> Response {
        let policy = self.config.group_policy(&profile.group_policy);
        let ipv4_pools = if profile.ipv4_pools.is_empty() {
            policy.map(|p| p.ipv4_pools.clone()).unwrap_or_default()
        } else {
            profile.ipv4_pools.clone()
        };
        let new = NewSession {
            username: identity.username,
            tunnel_group: profile.name.clone(),
            group_policy: profile.group_policy.clone(),
            ipv4_pools,
            ipv6_pools: profile.ipv6_pools.clone(),
            public_ip: self.connection.peer.ip(),
            tcp_src_port: self.connection.peer.port(),
            tcp_dst_port: self.connection.local.port(),
            auth_mode: AuthMode::for_aaa_settings(&profile.aaa),
            client,
            machine_fingerprint: machine,
            machine_certificate: identity.machine,
            user_certificate: identity.user,
            username_derivation: identity.derivation,
            idle_timeout_minutes: policy.and_then(|p| p.idle_timeout_minutes),
            max_connect_time_minutes: policy.and_then(|p| p.max_connect_time_minutes),
            simultaneous_logins: policy.map_or(3, |p| p.simultaneous_logins),
        };
        let username = new.username.clone();
        let grant = match self.headend.sessions.login(new, self.now) {
            Ok(grant) => grant,
            Err(e) => {
                tracing::info!(group = %profile.name, error = %e, "login refused by the session database");
                return Response::xml(error_form(LOGIN_FAILED));
            }
        };
        let span = super::session_span(grant.index, &username);
        let _in_session = span.enter();
        tracing::info!(group = %profile.name, "login accepted");
        tracing::info!(target: "syslog", syslog_id = 716038, "Group <{}> User <{username}> IP <{}> Authentication: successful, Session Type: WebVPN.", profile.group_policy, self.connection.peer.ip());
        let banner = policy.and_then(|p| p.banner.as_deref());
        let body = complete(&Completion {
            session_id: &grant.audit_session_id,
            session_token: grant.cookie.expose(),
            banner,
            server_cert_hash: &self.connection.server_cert_sha1,
        });
        let mut response = Response::xml(body);
        response.headers.push((
            "Set-Cookie",
            format!("webvpn={}; path=/; Secure", grant.cookie.expose()),
        ));
        response
    }

    /// Validates a presented chain against the profile's trustpoints; logs 717027.
    fn validate(
        &self,
        profile: &ConnectionProfile,
        chain: &[CertificateDer<'static>],
    ) -> Option<ValidatedChain> {
        let store = match self.headend.trust_store(self.config, profile) {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(group = %profile.name, error = %e, "connection profile has no usable trustpoints");
                return None;
            }
        };
        match store.validate(chain, self.now) {
            Ok(validated) => Some(validated),
            Err(e) => {
                tracing::info!(target: "syslog", syslog_id = 717027, peer = %self.connection.peer, group = %profile.name, "Certificate chain failed validation. {e}");
                None
            }
        }
    }

    /// The username and certificate summaries for the session.
    fn identity(
        &self,
        profile: &ConnectionProfile,
        machine: &CertificateDer<'static>,
        machine_chain: Option<&ValidatedChain>,
        user: Option<(&CertificateDer<'static>, &ValidatedChain)>,
    ) -> Option<CertificateIdentity> {
        let aaa = &profile.aaa;
        let (source, which) = match (aaa.username_from_certificate_source, user) {
            (UsernameSource::SecondCertificate, Some((user_der, _))) => {
                (user_der, "the second certificate (user)")
            }
            (_, Some(_)) => (machine, "the first certificate (machine)"),
            (_, None) => (machine, "the client certificate"),
        };
        let mapped = match map_username(source.as_ref(), &aaa.username_mapping) {
            Ok(mapped) => mapped,
            Err(e) => {
                tracing::info!(group = %profile.name, error = %e, "no username from the certificate");
                return None;
            }
        };
        Some(CertificateIdentity {
            username: mapped.username,
            derivation: format!("{} of {which}", mapped.derivation),
            machine: machine_chain.map(|c| summary(&c.leaf)),
            user: user.map(|(_, c)| summary(&c.leaf)),
        })
    }

    fn client_info(&self, device: Option<&DeviceId>, version: Option<&str>) -> ClientInfo {
        let os_version = device.and_then(|d| {
            d.attributes
                .iter()
                .find(|(name, _)| name == "platform-version")
                .map(|(_, value)| value.clone())
        });
        let user_agent = if self.user_agent.is_empty() {
            version.unwrap_or_default()
        } else {
            self.user_agent
        };
        ClientInfo {
            os: device.map(|d| d.name.clone()).unwrap_or_default(),
            os_version,
            client_type: "AnyConnect".to_owned(),
            version: user_agent.chars().take(128).collect(),
        }
    }
}

/// Checks a password against the LOCAL user database (argon2 PHC hashes). RADIUS and
/// LDAP servers are not implemented: their users are refused unless the profile falls
/// back to LOCAL.
pub(crate) fn check_password(
    config: &DeviceConfig,
    profile: &ConnectionProfile,
    username: &str,
    password: &str,
) -> bool {
    let local = matches!(
        profile.aaa.authentication_server,
        AuthenticationServer::Local
    ) || profile.aaa.fallback_to_local;
    if !local {
        tracing::warn!(group = %profile.name, "only the LOCAL authentication server is implemented");
        return false;
    }
    let Some(user) = config.local_user(username) else {
        return false;
    };
    let Ok(hash) = PasswordHash::new(&user.password_hash) else {
        tracing::warn!(user = %username, "local user has a password hash that is not a PHC string");
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

fn summary(info: &CertificateInfo) -> CertificateSummary {
    CertificateSummary {
        subject: info.subject.clone(),
        issuer: info.issuer.clone(),
        serial: info.serial.to_ascii_lowercase(),
    }
}

/// The group name in a request path: `/RAVPN-MultiCert` → `RAVPN-MultiCert`.
fn path_name(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_matches('/')
}

/// The path of a URL (`https://host:8443/RAVPN` → `/RAVPN`); the text itself if no scheme.
fn url_path(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => url,
    }
}

fn profile_for_name<'c>(config: &'c DeviceConfig, name: &str) -> Option<&'c ConnectionProfile> {
    config
        .connection_profiles
        .iter()
        .find(|p| {
            p.group_urls
                .iter()
                .any(|u| u.enabled && path_name(url_path(&u.url)) == name)
        })
        .or_else(|| profile_for_alias(config, name))
}

fn profile_for_alias<'c>(config: &'c DeviceConfig, alias: &str) -> Option<&'c ConnectionProfile> {
    config
        .connection_profiles
        .iter()
        .find(|p| p.group_aliases.iter().any(|a| a.enabled && a.name == alias))
}

#[cfg(test)]
mod tests;
