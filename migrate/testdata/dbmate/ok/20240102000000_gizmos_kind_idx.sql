-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY gizmos_kind_idx ON gizmos (kind);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY gizmos_kind_idx;
