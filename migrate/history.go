package migrate

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// history is what a tool's own table says is applied.
type history struct {
	table    string          // the table consulted, "" if none exists
	applied  map[string]bool // versions applied
	upTo     string          // golang-migrate: every version ≤ upTo is applied
	checksum map[string]int32
}

// defaultHistoryTable is the table each tool keeps its history in.
func defaultHistoryTable(f Format) string {
	switch f {
	case FormatGoose:
		return "goose_db_version"
	case FormatGolangMigrate, FormatDbmate:
		return "schema_migrations"
	case FormatFlyway:
		return "flyway_schema_history"
	case FormatAtlas:
		return "atlas_schema_revisions.atlas_schema_revisions"
	}
	return ""
}

// readHistory reads the applied versions from the tool's table, if it
// exists (resolved with the session's search_path, as the tools do).
func readHistory(ctx context.Context, conn *pgx.Conn, f Format, table string) (history, error) {
	h := history{applied: map[string]bool{}, checksum: map[string]int32{}}
	if table == "" {
		table = defaultHistoryTable(f)
	}
	if table == "" {
		return h, nil
	}
	var reg *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1)::text", table).Scan(&reg); err != nil {
		return h, fmt.Errorf("look up history table %s: %w", table, err)
	}
	if reg == nil {
		return h, nil
	}
	h.table = *reg
	q := *reg
	var err error
	switch f {
	case FormatGoose:
		err = scanRows(ctx, conn, "SELECT version_id::text, is_applied FROM "+q+" ORDER BY id", func(r pgx.Rows) error {
			var v string
			var ok bool
			if err := r.Scan(&v, &ok); err != nil {
				return err
			}
			h.applied[v] = ok // the latest row of a version wins
			return nil
		})
		delete(h.applied, "0")
	case FormatGolangMigrate:
		var cols int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'dirty' AND NOT attisdropped", q).Scan(&cols); err != nil {
			return h, fmt.Errorf("read history table %s: %w", q, err)
		}
		if cols == 0 {
			return h, fmt.Errorf("read history table %s: it has no dirty column, so it is not golang-migrate's (dbmate's?); set the format or the history table", q)
		}
		err = scanRows(ctx, conn, "SELECT version::text, dirty FROM "+q+" LIMIT 1", func(r pgx.Rows) error {
			var v string
			var dirty bool
			if err := r.Scan(&v, &dirty); err != nil {
				return err
			}
			if dirty {
				return fmt.Errorf("database is dirty at version %s: golang-migrate refuses to run until it is fixed and forced (migrate force)", v)
			}
			h.upTo = v
			return nil
		})
	case FormatDbmate:
		err = scanRows(ctx, conn, "SELECT version::text FROM "+q, func(r pgx.Rows) error {
			var v string
			if err := r.Scan(&v); err != nil {
				return err
			}
			h.applied[v] = true
			return nil
		})
	case FormatFlyway:
		err = scanRows(ctx, conn, "SELECT coalesce(version, ''), description, coalesce(checksum, 0), success FROM "+q+" ORDER BY installed_rank", func(r pgx.Rows) error {
			var v, desc string
			var sum int32
			var ok bool
			if err := r.Scan(&v, &desc, &sum, &ok); err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("failed migration %q (version %s) in the history: Flyway refuses to migrate until it is repaired", desc, v)
			}
			if v == "" {
				h.checksum[desc] = sum
			} else {
				h.applied[v] = true
			}
			return nil
		})
	case FormatAtlas:
		err = scanRows(ctx, conn, "SELECT version FROM "+q+" WHERE applied = total AND coalesce(error, '') = ''", func(r pgx.Rows) error {
			var v string
			if err := r.Scan(&v); err != nil {
				return err
			}
			h.applied[v] = true
			return nil
		})
	}
	if err != nil {
		return h, fmt.Errorf("read history table %s: %w", q, err)
	}
	return h, nil
}

// isApplied says whether the history lists migration m.
func (h history) isApplied(m Migration) bool {
	if m.Repeatable {
		sum, ok := h.checksum[m.Name]
		return ok && sum == m.checksum
	}
	if h.upTo != "" {
		a, aerr := strconv.ParseUint(m.Version, 10, 64)
		b, berr := strconv.ParseUint(h.upTo, 10, 64)
		if aerr == nil && berr == nil {
			return a <= b
		}
	}
	return h.applied[m.Version]
}

func scanRows(ctx context.Context, conn *pgx.Conn, sql string, fn func(pgx.Rows) error) error {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
