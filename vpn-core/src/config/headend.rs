use serde::{Deserialize, Serialize};

/// Listener settings of the AnyConnect headend (FMC: Access Interfaces tab).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Headend {
    /// Name of the access interface, rendered as `enable <ifname>` under `webvpn`.
    #[serde(default = "default_access_interface")]
    pub access_interface: String,
    /// Web Access Port Number (TLS), default 443.
    #[serde(default = "default_port")]
    pub ssl_port: u16,
    /// Enable DTLS on the access interface.
    #[serde(default = "default_true")]
    pub dtls_enabled: bool,
    /// DTLS Port Number (UDP), default 443.
    #[serde(default = "default_port")]
    pub dtls_port: u16,
    /// Allow users to select connection profile while logging in (`tunnel-group-list enable`).
    #[serde(default = "default_true")]
    pub allow_profile_selection: bool,
    /// SSL Global Identity Certificate.
    pub identity: IdentityCertificate,
}

/// The headend's TLS server certificate (a cert-enrollment trustpoint with a key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCertificate {
    /// Trustpoint name, rendered as `ssl trust-point <name> <ifname>`.
    pub trustpoint: String,
    /// Leaf first, then intermediates, PEM.
    pub certificate_chain_pem: String,
    pub private_key_pem: PrivateKeyPem,
}

/// A PEM private key. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivateKeyPem(pub String);

impl PrivateKeyPem {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

fn default_access_interface() -> String {
    "outside".to_owned()
}

fn default_port() -> u16 {
    443
}

fn default_true() -> bool {
    true
}
