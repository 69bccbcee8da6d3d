use serde::{Deserialize, Serialize};

/// The AAA tab of a connection profile, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AaaSettings {
    pub authentication_method: AuthenticationMethod,
    /// Used by AAA methods; LOCAL is the only server the sensor runs today.
    #[serde(default)]
    pub authentication_server: AuthenticationServer,
    /// Fallback to LOCAL when the primary server is unreachable.
    #[serde(default)]
    pub fallback_to_local: bool,
    /// Enable multiple certificate authentication (certificate methods only).
    #[serde(default)]
    pub enable_multiple_certificate_authentication: bool,
    /// Map username from the first (machine) or second (user) certificate; MCA only.
    #[serde(default)]
    pub username_from_certificate_source: UsernameSource,
    /// Map specific field (primary/secondary) or use the entire DN.
    #[serde(default)]
    pub username_mapping: UsernameMapping,
    /// Prefill username from certificate on user login window (Certificate & AAA only).
    #[serde(default)]
    pub prefill_username: bool,
    /// Hide username in login window (requires prefill).
    #[serde(default)]
    pub hide_username: bool,
    /// Strip Realm from username.
    #[serde(default)]
    pub strip_realm: bool,
    /// Strip Group from username.
    #[serde(default)]
    pub strip_group: bool,
}

impl AaaSettings {
    /// Settings as FMC's dialog opens them for `method`.
    pub fn new(method: AuthenticationMethod) -> Self {
        Self {
            authentication_method: method,
            authentication_server: AuthenticationServer::default(),
            fallback_to_local: false,
            enable_multiple_certificate_authentication: false,
            username_from_certificate_source: UsernameSource::default(),
            username_mapping: UsernameMapping::default(),
            prefill_username: false,
            hide_username: false,
            strip_realm: false,
            strip_group: false,
        }
    }

    pub fn uses_certificates(&self) -> bool {
        self.authentication_method.uses_certificates()
    }

    pub fn uses_aaa(&self) -> bool {
        self.authentication_method.uses_aaa()
    }

    /// MCA is in force: a certificate method with the MCA box ticked.
    pub fn requires_mca(&self) -> bool {
        self.uses_certificates() && self.enable_multiple_certificate_authentication
    }
}

/// FMC `authenticationMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthenticationMethod {
    AaaOnly,
    ClientCertificateOnly,
    AaaAndClientCertificate,
}

impl AuthenticationMethod {
    pub fn uses_certificates(self) -> bool {
        matches!(
            self,
            Self::ClientCertificateOnly | Self::AaaAndClientCertificate
        )
    }

    pub fn uses_aaa(self) -> bool {
        matches!(self, Self::AaaOnly | Self::AaaAndClientCertificate)
    }
}

/// Where AAA credentials are checked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum AuthenticationServer {
    /// The device's LOCAL user database.
    #[default]
    Local,
    /// A RADIUS server group (rendered, not yet run by the sensor).
    Radius { server_group: String },
    /// An AD/LDAP realm (rendered, not yet run by the sensor).
    Ldap { realm: String },
}

/// Which certificate the username is mapped from when MCA is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UsernameSource {
    /// The machine certificate, sent in the TLS handshake.
    FirstCertificate,
    /// The user certificate, sent and signed in the aggregate-auth exchange.
    #[default]
    SecondCertificate,
}

/// How a certificate becomes a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum UsernameMapping {
    /// Map specific field: primary (default CN), secondary (default OU, may be none).
    SpecificField {
        primary: CertificateField,
        secondary: Option<CertificateField>,
    },
    /// Use entire DN as username.
    EntireDn,
}

impl Default for UsernameMapping {
    fn default() -> Self {
        Self::SpecificField {
            primary: CertificateField::Cn,
            secondary: Some(CertificateField::Ou),
        }
    }
}

/// The subject fields FMC offers for username mapping, with their CLI tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CertificateField {
    /// Country.
    C,
    /// Common Name.
    Cn,
    /// DN Qualifier.
    Dnq,
    /// Email Address.
    Ea,
    /// Generational Qualifier.
    Genq,
    /// Given Name.
    Gn,
    /// Initials.
    I,
    /// Locality.
    L,
    /// Name.
    N,
    /// Organisation.
    O,
    /// Organisational Unit.
    Ou,
    /// Serial Number (of the subject, not the certificate).
    Ser,
    /// Surname.
    Sn,
    /// State or Province.
    Sp,
    /// Title.
    T,
    /// User ID.
    Uid,
    /// User Principal Name (from the subjectAltName otherName).
    Upn,
}

impl CertificateField {
    pub const ALL: [Self; 17] = [
        Self::C,
        Self::Cn,
        Self::Dnq,
        Self::Ea,
        Self::Genq,
        Self::Gn,
        Self::I,
        Self::L,
        Self::N,
        Self::O,
        Self::Ou,
        Self::Ser,
        Self::Sn,
        Self::Sp,
        Self::T,
        Self::Uid,
        Self::Upn,
    ];

    /// The token FTD prints (`username-from-certificate CN OU`).
    pub fn cli_token(self) -> &'static str {
        match self {
            Self::C => "C",
            Self::Cn => "CN",
            Self::Dnq => "DNQ",
            Self::Ea => "EA",
            Self::Genq => "GENQ",
            Self::Gn => "GN",
            Self::I => "I",
            Self::L => "L",
            Self::N => "N",
            Self::O => "O",
            Self::Ou => "OU",
            Self::Ser => "SER",
            Self::Sn => "SN",
            Self::Sp => "SP",
            Self::T => "T",
            Self::Uid => "UID",
            Self::Upn => "UPN",
        }
    }

    /// FMC's REST enum value (`CN_COMMMON_NAME`, sic).
    pub fn fmc_name(self) -> &'static str {
        match self {
            Self::C => "C_COUNTRY",
            Self::Cn => "CN_COMMMON_NAME",
            Self::Dnq => "DNQ_DN_QUALIFIER",
            Self::Ea => "EA_EMAIL_ADDRESS",
            Self::Genq => "GENQ_GENERATIONAL_QUALIFIER",
            Self::Gn => "GN_GIVEN_NAME",
            Self::I => "I_INITIAL",
            Self::L => "L_LOCALITY",
            Self::N => "N_NAME",
            Self::O => "O_ORGANISATION",
            Self::Ou => "OU_ORGANISATIONAL_UNIT",
            Self::Ser => "SER_SERIAL_NUMBER",
            Self::Sn => "SN_SURNAME",
            Self::Sp => "SP_STATE_PROVINCE",
            Self::T => "T_TITLE",
            Self::Uid => "UID_USER_ID",
            Self::Upn => "UPN_USER_PRINCIPAL_NAME",
        }
    }

    pub fn from_fmc_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.fmc_name() == name)
    }
}
