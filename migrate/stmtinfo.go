package migrate

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// walk calls fn for every message in the parse tree under m, depth first;
// fn returning false skips that message's children.
func walk(m proto.Message, fn func(proto.Message) bool) {
	if m == nil {
		return
	}
	walkReflect(m.ProtoReflect(), fn)
}

func walkReflect(m protoreflect.Message, fn func(proto.Message) bool) {
	if !m.IsValid() || !fn(m.Interface()) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkReflect(l.Get(i).Message(), fn)
			}
			return true
		}
		walkReflect(v.Message(), fn)
		return true
	})
}

// hasDefElem reports whether opts holds a DefElem named name (VACUUM
// (FULL), REINDEX (CONCURRENTLY) …).
func hasDefElem(opts []*pg_query.Node, name string) bool {
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, name) {
			if d.Arg != nil {
				// VACUUM (FULL false)
				if b := d.Arg.GetBoolean(); b != nil && !b.Boolval {
					return false
				}
				if s := d.Arg.GetString_(); s != nil && (strings.EqualFold(s.Sval, "false") || s.Sval == "0" || strings.EqualFold(s.Sval, "off")) {
					return false
				}
				if c := d.Arg.GetAConst(); c != nil {
					if iv := c.GetIval(); iv != nil && iv.Ival == 0 && c.GetSval() == nil && c.GetBoolval() == nil {
						return false
					}
					if bv := c.GetBoolval(); bv != nil && !bv.Boolval {
						return false
					}
				}
			}
			return true
		}
	}
	return false
}

// refusesTransaction reports whether PostgreSQL (of the given major
// version; 0 means current) refuses to run the statement inside a
// transaction block, and names it for messages.
func refusesTransaction(n *pg_query.Node, major int) (string, bool) {
	switch {
	case n.GetIndexStmt() != nil && n.GetIndexStmt().Concurrent:
		return "CREATE INDEX CONCURRENTLY", true
	case n.GetDropStmt() != nil && n.GetDropStmt().Concurrent:
		return "DROP INDEX CONCURRENTLY", true
	case n.GetReindexStmt() != nil:
		r := n.GetReindexStmt()
		if hasDefElem(r.Params, "concurrently") {
			return "REINDEX CONCURRENTLY", true
		}
		if r.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_DATABASE || r.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_SYSTEM || r.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_SCHEMA {
			return "REINDEX SCHEMA/DATABASE/SYSTEM", true
		}
	case n.GetVacuumStmt() != nil && n.GetVacuumStmt().IsVacuumcmd:
		return "VACUUM", true
	case n.GetCreatedbStmt() != nil:
		return "CREATE DATABASE", true
	case n.GetDropdbStmt() != nil:
		return "DROP DATABASE", true
	case n.GetAlterSystemStmt() != nil:
		return "ALTER SYSTEM", true
	case n.GetCreateTableSpaceStmt() != nil:
		return "CREATE TABLESPACE", true
	case n.GetDropTableSpaceStmt() != nil:
		return "DROP TABLESPACE", true
	case n.GetCreateSubscriptionStmt() != nil:
		return "CREATE SUBSCRIPTION", true
	case n.GetDropSubscriptionStmt() != nil:
		return "DROP SUBSCRIPTION", true
	case n.GetAlterTableStmt() != nil:
		for _, c := range n.GetAlterTableStmt().Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd != nil && cmd.Subtype == pg_query.AlterTableType_AT_DetachPartition {
				if pc := cmd.Def.GetPartitionCmd(); pc != nil && pc.Concurrent {
					return "DETACH PARTITION CONCURRENTLY", true
				}
			}
		}
	case n.GetAlterEnumStmt() != nil && major > 0 && major < 12:
		if e := n.GetAlterEnumStmt(); e.NewVal != "" && e.OldVal == "" {
			return "ALTER TYPE … ADD VALUE (before PostgreSQL 12)", true
		}
	}
	return "", false
}

// isTxControl reports whether the statement begins, ends or otherwise
// steers a transaction (BEGIN, COMMIT, SAVEPOINT …).
func isTxControl(n *pg_query.Node) bool { return n.GetTransactionStmt() != nil }

// sqlInfo is what the apply engine needs to know about one statement
// before it runs.
type sqlInfo struct {
	refuses   bool     // cannot run in a transaction block
	txControl bool     // BEGIN/COMMIT/…
	tables    []string // relations it names, as SQL identifiers for to_regclass
}

// analyze parses sql (one or more statements) for the apply engine. A
// statement that does not parse gets the zero sqlInfo: it runs as written
// and the server reports the error.
func analyze(sql string, major int) sqlInfo {
	var info sqlInfo
	res, err := pg_query.Parse(sql)
	if err != nil {
		return info
	}
	seen := map[string]bool{}
	add := func(schema, name string) {
		q := quoteIdent(name)
		if schema != "" {
			q = quoteIdent(schema) + "." + q
		}
		if !seen[q] {
			seen[q] = true
			info.tables = append(info.tables, q)
		}
	}
	for _, rs := range res.Stmts {
		if _, ok := refusesTransaction(rs.Stmt, major); ok {
			info.refuses = true
		}
		if isTxControl(rs.Stmt) {
			info.txControl = true
		}
		if d := rs.Stmt.GetDropStmt(); d != nil && (d.RemoveType == pg_query.ObjectType_OBJECT_TABLE || d.RemoveType == pg_query.ObjectType_OBJECT_MATVIEW) {
			for _, o := range d.Objects {
				if s, n := qualifiedName(o); n != "" {
					add(s, n)
				}
			}
		}
		walk(rs.Stmt, func(m proto.Message) bool {
			if rv, ok := m.(*pg_query.RangeVar); ok && rv.Relname != "" {
				add(rv.Schemaname, rv.Relname)
			}
			return true
		})
	}
	return info
}

// qualifiedName reads a List of String nodes ("schema", "name") as used by
// DROP and friends.
func qualifiedName(n *pg_query.Node) (schema, name string) {
	l := n.GetList()
	if l == nil {
		return "", ""
	}
	var parts []string
	for _, it := range l.Items {
		if s := it.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		}
	}
	switch len(parts) {
	case 0:
		return "", ""
	case 1:
		return "", parts[0]
	default:
		return parts[len(parts)-2], parts[len(parts)-1]
	}
}

// quoteIdent quotes an identifier the way PostgreSQL's quote_ident does
// when needed (anything but lower-case letters, digits and underscores).
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || (i > 0 && (r >= '0' && r <= '9' || r == '$'))) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
