//! The steps of the aggregate-auth exchange: `init` and the MCA answer.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::{
    Admission, CertificateIdentity, LoginRefusal, PasswordCheck, PasswordForm, Selection,
    TrustSource, evaluate_certificates, select_profile,
};
use crate::aggauth::{AuthReply, Init};
use crate::config::{ConnectionProfile, DeviceConfig};
use crate::mca::{McaError, PendingChallenge, verify_answer};
use crate::pki::{TrustStore, fingerprint_sha256};

/// What one request is decided against.
pub struct LoginContext<'c> {
    pub config: &'c DeviceConfig,
    pub trust: &'c dyn TrustSource,
    /// The client certificates of this TLS connection, machine certificate first;
    /// empty when the client sent none.
    pub peer_chain: &'c [CertificateDer<'static>],
    /// Certificates are valid at this time.
    pub now: OffsetDateTime,
}

impl LoginContext<'_> {
    /// SHA-256 of this connection's machine certificate.
    pub fn machine_fingerprint(&self) -> Option<[u8; 32]> {
        self.peer_chain
            .first()
            .map(|der| fingerprint_sha256(der.as_ref()))
    }
}

/// What the headend does next.
#[derive(Debug)]
pub enum Next<'c> {
    /// Answer with the group-select form offering these aliases.
    GroupSelect(Vec<&'c str>),
    /// Answer with `<client-cert-request/>`: the client retries with its certificate.
    ClientCertificateRequest,
    /// Issue an MCA challenge for this profile, bound to the TLS machine certificate.
    McaChallenge { profile: &'c ConnectionProfile },
    /// Keep the login waiting and answer with the password form.
    PasswordForm(PasswordForm<'c>),
    /// Check the typed password, then answer with [`PasswordCheck::accept`] or
    /// [`PasswordCheck::reject`].
    CheckPassword(PasswordCheck<'c>),
    /// Create the session and answer `complete`.
    Admit(Admission<'c>),
    /// Answer with an error form of [`LoginRefusal::client_message`].
    Refuse {
        /// The connection profile, when one was selected.
        profile: Option<&'c str>,
        reason: LoginRefusal,
    },
}

impl<'c> Next<'c> {
    pub(super) fn refuse(profile: Option<&'c ConnectionProfile>, reason: LoginRefusal) -> Self {
        Next::Refuse {
            profile: profile.map(|p| p.name.as_str()),
            reason,
        }
    }
}

/// Decides the answer to an `init` POSTed to `path`.
pub fn on_init<'c>(context: &LoginContext<'c>, path: &str, init: &Init) -> Next<'c> {
    let profile = match select_profile(
        context.config,
        path,
        init.group_access.as_deref(),
        init.group_select.as_deref(),
    ) {
        Selection::Profile(profile) => profile,
        Selection::AskGroup(aliases) => return Next::GroupSelect(aliases),
        Selection::Refused => {
            let path = path.chars().take(128).collect();
            return Next::refuse(None, LoginRefusal::UnknownProfile { path });
        }
    };
    let aaa = &profile.aaa;
    if !aaa.uses_certificates() {
        return Next::PasswordForm(PasswordForm::new(profile, None));
    }
    if context.peer_chain.is_empty() {
        if init.client_cert_fail {
            return Next::refuse(Some(profile), LoginRefusal::NoClientCertificate);
        }
        return Next::ClientCertificateRequest;
    }
    if aaa.requires_mca() && !init.offers_multiple_cert() {
        return Next::refuse(Some(profile), LoginRefusal::McaNotOffered);
    }
    let store = match trust(context, profile) {
        Ok(store) => store,
        Err(refused) => return *refused,
    };
    if aaa.requires_mca() {
        // The machine certificate is checked now, so a refused one gets no challenge.
        let machine = super::slots::validate(
            &store,
            profile,
            super::Slot::Machine,
            context.peer_chain,
            context.now,
        );
        return match machine {
            Ok(_) => Next::McaChallenge { profile },
            Err(reason) => Next::refuse(Some(profile), reason),
        };
    }
    match evaluate_certificates(profile, &store, context.peer_chain, None, context.now) {
        Ok(verdict) => after_certificates(context, profile, verdict.identity),
        Err(reason) => Next::refuse(Some(profile), reason),
    }
}

/// Decides the answer to an MCA auth-reply, given the challenge it names as the
/// headend took it from its store (taking it is what makes challenges single use).
pub fn on_mca_reply<'c>(
    context: &LoginContext<'c>,
    challenge: Result<PendingChallenge, McaError>,
    reply: &AuthReply,
) -> Next<'c> {
    let pending = match challenge {
        Ok(pending) => pending,
        Err(e) => return Next::refuse(None, LoginRefusal::Mca(e)),
    };
    let profile = context
        .config
        .connection_profile(pending.challenge.tunnel_group())
        .filter(|p| p.aaa.requires_mca());
    let Some(profile) = profile else {
        let profile = pending.challenge.tunnel_group().to_owned();
        return Next::refuse(None, LoginRefusal::ProfileNoLongerMca { profile });
    };
    let user_chains = reply.mca.as_ref().map_or(0, |mca| mca.user_chains);
    if user_chains > 1 {
        let reason = LoginRefusal::SeveralUserChains { count: user_chains };
        return Next::refuse(Some(profile), reason);
    }
    let machine = context.peer_chain.first().map(|der| der.as_ref());
    let verified = match verify_answer(pending, reply, machine) {
        Ok(verified) => verified,
        Err(e) => return Next::refuse(Some(profile), LoginRefusal::Mca(e)),
    };
    let store = match trust(context, profile) {
        Ok(store) => store,
        Err(refused) => return *refused,
    };
    let user = verified.user_bag.certificates();
    match evaluate_certificates(
        profile,
        &store,
        context.peer_chain,
        Some(&user),
        context.now,
    ) {
        Ok(verdict) => after_certificates(context, profile, verdict.identity),
        Err(reason) => Next::refuse(Some(profile), reason),
    }
}

/// Certificates passed: ask for the password if the profile also uses AAA, else admit.
fn after_certificates<'c>(
    context: &LoginContext<'c>,
    profile: &'c ConnectionProfile,
    identity: CertificateIdentity,
) -> Next<'c> {
    if profile.aaa.uses_aaa() {
        return Next::PasswordForm(PasswordForm::new(profile, Some(identity)));
    }
    let username = identity.username.clone();
    let machine = context.machine_fingerprint();
    Next::Admit(Admission::new(profile, Some(identity), username, machine))
}

/// The profile's trust store, or the refusal to answer with.
fn trust<'c>(
    context: &LoginContext<'c>,
    profile: &'c ConnectionProfile,
) -> Result<std::sync::Arc<TrustStore>, Box<Next<'c>>> {
    context
        .trust
        .trust_store(context.config, profile)
        .map_err(|e| {
            Box::new(Next::refuse(
                Some(profile),
                LoginRefusal::TrustpointsUnusable(e),
            ))
        })
}
