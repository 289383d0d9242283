-- A read-only role for analysts and BI tools: the views, nothing else. Views run with their
-- owner's rights, so the role needs no grant on the tables behind them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citypulse_reader') THEN
        CREATE ROLE citypulse_reader NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA {schema} TO citypulse_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM citypulse_reader;
