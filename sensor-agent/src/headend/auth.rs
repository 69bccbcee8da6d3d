//! The aggregate-auth exchange (protocol.md §2) as the headend runs it: it moves the
//! bytes, keeps and looks up the state between requests, checks password hashes and
//! creates the sessions. What to answer is decided by [`vpn_core::login`].
//!
//! openconnect opens a new TLS connection for every step of the init/MCA loop, so no
//! state lives in the connection: the MCA challenge waits in the shared
//! [`ChallengeStore`](vpn_core::mca::ChallengeStore) under its `aggauth-handle`, and a
//! login that still needs a password waits in [`PendingLogins`] under a handle of its
//! own. Both are single use, expire, and are bound to the machine certificate of the
//! connection that created them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use vpn_core::aggauth::server::{
    Completion, client_cert_request, complete, error_form, group_select_form,
};
use vpn_core::aggauth::{AuthReply, ClientMessage, DeviceId};
use vpn_core::config::{AuthenticationServer, ConnectionProfile, DeviceConfig};
use vpn_core::login::{
    self, Admission, LoginContext, LoginRefusal, Next, PendingPassword, TrustSource,
};
use vpn_core::mca::take_challenge;
use vpn_core::pki::{TrustStore, TrustStoreError};
use vpn_core::session::ClientInfo;

use super::http::{Request, Response};
use super::{Connection, Headend};
use crate::sessions::{MachineFingerprint, NewSession};

pub use vpn_core::login::{LOGIN_FAILED, MCA_REQUIRED};

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
    let trust = HeadendTrust(headend);
    let step = Step {
        headend,
        connection,
        context: LoginContext {
            config: &config,
            trust: &trust,
            peer_chain: &connection.tls.client_chain,
            now,
        },
        user_agent: request.header("user-agent").unwrap_or_default(),
        instant,
    };
    match message {
        ClientMessage::Init(init) => {
            let client = step.client_info(init.device_id.as_ref(), init.version.as_deref());
            let next = login::on_init(&step.context, &request.path, &init);
            step.answer(next, client)
        }
        ClientMessage::AuthReply(reply) => step.reply(&reply),
        ClientMessage::Logout => Response::xml(error_form("Logged out.")),
    }
}

/// Answers the legacy `GET` openconnect falls back to after a refused certificate: an
/// error form, whose text the client prints before giving up.
pub(crate) fn legacy_get() -> Response {
    Response::xml(error_form(LOGIN_FAILED))
}

/// The headend's per-configuration cache of parsed trust stores.
struct HeadendTrust<'h>(&'h Headend);

impl TrustSource for HeadendTrust<'_> {
    fn trust_store(
        &self,
        config: &DeviceConfig,
        profile: &ConnectionProfile,
    ) -> Result<Arc<TrustStore>, TrustStoreError> {
        self.0.trust_store(config, profile)
    }
}

/// Logins whose certificates (if any) passed and that wait for a password.
#[derive(Debug, Default)]
pub(crate) struct PendingLogins {
    pending: HashMap<String, PendingLogin>,
}

#[derive(Debug, Clone)]
struct PendingLogin {
    password: PendingPassword,
    /// The client as its `init` described it.
    client: ClientInfo,
    issued_at: Instant,
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
    context: LoginContext<'a>,
    user_agent: &'a str,
    instant: Instant,
}

impl Step<'_> {
    fn reply(&self, reply: &AuthReply) -> Response {
        let client = self.client_info(reply.device_id.as_ref(), reply.version.as_deref());
        if reply.mca.is_some() {
            let challenge = take_challenge(&mut self.headend.challenges(), reply, self.instant);
            let next = login::on_mca_reply(&self.context, challenge, reply);
            return self.answer(next, client);
        }
        let handle = reply
            .opaque
            .as_ref()
            .and_then(|o| o.aggauth_handle.as_deref())
            .unwrap_or_default();
        // A reply without credentials leaves the waiting login alone.
        let pending = match &reply.credentials {
            Some(_) => self.headend.pending_logins().take(handle, self.instant),
            None => None,
        };
        let (pending, client) = match pending {
            Some(login) => (Some(login.password), login.client),
            None => (None, client),
        };
        let next = match login::on_password_reply(&self.context, pending, reply) {
            Next::CheckPassword(check) => {
                let password = reply
                    .credentials
                    .as_ref()
                    .map(|c| c.password.expose())
                    .unwrap_or_default();
                let config = self.context.config;
                if check_password(config, check.profile, &check.username, password) {
                    tracing::info!(target: "syslog", syslog_id = 113004, "AAA user authentication Successful : server = LOCAL : user = {}", check.username);
                    Next::Admit(check.accept())
                } else {
                    check.reject()
                }
            }
            other => other,
        };
        self.answer(next, client)
    }

    /// Carries out the decision.
    fn answer(&self, next: Next<'_>, client: ClientInfo) -> Response {
        let config_hash = self.context.config.version.to_string();
        match next {
            Next::GroupSelect(aliases) => Response::xml(group_select_form(&aliases, None)),
            Next::ClientCertificateRequest => Response::xml(client_cert_request()),
            Next::McaChallenge { profile } => {
                let Some(machine) = self.connection.machine_certificate() else {
                    return Response::xml(error_form(LOGIN_FAILED));
                };
                let issued = self.headend.challenges().issue(
                    &profile.name,
                    &config_hash,
                    machine.as_ref(),
                    self.instant,
                );
                match issued {
                    Ok(body) => Response::xml(body),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot issue an MCA challenge");
                        Response::xml(error_form(LOGIN_FAILED))
                    }
                }
            }
            Next::PasswordForm(form) => {
                let pending = PendingLogin {
                    password: form.pending(self.context.machine_fingerprint()),
                    client,
                    issued_at: self.instant,
                };
                match self.headend.pending_logins().insert(pending, self.instant) {
                    Some(handle) => Response::xml(form.body(&handle, &config_hash)),
                    None => {
                        tracing::warn!("too many logins waiting for a password");
                        Response::xml(error_form(LOGIN_FAILED))
                    }
                }
            }
            // Answered by `reply`, which holds the password; never reached from `init`.
            Next::CheckPassword(_) => Response::xml(error_form(LOGIN_FAILED)),
            Next::Admit(admission) => self.login(admission, client),
            Next::Refuse { profile, reason } => {
                self.log_refusal(profile.unwrap_or_default(), &reason);
                Response::xml(error_form(reason.client_message()))
            }
        }
    }

    /// The FTD syslog line of a refusal, or an INFO line when FTD has none.
    fn log_refusal(&self, group: &str, reason: &LoginRefusal) {
        let peer = self.connection.peer;
        let ip = peer.ip();
        match reason {
            LoginRefusal::Chain { slot, source } => {
                tracing::info!(target: "syslog", syslog_id = 717027, %peer, group, %slot, "Certificate chain failed validation. {source}");
            }
            LoginRefusal::WrongSlot { .. }
            | LoginRefusal::SameKeyInBothSlots
            | LoginRefusal::SeveralUserChains { .. }
            | LoginRefusal::Mca(_) => {
                tracing::info!(target: "syslog", syslog_id = 716039, %peer, group, "Multiple certificate authentication rejected: {reason}");
            }
            LoginRefusal::UsernameDiffers { typed } => {
                tracing::info!(target: "syslog", syslog_id = 113005, "AAA user authentication Rejected : reason = username differs from the certificate : user = {typed} : user IP = {ip}");
            }
            LoginRefusal::AaaFailure { username } => {
                tracing::info!(target: "syslog", syslog_id = 113005, "AAA user authentication Rejected : reason = AAA failure : server = LOCAL : user = {username} : user IP = {ip}");
            }
            LoginRefusal::TrustpointsUnusable(e) => {
                tracing::warn!(group, error = %e, "connection profile has no usable trustpoints");
            }
            other => tracing::info!(group, reason = %other, "login refused"),
        }
    }

    fn login(&self, admission: Admission<'_>, client: ClientInfo) -> Response {
        let config = self.context.config;
        let profile = admission.profile;
        let policy = config.group_policy(&profile.group_policy);
        let ipv4_pools = if profile.ipv4_pools.is_empty() {
            policy.map(|p| p.ipv4_pools.clone()).unwrap_or_default()
        } else {
            profile.ipv4_pools.clone()
        };
        let new = NewSession {
            username: admission.username,
            tunnel_group: profile.name.clone(),
            group_policy: profile.group_policy.clone(),
            ipv4_pools,
            ipv6_pools: profile.ipv6_pools.clone(),
            public_ip: self.connection.peer.ip(),
            tcp_src_port: self.connection.peer.port(),
            tcp_dst_port: self.connection.local.port(),
            auth_mode: admission.auth_mode,
            client,
            machine_fingerprint: admission
                .machine_fingerprint
                .map(MachineFingerprint::from_bytes),
            machine_certificate: admission.machine_certificate,
            user_certificate: admission.user_certificate,
            username_derivation: admission.username_derivation,
            idle_timeout_minutes: policy.and_then(|p| p.idle_timeout_minutes),
            max_connect_time_minutes: policy.and_then(|p| p.max_connect_time_minutes),
            simultaneous_logins: policy.map_or(3, |p| p.simultaneous_logins),
        };
        let username = new.username.clone();
        let grant = match self.headend.sessions.login(new, self.context.now) {
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

#[cfg(test)]
mod tests;
