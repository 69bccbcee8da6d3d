//! The password step: the form, the login waiting for it, and the typed credentials.

use super::{Admission, CertificateIdentity, LoginContext, LoginRefusal, Next};
use crate::aggauth::{AuthReply, LoginForm, SgOpaque, UsernameInput, login_form};
use crate::config::ConnectionProfile;

/// The password form to send; the login waits in the headend as [`PendingPassword`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordForm<'c> {
    pub profile: &'c ConnectionProfile,
    /// Who the certificates say the client is (Client Certificate & AAA).
    pub identity: Option<CertificateIdentity>,
}

impl<'c> PasswordForm<'c> {
    pub(super) fn new(
        profile: &'c ConnectionProfile,
        identity: Option<CertificateIdentity>,
    ) -> Self {
        PasswordForm { profile, identity }
    }

    /// The form, whose `<opaque>` carries `handle`, the key of the waiting login.
    pub fn body(&self, handle: &str, config_hash: &str) -> Vec<u8> {
        let aaa = &self.profile.aaa;
        let username = match &self.identity {
            Some(_) if aaa.hide_username => UsernameInput::Hidden,
            Some(identity) if aaa.prefill_username => UsernameInput::Visible {
                prefill: Some(identity.username.as_str()),
            },
            _ => UsernameInput::Visible { prefill: None },
        };
        login_form(&LoginForm {
            opaque: Some(SgOpaque {
                tunnel_group: &self.profile.name,
                aggauth_handle: handle,
                auth_method: if aaa.requires_mca() {
                    "multiple-cert"
                } else if aaa.uses_certificates() {
                    "single-cert"
                } else {
                    "password"
                },
                config_hash,
            }),
            title: "Login",
            message: Some("Please enter your username and password."),
            username,
            error: None,
        })
    }

    /// What the headend keeps until the credentials come, on a connection whose
    /// machine certificate has `machine_fingerprint`.
    pub fn pending(&self, machine_fingerprint: Option<[u8; 32]>) -> PendingPassword {
        PendingPassword {
            tunnel_group: self.profile.name.clone(),
            machine_fingerprint,
            identity: self.identity.clone(),
        }
    }
}

/// A login waiting for its password, kept by the headend under the form's handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPassword {
    pub tunnel_group: String,
    /// SHA-256 of the machine certificate of the connection that got the form.
    pub machine_fingerprint: Option<[u8; 32]>,
    pub identity: Option<CertificateIdentity>,
}

/// Credentials to check: the headend verifies the password of `username` and answers
/// with [`PasswordCheck::accept`] or [`PasswordCheck::reject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCheck<'c> {
    pub profile: &'c ConnectionProfile,
    pub username: String,
    identity: Option<CertificateIdentity>,
    machine_fingerprint: Option<[u8; 32]>,
}

impl<'c> PasswordCheck<'c> {
    /// The password is right.
    pub fn accept(self) -> Admission<'c> {
        Admission::new(
            self.profile,
            self.identity,
            self.username,
            self.machine_fingerprint,
        )
    }

    /// The password is wrong (or the user unknown).
    pub fn reject(self) -> Next<'c> {
        Next::refuse(
            Some(self.profile),
            LoginRefusal::AaaFailure {
                username: self.username,
            },
        )
    }
}

/// Decides what to do with the credentials of `reply`, for the login `pending` the
/// headend found under the reply's handle (`None`: unknown or expired).
pub fn on_password_reply<'c>(
    context: &LoginContext<'c>,
    pending: Option<PendingPassword>,
    reply: &AuthReply,
) -> Next<'c> {
    let Some(credentials) = &reply.credentials else {
        return Next::refuse(None, LoginRefusal::NoCredentials);
    };
    let Some(pending) = pending else {
        return Next::refuse(None, LoginRefusal::UnknownPendingLogin);
    };
    let Some(profile) = context.config.connection_profile(&pending.tunnel_group) else {
        let path = pending.tunnel_group;
        return Next::refuse(None, LoginRefusal::UnknownProfile { path });
    };
    if pending.machine_fingerprint.is_some()
        && pending.machine_fingerprint != context.machine_fingerprint()
    {
        return Next::refuse(Some(profile), LoginRefusal::MachineCertificateChanged);
    }
    let typed = credentials
        .username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let username = match (&pending.identity, typed) {
        (Some(identity), Some(typed)) if typed != identity.username => {
            let typed = typed.chars().take(128).collect();
            return Next::refuse(Some(profile), LoginRefusal::UsernameDiffers { typed });
        }
        (Some(identity), _) => identity.username.clone(),
        (None, Some(typed)) => typed.to_owned(),
        (None, None) => return Next::refuse(Some(profile), LoginRefusal::NoUsernameTyped),
    };
    Next::CheckPassword(PasswordCheck {
        profile,
        username,
        identity: pending.identity,
        machine_fingerprint: pending.machine_fingerprint,
    })
}
