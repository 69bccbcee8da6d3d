//! Cisco aggregate-auth XML (`<config-auth>`), as spoken by openconnect 9.01.
//!
//! [`ClientMessage::parse`] reads what the client POSTs (bounded by [`limits`]); the
//! functions of [`server`] render what the headend answers, as exact bytes (the MCA
//! challenge bytes are what the client signs). See `docs/protocol.md` §2.

mod client;
pub mod limits;
pub mod server;
mod tree;

pub use client::{
    AuthReply, ClientMessage, Credentials, DeviceId, Init, McaReply, Opaque, Password,
};
pub use server::{
    CERTIFICATE_VALIDATION_FAILURE, Completion, LoginForm, McaRequest, SgOpaque, UsernameInput,
    client_cert_request, complete, error_form, group_select_form, login_form, mca_auth_request,
};

/// Why a client message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggAuthError {
    #[error("request body of {size} bytes exceeds the {limit}-byte limit")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("request body is not UTF-8")]
    NotUtf8,
    #[error("XML nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("more than {limit} XML elements")]
    TooManyElements { limit: usize },
    #[error("element <{element}> has more than {limit} attributes")]
    TooManyAttributes { element: String, limit: usize },
    #[error("an attribute of <{element}> is longer than {limit} bytes")]
    AttributeTooLong { element: String, limit: usize },
    #[error("text of <{element}> is longer than {limit} bytes")]
    TextTooLong { element: String, limit: usize },
    #[error("DOCTYPE/DTD declarations are refused")]
    DtdRefused,
    #[error("unknown entity &{0};")]
    UnknownEntity(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("root element is <{0}>, not <config-auth>")]
    NotConfigAuth(String),
    #[error("unknown config-auth type {0:?}")]
    UnknownType(String),
    #[error("incomplete MCA reply: {0}")]
    IncompleteMcaReply(&'static str),
    #[error("user certificate format {0:?} is not pkcs7")]
    UnsupportedCertFormat(String),
}

#[cfg(test)]
mod tests;
