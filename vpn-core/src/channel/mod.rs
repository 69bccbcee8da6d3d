//! The management channel between the manager and a sensor, without its transport.
//!
//! The manager calls the sensor's management API over TLS (HTTP/1.1, JSON). Before
//! registration the sensor serves a self-signed bootstrap certificate and only the two
//! registration calls; the manager proves it knows the registration key the sensor's
//! administrator typed (`configure manager add <host> <key> [<nat-id>]`), bound to the
//! sensor's certificate so a man in the middle cannot relay it, and hands over the
//! certificates its internal CA issued: the sensor's (for the sensor's own key) and the
//! manager's. From then on every call is mutual TLS with exactly those certificates.
//!
//! * [`identifiers`]: registration key, NAT ID and manager address as FTD accepts them.
//! * [`proof`]: the HMAC proofs of the registration key, one for each side.
//! * [`messages`]: the JSON documents of every call, and [`paths`] where they go.

pub mod identifiers;
pub mod messages;
pub mod proof;

pub use identifiers::{
    DEFAULT_MANAGER_PORT, IdentifierError, MAX_IDENTIFIER_LEN, ManagerAddress, ManagerHost, NatId,
    RegistrationKey,
};
pub use messages::{
    CertificateExpiry, ChannelError, DeployResult, RegistrationChallenge, RegistrationRequest,
    RegistrationResponse, RunningConfigSummary, SensorStatus, SessionCounts, SessionList,
    TerminateRequest, TerminateResult, certificate_expiries,
};
pub use proof::{
    CHALLENGE_BYTES, ProofError, manager_proof, sensor_proof, verify_manager_proof,
    verify_sensor_proof,
};

/// Where the sensor's management API listens unless told otherwise (FTD's sftunnel port).
pub const DEFAULT_SENSOR_API_PORT: u16 = 8305;

/// Paths of the sensor's management API.
pub mod paths {
    /// `POST`, no body: a fresh single-use [`super::RegistrationChallenge`].
    pub const REGISTRATION_CHALLENGE: &str = "/api/v1/registration/challenge";
    /// `POST` [`super::RegistrationRequest`] → [`super::RegistrationResponse`].
    pub const REGISTRATION: &str = "/api/v1/registration";
    /// `POST` a `DeviceConfig` → [`super::DeployResult`]; `GET` the running one.
    pub const CONFIG: &str = "/api/v1/config";
    /// `GET` → [`super::SensorStatus`].
    pub const STATUS: &str = "/api/v1/status";
    /// `GET` → [`super::SessionList`].
    pub const SESSIONS: &str = "/api/v1/sessions";
    /// `POST` [`super::TerminateRequest`] → [`super::TerminateResult`].
    pub const TERMINATE_SESSIONS: &str = "/api/v1/sessions/terminate";
    /// `GET ?cursor=N&limit=M` → [`crate::session::EventPage`].
    pub const SESSION_EVENTS: &str = "/api/v1/sessions/events";
}
