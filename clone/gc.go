package clone

import (
	"context"
	"fmt"

	"github.com/dbtwin/dbtwin/internal/pgbin"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
)

// DropStaleTemps drops the temporary databases (names containing
// TempDatabaseMarker) that a killed Clone or Restore left on the server
// serverDSN points at, and returns their names. A temporary database with an
// open session belongs to a clone still running and is left alone.
//
// A clone that fails or is cancelled drops its own temporary database; only
// a process killed outright (SIGKILL, a lost machine) leaves one behind.
func DropStaleTemps(ctx context.Context, serverDSN string) ([]string, error) {
	desc := pgdsn.Describe(serverDSN)
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", desc, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	major, err := pgbin.ServerMajor(conn.PgConn().ParameterStatus("server_version"))
	if err != nil {
		return nil, fmt.Errorf("read server version of %s: %w", desc, err)
	}
	rows, err := conn.Query(ctx, `SELECT d.datname FROM pg_catalog.pg_database d
		WHERE strpos(d.datname, $1) > 0
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid)
		ORDER BY 1`, TempDatabaseMarker)
	if err != nil {
		return nil, fmt.Errorf("list temporary databases on %s: %w", desc, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list temporary databases on %s: %w", desc, err)
	}
	var dropped []string
	for _, n := range names {
		if _, err := conn.Exec(ctx, DropDatabaseSQL(n, major)); err != nil {
			return dropped, fmt.Errorf("drop temporary database %q on %s: %w", n, desc, err)
		}
		dropped = append(dropped, n)
	}
	return dropped, nil
}
