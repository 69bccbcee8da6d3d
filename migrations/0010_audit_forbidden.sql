-- A change refused for the caller's role (HTTP 403, web UI or REST API) is an audit row
-- too: action FORBIDDEN, with the administrator, the source address and what was tried.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN (
    'CREATE', 'UPDATE', 'DELETE',
    'LOGIN', 'LOGIN_FAILED', 'LOGOUT',
    'DEPLOY', 'ROLLBACK', 'REGISTER', 'TERMINATE_SESSIONS',
    'FORBIDDEN'));
