package clone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Sandbox is a PostgreSQL instance that dbtwin owns and throws away: clones,
// their baseline/candidate/control copies and nothing else live there.
//
// Implementations: clone/local (an ephemeral cluster started from the
// PostgreSQL binaries on this machine, the default) and clone/server (an
// existing server, on which dbtwin creates and drops only its own, uniquely
// prefixed databases). Every method that does I/O takes a context; cancelling
// it stops the work.
//
// Database names passed to a Sandbox are logical names ("golden", "baseline");
// a backend may map them to physical names (clone/server prefixes them with
// the run id), so callers always get connection strings through DSN.
type Sandbox interface {
	// Name identifies the sandbox in `dbtwin sandbox ls`, in logs and in
	// reports. It is unique among live sandboxes.
	Name() string

	// DSN returns a connection string for database db in the sandbox. It may
	// carry credentials: never log it; pass it through pgdsn.Redact first.
	DSN(db string) string

	// CreateDatabase creates an empty database (from template0, UTF8).
	CreateDatabase(ctx context.Context, db string) error

	// CreateDatabaseFromTemplate creates db as a copy of template, which must
	// exist in the same sandbox and have no open connections. This is the
	// cheap fan-out from the golden clone to baseline, candidate and control.
	CreateDatabaseFromTemplate(ctx context.Context, db, template string) error

	// DropDatabase drops db, terminating its connections. Dropping a database
	// that does not exist is not an error.
	DropDatabase(ctx context.Context, db string) error

	// Close tears the sandbox down: for a local cluster the server stops and
	// its files are removed; for a server sandbox every database it created
	// is dropped. Close is idempotent.
	Close(ctx context.Context) error
}

// CreateDatabaseSQL returns the statement that creates db, copied from
// template when template is non-empty, as a Sandbox backend runs it.
//
// A copy from a template uses STRATEGY FILE_COPY: since PostgreSQL 15 the
// default strategy WAL_LOG reads and WAL-logs every block of the template,
// which is far slower for a large golden clone than FILE_COPY's checkpoint
// and directory copy. (PostgreSQL 18 adds file_copy_method = clone, which
// makes FILE_COPY a reflink copy on filesystems that support it: XFS, Btrfs,
// ZFS; clone/local sets it when the server accepts it.) serverMajor is the
// server's major version; STRATEGY is only sent to servers that know it.
func CreateDatabaseSQL(db, template string, serverMajor int) string {
	s := "CREATE DATABASE " + pgx.Identifier{db}.Sanitize()
	if template == "" {
		return s + " TEMPLATE template0 ENCODING 'UTF8'"
	}
	s += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	if serverMajor >= 15 {
		s += " STRATEGY FILE_COPY"
	}
	return s
}

// DropDatabaseSQL returns the statement that drops db and any session still
// connected to it (PostgreSQL 13+ for FORCE).
func DropDatabaseSQL(db string, serverMajor int) string {
	s := "DROP DATABASE IF EXISTS " + pgx.Identifier{db}.Sanitize()
	if serverMajor >= 13 {
		s += " WITH (FORCE)"
	}
	return s
}

// ExecMaintenance connects to dsn, runs sql and disconnects. It is how a
// backend runs CREATE/DROP DATABASE, which cannot run inside a transaction
// block or from a connection to the database concerned.
func ExecMaintenance(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return err
	}
	return nil
}

// NewRunID returns a fresh random run id: 8 lowercase hex digits. Every
// sandbox a run starts is labelled with it.
func NewRunID() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
