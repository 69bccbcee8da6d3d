-- Deployments (one request, many devices) with a job per device, and the manager's
-- internal CA.

CREATE TABLE deployments (
    id              uuid PRIMARY KEY,
    domain_id       uuid NOT NULL REFERENCES domains (id),
    kind            text NOT NULL CHECK (kind IN ('DEPLOYMENT', 'ROLLBACK')),
    requested_by    text NOT NULL,
    requested_by_id uuid,
    note            text NOT NULL DEFAULT '',
    requested_at    timestamptz NOT NULL DEFAULT now()
);

-- One device's share of a deployment: a queue entry until it runs, then its history.
-- `config` is the DeviceConfig that was (or is to be) pushed, with the headend identity
-- private key taken out and kept encrypted in `identity_key_encrypted`; it is what
-- pending-changes diffs and rollbacks start from.
CREATE TABLE deployment_jobs (
    id                      uuid PRIMARY KEY,
    deployment_id           uuid NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    device_id               uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    status                  text NOT NULL DEFAULT 'QUEUED'
                            CHECK (status IN ('QUEUED', 'DEPLOYING', 'DEPLOYED', 'FAILED', 'ABORTED')),
    -- DeviceConfig.version; strictly increasing per device.
    config_version          bigint NOT NULL CHECK (config_version >= 1),
    content_hash            text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    config                  jsonb NOT NULL,
    identity_key_encrypted  bytea,
    -- For a rollback: the job whose configuration is deployed again.
    rollback_of_job_id      uuid REFERENCES deployment_jobs (id) ON DELETE SET NULL,
    transcript              text NOT NULL DEFAULT '',
    error                   text,
    queued_at               timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    finished_at             timestamptz,
    version                 integer NOT NULL DEFAULT 1,
    CONSTRAINT deployment_jobs_config_version_unique UNIQUE (device_id, config_version),
    CONSTRAINT deployment_jobs_times_follow_status CHECK (
        (status = 'QUEUED' AND started_at IS NULL AND finished_at IS NULL)
        OR (status = 'DEPLOYING' AND started_at IS NOT NULL AND finished_at IS NULL)
        OR (status IN ('DEPLOYED', 'FAILED') AND started_at IS NOT NULL AND finished_at IS NOT NULL)
        OR (status = 'ABORTED' AND finished_at IS NOT NULL)),
    CONSTRAINT deployment_jobs_failure_has_error CHECK (
        status NOT IN ('FAILED', 'ABORTED') OR error IS NOT NULL)
);

-- A device deploys one job at a time: its queue, never a global lock.
CREATE UNIQUE INDEX deployment_jobs_one_running_per_device
    ON deployment_jobs (device_id) WHERE status = 'DEPLOYING';
CREATE INDEX deployment_jobs_device_queue ON deployment_jobs (device_id, queued_at);
CREATE INDEX deployment_jobs_deployment ON deployment_jobs (deployment_id);

-- The manager's internal CA(s), by purpose (e.g. 'device-channel'). The key is encrypted
-- like every other private key.
CREATE TABLE internal_cas (
    name                    text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    certificate_pem         text NOT NULL,
    private_key_encrypted   bytea NOT NULL,
    version                 integer NOT NULL DEFAULT 1,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
