-- Many sensors on one RA VPN policy: each device gets its own headend identity
-- certificate from the policy's enrollment, and address pools can be overridden per
-- device (FMC object overrides) so that two devices hand out different addresses.

-- What a device got from a cert enrollment (FMC installs enrollments per device:
-- Devices > Certificates). ISSUED: the manager's internal CA issued it from an
-- INTERNAL_CA (SELF_SIGNED_CERTFICATE) enrollment at `enrollment_version`; it is issued
-- again when the enrollment changes. INSTALLED: an administrator installed it (manual
-- or PKCS#12). The key is encrypted like every other private key.
CREATE TABLE device_certificates (
    id                      uuid PRIMARY KEY,
    domain_id               uuid NOT NULL REFERENCES domains (id),
    device_id               uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    enrollment_id           uuid NOT NULL REFERENCES cert_enrollments (id) ON DELETE CASCADE,
    source                  text NOT NULL CHECK (source IN ('ISSUED', 'INSTALLED')),
    enrollment_version      integer NOT NULL,
    certificate_chain_pem   text NOT NULL CHECK (certificate_chain_pem LIKE '%-----BEGIN CERTIFICATE-----%'),
    private_key_encrypted   bytea NOT NULL,
    issued_at               timestamptz NOT NULL DEFAULT now(),
    version                 integer NOT NULL DEFAULT 1,
    CONSTRAINT device_certificates_once UNIQUE (device_id, enrollment_id)
);

-- object/ipv4addresspools/{id}/overrides: the range one device hands out instead of
-- the pool's own (only for an overridable pool; the repository checks).
CREATE TABLE ipv4_address_pool_overrides (
    id              uuid PRIMARY KEY,
    pool_id         uuid NOT NULL REFERENCES ipv4_address_pools (id) ON DELETE CASCADE,
    device_id       uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    start_address   inet NOT NULL CHECK (family(start_address) = 4 AND masklen(start_address) = 32),
    end_address     inet NOT NULL CHECK (family(end_address) = 4 AND masklen(end_address) = 32),
    mask            inet NOT NULL CHECK (family(mask) = 4 AND masklen(mask) = 32),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ipv4_address_pool_overrides_once UNIQUE (pool_id, device_id),
    CONSTRAINT ipv4_address_pool_overrides_range_ordered CHECK (start_address <= end_address)
);

CREATE TABLE ipv6_address_pool_overrides (
    id                  uuid PRIMARY KEY,
    pool_id             uuid NOT NULL REFERENCES ipv6_address_pools (id) ON DELETE CASCADE,
    device_id           uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    start_address       inet NOT NULL CHECK (family(start_address) = 6 AND masklen(start_address) = 128),
    prefix_length       smallint NOT NULL CHECK (prefix_length BETWEEN 1 AND 128),
    number_of_addresses integer NOT NULL CHECK (number_of_addresses >= 1),
    version             integer NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ipv6_address_pool_overrides_once UNIQUE (pool_id, device_id)
);
