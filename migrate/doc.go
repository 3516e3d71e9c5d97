// Package migrate finds, applies and lints a release's database migrations.
//
// It is step 4 of the dbtwin pipeline (see DESIGN.md): the candidate copy of
// a customer database gets the new release's migrations while dbtwin
// watches what they do, and the same migrations are checked for
// zero-downtime hazards before anything runs.
//
// # Discovery
//
// [Discover] reads a migration directory in the format of the tool that
// owns it — golang-migrate, goose, Flyway, dbmate, Atlas or plain ordered
// .sql files — auto-detected or named with a [Format]. Each [Migration]
// carries its version, its statements (split with the real PostgreSQL
// parser, each with its line in the file) and the transaction semantics of
// its runner:
//
//   - goose: one transaction per file, unless "-- +goose NO TRANSACTION".
//     A "-- +goose StatementBegin/End" block is one statement.
//   - golang-migrate: the tool opens no transaction; its postgres driver
//     sends the whole file as one multi-statement simple Query, which
//     PostgreSQL itself runs as one implicit transaction (the file is atomic,
//     and CREATE INDEX CONCURRENTLY fails unless it is alone in its file).
//     dbtwin reproduces that: a file of several statements runs in one
//     transaction, a file of one statement runs outside any.
//   - Flyway: one transaction per migration; a migration containing a
//     statement that cannot run in a transaction (CONCURRENTLY, VACUUM …) or
//     whose V…sql.conf says executeInTransaction=false runs without one, as
//     Flyway does (with flyway.mixed=true for mixed migrations). Repeatable
//     R__ migrations run after the versioned ones, ordered by description.
//   - dbmate: one transaction per file unless "-- migrate:up transaction:false".
//   - Atlas: one transaction per file (atlas migrate apply --tx-mode file)
//     unless "-- atlas:txmode none"; the atlas.sum integrity file is verified.
//   - plain: one transaction per file, files in name order, unless the
//     file's leading comments say "-- dbtwin:no-transaction".
//
// A file that manages its own transactions (BEGIN … COMMIT) runs as written.
//
// # Apply with metrics
//
// A [Migrator] applies the pending migrations (those the tool's own history
// table — goose_db_version, schema_migrations, flyway_schema_history,
// atlas_schema_revisions — does not list) one statement at a time within
// the runner's transaction semantics, so every statement gets its own
// [StatementResult]: duration, the strongest lock taken on each relation
// and how long it was held, the tables it rewrote (pg_class.relfilenode
// changed) and the row counts of the tables it names, before and after.
// Locks come from two sources: the migrating session's own pg_locks rows
// read after every statement that runs in a transaction (exact), and a
// watcher connection that samples pg_locks every 25 ms (by default) while
// statements run (catches locks of statements that cannot run in a
// transaction, such as CREATE INDEX CONCURRENTLY, and proves long holds).
// Row counts are exact (count(*), inside the migration's transaction, in a
// savepoint that is rolled back so its locks vanish) for tables up to
// [DefaultExactCountBytes] on disk, and the planner's estimate
// (pg_class.reltuples) above that, listed in RowsEstimated: a migration
// must not spend minutes counting a big table between two statements.
// Durations and lock hold times count statement execution only, never
// dbtwin's own probes between statements.
//
// An external migrator (liquibase, atlas, sqitch, the application's own)
// can be run instead with [Command]; it is watched the same way.
//
// # Lint
//
// [Lint] checks migrations for zero-downtime hazards with the PostgreSQL
// parse tree (pg_query_go), never with regular expressions. Each [Finding]
// has a rule id (see [Rules]), a severity, file:line, the lock the
// statement takes and the expand/contract way to make the change safely.
// Given the captured workload of the old application ([NewWorkload]), DROP
// and RENAME findings name the queries that would break.
//
// # What it is not
//
// It does not write the tools' history tables (the candidate is thrown
// away; use [WithAssumeAppliedUpTo] to continue from a baseline made with
// [Migrator.ApplyUpTo]), does not run down migrations, goose Go migrations
// or psql meta-commands, and does not compare query results: that is
// package compare.
package migrate
