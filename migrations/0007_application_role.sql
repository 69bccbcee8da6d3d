-- Least privilege: the role that owns the schema runs the migrations and then calls
-- grant_application_role() for the role the application connects as. That role may read
-- and write the tables it works with, but may only INSERT into audit_log (no UPDATE,
-- DELETE or TRUNCATE), may not touch the migration history, and, owning nothing, cannot
-- ALTER a table or disable a trigger. Run at every start, so tables of later migrations
-- are granted too.
CREATE FUNCTION grant_application_role(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', app_role);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', app_role);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', app_role);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM %I', app_role);
END;
$$;
