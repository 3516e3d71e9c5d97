CREATE OR REPLACE FUNCTION thing_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM things $$;
