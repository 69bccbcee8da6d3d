use serde::{Deserialize, Serialize};

/// A CA-only trustpoint (FMC cert enrollment, manual, CA only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trustpoint {
    pub name: String,
    /// One or more CA certificates, PEM.
    pub ca_certificates_pem: String,
    #[serde(default)]
    pub validation_usage: ValidationUsage,
    /// Skip Check for CA flag in basic constraints of the CA Certificate (`no ca-check`).
    #[serde(default)]
    pub skip_ca_flag_check: bool,
    /// Require EKU clientAuth on client certificates (leaves without EKU are refused).
    #[serde(default = "default_true")]
    pub require_client_auth_eku: bool,
    #[serde(default)]
    pub revocation: Revocation,
}

/// FMC `validationUsage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationUsage {
    pub ssl_client: bool,
    pub ssl_server: bool,
    pub ipsec_client: bool,
}

impl Default for ValidationUsage {
    fn default() -> Self {
        Self {
            ssl_client: true,
            ssl_server: false,
            ipsec_client: false,
        }
    }
}

/// Revocation checking of certificates issued under this trustpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum Revocation {
    #[default]
    None,
    /// CRLs carried in the document (PEM `X509 CRL` blocks), one per issuing CA.
    Crl { crls_pem: String },
}

fn default_true() -> bool {
    true
}
