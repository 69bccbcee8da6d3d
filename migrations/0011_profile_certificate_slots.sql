-- MCA slot binding: which of a connection profile's trustpoints may issue the machine
-- certificate (the one of the TLS handshake) and which the user certificate (the one of
-- the MCA auth-reply). A slot with no trustpoint marked accepts every trustpoint of the
-- profile (FMC's behaviour). A flag on the profile's own trustpoint row, so a slot can
-- only name one of the profile's trustpoints.
ALTER TABLE connection_profile_trustpoints
    ADD COLUMN machine_certificates boolean NOT NULL DEFAULT false,
    ADD COLUMN user_certificates boolean NOT NULL DEFAULT false;
