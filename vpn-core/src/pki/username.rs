//! Username from a client certificate: FTD `username-from-certificate`.
//!
//! * Specific field: the first value of the primary attribute (trimmed). The secondary
//!   attribute is a fallback, used only when the certificate has no primary attribute;
//!   it is never appended. Source: Cisco ASA 5500 Series Configuration Guide using ASDM,
//!   "Configuring AAA Servers and the Local Database", section "Using Certificates": the
//!   ASA uses the primary DN field and, "if the primary DN field is not present in the
//!   certificate", the secondary one (example: primary EA, secondary CN gives the
//!   e-mail address). The seed agrees: default `CN OU` on `CN=client.cisco.com` gives
//!   `client.cisco.com`. Neither attribute present is an error, never an empty username.
//! * Entire DN: RDNs in certificate order, `TOKEN=value` joined by `,` (multi-valued
//!   RDNs joined by `+`), tokens as FTD prints them (`C`, `CN`, `EA`, …, dotted OID for
//!   others), values escaped as in RFC 4514 (`\,` `\+` `\"` `\\` `\<` `\>` `\;` `\=`).
//! * `EA` is the emailAddress attribute, else the first rfc822Name SAN; `UPN` is the
//!   SAN otherName 1.3.6.1.4.1.311.20.2.3 (UTF8String).
//! * Values containing control characters are refused; a username is at most
//!   [`MAX_USERNAME_CHARS`] characters.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;
use x509_parser::x509::AttributeTypeAndValue;

use crate::config::{CertificateField, UsernameMapping};
use crate::pki::certificate_info::{self, CertificateInfoError};

/// The longest username we derive.
pub const MAX_USERNAME_CHARS: usize = 256;

const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

/// A username derived from a certificate, with how it was derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedUsername {
    pub username: String,
    /// E.g. `CN of subject`, `CN and OU of subject`, `entire subject DN`.
    pub derivation: String,
    /// The field values used (empty for the entire DN).
    pub fields: Vec<(CertificateField, String)>,
}

/// Why no username could be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("cannot read the certificate: {0}")]
    Certificate(#[from] CertificateInfoError),
    #[error(
        "the certificate '{subject}' has no {field}{} to use as username",
        fallback.map(|f| format!(" (nor the fallback {f})")).unwrap_or_default()
    )]
    MissingField {
        field: &'static str,
        /// The secondary field, tried when the primary is absent.
        fallback: Option<&'static str>,
        subject: String,
    },
    #[error("the {field} of certificate '{subject}' is empty")]
    EmptyField {
        field: &'static str,
        subject: String,
    },
    #[error("the {field} of certificate '{subject}' is not a readable string")]
    UnreadableField {
        field: &'static str,
        subject: String,
    },
    #[error("the {field} of certificate '{subject}' contains control characters")]
    ControlCharacters {
        field: &'static str,
        subject: String,
    },
    #[error("the username from certificate '{subject}' is {len} characters, more than {max}")]
    TooLong {
        subject: String,
        len: usize,
        max: usize,
    },
}

/// Derives the username from a DER certificate as FTD's `username-from-certificate` does.
pub fn map_username(
    cert_der: &[u8],
    mapping: &UsernameMapping,
) -> Result<MappedUsername, UsernameError> {
    let cert = certificate_info::parse(cert_der)?;
    let subject = cert.subject().to_string();
    let mapped = match *mapping {
        UsernameMapping::EntireDn => MappedUsername {
            username: entire_dn(&cert, &subject)?,
            derivation: "entire subject DN".to_owned(),
            fields: Vec::new(),
        },
        UsernameMapping::SpecificField { primary, secondary } => {
            let (field, value) = match field_value(&cert, primary, &subject)? {
                Some(value) => (primary, value),
                None => {
                    let fallback = match secondary {
                        Some(field) => field_value(&cert, field, &subject)?.map(|v| (field, v)),
                        None => None,
                    };
                    fallback.ok_or_else(|| UsernameError::MissingField {
                        field: primary.cli_token(),
                        fallback: secondary.map(CertificateField::cli_token),
                        subject: subject.clone(),
                    })?
                }
            };
            let derivation = if field == primary {
                format!("{} of {}", field.cli_token(), origin(field))
            } else {
                format!(
                    "{} of {} (the certificate has no {})",
                    field.cli_token(),
                    origin(field),
                    primary.cli_token()
                )
            };
            MappedUsername {
                username: value.clone(),
                derivation,
                fields: vec![(field, value)],
            }
        }
    };
    let len = mapped.username.chars().count();
    if len > MAX_USERNAME_CHARS {
        return Err(UsernameError::TooLong {
            subject,
            len,
            max: MAX_USERNAME_CHARS,
        });
    }
    Ok(mapped)
}

fn origin(field: CertificateField) -> &'static str {
    match field {
        CertificateField::Upn => "subjectAltName",
        _ => "subject",
    }
}

/// The attribute OID of a subject field (None for UPN, which lives in the SAN).
fn attribute_oid(field: CertificateField) -> Option<&'static str> {
    Some(match field {
        CertificateField::C => "2.5.4.6",
        CertificateField::Cn => "2.5.4.3",
        CertificateField::Dnq => "2.5.4.46",
        CertificateField::Ea => "1.2.840.113549.1.9.1",
        CertificateField::Genq => "2.5.4.44",
        CertificateField::Gn => "2.5.4.42",
        CertificateField::I => "2.5.4.43",
        CertificateField::L => "2.5.4.7",
        CertificateField::N => "2.5.4.41",
        CertificateField::O => "2.5.4.10",
        CertificateField::Ou => "2.5.4.11",
        CertificateField::Ser => "2.5.4.5",
        CertificateField::Sn => "2.5.4.4",
        CertificateField::Sp => "2.5.4.8",
        CertificateField::T => "2.5.4.12",
        CertificateField::Uid => "0.9.2342.19200300.100.1.1",
        CertificateField::Upn => return None,
    })
}

/// The first value of `field`, trimmed and checked; `None` when absent.
fn field_value(
    cert: &X509Certificate<'_>,
    field: CertificateField,
    subject: &str,
) -> Result<Option<String>, UsernameError> {
    let token = field.cli_token();
    let raw = match attribute_oid(field) {
        Some(oid) => {
            let found = cert
                .subject()
                .iter_attributes()
                .find(|a| a.attr_type().to_id_string() == oid);
            match found {
                Some(attr) => Some(attribute_text(attr, token, subject)?),
                None if field == CertificateField::Ea => san_email(cert),
                None => None,
            }
        }
        None => san_upn(cert, subject)?,
    };
    let Some(raw) = raw else {
        return Ok(None);
    };
    clean(&raw, token, subject).map(Some)
}

fn clean(raw: &str, field: &'static str, subject: &str) -> Result<String, UsernameError> {
    let value = raw.trim();
    if value.chars().any(char::is_control) {
        return Err(UsernameError::ControlCharacters {
            field,
            subject: subject.to_owned(),
        });
    }
    if value.is_empty() {
        return Err(UsernameError::EmptyField {
            field,
            subject: subject.to_owned(),
        });
    }
    Ok(value.to_owned())
}

fn attribute_text(
    attr: &AttributeTypeAndValue<'_>,
    field: &'static str,
    subject: &str,
) -> Result<String, UsernameError> {
    if let Ok(text) = attr.as_str() {
        return Ok(text.to_owned());
    }
    // BMPString (UCS-2 big-endian), still found in old enterprise CAs.
    let bytes = attr.as_slice();
    if attr.attr_value().tag() == x509_parser::der_parser::asn1_rs::Tag::BmpString
        && bytes.len().is_multiple_of(2)
    {
        let units = bytes
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]));
        if let Ok(text) = char::decode_utf16(units).collect::<Result<String, _>>() {
            return Ok(text);
        }
    }
    Err(UsernameError::UnreadableField {
        field,
        subject: subject.to_owned(),
    })
}

fn san_names<'a>(cert: &'a X509Certificate<'_>) -> Vec<&'a GeneralName<'a>> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().collect(),
        _ => Vec::new(),
    }
}

fn san_email(cert: &X509Certificate<'_>) -> Option<String> {
    san_names(cert).into_iter().find_map(|name| match name {
        GeneralName::RFC822Name(email) => Some((*email).to_owned()),
        _ => None,
    })
}

fn san_upn(cert: &X509Certificate<'_>, subject: &str) -> Result<Option<String>, UsernameError> {
    let Some(value) = san_names(cert).into_iter().find_map(|name| match name {
        GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => Some(*value),
        _ => None,
    }) else {
        return Ok(None);
    };
    utf8_in_explicit_tag(value)
        .map(|s| Some(s.to_owned()))
        .ok_or_else(|| UsernameError::UnreadableField {
            field: "UPN",
            subject: subject.to_owned(),
        })
}

/// `[0] EXPLICIT UTF8String` (or a bare UTF8String) → its text.
fn utf8_in_explicit_tag(der: &[u8]) -> Option<&str> {
    let (tag, content) = tlv(der)?;
    match tag {
        0xA0 => {
            let (inner, text) = tlv(content)?;
            (inner == 0x0C).then(|| std::str::from_utf8(text).ok())?
        }
        0x0C => std::str::from_utf8(content).ok(),
        _ => None,
    }
}

/// One DER TLV with a definite length of at most 4 length bytes.
fn tlv(der: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    Some((tag, rest.get(..len)?))
}

fn entire_dn(cert: &X509Certificate<'_>, subject: &str) -> Result<String, UsernameError> {
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut parts = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type().to_id_string();
            let token = CertificateField::ALL
                .into_iter()
                .find(|f| attribute_oid(*f) == Some(oid.as_str()))
                .map_or(oid.clone(), |f| f.cli_token().to_owned());
            let text = attribute_text(attr, "DN attribute", subject)?;
            if text.chars().any(char::is_control) {
                return Err(UsernameError::ControlCharacters {
                    field: "DN",
                    subject: subject.to_owned(),
                });
            }
            parts.push(format!("{token}={}", escape(text.trim())));
        }
        rdns.push(parts.join("+"));
    }
    let dn = rdns.join(",");
    if dn.is_empty() {
        return Err(UsernameError::EmptyField {
            field: "DN",
            subject: subject.to_owned(),
        });
    }
    Ok(dn)
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
