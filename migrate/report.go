package migrate

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Report is what applying migrations did, for the run report. It holds no
// connection string and no row data. Durations are nanoseconds in JSON.
type Report struct {
	// Format of the migrations, or "command" for an external migrator.
	Format Format `json:"format"`
	// Source is the migration directory, or the external command as
	// configured (placeholders unexpanded, so no password).
	Source string `json:"source"`
	// Target names the database migrated (user@host/db, no password).
	Target string `json:"target"`
	// ServerVersion is the PostgreSQL server_version_num of the target.
	ServerVersion int `json:"server_version"`
	// History is the tool's history table that was consulted, if any.
	History string `json:"history,omitempty"`
	// Skipped lists the versions the history showed as applied already.
	Skipped []string `json:"skipped,omitempty"`
	// UpTo is the version ApplyUpTo stopped at ("" for Apply).
	UpTo string `json:"up_to,omitempty"`
	// SampleInterval is how often the lock watcher sampled pg_locks.
	SampleInterval time.Duration `json:"sample_interval"`
	// Migrations are the migrations run, in order (the failed one last).
	Migrations []MigrationResult `json:"migrations"`
	// Duration is the sum of the migrations' durations.
	Duration time.Duration `json:"duration"`
}

// MigrationResult is one migration's run.
type MigrationResult struct {
	Version string `json:"version"`
	Name    string `json:"name"`
	File    string `json:"file,omitempty"`
	// Transactional says the migration ran in one transaction.
	Transactional bool `json:"transactional"`
	// Duration is the execution time of its statements plus BEGIN and
	// COMMIT (dbtwin's own probes between statements are not counted).
	Duration   time.Duration     `json:"duration"`
	Statements []StatementResult `json:"statements"`
	// Output is the tail of an external command's output (passwords
	// removed).
	Output string `json:"output,omitempty"`
	// Error says why the migration failed ("" when it succeeded).
	Error string `json:"error,omitempty"`
}

// StatementResult is what one statement did.
type StatementResult struct {
	// Line is the statement's first line in File (0 for an external
	// command).
	Line int `json:"line"`
	// SQL is the statement, on one line, cut to 200 characters.
	SQL string `json:"sql"`
	// Duration is how long the server took to execute it.
	Duration time.Duration `json:"duration"`
	// Locks are the table-level locks the statement took (or
	// strengthened), strongest mode per relation.
	Locks []LockHeld `json:"locks,omitempty"`
	// Rewritten are the tables and materialized views whose relfilenode
	// changed: rewritten (ALTER … TYPE, VACUUM FULL, CLUSTER) or truncated.
	Rewritten []string `json:"rewritten,omitempty"`
	// RowsBefore and RowsAfter count the rows of the tables the statement
	// names, before and after it ran (inside its transaction). A table
	// missing from one side did not exist then.
	RowsBefore map[string]int64 `json:"rows_before,omitempty"`
	RowsAfter  map[string]int64 `json:"rows_after,omitempty"`
	// RowsEstimated lists the tables counted from pg_class.reltuples
	// rather than count(*) (bigger than the exact-count limit); -1 means
	// the planner has no estimate yet.
	RowsEstimated []string `json:"rows_estimated,omitempty"`
	// Error is the server's error for the failing statement.
	Error string `json:"error,omitempty"`
	// SQLState is the error's SQLSTATE code.
	SQLState string `json:"sqlstate,omitempty"`
}

// LockHeld is one lock a statement took.
type LockHeld struct {
	// Relation is the table, index, sequence or view ("name", or
	// "schema.name" outside public).
	Relation string `json:"relation"`
	// Kind is "table", "partitioned table", "index", "sequence", "view",
	// "materialized view" or "" when it is unknown.
	Kind string `json:"kind,omitempty"`
	// Mode is the strongest mode the statement held on it.
	Mode LockMode `json:"mode"`
	// Held is how long it was held: from the start of the statement that
	// took it to the end of its transaction (counting statement execution
	// time only), or, for a lock released earlier, from the first to the
	// last sample that saw it.
	Held time.Duration `json:"held"`
	// Samples is how many watcher samples saw the lock (0: only the
	// migrating session's own check after the statement saw it).
	Samples int `json:"samples"`
	// Created marks a relation that did not exist before this run: locks
	// on it block nobody.
	Created bool `json:"created,omitempty"`
}

// ApplyError is returned when a migration fails: what was applied before
// it, the failed migration's partial result, and where it failed. Like
// goose's PartialError, it lets a caller report progress and the cause.
type ApplyError struct {
	// Applied are the migrations that completed before the failure.
	Applied []MigrationResult
	// Failed is the failing migration, its last statement the one that
	// failed.
	Failed MigrationResult
	// File and Line locate the failure (Line is the line of the error
	// position when the server gave one).
	File string
	Line int
	// SQLState is the server's error code, "" for non-server errors.
	SQLState string
	// RolledBack says the failed migration ran in a transaction that was
	// rolled back; false means its earlier statements stay applied.
	RolledBack bool
	// Err is the underlying error.
	Err error
}

// Error returns "apply FILE:LINE: ERROR: … (SQLSTATE …)".
func (e *ApplyError) Error() string {
	loc := e.File
	if loc == "" {
		loc = e.Failed.Name
	}
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
	}
	return fmt.Sprintf("apply %s: %v", loc, e.Err)
}

// Unwrap returns the underlying error (a *pgconn.PgError for server
// errors).
func (e *ApplyError) Unwrap() error { return e.Err }

// sqlState extracts the SQLSTATE and error position of a server error.
func sqlState(err error) (code string, position int) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, int(pgErr.Position)
	}
	return "", 0
}
