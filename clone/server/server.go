// Package server is the Sandbox backend for an existing PostgreSQL server
// that dbtwin does not own (a CI service container, a shared staging
// server). dbtwin creates its own databases there, each name prefixed with
// "dbtwin_<run id>_", and drops exactly those on Close; it never touches any
// other database on the server.
//
// What it is not for: a customer's production server. That is a source, and
// dbtwin only ever reads a source.
package server

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/internal/pgbin"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
)

// Config says which server to use.
type Config struct {
	// DSN reaches the server as a role that may CREATE DATABASE. Its database
	// is used only as the maintenance connection for CREATE/DROP DATABASE.
	DSN string
	// RunID makes this run's database names unique; empty: random.
	RunID string
}

// Sandbox is a set of databases that dbtwin created on an existing server.
// It implements clone.Sandbox.
type Sandbox struct {
	dsn    string
	prefix string
	major  int

	mu      sync.Mutex
	created map[string]bool
	closed  bool
}

var _ clone.Sandbox = (*Sandbox)(nil)

var runIDRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// Open connects to the server once to check that it is reachable and to
// learn its version.
func Open(ctx context.Context, cfg Config) (*Sandbox, error) {
	runID := cfg.RunID
	if runID == "" {
		runID = clone.NewRunID()
	}
	if !runIDRE.MatchString(runID) {
		return nil, fmt.Errorf("open server sandbox: run id %q must be 1-16 lowercase letters or digits", runID)
	}
	conn, err := pgx.Connect(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("open server sandbox %s: %w", pgdsn.Describe(cfg.DSN), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	major, err := pgbin.ServerMajor(conn.PgConn().ParameterStatus("server_version"))
	if err != nil {
		return nil, fmt.Errorf("open server sandbox %s: %w", pgdsn.Describe(cfg.DSN), err)
	}
	return &Sandbox{
		dsn:     cfg.DSN,
		prefix:  "dbtwin_" + runID + "_",
		major:   major,
		created: map[string]bool{},
	}, nil
}

// Name is "server:<user@host:port>/<prefix>".
func (s *Sandbox) Name() string {
	return "server:" + pgdsn.Describe(s.dsn) + "/" + s.prefix
}

// Physical returns the real database name behind logical name db.
func (s *Sandbox) Physical(db string) string { return s.prefix + db }

// DSN returns the connection string for logical database db.
func (s *Sandbox) DSN(db string) string {
	d, err := pgdsn.WithDatabase(s.dsn, s.Physical(db))
	if err != nil {
		return s.dsn // Open already parsed it; this cannot happen
	}
	return d
}

// CreateDatabase creates an empty database.
func (s *Sandbox) CreateDatabase(ctx context.Context, db string) error {
	return s.create(ctx, db, "")
}

// CreateDatabaseFromTemplate copies template (a logical name in this
// sandbox) into db.
func (s *Sandbox) CreateDatabaseFromTemplate(ctx context.Context, db, template string) error {
	return s.create(ctx, db, s.Physical(template))
}

func (s *Sandbox) create(ctx context.Context, db, template string) error {
	phys := s.Physical(db)
	if err := clone.ExecMaintenance(ctx, s.dsn, clone.CreateDatabaseSQL(phys, template, s.major)); err != nil {
		return fmt.Errorf("create database %q on %s: %w", phys, pgdsn.Describe(s.dsn), err)
	}
	s.mu.Lock()
	s.created[db] = true
	s.mu.Unlock()
	return nil
}

// DropDatabase drops logical database db.
func (s *Sandbox) DropDatabase(ctx context.Context, db string) error {
	phys := s.Physical(db)
	if err := clone.ExecMaintenance(ctx, s.dsn, clone.DropDatabaseSQL(phys, s.major)); err != nil {
		return fmt.Errorf("drop database %q on %s: %w", phys, pgdsn.Describe(s.dsn), err)
	}
	s.mu.Lock()
	delete(s.created, db)
	s.mu.Unlock()
	return nil
}

// Close drops every database this sandbox created. It is idempotent.
func (s *Sandbox) Close(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	names := make([]string, 0, len(s.created))
	for n := range s.created {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	var firstErr error
	for _, n := range names {
		if err := s.DropDatabase(ctx, n); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
