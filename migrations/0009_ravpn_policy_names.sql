-- An RA VPN policy stays on the manager (its name never reaches a sensor): its name follows
-- the manager's rule, 1 to 128 characters (mgmt_server::rules::MAX_MANAGER_NAME_CHARS), as
-- the web UI always allowed; the objects a sensor runs keep vpn-core's 64.
ALTER TABLE ravpn_policies DROP CONSTRAINT ravpn_policies_name_check;
ALTER TABLE ravpn_policies
    ADD CONSTRAINT ravpn_policies_name_check CHECK (length(name) BETWEEN 1 AND 128);
