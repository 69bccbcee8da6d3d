-- Domains, administrators and their roles, API sessions, and the append-only audit log.
-- Conventions for every table in this schema:
--   * ids are UUIDs chosen by the manager (FMC's object ids are UUIDs too);
--   * every row an administrator can edit has `version integer`, bumped by each update,
--     for optimistic locking (REST ETag / If-Match);
--   * times are `timestamptz` (stored as UTC);
--   * names are unique per domain and object type; unique constraints are named
--     `<table>_name_unique` so the repository can say which name clashed.

CREATE TABLE domains (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CONSTRAINT domains_name_unique UNIQUE
                CHECK (length(name) BETWEEN 1 AND 128),
    parent_id   uuid REFERENCES domains (id),
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- FMC's Global domain has this UUID on every installation; clients hard-code it.
INSERT INTO domains (id, name) VALUES ('e276abec-e0f2-11e3-8169-6d9ed49b625f', 'Global');

-- The FMC user roles this product knows. `name` is what the UI shows.
CREATE TABLE roles (
    name        text PRIMARY KEY,
    description text NOT NULL
);

INSERT INTO roles (name, description) VALUES
    ('Administrator', 'Full access, including administrators, deployment and audit'),
    ('Network Admin', 'Edits and deploys RA VPN policies, objects and devices'),
    ('Read-Only',     'Sees everything, changes nothing');

CREATE TABLE administrators (
    id              uuid PRIMARY KEY,
    domain_id       uuid NOT NULL REFERENCES domains (id),
    name            text NOT NULL CONSTRAINT administrators_name_unique UNIQUE
                    CHECK (length(name) BETWEEN 1 AND 64),
    -- Argon2 PHC string; the password itself is never stored.
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    role            text NOT NULL REFERENCES roles (name),
    enabled         boolean NOT NULL DEFAULT true,
    last_login_at   timestamptz,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- REST sessions (X-auth-access-token / X-auth-refresh-token). Only SHA-256 digests of
-- the tokens are stored, so a copy of the database opens no session.
CREATE TABLE api_sessions (
    id                  uuid PRIMARY KEY,
    administrator_id    uuid NOT NULL REFERENCES administrators (id) ON DELETE CASCADE,
    domain_id           uuid NOT NULL REFERENCES domains (id),
    access_token_sha256 bytea NOT NULL CONSTRAINT api_sessions_access_token_unique UNIQUE
                        CHECK (length(access_token_sha256) = 32),
    refresh_token_sha256 bytea NOT NULL CONSTRAINT api_sessions_refresh_token_unique UNIQUE
                        CHECK (length(refresh_token_sha256) = 32),
    source_address      inet,
    created_at          timestamptz NOT NULL DEFAULT now(),
    access_expires_at   timestamptz NOT NULL,
    refresh_expires_at  timestamptz NOT NULL,
    refresh_count       integer NOT NULL DEFAULT 0,
    revoked_at          timestamptz
);

CREATE INDEX api_sessions_administrator ON api_sessions (administrator_id);

-- One row per change, login (success or failure) and deploy: who, what, when, from where,
-- and the object before and after. Rows are only ever inserted: the triggers below make
-- the database itself refuse UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    -- Who: the administrator's name at the time (kept even if the account is deleted),
    -- or 'system' for the manager's own actions.
    actor           text NOT NULL CHECK (length(actor) BETWEEN 1 AND 128),
    actor_id        uuid,
    source_address  inet,
    domain_id       uuid,
    action          text NOT NULL CHECK (action IN (
                        'CREATE', 'UPDATE', 'DELETE',
                        'LOGIN', 'LOGIN_FAILED', 'LOGOUT',
                        'DEPLOY', 'ROLLBACK', 'REGISTER', 'TERMINATE_SESSIONS')),
    object_type     text NOT NULL,
    object_id       uuid,
    object_name     text,
    before          jsonb,
    after           jsonb,
    detail          text
);

CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at);
CREATE INDEX audit_log_object ON audit_log (object_id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
