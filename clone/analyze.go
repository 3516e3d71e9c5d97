package clone

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// analyzeAll runs ANALYZE on every table and materialized view of the
// database dsn names, in jobs parallel sessions, largest first.
//
// A partitioned table's own statistics (the "inherited" ones, over all its
// partitions) are gathered only by an explicit ANALYZE of it, never by
// autovacuum, so most production databases have none; and ANALYZE of a
// partitioned table also analyzes every partition under it. So a
// partitioned table is analyzed as a whole (one job, sized by its tree)
// when parentStats says the source has statistics for it, and otherwise its
// partitions are analyzed one by one, as autovacuum does: the clone's
// planner then sees what the source's sees. A nil parentStats (a dump file:
// nothing to ask) analyzes every partitioned table as a whole.
//
// Relations whose statistics copyStats copied (stats.done) are not
// analyzed, or only for the columns it could not copy (stats.cols); a nil
// stats analyzes everything.
//
// Materialized views are refreshed before (in post-data), so that their
// statistics describe their refreshed contents.
func analyzeAll(ctx context.Context, dsn, desc string, jobs int, parentStats map[string]bool, stats *statsPlan) error {
	conn, err := connectTarget(ctx, dsn, desc)
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `
SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relkind::text,
       (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition),
       CASE WHEN c.relkind = 'p'
         THEN (SELECT coalesce(sum(pg_catalog.pg_relation_size(t.relid)), 0) FROM pg_catalog.pg_partition_tree(c.oid) t)
         ELSE pg_catalog.pg_relation_size(c.oid) END
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p')
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'`)
	if err != nil {
		conn.Close(ctx)
		return fmt.Errorf("list tables to analyze in %s: %w", desc, err)
	}
	rels, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (analyzeRel, error) {
		var r analyzeRel
		var parent *uint32
		err := row.Scan(&r.oid, &r.name, &r.kind, &parent, &r.size)
		if parent != nil {
			r.parent = *parent
		}
		return r, err
	})
	if err != nil {
		conn.Close(ctx)
		return fmt.Errorf("list tables to analyze in %s: %w", desc, err)
	}
	plan := planAnalyze(rels, parentStats, stats)

	queue := make(chan string, len(plan))
	for _, r := range plan {
		queue <- r.name + r.cols
	}
	close(queue)
	g := newGroup(ctx)
	for i := range min(jobs, max(1, len(plan))) {
		g.Go(func(ctx context.Context) error {
			c := conn
			if i > 0 {
				var err error
				if c, err = connectTarget(ctx, dsn, desc); err != nil {
					return err
				}
			}
			defer c.Close(context.WithoutCancel(ctx))
			for rel := range queue {
				if err := execSimple(ctx, c.PgConn(), "ANALYZE "+rel); err != nil {
					return fmt.Errorf("analyze %s in %s: %w", rel, desc, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// analyzeRel is a table, partitioned table or materialized view.
type analyzeRel struct {
	oid    uint32
	name   string // quoted, qualified
	kind   string // pg_class.relkind
	parent uint32 // the partitioned table it is a partition of; 0: none
	size   int64  // bytes; a partitioned table's: its whole tree's
	cols   string // a column list to analyze, " (a, b)"; "": all
}

// planAnalyze chooses the ANALYZE jobs, largest first: see analyzeAll.
func planAnalyze(rels []analyzeRel, parentStats map[string]bool, stats *statsPlan) []analyzeRel {
	children := map[uint32][]analyzeRel{}
	for _, r := range rels {
		if r.parent != 0 {
			children[r.parent] = append(children[r.parent], r)
		}
	}
	var plan []analyzeRel
	// covered: the columns an ANALYZE of a partitioned ancestor already
	// analyzes in r.
	var add func(r analyzeRel, depth int, covered []string)
	add = func(r analyzeRel, depth int, covered []string) {
		if stats != nil && stats.done[r.oid] {
			var cols []string
			for _, c := range stats.cols[r.oid] {
				if !slices.Contains(covered, c) {
					cols = append(cols, c)
				}
			}
			if len(cols) > 0 {
				r.cols = " " + quoteCols(cols)
				plan = append(plan, r)
			}
			if r.kind == "p" && depth <= 64 {
				for _, c := range children[r.oid] {
					add(c, depth+1, append(slices.Clip(covered), cols...))
				}
			}
			return
		}
		if r.kind != "p" || parentStats == nil || parentStats[r.name] || depth > 64 {
			plan = append(plan, r) // ANALYZE of a partitioned table covers its tree
			return
		}
		for _, c := range children[r.oid] {
			add(c, depth+1, covered)
		}
	}
	for _, r := range rels {
		if r.parent == 0 {
			add(r, 0, nil)
		}
	}
	slices.SortStableFunc(plan, func(a, b analyzeRel) int {
		return cmp.Or(cmp.Compare(b.size, a.size), cmp.Compare(a.name, b.name))
	})
	return plan
}

// listParentStats returns the tables (quoted, qualified names) with
// statistics over their inheritance children on the source (pg_stats rows
// with inherited = true, which the role sees for the columns it may read).
func listParentStats(ctx context.Context, conn *pgx.Conn) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT DISTINCT pg_catalog.quote_ident(s.schemaname) || '.' || pg_catalog.quote_ident(s.tablename)
FROM pg_catalog.pg_stats s WHERE s.inherited`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m, nil
}
