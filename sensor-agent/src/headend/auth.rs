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
//!
//! Bounds per source (an IPv4 address or an IPv6 /64): at most
//! [`MAX_PENDING_LOGINS_PER_SOURCE`] logins waiting for a password and
//! [`MAX_CHALLENGES_PER_SOURCE`] MCA challenges, besides the global caps; a source over
//! its share gets an error form saying so ([`TOO_MANY_PENDING`]) while others still log
//! in. Password attempts are throttled by a ban score ([`vpn_core::throttle`]) per
//! source ([`SOURCE_BAN`]) and per username and source ([`USER_BAN`]): a flood from one
//! place is refused there ("try again in N seconds") and never locks the user out from
//! elsewhere. The check itself runs in `password` (bounded memory, dummy hash for
//! unknown names). Every attacker-controlled string in a log line goes through
//! [`escaped`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use vpn_core::aggauth::server::{
    Completion, client_cert_request, complete, error_form, group_select_form,
};
use vpn_core::aggauth::{AuthReply, ClientMessage, DeviceId};
use vpn_core::config::{AuthenticationServer, ConnectionProfile, DeviceConfig};
use vpn_core::log_escape::escaped;
use vpn_core::login::{
    self, Admission, LoginContext, LoginRefusal, Next, PendingPassword, TrustSource,
};
use vpn_core::mca::{McaChallenge, take_challenge};
use vpn_core::pki::{TrustStore, TrustStoreError};
use vpn_core::session::ClientInfo;
use vpn_core::throttle::{BanPolicy, BanScore, Banned, SourceQuota, source_of};

use super::http::{Request, Response};
use super::password::PASSWORD_CHECKS;
use super::{Connection, Headend};
use crate::sessions::{LoginError, MachineFingerprint, NewSession};

pub use vpn_core::login::{LOGIN_FAILED, MCA_REQUIRED};

/// How long a login waits for its password.
pub const PENDING_LOGIN_LIFETIME: Duration = Duration::from_secs(120);
/// Most logins waiting for a password at once.
pub const MAX_PENDING_LOGINS: usize = 4096;
/// Most logins waiting for a password from one source.
pub const MAX_PENDING_LOGINS_PER_SOURCE: usize = 32;
/// Most MCA challenges waiting for their answer from one source.
pub const MAX_CHALLENGES_PER_SOURCE: usize = 32;
/// Password attempts from one source: 20 wrong ones in a row, then one every 30 s.
pub const SOURCE_BAN: BanPolicy = BanPolicy {
    threshold: 200,
    wrong_password_points: 10,
    decay_per_point: Duration::from_secs(3),
    max_keys: 65_536,
};
/// Password attempts for one username from one source: 5 wrong ones, then one every 30 s.
pub const USER_BAN: BanPolicy = BanPolicy {
    threshold: 50,
    wrong_password_points: 10,
    decay_per_point: Duration::from_secs(3),
    max_keys: 65_536,
};
/// The answer when the session database is full.
pub const SESSION_LIMIT_REACHED: &str =
    "The device has reached its session limit. Try again later.";
/// The answer to a source with too many logins or challenges waiting.
pub const TOO_MANY_PENDING: &str =
    "Too many logins in progress from your address. Try again later.";

/// The answer to a throttled password attempt.
fn throttled_message(banned: Banned) -> String {
    format!(
        "Too many failed logins from your address. Try again in {} seconds.",
        banned.retry_after.as_secs().max(1)
    )
}

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
            let error = e.to_string();
            tracing::info!(error = %escaped(&error), "unreadable aggregate-auth request");
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
#[derive(Debug)]
pub(crate) struct PendingLogins {
    pending: HashMap<String, PendingLogin>,
    per_source: SourceQuota,
}

impl Default for PendingLogins {
    fn default() -> Self {
        Self {
            pending: HashMap::new(),
            per_source: SourceQuota::new(MAX_PENDING_LOGINS_PER_SOURCE, PENDING_LOGIN_LIFETIME),
        }
    }
}

/// Why a login cannot wait for its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PendingRefused {
    #[error("{MAX_PENDING_LOGINS} logins wait for a password")]
    Full,
    #[error("{MAX_PENDING_LOGINS_PER_SOURCE} logins wait for a password from this source")]
    SourceFull,
}

#[derive(Debug, Clone)]
struct PendingLogin {
    password: PendingPassword,
    /// The client as its `init` described it.
    client: ClientInfo,
    issued_at: Instant,
}

impl PendingLogins {
    fn insert(
        &mut self,
        login: PendingLogin,
        source: IpAddr,
        now: Instant,
    ) -> Result<String, PendingRefused> {
        let quota = &mut self.per_source;
        self.pending.retain(|handle, p| {
            let live = now.saturating_duration_since(p.issued_at) <= PENDING_LOGIN_LIFETIME;
            if !live {
                quota.release(handle);
            }
            live
        });
        if self.pending.len() >= MAX_PENDING_LOGINS {
            return Err(PendingRefused::Full);
        }
        if !self.per_source.has_room(source, now) {
            return Err(PendingRefused::SourceFull);
        }
        let mut handle = [0u8; 16];
        SystemRandom::new()
            .fill(&mut handle)
            .map_err(|_| PendingRefused::Full)?;
        let handle = hex::encode(handle);
        self.per_source
            .admit(source, &handle, now)
            .map_err(|_| PendingRefused::SourceFull)?;
        self.pending.insert(handle.clone(), login);
        Ok(handle)
    }

    fn take(&mut self, handle: &str, now: Instant) -> Option<PendingLogin> {
        let login = self.pending.remove(handle)?;
        self.per_source.release(handle);
        (now.saturating_duration_since(login.issued_at) <= PENDING_LOGIN_LIFETIME).then_some(login)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}

/// The ban scores of password attempts: per source and per username and source.
#[derive(Debug)]
pub(crate) struct LoginThrottle {
    by_source: BanScore<IpAddr>,
    by_user: BanScore<(String, IpAddr)>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            by_source: BanScore::new(SOURCE_BAN),
            by_user: BanScore::new(USER_BAN),
        }
    }
}

impl LoginThrottle {
    /// Charges a password attempt of `username` from `peer` in advance (as if it were
    /// wrong), unless one of its keys is banned.
    fn charge(&mut self, username: &str, peer: IpAddr, now: Instant) -> Result<(), Banned> {
        let source = source_of(peer);
        let user = (username.to_owned(), source);
        self.by_source.check(&source, now)?;
        self.by_user.check(&user, now)?;
        self.by_source
            .charge(&source, SOURCE_BAN.wrong_password_points, now)?;
        self.by_user
            .charge(&user, USER_BAN.wrong_password_points, now)
    }

    /// The attempt was right: its points back, and the username's record cleared.
    fn succeeded(&mut self, username: &str, peer: IpAddr, now: Instant) {
        let source = source_of(peer);
        self.by_source
            .refund(&source, SOURCE_BAN.wrong_password_points, now);
        self.by_user.forget(&(username.to_owned(), source));
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
            if let Some(handle) = reply
                .opaque
                .as_ref()
                .and_then(|o| o.aggauth_handle.as_deref())
            {
                self.headend.challenge_quota().release(handle);
            }
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
                let peer = self.connection.peer.ip();
                let charged = self
                    .headend
                    .throttle()
                    .charge(&check.username, peer, self.instant);
                if let Err(banned) = charged {
                    tracing::info!(target: "syslog", syslog_id = 113005, "AAA user authentication Rejected : reason = too many failed attempts, retry in {} s : server = LOCAL : user = {} : user IP = {peer}", banned.retry_after.as_secs().max(1), escaped(&check.username));
                    return Response::xml(error_form(&throttled_message(banned)));
                }
                if check_password(config, check.profile, &check.username, password) {
                    self.headend
                        .throttle()
                        .succeeded(&check.username, peer, Instant::now());
                    tracing::info!(target: "syslog", syslog_id = 113004, "AAA user authentication Successful : server = LOCAL : user = {}", escaped(&check.username));
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
                let peer = self.connection.peer.ip();
                if !self.headend.challenge_quota().has_room(peer, self.instant) {
                    tracing::info!(
                        limit = MAX_CHALLENGES_PER_SOURCE,
                        "too many MCA challenges waiting from this source; refused"
                    );
                    return Response::xml(error_form(TOO_MANY_PENDING));
                }
                let issued = McaChallenge::new(&profile.name, &config_hash).and_then(|challenge| {
                    let handle = challenge.handle().to_owned();
                    let body = challenge.body().to_vec();
                    self.headend
                        .challenges()
                        .insert(challenge, machine.as_ref(), self.instant)?;
                    Ok((handle, body))
                });
                match issued {
                    Ok((handle, body)) => {
                        // Room was checked just above; a race only lets one more in.
                        let _ = self
                            .headend
                            .challenge_quota()
                            .admit(peer, &handle, self.instant);
                        Response::xml(body)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot issue an MCA challenge");
                        Response::xml(error_form(TOO_MANY_PENDING))
                    }
                }
            }
            Next::PasswordForm(form) => {
                let pending = PendingLogin {
                    password: form.pending(self.context.machine_fingerprint()),
                    client,
                    issued_at: self.instant,
                };
                let source = self.connection.peer.ip();
                let inserted = self
                    .headend
                    .pending_logins()
                    .insert(pending, source, self.instant);
                match inserted {
                    Ok(handle) => Response::xml(form.body(&handle, &config_hash)),
                    Err(refused) => {
                        tracing::warn!(reason = %refused, "login refused: too many waiting for a password");
                        Response::xml(error_form(TOO_MANY_PENDING))
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
                let source = source.to_string();
                tracing::info!(target: "syslog", syslog_id = 717027, %peer, group = %escaped(group), %slot, "Certificate chain failed validation. {}", escaped(&source));
            }
            LoginRefusal::WrongSlot { .. }
            | LoginRefusal::SameKeyInBothSlots
            | LoginRefusal::SeveralUserChains { .. }
            | LoginRefusal::Mca(_) => {
                let reason = reason.to_string();
                tracing::info!(target: "syslog", syslog_id = 716039, %peer, group = %escaped(group), "Multiple certificate authentication rejected: {}", escaped(&reason));
            }
            LoginRefusal::UsernameDiffers { typed } => {
                tracing::info!(target: "syslog", syslog_id = 113005, "AAA user authentication Rejected : reason = username differs from the certificate : user = {} : user IP = {ip}", escaped(typed));
            }
            LoginRefusal::AaaFailure { username } => {
                tracing::info!(target: "syslog", syslog_id = 113005, "AAA user authentication Rejected : reason = AAA failure : server = LOCAL : user = {} : user IP = {ip}", escaped(username));
            }
            LoginRefusal::TrustpointsUnusable(e) => {
                tracing::warn!(group = %escaped(group), error = %e, "connection profile has no usable trustpoints");
            }
            other => {
                let reason = other.to_string();
                tracing::info!(group = %escaped(group), reason = %escaped(&reason), "login refused");
            }
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
                let error = e.to_string();
                tracing::info!(group = %profile.name, error = %escaped(&error), "login refused by the session database");
                let message = match e {
                    LoginError::CapacityReached { .. } => SESSION_LIMIT_REACHED,
                    _ => LOGIN_FAILED,
                };
                return Response::xml(error_form(message));
            }
        };
        let span = super::session_span(grant.index, &username);
        let _in_session = span.enter();
        tracing::info!(group = %profile.name, "login accepted");
        tracing::info!(target: "syslog", syslog_id = 716038, "Group <{}> User <{}> IP <{}> Authentication: successful, Session Type: WebVPN.", escaped(&profile.group_policy), escaped(&username), self.connection.peer.ip());
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
            format!("webvpn={}; path=/; Secure; HttpOnly", grant.cookie.expose()),
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
        // The same time as a known name.
        let like = config.local_users.first().map(|u| u.password_hash.as_str());
        PASSWORD_CHECKS.verify_dummy(like, password.as_bytes());
        return false;
    };
    match PASSWORD_CHECKS.verify(&user.password_hash, password.as_bytes()) {
        Ok(matches) => matches,
        Err(e) => {
            tracing::warn!(user = %escaped(username), error = %e, "local user's password hash cannot be checked");
            false
        }
    }
}

#[cfg(test)]
mod tests;
