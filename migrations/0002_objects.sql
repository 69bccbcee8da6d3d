-- Shared objects of a domain: address pools, group policies, cert enrollments (CA-only
-- trustpoints and the headend identity certificate) and LOCAL realm users. Their columns
-- follow vpn-core's DeviceConfig parts, so compiling a device's document is a join.

CREATE TABLE ipv4_address_pools (
    id              uuid PRIMARY KEY,
    domain_id       uuid NOT NULL REFERENCES domains (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description     text NOT NULL DEFAULT '',
    -- ipAddressRange "start-end" and mask.
    start_address   inet NOT NULL CHECK (family(start_address) = 4 AND masklen(start_address) = 32),
    end_address     inet NOT NULL CHECK (family(end_address) = 4 AND masklen(end_address) = 32),
    mask            inet NOT NULL CHECK (family(mask) = 4 AND masklen(mask) = 32),
    overridable     boolean NOT NULL DEFAULT false,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ipv4_address_pools_name_unique UNIQUE (domain_id, name),
    CONSTRAINT ipv4_address_pools_range_ordered CHECK (start_address <= end_address)
);

CREATE TABLE ipv6_address_pools (
    id                  uuid PRIMARY KEY,
    domain_id           uuid NOT NULL REFERENCES domains (id),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description         text NOT NULL DEFAULT '',
    -- ipv6StartAddress "2001:db8::1/64" and numberOfAddresses.
    start_address       inet NOT NULL CHECK (family(start_address) = 6 AND masklen(start_address) = 128),
    prefix_length       smallint NOT NULL CHECK (prefix_length BETWEEN 1 AND 128),
    number_of_addresses integer NOT NULL CHECK (number_of_addresses >= 1),
    overridable         boolean NOT NULL DEFAULT false,
    version             integer NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ipv6_address_pools_name_unique UNIQUE (domain_id, name)
);

CREATE TABLE group_policies (
    id                          uuid PRIMARY KEY,
    domain_id                   uuid NOT NULL REFERENCES domains (id),
    name                        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description                 text NOT NULL DEFAULT '',
    -- DfltGrpPolicy exists in every domain and cannot be deleted.
    built_in                    boolean NOT NULL DEFAULT false,
    enable_ssl_protocol         boolean NOT NULL DEFAULT true,
    enable_ipsec_ikev2_protocol boolean NOT NULL DEFAULT true,
    banner                      text,
    dns_servers                 inet[] NOT NULL DEFAULT '{}' CHECK (cardinality(dns_servers) <= 2),
    default_domain              text,
    split_tunnel_policy         text NOT NULL DEFAULT 'TUNNEL_ALL'
                                CHECK (split_tunnel_policy IN ('TUNNEL_ALL', 'TUNNEL_SPECIFIED', 'EXCLUDE_SPECIFIED')),
    split_tunnel_networks       inet[] NOT NULL DEFAULT '{}',  -- networks as given (inet keeps host bits; cidr would change them)
    mtu                         integer NOT NULL DEFAULT 1406 CHECK (mtu BETWEEN 576 AND 1462),
    keepalive_secs              integer DEFAULT 20 CHECK (keepalive_secs BETWEEN 15 AND 600),
    gateway_dpd_secs            integer DEFAULT 30 CHECK (gateway_dpd_secs BETWEEN 5 AND 3600),
    client_dpd_secs             integer DEFAULT 30 CHECK (client_dpd_secs BETWEEN 5 AND 3600),
    idle_timeout_minutes        integer DEFAULT 30 CHECK (idle_timeout_minutes BETWEEN 1 AND 4473924),
    max_connect_time_minutes    integer CHECK (max_connect_time_minutes BETWEEN 1 AND 4473924),
    simultaneous_logins         integer NOT NULL DEFAULT 3 CHECK (simultaneous_logins >= 0),
    dtls_enabled                boolean NOT NULL DEFAULT true,
    version                     integer NOT NULL DEFAULT 1,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT group_policies_name_unique UNIQUE (domain_id, name)
);

-- General > IP Address Pools of a group policy, in order.
CREATE TABLE group_policy_ipv4_pools (
    group_policy_id uuid NOT NULL REFERENCES group_policies (id) ON DELETE CASCADE,
    position        integer NOT NULL,
    pool_id         uuid NOT NULL REFERENCES ipv4_address_pools (id) ON DELETE RESTRICT,
    PRIMARY KEY (group_policy_id, position),
    CONSTRAINT group_policy_ipv4_pools_once UNIQUE (group_policy_id, pool_id)
);

INSERT INTO group_policies (id, domain_id, name, built_in)
VALUES ('00000000-0000-0000-0000-000000000001', 'e276abec-e0f2-11e3-8169-6d9ed49b625f', 'DfltGrpPolicy', true);

-- Cert enrollments (trustpoints). Two kinds:
--   CA_ONLY   manual, CA only: CA certificates that client certificates must chain to,
--             with validation usage and revocation (CRL) settings;
--   IDENTITY  the headend's own certificate chain and private key (manual or PKCS12).
--             The key is stored encrypted (AES-256-GCM, see mgmt-server db::secret);
--             the column never holds plaintext.
CREATE TABLE cert_enrollments (
    id                      uuid PRIMARY KEY,
    domain_id               uuid NOT NULL REFERENCES domains (id),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description             text NOT NULL DEFAULT '',
    kind                    text NOT NULL CHECK (kind IN ('CA_ONLY', 'IDENTITY')),
    enrollment_type         text NOT NULL DEFAULT 'MANUAL'
                            CHECK (enrollment_type IN ('MANUAL', 'PKCS12', 'SELF_SIGNED_CERTFICATE')),
    -- CA_ONLY
    ca_certificates_pem     text,
    validation_usage_ssl_client   boolean NOT NULL DEFAULT true,
    validation_usage_ssl_server   boolean NOT NULL DEFAULT false,
    validation_usage_ipsec_client boolean NOT NULL DEFAULT false,
    skip_ca_flag_check      boolean NOT NULL DEFAULT false,
    require_client_auth_eku boolean NOT NULL DEFAULT true,
    revocation_mode         text NOT NULL DEFAULT 'NONE' CHECK (revocation_mode IN ('NONE', 'CRL')),
    crls_pem                text,
    -- IDENTITY
    certificate_chain_pem   text,
    private_key_encrypted   bytea,
    version                 integer NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cert_enrollments_name_unique UNIQUE (domain_id, name),
    CONSTRAINT cert_enrollments_ca_only_has_certificates CHECK (
        kind <> 'CA_ONLY' OR (ca_certificates_pem IS NOT NULL
                              AND certificate_chain_pem IS NULL
                              AND private_key_encrypted IS NULL)),
    CONSTRAINT cert_enrollments_identity_has_chain_and_key CHECK (
        kind <> 'IDENTITY' OR (certificate_chain_pem IS NOT NULL
                               AND private_key_encrypted IS NOT NULL)),
    CONSTRAINT cert_enrollments_crl_mode_has_crls CHECK (
        (revocation_mode = 'CRL') = (crls_pem IS NOT NULL))
);

-- Users of the LOCAL realm (AAA "LOCAL" authentication server).
CREATE TABLE local_users (
    id              uuid PRIMARY KEY,
    domain_id       uuid NOT NULL REFERENCES domains (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT local_users_name_unique UNIQUE (domain_id, name)
);
