// Package clone makes production-like copies of customer databases: it defines
// where copies live (Sandbox, with backends in clone/local and clone/server)
// and the logical copier that streams a consistent snapshot of a source
// database into a target.
//
// What it is for:
//   - Sandbox: one small interface for a throwaway PostgreSQL instance; the
//     backend is chosen by name in config.
//   - Clone: schema from pg_dump (pre-data, then post-data after the rows),
//     rows by parallel binary COPY under one exported snapshot, sequences
//     set, materialized views refreshed, the source's planner statistics
//     copied (ANALYZE where they cannot be: masked tables, a target role
//     that is not superuser; see stats.go), the source's validated CHECK
//     constraints and foreign keys on unmasked tables taken as valid rather
//     than checked row by row (see constraints.go) — built under a temporary name and
//     renamed only when complete.
//   - Restore: the same atomic result from a pg_dump file (custom,
//     directory, tar or plain SQL; DetectFormat tells which).
//   - DropStaleTemps: cleaning up after a clone that was killed outright.
//
// What it is not for: masking values (package masking plugs into the copy
// stream), applying migrations (package migrate) or replaying queries
// (package replay). It never writes to a source database: every source
// session is READ ONLY.
package clone
