package masking

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
)

// SandboxMarker starts the comment of a database that dbtwin made outside
// clone/local (a clone restored from a volume snapshot, for example), so
// that [IsSandbox] recognises it. [MarkSandbox] sets it.
const SandboxMarker = "dbtwin-sandbox"

// ErrNotSandbox is wrapped by [ApplyInPlace] when the target is not a
// dbtwin sandbox. Branch on it with errors.Is.
var ErrNotSandbox = errors.New("this is not a dbtwin sandbox: mask apply only rewrites copies dbtwin made; clone it first with dbtwin clone --mask")

// IsSandbox reports whether the database dsn names is one dbtwin made, and
// why (or why not), so that nothing rewrites a database that might be a
// customer's own. It is, when either:
//
//   - the server's data_directory lies inside a cluster registered in the
//     clone/local state directory stateDir (empty: local.DefaultStateDir())
//     and, where that cluster's pg_control is readable, the server's
//     system identifier is that cluster's — reading data_directory needs a
//     superuser (or pg_read_all_settings); or
//   - the database's comment starts with [SandboxMarker] (see
//     [MarkSandbox]).
//
// The check guards against accidents (a production DSN pasted in the wrong
// place), not against someone who sets the marker on purpose. A database
// created from a marked one with CREATE DATABASE … TEMPLATE does not inherit
// the comment; a volume snapshot of the whole cluster does.
func IsSandbox(ctx context.Context, dsn, stateDir string) (ok bool, why string, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, "", fmt.Errorf("check sandbox: connect to %s: %w", pgdsn.Describe(dsn), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return isSandbox(ctx, conn, stateDir)
}

func isSandbox(ctx context.Context, conn *pgx.Conn, stateDir string) (bool, string, error) {
	var db string
	var comment *string
	if err := conn.QueryRow(ctx, `SELECT d.datname, pg_catalog.shobj_description(d.oid, 'pg_database')
		FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`).Scan(&db, &comment); err != nil {
		return false, "", fmt.Errorf("check sandbox: read the database comment: %w", err)
	}
	if comment != nil && (*comment == SandboxMarker || strings.HasPrefix(*comment, SandboxMarker+" ")) {
		return true, fmt.Sprintf("database %q carries the sandbox marker (comment %q)", db, *comment), nil
	}
	noMarker := fmt.Sprintf("database %q has no %q comment", db, SandboxMarker)

	if stateDir == "" {
		stateDir = local.DefaultStateDir()
	}
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		if ctx.Err() != nil {
			return false, "", fmt.Errorf("check sandbox: %w", ctx.Err())
		}
		return false, fmt.Sprintf("the server does not show its data_directory to this role (%v), and %s", err, noMarker), nil
	}
	recs, err := local.List(stateDir)
	if err != nil {
		return false, "", fmt.Errorf("check sandbox: %w", err)
	}
	var sysID uint64
	sysIDKnown := conn.QueryRow(ctx, "SELECT system_identifier FROM pg_catalog.pg_control_system()").Scan(&sysID) == nil
	for _, r := range recs {
		if !within(r.Dir, dataDir) {
			continue
		}
		if id, err := controlSystemID(r.DataDir()); err == nil && sysIDKnown && id != sysID {
			continue // the same path on another machine
		}
		return true, fmt.Sprintf("the server's data directory %s belongs to sandbox cluster %s (run %s) registered in %s", dataDir, r.Name, r.RunID, stateDir), nil
	}
	return false, fmt.Sprintf("the server's data directory %s is in none of the %d sandbox clusters registered in %s, and %s", dataDir, len(recs), stateDir, noMarker), nil
}

// within reports whether path is dir or lies under it, symbolic links
// resolved where they can be.
func within(dir, path string) bool {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return filepath.Clean(p)
	}
	rel, err := filepath.Rel(resolve(dir), resolve(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// controlSystemID reads the database system identifier, the first field of
// global/pg_control (native byte order; little-endian on every platform
// the sandboxes run on).
func controlSystemID(dataDir string) (uint64, error) {
	f, err := os.Open(filepath.Join(dataDir, "global", "pg_control"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [8]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// MarkSandbox sets the database comment of the database dsn names to
// "dbtwin-sandbox run=<runID>", so that [IsSandbox] accepts it. Backends
// that make clones outside clone/local (volume snapshots) call it on every
// clone they make, and only on those. It needs to own the database (or be
// a superuser).
func MarkSandbox(ctx context.Context, dsn, runID string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("mark sandbox: connect to %s: %w", pgdsn.Describe(dsn), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	comment := SandboxMarker
	if runID != "" {
		comment += " run=" + runID
	}
	var stmt string
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.format('COMMENT ON DATABASE %I IS %L', pg_catalog.current_database(), $1::text)", comment).Scan(&stmt); err != nil {
		return fmt.Errorf("mark sandbox: %w", err)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("mark sandbox %s: %w", pgdsn.Describe(dsn), err)
	}
	return nil
}
