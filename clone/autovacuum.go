package clone

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// While a clone is built, autovacuum would vacuum and analyze each table
// of the temporary database soon after its rows are in: every table has
// just had all its rows inserted. That is work thrown away (COPY FREEZE
// leaves nothing to vacuum, and the clone runs its own ANALYZE at the end),
// and on a small machine it competes for the cores: pg_stat_user_tables of
// a clone of the 856 MB fixture on 2 cores showed every table vacuumed and
// analyzed by autovacuum during the build, and back-to-back clones with
// autovacuum on took 4 to 8 s (7 to 14 CPU s) more than with it off (that
// figure also holds autovacuum working on the previous clone). So the
// build turns autovacuum off for its own tables, and puts each table's
// setting back as the source has it before the clone takes the target's
// name.

// pauseAutovacuum sets autovacuum_enabled = false, and the same for the
// TOAST table, on every table and materialized view of the database conn
// is on (extension members excepted), and returns the SQL that puts every
// one's storage options back exactly as they were, in their order (which
// pg_dump shows): it resets them all and sets the original ones again.
func pauseAutovacuum(ctx context.Context, conn *pgx.Conn) (restore string, err error) {
	rows, err := conn.Query(ctx, `
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
       coalesce(c.reloptions, '{}'), coalesce(t.reloptions, '{}')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1`)
	if err != nil {
		return "", fmt.Errorf("list tables to pause autovacuum: %w", err)
	}
	var pause, back strings.Builder
	var rel string
	var main, toast []string
	_, err = pgx.ForEachRow(rows, []any{&rel, &main, &toast}, func() error {
		fmt.Fprintf(&pause, "ALTER TABLE %s SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);\n", rel)
		reset := []string{"autovacuum_enabled", "toast.autovacuum_enabled"}
		var set []string
		for _, o := range []struct {
			prefix string
			opts   []string
		}{{"", main}, {"toast.", toast}} {
			for _, kv := range o.opts {
				k, v, _ := strings.Cut(kv, "=")
				if k != "autovacuum_enabled" {
					reset = append(reset, o.prefix+k)
				}
				set = append(set, fmt.Sprintf("%s%s = %s", o.prefix, k, quoteLiteral(v)))
			}
		}
		fmt.Fprintf(&back, "ALTER TABLE %s RESET (%s);\n", rel, strings.Join(reset, ", "))
		if len(set) > 0 {
			fmt.Fprintf(&back, "ALTER TABLE %s SET (%s);\n", rel, strings.Join(set, ", "))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("list tables to pause autovacuum: %w", err)
	}
	if pause.Len() == 0 {
		return "", nil
	}
	if err := execSimple(ctx, conn.PgConn(), pause.String()); err != nil {
		return "", fmt.Errorf("pause autovacuum on the clone's tables: %w", err)
	}
	return back.String(), nil
}
