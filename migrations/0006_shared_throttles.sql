-- Login locks and API rate limits are counted in the database, so they hold across every
-- manager replica on it (a client cannot multiply its budget by spreading requests).

-- Refused administrator logins per user name (trimmed, lower case), whichever door (web
-- UI or REST API) they came through: `failures` within the window that started at
-- `window_started_at`; `locked_until` once too many fell in one window.
CREATE TABLE login_throttle (
    name_key            text PRIMARY KEY CHECK (length(name_key) <= 256),
    window_started_at   timestamptz NOT NULL,
    failures            integer NOT NULL CHECK (failures >= 0),
    locked_until        timestamptz
);

CREATE INDEX login_throttle_window ON login_throttle (window_started_at);

-- REST requests per source address in the current one-minute window.
CREATE TABLE api_request_counts (
    source_address      inet PRIMARY KEY,
    window_started_at   timestamptz NOT NULL,
    requests            integer NOT NULL CHECK (requests >= 0)
);

CREATE INDEX api_request_counts_window ON api_request_counts (window_started_at);
