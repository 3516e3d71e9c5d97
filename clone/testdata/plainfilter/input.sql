--
-- PostgreSQL database dump
--

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET default_tablespace = '';
SET default_tablespace = fast_ssd;
SET SESSION AUTHORIZATION 'alice';
CREATE TABLE public.t (id integer, note text);
ALTER TABLE public.t OWNER TO alice;
ALTER FUNCTION public.f(integer) OWNER TO "Bob";
ALTER SCHEMA app OWNER TO app_owner;
COPY public.t (id, note) FROM stdin;
1	GRANT SELECT ON t TO x;
2	ALTER TABLE x OWNER TO y;
3	\\connect other
\.
GRANT SELECT ON TABLE public.t TO reader;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE alice IN SCHEMA public GRANT SELECT ON TABLES TO reader;
GRANT SELECT
    ON TABLE public.t TO reader;
CREATE VIEW v AS SELECT 'ALTER TABLE x OWNER TO y;' AS s;
copy public.t (id) from stdin;
4
\.
