package migrate

import (
	"iter"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Workload is the old application's captured queries, indexed by the
// tables and columns they name, so lint can say which queries a DROP or
// RENAME would break.
//
// Names are resolved from the query text alone (no catalog): a qualified
// column (u.email) belongs to the table its qualifier or alias names; an
// unqualified one is counted as a use of every table in the query that
// could have it; SELECT * and INSERT without a column list use every
// column. So it may over-report (a same-named column of another table in
// the same query), never under-report what the text shows.
type Workload struct {
	queries []*workQuery
	// Statements is how many statements were read; Unparsed how many of
	// them the parser rejected (they are not cross-checked).
	Statements int
	Unparsed   int
}

// QueryRef names one query (fingerprint group) of the workload.
type QueryRef struct {
	// Fingerprint is pg_query's fingerprint: the same for queries that
	// differ only in constants.
	Fingerprint string `json:"fingerprint"`
	// SQL is the first one seen, on one line, cut to 80 characters.
	SQL string `json:"sql"`
	// Count is how many captured statements share the fingerprint.
	Count int `json:"count"`
	// Uses says how the query uses the object ("reads users.email",
	// "selects * from users", "inserts into users without email").
	Uses string `json:"uses,omitempty"`
}

type tableRef struct{ schema, name string }

type workQuery struct {
	ref       QueryRef
	tables    []tableRef
	qualified map[tableRef]map[string]bool // columns named through a qualifier
	bare      map[string]bool              // unqualified column names
	star      map[tableRef]bool            // tables whose every column is used
	inserts   map[tableRef][]string        // INSERT target → listed columns (nil: none listed)
}

// NewWorkload parses and indexes captured SQL (for a slice:
// slices.Values(queries)). A string may hold several statements.
func NewWorkload(queries iter.Seq[string]) *Workload {
	w := &Workload{}
	byText := map[string]*workQuery{}
	byFP := map[string]*workQuery{}
	for q := range queries {
		if strings.TrimSpace(q) == "" {
			continue
		}
		w.Statements++
		if wq, ok := byText[q]; ok {
			wq.ref.Count++
			continue
		}
		fp, err := pg_query.Fingerprint(q)
		if err != nil {
			w.Unparsed++
			continue
		}
		if wq, ok := byFP[fp]; ok {
			wq.ref.Count++
			byText[q] = wq
			continue
		}
		wq, err := indexQuery(q)
		if err != nil {
			w.Unparsed++
			continue
		}
		wq.ref = QueryRef{Fingerprint: fp, SQL: oneLine(q, 80), Count: 1}
		byFP[fp], byText[q] = wq, wq
		w.queries = append(w.queries, wq)
	}
	return w
}

func indexQuery(q string) (*workQuery, error) {
	res, err := pg_query.Parse(q)
	if err != nil {
		return nil, err
	}
	wq := &workQuery{qualified: map[tableRef]map[string]bool{}, bare: map[string]bool{}, star: map[tableRef]bool{}, inserts: map[tableRef][]string{}}
	alias := map[string]tableRef{}
	var cols [][]string
	seen := map[tableRef]bool{}
	useCol := func(t tableRef, c string) {
		if wq.qualified[t] == nil {
			wq.qualified[t] = map[string]bool{}
		}
		wq.qualified[t][c] = true
	}
	for _, rs := range res.Stmts {
		walk(rs.Stmt, func(m proto.Message) bool {
			switch n := m.(type) {
			case *pg_query.RangeVar:
				t := tableRef{n.Schemaname, n.Relname}
				if !seen[t] {
					seen[t] = true
					wq.tables = append(wq.tables, t)
				}
				alias[n.Relname] = t
				if n.Alias != nil && n.Alias.Aliasname != "" {
					alias[n.Alias.Aliasname] = t
				}
			case *pg_query.ColumnRef:
				var parts []string
				star := false
				for _, f := range n.Fields {
					if s := f.GetString_(); s != nil {
						parts = append(parts, s.Sval)
					} else if f.GetAStar() != nil {
						star = true
					}
				}
				if star {
					parts = append(parts, "*")
				}
				cols = append(cols, parts)
			case *pg_query.InsertStmt:
				if n.Relation != nil {
					t := tableRef{n.Relation.Schemaname, n.Relation.Relname}
					var listed []string
					for _, c := range n.Cols {
						if rt := c.GetResTarget(); rt != nil {
							listed = append(listed, rt.Name)
							useCol(t, rt.Name)
						}
					}
					wq.inserts[t] = listed
				}
			case *pg_query.UpdateStmt:
				if n.Relation != nil {
					t := tableRef{n.Relation.Schemaname, n.Relation.Relname}
					for _, c := range n.TargetList {
						if rt := c.GetResTarget(); rt != nil && rt.Name != "" {
							useCol(t, rt.Name)
						}
					}
				}
			}
			return true
		})
	}
	for _, parts := range cols {
		switch len(parts) {
		case 0:
		case 1:
			if parts[0] == "*" {
				for _, t := range wq.tables {
					wq.star[t] = true
				}
			} else {
				wq.bare[parts[0]] = true
			}
		default:
			qual, col := parts[len(parts)-2], parts[len(parts)-1]
			t, ok := alias[qual]
			if !ok {
				if len(parts) >= 3 {
					t = tableRef{parts[len(parts)-3], qual}
				} else {
					t = tableRef{"", qual}
				}
			}
			if col == "*" {
				wq.star[t] = true
			} else {
				useCol(t, col)
			}
		}
	}
	for t, listed := range wq.inserts {
		if listed == nil {
			wq.star[t] = true
		}
	}
	return wq, nil
}

// sameTable compares a migration's table with a query's, treating an
// unqualified name and "public" as matching any schema.
func sameTable(a, b tableRef) bool {
	if a.name != b.name {
		return false
	}
	as, bs := a.schema, b.schema
	return as == "" || bs == "" || as == bs || (as == "public" && bs == "") || (bs == "public" && as == "")
}

func (q *workQuery) hasTable(t tableRef) bool {
	for _, x := range q.tables {
		if sameTable(t, x) {
			return true
		}
	}
	return false
}

// UsesTable returns the queries that name the table (schema may be "").
func (w *Workload) UsesTable(schema, table string) []QueryRef {
	if w == nil {
		return nil
	}
	t := tableRef{schema, table}
	var out []QueryRef
	for _, q := range w.queries {
		if q.hasTable(t) {
			r := q.ref
			r.Uses = "uses table " + table
			out = append(out, r)
		}
	}
	return sortRefs(out)
}

// UsesColumn returns the queries that read or write the column, or use
// every column of its table (SELECT *, INSERT without a column list).
func (w *Workload) UsesColumn(schema, table, column string) []QueryRef {
	if w == nil {
		return nil
	}
	t := tableRef{schema, table}
	var out []QueryRef
	for _, q := range w.queries {
		if !q.hasTable(t) {
			continue
		}
		uses := ""
		for qt, cs := range q.qualified {
			if sameTable(t, qt) && cs[column] {
				uses = "uses " + table + "." + column
			}
		}
		if uses == "" && q.bare[column] {
			uses = "uses " + column + " (unqualified) with " + table
		}
		if uses == "" {
			for qt := range q.star {
				if sameTable(t, qt) {
					uses = "uses every column of " + table + " (* or INSERT without a column list)"
				}
			}
		}
		if uses != "" {
			r := q.ref
			r.Uses = uses
			out = append(out, r)
		}
	}
	return sortRefs(out)
}

// InsertsWithout returns the queries that insert into the table without
// naming the column, so they rely on its default (an INSERT without a
// column list counts: it leaves trailing columns to their defaults).
func (w *Workload) InsertsWithout(schema, table, column string) []QueryRef {
	if w == nil {
		return nil
	}
	t := tableRef{schema, table}
	var out []QueryRef
	for _, q := range w.queries {
		for it, listed := range q.inserts {
			if !sameTable(t, it) {
				continue
			}
			found := false
			for _, c := range listed {
				found = found || c == column
			}
			if !found {
				r := q.ref
				r.Uses = "inserts into " + table + " without " + column
				if listed == nil {
					r.Uses = "inserts into " + table + " without a column list"
				}
				out = append(out, r)
			}
		}
	}
	return sortRefs(out)
}

func sortRefs(rs []QueryRef) []QueryRef {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Count != rs[j].Count {
			return rs[i].Count > rs[j].Count
		}
		return rs[i].SQL < rs[j].SQL
	})
	return rs
}
