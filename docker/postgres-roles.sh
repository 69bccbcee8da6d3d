#!/bin/sh
# Runs once when the postgres container initialises its data directory: makes the role
# mgmt-server connects as (DATABASE_URL). POSTGRES_USER owns the schema and runs the
# migrations (DATABASE_OWNER_URL); the application role gets only what it needs.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_password="$MGMT_APP_PASSWORD" <<'SQL'
CREATE ROLE mgmt_app LOGIN PASSWORD :'app_password';
SQL
