//! The manager's side of the management channel: registering a sensor, then calling
//! its management API over mutual TLS (deploy, status, sessions, session events).
//! The documents and the proofs are `vpn_core::channel`'s.

mod tls;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::channel::{
    ChannelError, DeployResult, NatId, ProofError, RegistrationChallenge, RegistrationKey,
    RegistrationRequest, RegistrationResponse, SensorStatus, SessionList, TerminateRequest,
    TerminateResult, manager_proof, paths, verify_sensor_proof,
};
use vpn_core::pki::pem;
use vpn_core::session::EventPage;

use crate::pki::{CaError, InternalCa, IssuedIdentity};

/// Longest wait for one call (a deploy of thousands of profiles included).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the TCP and TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to a sensor failed.
#[derive(Debug, thiserror::Error)]
pub enum SensorClientError {
    #[error("TLS settings")]
    Tls(#[source] rustls::Error),
    #[error("channel certificates: {0}")]
    Certificates(String),
    #[error("the internal CA")]
    Ca(#[from] CaError),
    #[error("cannot reach the sensor at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the sensor refused ({status}): {}", .error.message)]
    Refused { status: u16, error: ChannelError },
    #[error("the sensor answered {url} with something unexpected ({status}): {detail}")]
    UnexpectedAnswer {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("the sensor did not prove the registration key; it is not the device you configured")]
    SensorProof(#[source] ProofError),
    #[error("the sensor presented another certificate between the two registration calls")]
    CertificateChanged,
    #[error("the sensor presented no certificate")]
    NoCertificate,
}

impl SensorClientError {
    /// The sensor's refusal code (`not-newer`, `invalid-config`, ...), if it refused.
    pub fn refusal_code(&self) -> Option<&str> {
        match self {
            Self::Refused { error, .. } => Some(&error.error),
            _ => None,
        }
    }
}

/// Where a sensor's management API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorEndpoint {
    pub host: String,
    pub port: u16,
}

impl SensorEndpoint {
    fn url(&self, path: &str) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("https://[{}]:{}{path}", self.host, self.port)
        } else {
            format!("https://{}:{}{path}", self.host, self.port)
        }
    }
}

/// What the manager offers a sensor at registration.
#[derive(Debug)]
pub struct RegistrationOffer<'a> {
    pub endpoint: &'a SensorEndpoint,
    pub key: &'a RegistrationKey,
    pub nat_id: Option<&'a NatId>,
    pub device_id: Uuid,
    pub device_name: &'a str,
    pub manager_name: &'a str,
    pub ca: &'a InternalCa,
    /// The manager's channel identity, issued by `ca`.
    pub manager_identity: &'a IssuedIdentity,
}

/// A sensor that accepted the registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSensor {
    pub device_id: Uuid,
    /// The certificate issued to it; pin it in [`SensorClient::new`].
    pub sensor_certificate_pem: String,
    pub agent_version: String,
    pub hostname: String,
}

/// Registers the sensor at `offer.endpoint`: takes a challenge, proves the key bound
/// to the certificate the sensor presents, hands over the channel certificates, and
/// checks the sensor's proof in return.
pub async fn register(
    offer: &RegistrationOffer<'_>,
    now: OffsetDateTime,
) -> Result<RegisteredSensor, SensorClientError> {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls::registration_config()?)
        .tls_info(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| SensorClientError::Certificates(e.to_string()))?;
    let url = offer.endpoint.url(paths::REGISTRATION_CHALLENGE);
    let answer = send(http.request(Method::POST, &url), &url).await?;
    let presented = peer_certificate(&answer)?;
    let challenge: RegistrationChallenge = read_json(answer, &url).await?;
    let challenge_bytes =
        hex::decode(&challenge.challenge).map_err(|_| SensorClientError::UnexpectedAnswer {
            url: url.clone(),
            status: 200,
            detail: "the challenge is not hex".to_owned(),
        })?;
    let sensor_certificate_pem =
        offer
            .ca
            .issue_sensor_certificate(&presented, offer.device_id, offer.device_name, now)?;
    let mut request = RegistrationRequest {
        challenge: challenge.challenge,
        device_id: offer.device_id,
        device_name: offer.device_name.to_owned(),
        nat_id: offer.nat_id.map(|id| id.as_str().to_owned()),
        manager_name: offer.manager_name.to_owned(),
        ca_certificate_pem: offer.ca.certificate_pem().to_owned(),
        manager_certificate_pem: offer.manager_identity.certificate_pem.clone(),
        sensor_certificate_pem: sensor_certificate_pem.clone(),
        manager_proof: String::new(),
    };
    request.manager_proof = manager_proof(offer.key, &challenge_bytes, &presented, &request);
    let url = offer.endpoint.url(paths::REGISTRATION);
    let answer = send(http.post(&url).json(&request), &url).await?;
    if peer_certificate(&answer)? != presented {
        return Err(SensorClientError::CertificateChanged);
    }
    let response: RegistrationResponse = read_json(answer, &url).await?;
    verify_sensor_proof(
        offer.key,
        &challenge_bytes,
        &request.manager_proof,
        &response.sensor_proof,
    )
    .map_err(SensorClientError::SensorProof)?;
    if response.device_id != offer.device_id {
        return Err(SensorClientError::UnexpectedAnswer {
            url,
            status: 200,
            detail: format!(
                "the sensor registered as {} instead of {}",
                response.device_id, offer.device_id
            ),
        });
    }
    Ok(RegisteredSensor {
        device_id: response.device_id,
        sensor_certificate_pem,
        agent_version: response.agent_version,
        hostname: response.hostname,
    })
}

/// A registered sensor's management API, over mutual TLS.
#[derive(Debug, Clone)]
pub struct SensorClient {
    http: reqwest::Client,
    endpoint: SensorEndpoint,
}

impl SensorClient {
    /// A client that presents `manager_identity` and accepts only
    /// `sensor_certificate_pem` chained to `ca_certificate_pem`.
    pub fn new(
        endpoint: SensorEndpoint,
        ca_certificate_pem: &str,
        manager_identity: &IssuedIdentity,
        sensor_certificate_pem: &str,
    ) -> Result<Self, SensorClientError> {
        let first = |what: &str, text: &str| {
            pem::certificates(text)
                .ok()
                .and_then(|certs| certs.into_iter().next())
                .ok_or_else(|| SensorClientError::Certificates(format!("no {what} certificate")))
        };
        let ca = first("CA", ca_certificate_pem)?;
        let sensor = first("sensor", sensor_certificate_pem)?;
        let manager_chain: Vec<CertificateDer<'static>> =
            pem::certificates(&manager_identity.certificate_pem)
                .map_err(|e| SensorClientError::Certificates(format!("manager: {e}")))?;
        let manager_key = pem::private_key(&manager_identity.private_key_pem)
            .map_err(|e| SensorClientError::Certificates(format!("manager key: {e}")))?;
        let config = tls::channel_config(ca, sensor, manager_chain, manager_key)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| SensorClientError::Certificates(e.to_string()))?;
        Ok(Self { http, endpoint })
    }

    pub fn endpoint(&self) -> &SensorEndpoint {
        &self.endpoint
    }

    /// Pushes a configuration document (`DeviceConfig` JSON).
    pub async fn deploy(&self, document: Vec<u8>) -> Result<DeployResult, SensorClientError> {
        let url = self.endpoint.url(paths::CONFIG);
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(document);
        read_json(send(request, &url).await?, &url).await
    }

    pub async fn status(&self) -> Result<SensorStatus, SensorClientError> {
        self.get(paths::STATUS).await
    }

    pub async fn sessions(&self) -> Result<SessionList, SensorClientError> {
        self.get(paths::SESSIONS).await
    }

    pub async fn terminate(
        &self,
        request: &TerminateRequest,
    ) -> Result<TerminateResult, SensorClientError> {
        self.post(paths::TERMINATE_SESSIONS, request).await
    }

    /// Session events from `cursor` on, at most `limit`.
    pub async fn session_events(
        &self,
        cursor: u64,
        limit: u32,
    ) -> Result<EventPage, SensorClientError> {
        self.get(&format!(
            "{}?cursor={cursor}&limit={limit}",
            paths::SESSION_EVENTS
        ))
        .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, SensorClientError> {
        let url = self.endpoint.url(path);
        read_json(send(self.http.get(&url), &url).await?, &url).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, SensorClientError> {
        let url = self.endpoint.url(path);
        read_json(send(self.http.post(&url).json(body), &url).await?, &url).await
    }
}

/// Sends; a refusal with a [`ChannelError`] body becomes [`SensorClientError::Refused`].
async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, SensorClientError> {
    let answer = request
        .send()
        .await
        .map_err(|e| SensorClientError::Unreachable {
            url: url.to_owned(),
            reason: error_chain(&e),
        })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(answer);
    }
    let body = answer.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ChannelError>(&body) {
        Ok(error) => Err(SensorClientError::Refused {
            status: status.as_u16(),
            error,
        }),
        Err(_) => Err(SensorClientError::UnexpectedAnswer {
            url: url.to_owned(),
            status: status.as_u16(),
            detail: String::from_utf8_lossy(&body).chars().take(200).collect(),
        }),
    }
}

async fn read_json<T: DeserializeOwned>(
    answer: reqwest::Response,
    url: &str,
) -> Result<T, SensorClientError> {
    let status = answer.status();
    let body = answer
        .bytes()
        .await
        .map_err(|e| SensorClientError::Unreachable {
            url: url.to_owned(),
            reason: error_chain(&e),
        })?;
    serde_json::from_slice(&body).map_err(|e| SensorClientError::UnexpectedAnswer {
        url: url.to_owned(),
        status: if status == StatusCode::OK {
            200
        } else {
            status.as_u16()
        },
        detail: e.to_string(),
    })
}

fn peer_certificate(answer: &reqwest::Response) -> Result<Vec<u8>, SensorClientError> {
    answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .ok_or(SensorClientError::NoCertificate)
}

/// An error and its causes on one line (reqwest hides the TLS reason in the chain);
/// a cause already contained in the text is not repeated.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
