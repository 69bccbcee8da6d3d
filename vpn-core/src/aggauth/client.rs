//! Messages the client POSTs: `init`, `auth-reply` and `logout` (protocol.md §2.2, §2.3, §2.5).

use std::fmt;

use super::AggAuthError;
use super::tree::{Element, read_tree};

/// A parsed client `config-auth` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// `type="init"`: the first request of a login.
    Init(Init),
    /// `type="auth-reply"`: an answer to a form or to the MCA challenge.
    AuthReply(AuthReply),
    /// `type="logout"`.
    Logout,
}

/// The client's `init` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// `<version who="vpn">`, e.g. `v9.01-3`.
    pub version: Option<String>,
    /// `<device-id>`, e.g. `linux-64`, with its attributes.
    pub device_id: Option<DeviceId>,
    /// Every `<capabilities><auth-method>` in order, unknown ones included.
    pub auth_methods: Vec<String>,
    /// `<group-access>`: the URL the user typed.
    pub group_access: Option<String>,
    /// `<group-select>`: the alias picked from a `group_list` select.
    pub group_select: Option<String>,
    /// `<client-cert-fail/>` present: the client gives up on its machine certificate.
    pub client_cert_fail: bool,
}

impl Init {
    /// Whether the client advertised `multiple-cert` (it was given `--mca-certificate`).
    pub fn offers_multiple_cert(&self) -> bool {
        self.auth_methods
            .iter()
            .any(|method| method == "multiple-cert")
    }
}

/// `<device-id>` text and attributes (`platform-version`, `unique-id`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// The client's `auth-reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthReply {
    pub version: Option<String>,
    pub device_id: Option<DeviceId>,
    /// The `<opaque is-for="sg">` block the client echoed.
    pub opaque: Option<Opaque>,
    /// `<auth><username>/<password>` from a login form.
    pub credentials: Option<Credentials>,
    /// The MCA answer (`<client-cert-chain>` elements).
    pub mca: Option<McaReply>,
    /// Top-level `<group-select>`.
    pub group_select: Option<String>,
}

/// The echoed server state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opaque {
    pub aggauth_handle: Option<String>,
    pub tunnel_group: Option<String>,
    /// The whole `<opaque ...>...</opaque>` element exactly as received.
    pub raw: String,
}

/// Username and password typed into a login form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Absent when the form had no username input (username taken from the certificate).
    pub username: Option<String>,
    pub password: Password,
}

/// A password; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The two `<client-cert-chain>` elements of an MCA auth-reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McaReply {
    /// The `1M` chain holds `<client-cert-sent-via-protocol/>` (machine cert = the TLS one).
    pub machine_sent_via_protocol: bool,
    /// `1U` `<client-cert cert-format="pkcs7">`, all whitespace removed.
    pub user_pkcs7_base64: String,
    /// `1U` `<client-cert-auth-signature>`, all whitespace removed.
    pub signature_base64: String,
    /// `hash-algorithm-chosen` of the signature, as sent (checked later).
    pub hash_algorithm_chosen: String,
    /// How many `1U` chains the reply carries; the fields above are the first one's.
    /// More than one is ambiguous and refused by the login decision.
    pub user_chains: usize,
}

impl ClientMessage {
    /// Parses a request body, enforcing the limits of [`super::limits`].
    pub fn parse(body: &[u8]) -> Result<ClientMessage, AggAuthError> {
        let root = read_tree(body)?;
        if root.name != "config-auth" {
            return Err(AggAuthError::NotConfigAuth(short(&root.name)));
        }
        match root.attribute("type") {
            Some("init") => Ok(ClientMessage::Init(init(&root))),
            Some("auth-reply") => auth_reply(&root, body).map(ClientMessage::AuthReply),
            Some("logout") => Ok(ClientMessage::Logout),
            Some(other) => Err(AggAuthError::UnknownType(short(other))),
            None => Err(AggAuthError::UnknownType(String::new())),
        }
    }
}

fn init(root: &Element) -> Init {
    Init {
        version: text_of(root, "version"),
        device_id: device_id(root),
        auth_methods: root
            .child("capabilities")
            .map(|caps| {
                caps.children_named("auth-method")
                    .map(|method| method.trimmed_text().to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        group_access: text_of(root, "group-access"),
        group_select: text_of(root, "group-select"),
        client_cert_fail: root.child("client-cert-fail").is_some(),
    }
}

fn auth_reply(root: &Element, body: &[u8]) -> Result<AuthReply, AggAuthError> {
    let auth = root.child("auth");
    Ok(AuthReply {
        version: text_of(root, "version"),
        device_id: device_id(root),
        opaque: root.child("opaque").map(|opaque| Opaque {
            aggauth_handle: text_of(opaque, "aggauth-handle"),
            tunnel_group: text_of(opaque, "tunnel-group"),
            raw: body
                .get(opaque.span.clone())
                .map(|raw| String::from_utf8_lossy(raw).into_owned())
                .unwrap_or_default(),
        }),
        credentials: auth.and_then(credentials),
        mca: auth.map(mca_reply).transpose()?.flatten(),
        group_select: text_of(root, "group-select"),
    })
}

fn credentials(auth: &Element) -> Option<Credentials> {
    let password = auth.child("password")?;
    Some(Credentials {
        username: text_of(auth, "username"),
        password: Password::new(password.text.clone()),
    })
}

fn mca_reply(auth: &Element) -> Result<Option<McaReply>, AggAuthError> {
    let chains: Vec<&Element> = auth.children_named("client-cert-chain").collect();
    if chains.is_empty() {
        return Ok(None);
    }
    let store = |name: &str| {
        chains
            .iter()
            .copied()
            .find(|chain| chain.attribute("cert-store") == Some(name))
    };
    let machine_sent_via_protocol =
        store("1M").is_some_and(|chain| chain.child("client-cert-sent-via-protocol").is_some());
    let user = store("1U").ok_or(AggAuthError::IncompleteMcaReply("no 1U client-cert-chain"))?;
    let user_chains = chains
        .iter()
        .filter(|chain| chain.attribute("cert-store") == Some("1U"))
        .count();
    let cert = user
        .child("client-cert")
        .ok_or(AggAuthError::IncompleteMcaReply(
            "no client-cert in the 1U chain",
        ))?;
    match cert.attribute("cert-format") {
        Some("pkcs7") => {}
        other => {
            return Err(AggAuthError::UnsupportedCertFormat(short(
                other.unwrap_or_default(),
            )));
        }
    }
    let signature =
        user.child("client-cert-auth-signature")
            .ok_or(AggAuthError::IncompleteMcaReply(
                "no client-cert-auth-signature in the 1U chain",
            ))?;
    Ok(Some(McaReply {
        machine_sent_via_protocol,
        user_pkcs7_base64: strip_whitespace(&cert.text),
        signature_base64: strip_whitespace(&signature.text),
        hash_algorithm_chosen: signature
            .attribute("hash-algorithm-chosen")
            .unwrap_or_default()
            .to_owned(),
        user_chains,
    }))
}

fn device_id(root: &Element) -> Option<DeviceId> {
    root.child("device-id").map(|device| DeviceId {
        name: device.trimmed_text().to_owned(),
        attributes: device.attributes.clone(),
    })
}

fn text_of(parent: &Element, name: &str) -> Option<String> {
    parent
        .child(name)
        .map(|element| element.trimmed_text().to_owned())
}

fn strip_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

/// At most 64 characters of a client-supplied value, for error messages.
fn short(value: &str) -> String {
    value.chars().take(64).collect()
}
