//! Messages the server answers with (protocol.md §2.3, §2.5, §2.6).
//!
//! Each function returns the exact body bytes. Every interpolated value is XML-escaped,
//! and characters XML 1.0 forbids (NUL and other C0 controls) become U+FFFD, so a value
//! can neither break the document nor cut short the bytes the client signs.
//! Layout: one element per line, like the responses verified against openconnect 9.01.

use std::borrow::Cow;

use quick_xml::escape::escape;

use crate::mca::McaHash;

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const AUTH_REQUEST_OPEN: &str =
    "<config-auth client=\"vpn\" type=\"auth-request\" aggregate-auth-version=\"2\">\n";
const COMPLETE_OPEN: &str =
    "<config-auth client=\"vpn\" type=\"complete\" aggregate-auth-version=\"2\">\n";
const CLOSE: &str = "</config-auth>\n";

/// The `<opaque is-for="sg">` block the client echoes back verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SgOpaque<'a> {
    pub tunnel_group: &'a str,
    pub aggauth_handle: &'a str,
    /// `multiple-cert` for MCA, `single-cert`/`password` otherwise.
    pub auth_method: &'a str,
    pub config_hash: &'a str,
}

/// The MCA challenge (§2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McaRequest<'a> {
    pub opaque: SgOpaque<'a>,
    pub hashes: &'a [McaHash],
    /// The nonce, as hex.
    pub random_hex: &'a str,
}

/// How the username appears in a login form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameInput<'a> {
    /// No username input: it comes from the certificate ("hide username"); password only.
    Hidden,
    /// A text input `username` (openconnect ignores `value`; the client must pass `-u`).
    Visible { prefill: Option<&'a str> },
}

/// A username/password form: Certificate & AAA after MCA, or AAA only
/// (`UsernameInput::Visible { prefill: None }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginForm<'a> {
    pub opaque: Option<SgOpaque<'a>>,
    pub title: &'a str,
    pub message: Option<&'a str>,
    pub username: UsernameInput<'a>,
    /// Shown above the inputs; the client re-prompts (interactive only).
    pub error: Option<&'a str>,
}

/// The successful end of a login (§2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion<'a> {
    pub session_id: &'a str,
    /// Becomes the client's `webvpn` cookie.
    pub session_token: &'a str,
    /// Printed by the client after login.
    pub banner: Option<&'a str>,
    /// Hex SHA-1 of the server certificate DER.
    pub server_cert_hash: &'a str,
}

/// The MCA auth-request, exactly in the shape of protocol.md §2.5 (with `<cert-authenticated>`).
pub fn mca_auth_request(request: &McaRequest<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(700);
    out.push_str(XML_DECL);
    out.push_str(AUTH_REQUEST_OPEN);
    push_opaque(&mut out, &request.opaque);
    out.push_str("<multiple-client-cert-request>\n");
    for hash in request.hashes {
        push_element(&mut out, "hash-algorithm", hash.as_str());
    }
    out.push_str("</multiple-client-cert-request>\n");
    push_element(&mut out, "random", request.random_hex);
    out.push_str("<cert-authenticated></cert-authenticated>\n");
    out.push_str(CLOSE);
    out.into_bytes()
}

/// Asks for a machine certificate the TLS connection did not carry; the client answers
/// with `<client-cert-fail/>` (§2.4).
pub fn client_cert_request() -> Vec<u8> {
    let mut out = String::new();
    out.push_str(XML_DECL);
    out.push_str(AUTH_REQUEST_OPEN);
    out.push_str("<client-cert-request></client-cert-request>\n");
    out.push_str(CLOSE);
    out.into_bytes()
}

/// A username/password or password-only form.
pub fn login_form(form: &LoginForm<'_>) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(XML_DECL);
    out.push_str(AUTH_REQUEST_OPEN);
    if let Some(opaque) = &form.opaque {
        push_opaque(&mut out, opaque);
    }
    out.push_str("<auth id=\"main\">\n");
    push_element(&mut out, "title", form.title);
    if let Some(message) = form.message {
        push_element(&mut out, "message", message);
    }
    if let Some(error) = form.error {
        push_element(&mut out, "error", error);
    }
    out.push_str("<form method=\"post\">\n");
    if let UsernameInput::Visible { prefill } = form.username {
        out.push_str("<input type=\"text\" name=\"username\" label=\"Username:\"");
        if let Some(value) = prefill {
            out.push_str(" value=\"");
            out.push_str(&xml_escape(value));
            out.push('"');
        }
        out.push_str("></input>\n");
    }
    out.push_str("<input type=\"password\" name=\"password\" label=\"Password:\"></input>\n");
    out.push_str("</form>\n</auth>\n");
    out.push_str(CLOSE);
    out.into_bytes()
}

/// A form with `<select name="group_list">` of connection-profile aliases; the client
/// re-sends `init` with `<group-select>` (§2.2).
pub fn group_select_form(aliases: &[&str], error: Option<&str>) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(XML_DECL);
    out.push_str(AUTH_REQUEST_OPEN);
    out.push_str("<auth id=\"main\">\n");
    push_element(&mut out, "title", "Login");
    push_element(&mut out, "message", "Please select a group.");
    if let Some(error) = error {
        push_element(&mut out, "error", error);
    }
    out.push_str("<form method=\"post\">\n<select name=\"group_list\" label=\"GROUP:\">\n");
    for alias in aliases {
        let alias = xml_escape(alias);
        out.push_str("<option value=\"");
        out.push_str(&alias);
        out.push_str("\">");
        out.push_str(&alias);
        out.push_str("</option>\n");
    }
    out.push_str("</select>\n</form>\n</auth>\n");
    out.push_str(CLOSE);
    out.into_bytes()
}

/// The error text openconnect treats as a rejected certificate: it reports a certificate
/// error and retries with a legacy `GET` of the original path, which the headend should
/// answer with another [`error_form`] (whose text is then printed) or a 404 (§2.5).
pub const CERTIFICATE_VALIDATION_FAILURE: &str = "Certificate Validation Failure";

/// A form with only an error: the client prints the text, then "Failed to complete
/// authentication", and exits with status 1 (§2.3). No inputs, so no retry.
pub fn error_form(message: &str) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(XML_DECL);
    out.push_str(AUTH_REQUEST_OPEN);
    out.push_str("<auth id=\"main\">\n");
    push_element(&mut out, "error", message);
    out.push_str("</auth>\n");
    out.push_str(CLOSE);
    out.into_bytes()
}

/// `type="complete"` with the session token (§2.6).
pub fn complete(completion: &Completion<'_>) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(XML_DECL);
    out.push_str(COMPLETE_OPEN);
    push_element(&mut out, "session-id", completion.session_id);
    push_element(&mut out, "session-token", completion.session_token);
    out.push_str("<auth id=\"success\">\n");
    if let Some(banner) = completion.banner {
        push_element(&mut out, "banner", banner);
    }
    out.push_str("<message id=\"0\" param1=\"\" param2=\"\"></message>\n</auth>\n");
    out.push_str("<capabilities><crypto-supported>ssl-dhe</crypto-supported></capabilities>\n");
    out.push_str("<config client=\"vpn\" type=\"private\"><vpn-base-config>\n");
    push_element(&mut out, "server-cert-hash", completion.server_cert_hash);
    out.push_str("</vpn-base-config><opaque is-for=\"vpn-client\"></opaque></config>\n");
    out.push_str(CLOSE);
    out.into_bytes()
}

fn push_opaque(out: &mut String, opaque: &SgOpaque<'_>) {
    out.push_str("<opaque is-for=\"sg\">\n");
    push_element(out, "tunnel-group", opaque.tunnel_group);
    push_element(out, "aggauth-handle", opaque.aggauth_handle);
    push_element(out, "auth-method", opaque.auth_method);
    push_element(out, "config-hash", opaque.config_hash);
    out.push_str("</opaque>\n");
}

fn push_element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&xml_escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// `value` escaped for XML text and attribute values, with forbidden characters replaced.
fn xml_escape(value: &str) -> Cow<'_, str> {
    let allowed = |c: char| !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    if value.chars().all(allowed) {
        return escape(value);
    }
    let cleaned: String = value
        .chars()
        .map(|c| {
            if allowed(c) {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect();
    Cow::Owned(escape(&cleaned).into_owned())
}
