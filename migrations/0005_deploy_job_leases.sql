-- Deploy jobs are claimed with a lease, so several manager replicas can share one queue and
-- a replica that dies mid-push does not block a device forever.
--
-- A DEPLOYING job belongs to the replica named in `lease_owner` until `lease_expires_at`;
-- the owner renews the lease while its push runs. A job whose lease has expired is taken
-- over by another replica, which asks the sensor which version it runs before pushing again.
-- `attempts` counts claims (first claim and takeovers), so a job that keeps killing its
-- workers ends FAILED instead of circling forever.

ALTER TABLE deployment_jobs
    ADD COLUMN lease_owner      text CHECK (length(lease_owner) BETWEEN 1 AND 200),
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- Jobs left DEPLOYING by a manager that stopped before leases existed: their lease has
-- already expired, so the next worker takes them over.
UPDATE deployment_jobs
   SET lease_owner = 'a manager from before deploy leases', lease_expires_at = now(), attempts = 1
 WHERE status = 'DEPLOYING';

ALTER TABLE deployment_jobs
    ADD CONSTRAINT deployment_jobs_lease_while_deploying CHECK (
        (status = 'DEPLOYING') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL));

CREATE INDEX deployment_jobs_queued ON deployment_jobs (queued_at) WHERE status = 'QUEUED';
CREATE INDEX deployment_jobs_leases ON deployment_jobs (lease_expires_at) WHERE status = 'DEPLOYING';

-- Workers of every replica LISTEN on `deploy_jobs`; a new job wakes them at commit.
CREATE FUNCTION deployment_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('deploy_jobs', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER deployment_jobs_notify_workers
    AFTER INSERT ON deployment_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION deployment_jobs_notify();
