-- Alone in its file: golang-migrate sends it on its own, outside any
-- transaction, so CONCURRENTLY works.
CREATE INDEX CONCURRENTLY parts_gadget_idx ON parts (gadget_id);
