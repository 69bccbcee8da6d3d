//! Whether an identity certificate chain and a private key make a usable identity: the
//! chain reads and holds a certificate, the key reads, and the key belongs to the chain's
//! first certificate. One check for cert enrollments and per-device certificates.

use std::sync::Arc;

use vpn_core::pki::pem;

/// What is wrong with a chain and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairProblem {
    Chain(String),
    Key(String),
    /// Both read, but the key is not the certificate's.
    Mismatch(String),
}

/// Every problem of `chain_pem` with `key_pem` (`None`: the key is kept elsewhere and
/// only the chain is checked).
pub fn check(chain_pem: &str, key_pem: Option<&str>) -> Vec<PairProblem> {
    let mut problems = Vec::new();
    let chain = match pem::certificates(chain_pem) {
        Ok(certs) if !certs.is_empty() => Some(certs),
        Ok(_) => {
            problems.push(PairProblem::Chain(
                "no certificate found: paste a PEM block starting with -----BEGIN CERTIFICATE-----"
                    .to_owned(),
            ));
            None
        }
        Err(e) => {
            problems.push(PairProblem::Chain(e.to_string()));
            None
        }
    };
    let Some(key_pem) = key_pem else {
        return problems;
    };
    let key = match pem::private_key(key_pem) {
        Ok(key) => Some(key),
        Err(e) => {
            problems.push(PairProblem::Key(format!(
                "the private key could not be read: {e}"
            )));
            None
        }
    };
    if let (Some(chain), Some(key)) = (chain, key) {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let built = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key));
        if let Err(e) = built {
            problems.push(PairProblem::Mismatch(format!(
                "the key and the certificate cannot be used together: {e}"
            )));
        }
    }
    problems
}
