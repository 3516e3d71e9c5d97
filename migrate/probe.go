package migrate

import (
	"context"
	"sort"

	"github.com/jackc/pgx/v5"
)

// relNameSQL is how every metric names a relation: "name" in public,
// "schema.name" elsewhere.
const relNameSQL = `CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END`

// filenodes maps table OID → (name, relfilenode) for rewrite detection.
type filenodes map[uint32]struct {
	name string
	node uint32
}

// snapshotFilenodes reads the relfilenode of every user table and
// materialized view, as the session sees them (inside its transaction).
func snapshotFilenodes(ctx context.Context, conn *pgx.Conn) (filenodes, error) {
	out := filenodes{}
	err := scanRows(ctx, conn, `SELECT c.oid, c.relfilenode, `+relNameSQL+`
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid >= 16384 AND c.relkind IN ('r', 'm') AND n.nspname NOT LIKE 'pg\_toast%'`, func(r pgx.Rows) error {
		var oid, node uint32
		var name string
		if err := r.Scan(&oid, &node, &name); err != nil {
			return err
		}
		out[oid] = struct {
			name string
			node uint32
		}{name, node}
		return nil
	})
	return out, err
}

// rewrittenTables names the tables whose relfilenode changed.
func rewrittenTables(before, after filenodes) []string {
	var out []string
	for oid, b := range before {
		if a, ok := after[oid]; ok && a.node != b.node && b.node != 0 {
			out = append(out, b.name)
		}
	}
	sort.Strings(out)
	return out
}

// relInfo names a relation that existed before the run.
type relInfo struct{ name, kind string }

// userRelations lists every user relation (to tell relations created by
// the run from existing ones, and to name relations the run drops).
func userRelations(ctx context.Context, conn *pgx.Conn) (map[uint32]relInfo, error) {
	out := map[uint32]relInfo{}
	err := scanRows(ctx, conn, `SELECT c.oid, `+relNameSQL+`, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid >= 16384 AND n.nspname NOT LIKE 'pg\_toast%'`, func(r pgx.Rows) error {
		var oid uint32
		var name, kind string
		if err := r.Scan(&oid, &name, &kind); err != nil {
			return err
		}
		out[oid] = relInfo{name, relKind(kind)}
		return nil
	})
	return out, err
}

// countTarget is a table whose rows are counted around a statement.
type countTarget struct {
	ident string // as written in the statement (for re-resolution)
	oid   uint32 // 0 until resolved
	name  string // display name at resolution
}

// resolveTargets looks up the OIDs of the tables, partitioned tables and
// materialized views named by idents, in the session's search_path.
func resolveTargets(ctx context.Context, conn *pgx.Conn, ts []countTarget) error {
	for i := range ts {
		if ts[i].oid != 0 {
			continue
		}
		var oid *uint32
		var name *string
		err := conn.QueryRow(ctx, `SELECT c.oid, `+relNameSQL+`
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm')`, ts[i].ident).Scan(&oid, &name)
		if err == pgx.ErrNoRows {
			continue
		}
		if err != nil {
			return err
		}
		ts[i].oid, ts[i].name = *oid, *name
	}
	return nil
}

// countRows counts the rows of the resolved targets: count(*) when the
// table (all its partitions) is at most exactBytes on disk, otherwise the
// planner's estimate (pg_class.reltuples, -1 when unknown), which is listed
// in estimated.
func countRows(ctx context.Context, conn *pgx.Conn, ts []countTarget, exactBytes int64) (rows map[string]int64, estimated []string, err error) {
	for _, t := range ts {
		if t.oid == 0 {
			continue
		}
		var (
			ident    *string
			size     int64
			estimate float64
		)
		err := conn.QueryRow(ctx, `SELECT $1::regclass::text,
  coalesce((SELECT sum(pg_table_size(p.relid)) FROM pg_partition_tree($1) p WHERE p.isleaf), pg_table_size($1), 0)::int8,
  coalesce((SELECT sum(c.reltuples) FROM pg_partition_tree($1) p JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf AND c.reltuples >= 0),
           (SELECT reltuples FROM pg_class WHERE oid = $1), -1)::float8
WHERE EXISTS (SELECT 1 FROM pg_class WHERE oid = $1)`, t.oid).Scan(&ident, &size, &estimate)
		if err == pgx.ErrNoRows {
			continue // dropped
		}
		if err != nil {
			return rows, estimated, err
		}
		if rows == nil {
			rows = map[string]int64{}
		}
		if size > exactBytes {
			rows[t.name] = int64(estimate)
			estimated = append(estimated, t.name)
			continue
		}
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+*ident).Scan(&n); err != nil {
			return rows, estimated, err
		}
		rows[t.name] = n
	}
	sort.Strings(estimated)
	return rows, estimated, nil
}

// probe runs fn, the read-only bookkeeping between statements, so that it
// cannot disturb the migration. Inside a transaction it runs in a
// savepoint that is always rolled back: an error cannot abort the
// migration's transaction, and the locks fn takes (count(*) takes ACCESS
// SHARE) are released again, so they neither show up as the migration's
// locks nor outlive the probe. In a failed transaction it does not run.
func probe(ctx context.Context, conn *pgx.Conn, fn func() error) error {
	switch conn.PgConn().TxStatus() {
	case 'E':
		return nil
	case 'T':
		if _, err := conn.Exec(ctx, "SAVEPOINT dbtwin_probe"); err != nil {
			return err
		}
		ferr := fn()
		if _, err := conn.Exec(ctx, "ROLLBACK TO SAVEPOINT dbtwin_probe; RELEASE SAVEPOINT dbtwin_probe"); err != nil {
			return err
		}
		return ferr
	}
	return fn()
}
