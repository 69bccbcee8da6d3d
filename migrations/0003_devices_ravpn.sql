-- Managed devices (sensors), RA VPN policies with their target devices, and connection
-- profiles with every AAA / multiple-certificate-authentication setting.

CREATE TABLE devices (
    id                      uuid PRIMARY KEY,   -- also DeviceConfig.device_id
    domain_id               uuid NOT NULL REFERENCES domains (id),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description             text NOT NULL DEFAULT '',
    -- Where the sensor's management API is, "host" or "host:port" (FMC hostName).
    host_name               text NOT NULL CHECK (length(host_name) BETWEEN 1 AND 255),
    -- FMC natID: at most 37 characters of [A-Za-z0-9-], unique per manager.
    nat_id                  text CHECK (nat_id ~ '^[A-Za-z0-9-]{1,37}$'),
    registration_state      text NOT NULL DEFAULT 'PENDING'
                            CHECK (registration_state IN ('PENDING', 'REGISTERED', 'FAILED')),
    registration_error      text,
    registered_at           timestamptz,
    -- Management channel certificates issued by the manager's internal CA at registration.
    sensor_certificate_pem  text,
    manager_certificate_pem text,
    manager_key_encrypted   bytea,
    software_version        text,
    version                 integer NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT devices_name_unique UNIQUE (domain_id, name),
    CONSTRAINT devices_nat_id_unique UNIQUE (nat_id),
    CONSTRAINT devices_registered_has_certificates CHECK (
        registration_state <> 'REGISTERED' OR (sensor_certificate_pem IS NOT NULL
                                               AND manager_certificate_pem IS NOT NULL
                                               AND manager_key_encrypted IS NOT NULL))
);

-- policy/ravpns: the policy with its Access Interfaces settings (DeviceConfig.headend).
CREATE TABLE ravpn_policies (
    id                          uuid PRIMARY KEY,
    domain_id                   uuid NOT NULL REFERENCES domains (id),
    name                        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description                 text NOT NULL DEFAULT '',
    configure_ssl               boolean NOT NULL DEFAULT true,
    configure_ipsec             boolean NOT NULL DEFAULT false,
    access_interface            text NOT NULL DEFAULT 'outside' CHECK (length(access_interface) BETWEEN 1 AND 64),
    web_port                    integer NOT NULL DEFAULT 443 CHECK (web_port BETWEEN 1 AND 65535),
    dtls_enabled                boolean NOT NULL DEFAULT true,
    dtls_port                   integer NOT NULL DEFAULT 443 CHECK (dtls_port BETWEEN 1 AND 65535),
    allow_connection_profile_selection boolean NOT NULL DEFAULT true,
    -- SSL Global Identity Certificate: an IDENTITY cert enrollment.
    ssl_identity_certificate_id uuid REFERENCES cert_enrollments (id) ON DELETE RESTRICT,
    bypass_access_control       boolean NOT NULL DEFAULT false,
    version                     integer NOT NULL DEFAULT 1,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ravpn_policies_name_unique UNIQUE (domain_id, name)
);

-- Policy assignment. A device runs at most one RA VPN policy, as on FMC.
CREATE TABLE ravpn_policy_devices (
    policy_id   uuid NOT NULL REFERENCES ravpn_policies (id) ON DELETE CASCADE,
    device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE RESTRICT,
    PRIMARY KEY (policy_id, device_id),
    CONSTRAINT ravpn_policy_devices_one_policy_per_device UNIQUE (device_id)
);

-- policy/ravpns/{id}/connectionprofiles (FTD tunnel groups), AAA tab field by field.
CREATE TABLE connection_profiles (
    id                      uuid PRIMARY KEY,
    policy_id               uuid NOT NULL REFERENCES ravpn_policies (id) ON DELETE CASCADE,
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description             text NOT NULL DEFAULT '',
    group_policy_id         uuid NOT NULL REFERENCES group_policies (id) ON DELETE RESTRICT,
    authentication_method   text NOT NULL CHECK (authentication_method IN (
                                'AAA_ONLY', 'CLIENT_CERTIFICATE_ONLY', 'AAA_AND_CLIENT_CERTIFICATE')),
    -- Authentication Server: LOCAL, or a RADIUS server group / AD-LDAP realm by name.
    authentication_server_type text NOT NULL DEFAULT 'LOCAL'
                            CHECK (authentication_server_type IN ('LOCAL', 'RADIUS', 'LDAP')),
    authentication_server_name text,
    fallback_to_local       boolean NOT NULL DEFAULT false,
    enable_multiple_certificate_authentication boolean NOT NULL DEFAULT false,
    -- Map username from: FIRST_CERTIFICATE (machine) or SECOND_CERTIFICATE (user).
    username_from_certificate_source text NOT NULL DEFAULT 'SECOND_CERTIFICATE'
                            CHECK (username_from_certificate_source IN ('FIRST_CERTIFICATE', 'SECOND_CERTIFICATE')),
    -- Map specific field (primary + optional secondary) or use the entire DN.
    map_entire_dn_as_username boolean NOT NULL DEFAULT false,
    username_primary_field  text DEFAULT 'CN',
    username_secondary_field text DEFAULT 'OU',
    prefill_username        boolean NOT NULL DEFAULT false,
    hide_username           boolean NOT NULL DEFAULT false,
    strip_realm             boolean NOT NULL DEFAULT false,
    strip_group             boolean NOT NULL DEFAULT false,
    version                 integer NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT connection_profiles_name_unique UNIQUE (policy_id, name),
    CONSTRAINT connection_profiles_server_named CHECK (
        (authentication_server_type = 'LOCAL') = (authentication_server_name IS NULL)),
    CONSTRAINT connection_profiles_fields_match_mapping CHECK (
        map_entire_dn_as_username = (username_primary_field IS NULL)
        AND (username_primary_field IS NOT NULL OR username_secondary_field IS NULL)),
    CONSTRAINT connection_profiles_username_fields_known CHECK (
        coalesce(username_primary_field, 'CN') IN ('C','CN','DNQ','EA','GENQ','GN','I','L','N','O','OU','SER','SN','SP','T','UID','UPN')
        AND coalesce(username_secondary_field, 'OU') IN ('C','CN','DNQ','EA','GENQ','GN','I','L','N','O','OU','SER','SN','SP','T','UID','UPN')),
    CONSTRAINT connection_profiles_hide_needs_prefill CHECK (NOT hide_username OR prefill_username)
);

-- Client Address Assignment tab: pools tried in order.
CREATE TABLE connection_profile_ipv4_pools (
    profile_id  uuid NOT NULL REFERENCES connection_profiles (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    pool_id     uuid NOT NULL REFERENCES ipv4_address_pools (id) ON DELETE RESTRICT,
    PRIMARY KEY (profile_id, position),
    CONSTRAINT connection_profile_ipv4_pools_once UNIQUE (profile_id, pool_id)
);

CREATE TABLE connection_profile_ipv6_pools (
    profile_id  uuid NOT NULL REFERENCES connection_profiles (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    pool_id     uuid NOT NULL REFERENCES ipv6_address_pools (id) ON DELETE RESTRICT,
    PRIMARY KEY (profile_id, position),
    CONSTRAINT connection_profile_ipv6_pools_once UNIQUE (profile_id, pool_id)
);

-- CA-only trustpoints the profile's client certificates must chain to.
CREATE TABLE connection_profile_trustpoints (
    profile_id          uuid NOT NULL REFERENCES connection_profiles (id) ON DELETE CASCADE,
    position            integer NOT NULL,
    cert_enrollment_id  uuid NOT NULL REFERENCES cert_enrollments (id) ON DELETE RESTRICT,
    PRIMARY KEY (profile_id, position),
    CONSTRAINT connection_profile_trustpoints_once UNIQUE (profile_id, cert_enrollment_id)
);

-- Aliases tab.
CREATE TABLE connection_profile_aliases (
    profile_id  uuid NOT NULL REFERENCES connection_profiles (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    alias_name  text NOT NULL CHECK (length(alias_name) BETWEEN 1 AND 64),
    enabled     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (profile_id, position),
    CONSTRAINT connection_profile_aliases_once UNIQUE (profile_id, alias_name)
);

CREATE TABLE connection_profile_urls (
    profile_id  uuid NOT NULL REFERENCES connection_profiles (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 1024),
    enabled     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (profile_id, position),
    CONSTRAINT connection_profile_urls_once UNIQUE (profile_id, url)
);
