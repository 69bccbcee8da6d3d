//! The password step of Client Certificate & AAA and of AAA Only.

use super::*;
use crate::aggauth::{Credentials, Password};
use crate::config::AuthenticationMethod;
use crate::session::AuthMode;

fn certificate_and_aaa() -> Lab {
    let mut lab = lab().bind_slots();
    let aaa = &mut lab.profile_mut().aaa;
    aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
    aaa.prefill_username = true;
    lab
}

fn credentials(username: Option<&str>) -> AuthReply {
    AuthReply {
        version: None,
        device_id: None,
        opaque: None,
        credentials: Some(Credentials {
            username: username.map(str::to_owned),
            password: Password::new("s3cret"),
        }),
        mca: None,
        group_select: None,
    }
}

/// The MCA part of a Client Certificate & AAA login: the form and the waiting login.
fn form_after_mca<'c>(lab: &'c Lab, chain: &'c [CertificateDer<'static>]) -> PasswordForm<'c> {
    match mca_login(lab, chain, &lab.user, &lab.user, |r| r) {
        Next::PasswordForm(form) => form,
        other => panic!("expected the password form, got {other:?}"),
    }
}

fn check(next: Next<'_>) -> PasswordCheck<'_> {
    match next {
        Next::CheckPassword(check) => check,
        other => panic!("expected a password check, got {other:?}"),
    }
}

#[test]
fn certificate_and_aaa_asks_for_the_password_then_admits_the_certificate_username() {
    let lab = certificate_and_aaa();
    let chain = [der(&lab.machine)];
    let form = form_after_mca(&lab, &chain);
    let body = String::from_utf8(form.body("H4ND1E", "7")).unwrap();
    assert!(
        body.contains("<aggauth-handle>H4ND1E</aggauth-handle>"),
        "{body}"
    );
    assert!(
        body.contains("<auth-method>multiple-cert</auth-method>"),
        "{body}"
    );
    assert!(body.contains("client.example.com"), "prefilled: {body}");

    let context = lab.context(&chain);
    let pending = form.pending(context.machine_fingerprint());
    let check = check(on_password_reply(
        &context,
        Some(pending),
        &credentials(None),
    ));
    assert_eq!(check.username, "client.example.com");
    let admission = check.accept();
    assert_eq!(
        admission.auth_mode,
        AuthMode::MultipleCertificateAndUserPassword
    );
    assert_eq!(
        admission.username_derivation,
        "CN of subject of the second certificate (user)"
    );
    assert!(admission.machine_certificate.is_some());
}

#[test]
fn a_rejected_password_is_an_aaa_failure_naming_the_user() {
    let lab = certificate_and_aaa();
    let chain = [der(&lab.machine)];
    let context = lab.context(&chain);
    let pending = form_after_mca(&lab, &chain).pending(context.machine_fingerprint());
    let next = check(on_password_reply(
        &context,
        Some(pending),
        &credentials(None),
    ))
    .reject();
    let reason = refused(next);
    assert_eq!(
        reason,
        LoginRefusal::AaaFailure {
            username: "client.example.com".into()
        }
    );
    assert_eq!(reason.client_message(), LOGIN_FAILED);
}

#[test]
fn a_typed_username_other_than_the_certificate_is_refused() {
    let lab = certificate_and_aaa();
    let chain = [der(&lab.machine)];
    let context = lab.context(&chain);
    let pending = form_after_mca(&lab, &chain).pending(context.machine_fingerprint());
    let next = on_password_reply(&context, Some(pending), &credentials(Some("mallory")));
    assert_eq!(
        refused(next),
        LoginRefusal::UsernameDiffers {
            typed: "mallory".into()
        }
    );
}

#[test]
fn a_password_reply_on_a_connection_with_another_machine_certificate_is_refused() {
    let lab = certificate_and_aaa();
    let chain = [der(&lab.machine)];
    let pending = form_after_mca(&lab, &chain).pending(lab.context(&chain).machine_fingerprint());
    let other = lab
        .machine_ca
        .issue(&LeafOptions::client("laptop-09"))
        .unwrap();
    let other_chain = [der(&other)];
    let next = on_password_reply(
        &lab.context(&other_chain),
        Some(pending),
        &credentials(None),
    );
    assert_eq!(refused(next), LoginRefusal::MachineCertificateChanged);
}

#[test]
fn aaa_only_takes_the_typed_username_and_refuses_an_unknown_or_expired_login() {
    let mut lab = lab();
    let aaa = &mut lab.profile_mut().aaa;
    aaa.authentication_method = AuthenticationMethod::AaaOnly;
    aaa.enable_multiple_certificate_authentication = false;
    let context = lab.context(&[]);
    let form = match on_init(&context, "/RAVPN-MultiCert", &init(false, false)) {
        Next::PasswordForm(form) => form,
        other => panic!("expected the password form, got {other:?}"),
    };
    assert!(
        String::from_utf8(form.body("h", "1"))
            .unwrap()
            .contains("<auth-method>password</auth-method>")
    );
    let pending = form.pending(None);
    let next = on_password_reply(&context, Some(pending.clone()), &credentials(None));
    assert_eq!(refused(next), LoginRefusal::NoUsernameTyped);
    let admission = check(on_password_reply(
        &context,
        Some(pending),
        &credentials(Some(" alice ")),
    ))
    .accept();
    assert_eq!(admission.username, "alice");
    assert_eq!(admission.username_derivation, "");
    assert_eq!(admission.auth_mode, AuthMode::UserPassword);

    let next = on_password_reply(&context, None, &credentials(Some("alice")));
    assert_eq!(refused(next), LoginRefusal::UnknownPendingLogin);
}
