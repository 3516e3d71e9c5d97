package masking

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dbtwin/dbtwin/replay"
)

// WorkloadResult says what [Plan.MaskEvent] changed in one event. It holds
// counts and column names, never values.
type WorkloadResult struct {
	// Literals and Params are how many SQL literals and bind parameters
	// were masked.
	Literals, Params int
	// Skipped explains values that meet a masked column but were left as
	// they were ("$2 meets public.users.email and public.orders.id", "a
	// literal for public.users.email is not an e-mail address").
	Skipped []string
}

// ErrUnparsable is wrapped by [Plan.MaskEvent] when a statement does not
// parse: its literals cannot be found, so the caller should drop or
// quarantine the event rather than replay it unmasked.
var ErrUnparsable = errors.New("statement does not parse")

// MaskEvent masks, in place, the literals and bind parameters of a captured
// statement that are compared with, inserted into or assigned to a masked
// column — WHERE email = $1, email IN ('a', 'b'), lower(email) = lower($1),
// INSERT … VALUES, UPDATE … SET — with that column's transform, so the
// replayed statement finds the masked rows. Columns are found with the
// PostgreSQL parser; an unqualified column is resolved among the
// statement's tables when they agree on its transform. Other events are
// left alone.
func (p *Plan) MaskEvent(ev *replay.Event) (WorkloadResult, error) {
	var res WorkloadResult
	if ev.Kind != replay.KindStatement || strings.TrimSpace(ev.SQL) == "" {
		return res, nil
	}
	tree, err := pg_query.Parse(ev.SQL)
	if err != nil {
		where := ev.Source
		if where == "" {
			where = fmt.Sprintf("event %d", ev.Seq)
		}
		return res, fmt.Errorf("mask workload %s: %w", where, ErrUnparsable)
	}
	w := &workloadMasker{p: p, ev: ev, res: &res, params: map[int]*colPlan{}}
	for _, raw := range tree.Stmts {
		w.scope = collectScope(p, raw.Stmt)
		walk(raw.Stmt.ProtoReflect(), w.visit)
	}
	if len(w.edits) > 0 {
		sort.Slice(w.edits, func(i, j int) bool { return w.edits[i].start > w.edits[j].start })
		sql := ev.SQL
		for _, e := range w.edits {
			sql = sql[:e.start] + e.text + sql[e.end:]
		}
		ev.SQL = sql
	}
	return res, nil
}

type workloadMasker struct {
	p      *Plan
	ev     *replay.Event
	res    *WorkloadResult
	scope  *scope
	edits  []edit
	params map[int]*colPlan // parameter index → the column it was masked for
	seen   map[int32]bool   // literal locations already rewritten
}

type edit struct {
	start, end int
	text       string
}

// scope is what a statement's column references can refer to.
type scope struct {
	byAlias map[string]*TableMasker // alias or table name → masker (nil: table not masked)
	tables  []*TableMasker
}

func collectScope(p *Plan, n *pg_query.Node) *scope {
	s := &scope{byAlias: map[string]*TableMasker{}}
	walk(n.ProtoReflect(), func(m proto.Message) {
		rv, ok := m.(*pg_query.RangeVar)
		if !ok {
			return
		}
		name := rv.Relname
		if rv.Schemaname != "" {
			name = rv.Schemaname + "." + rv.Relname
		}
		tm := p.Table(name)
		s.byAlias[rv.Relname] = tm
		if rv.Alias != nil {
			s.byAlias[rv.Alias.Aliasname] = tm
		}
		if tm != nil {
			s.tables = append(s.tables, tm)
		}
	})
	return s
}

// walk calls f on every message of the tree, parents first.
func walk(m protoreflect.Message, f func(proto.Message)) {
	if !m.IsValid() {
		return
	}
	f(m.Interface())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), f)
			}
		case fd.Message() != nil && !fd.IsMap():
			walk(v.Message(), f)
		}
		return true
	})
}

func (w *workloadMasker) visit(m proto.Message) {
	switch n := m.(type) {
	case *pg_query.A_Expr:
		switch n.Kind {
		case pg_query.A_Expr_Kind_AEXPR_OP, pg_query.A_Expr_Kind_AEXPR_IN, pg_query.A_Expr_Kind_AEXPR_OP_ANY,
			pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		default:
			return
		}
		if n.Kind != pg_query.A_Expr_Kind_AEXPR_IN && !isEqualityOp(n.Name) {
			return
		}
		if n.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ANY && unwrapValue(n.Rexpr).GetParamRef() != nil {
			if cp := w.column(n.Lexpr); cp != nil {
				w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("= ANY($%d) over column %s: array parameters are not masked", unwrapValue(n.Rexpr).GetParamRef().Number, cp.name))
			}
			return
		}
		if cp := w.column(n.Lexpr); cp != nil {
			w.values(n.Rexpr, cp)
		} else if cp := w.column(n.Rexpr); cp != nil {
			w.values(n.Lexpr, cp)
		}
	case *pg_query.InsertStmt:
		tm := w.p.Table(rangeVarName(n.Relation))
		if tm == nil || n.SelectStmt == nil {
			return
		}
		sel := n.SelectStmt.GetSelectStmt()
		if sel == nil || len(sel.ValuesLists) == 0 {
			return
		}
		cols := make([]string, 0, len(n.Cols))
		for _, c := range n.Cols {
			cols = append(cols, c.GetResTarget().GetName())
		}
		if len(cols) == 0 {
			cols = tm.order
		}
		for _, row := range sel.ValuesLists {
			for i, v := range row.GetList().GetItems() {
				if i < len(cols) {
					if cp := maskable(tm, cols[i]); cp != nil {
						w.values(v, cp)
					}
				}
			}
		}
	case *pg_query.UpdateStmt:
		tm := w.p.Table(rangeVarName(n.Relation))
		if tm == nil {
			return
		}
		for _, t := range n.TargetList {
			rt := t.GetResTarget()
			if cp := maskable(tm, rt.GetName()); cp != nil && len(rt.GetIndirection()) == 0 {
				w.values(rt.GetVal(), cp)
			}
		}
	}
}

func rangeVarName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return ""
	}
	if rv.Schemaname != "" {
		return rv.Schemaname + "." + rv.Relname
	}
	return rv.Relname
}

func isEqualityOp(name []*pg_query.Node) bool {
	if len(name) == 0 {
		return false
	}
	op := name[len(name)-1].GetString_().GetSval()
	return op == "=" || op == "<>" || op == "!="
}

// maskable returns the column's plan when a lone value can be masked like
// the column: a masked column whose transform does not read the row.
func maskable(tm *TableMasker, col string) *colPlan {
	if tm == nil {
		return nil
	}
	cp := tm.cols[col]
	if cp == nil || cp.action != Mask || cp.t == nil || len(cp.reads) > 0 {
		return nil
	}
	return cp
}

// column resolves an expression to a masked column: a column reference,
// possibly under a cast or lower()/upper().
func (w *workloadMasker) column(n *pg_query.Node) *colPlan {
	n = unwrapValue(n)
	cr := n.GetColumnRef()
	if cr == nil {
		return nil
	}
	var names []string
	for _, f := range cr.Fields {
		s := f.GetString_()
		if s == nil {
			return nil // a.*
		}
		names = append(names, s.Sval)
	}
	col := names[len(names)-1]
	if len(names) >= 2 {
		qual := names[len(names)-2]
		if len(names) >= 3 {
			return maskable(w.p.Table(names[len(names)-3]+"."+qual), col)
		}
		return maskable(w.scope.byAlias[qual], col)
	}
	var found *colPlan
	for _, tm := range w.scope.tables {
		cp := maskable(tm, col)
		if cp == nil {
			continue
		}
		if found != nil && fingerprint(found.decision.Spec) != fingerprint(cp.decision.Spec) {
			w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("column %q is ambiguous among the statement's tables", col))
			return nil
		}
		if found == nil {
			found = cp
		}
	}
	return found
}

// unwrapValue looks through casts and lower()/upper(), which masking
// commutes with (transforms key on case-folded values or keep case).
func unwrapValue(n *pg_query.Node) *pg_query.Node {
	for n != nil {
		switch {
		case n.GetTypeCast() != nil:
			n = n.GetTypeCast().Arg
		case n.GetFuncCall() != nil:
			fc := n.GetFuncCall()
			if len(fc.Args) != 1 || len(fc.Funcname) == 0 {
				return n
			}
			switch fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval() {
			case "lower", "upper", "btrim", "trim":
				n = fc.Args[0]
			default:
				return n
			}
		default:
			return n
		}
	}
	return n
}

// values masks the literals and parameters of a value expression (a single
// value, an IN list or an ARRAY[…]) for column cp.
func (w *workloadMasker) values(n *pg_query.Node, cp *colPlan) {
	n = unwrapValue(n)
	if n == nil {
		return
	}
	switch {
	case n.GetList() != nil:
		for _, it := range n.GetList().Items {
			w.values(it, cp)
		}
	case n.GetAArrayExpr() != nil:
		for _, it := range n.GetAArrayExpr().Elements {
			w.values(it, cp)
		}
	case n.GetParamRef() != nil:
		w.param(int(n.GetParamRef().Number), cp)
	case n.GetAConst() != nil:
		w.literal(n.GetAConst(), cp)
	}
}

func (w *workloadMasker) param(num int, cp *colPlan) {
	i := num - 1
	if i < 0 || i >= len(w.ev.Params) {
		return
	}
	if prev, ok := w.params[i]; ok {
		if fingerprint(prev.decision.Spec) != fingerprint(cp.decision.Spec) || prev.decision.Spec.DomainName() != cp.decision.Spec.DomainName() {
			w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("$%d meets columns of two domains (%s, %s); masked for the first", num, prev.decision.Spec.DomainName(), cp.decision.Spec.DomainName()))
		}
		return
	}
	w.params[i] = cp
	prm := &w.ev.Params[i]
	if prm.Value == nil {
		return
	}
	if prm.Binary {
		w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("$%d is in binary format", num))
		return
	}
	out, err := cp.t.Append(nil, []byte(*prm.Value))
	if err != nil {
		w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("$%d for column %s: %v", num, cp.name, err))
		return
	}
	s := string(out)
	prm.Value = &s
	w.res.Params++
}

func (w *workloadMasker) literal(c *pg_query.A_Const, cp *colPlan) {
	if c.Isnull {
		return
	}
	if w.seen == nil {
		w.seen = map[int32]bool{}
	}
	if w.seen[c.Location] {
		return
	}
	w.seen[c.Location] = true
	start, end, value, quoted, ok := scanLiteral(w.ev.SQL, int(c.Location))
	if !ok {
		w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("a literal for column %s has a form dbtwin does not rewrite", cp.name))
		return
	}
	out, err := cp.t.Append(nil, []byte(value))
	if err != nil {
		w.res.Skipped = append(w.res.Skipped, fmt.Sprintf("a literal for column %s: %v", cp.name, err))
		return
	}
	text := string(out)
	if quoted {
		text = "'" + strings.ReplaceAll(text, "'", "''") + "'"
	} else if _, isInt := parseInt64(out); !isInt {
		text = "'" + strings.ReplaceAll(text, "'", "''") + "'"
	}
	w.edits = append(w.edits, edit{start, end, text})
	w.res.Literals++
}

// scanLiteral reads the literal at byte offset loc of sql: a standard
// string ('…' with ” escapes), an E'…' string, or an integer (possibly
// negative). It returns its extent and value.
func scanLiteral(sql string, loc int) (start, end int, value string, quoted, ok bool) {
	if loc < 0 || loc >= len(sql) {
		return 0, 0, "", false, false
	}
	i := loc
	escape := false
	if (sql[i] == 'E' || sql[i] == 'e') && i+1 < len(sql) && sql[i+1] == '\'' {
		escape = true
		i++
	}
	if sql[i] == '\'' {
		var b strings.Builder
		for j := i + 1; j < len(sql); j++ {
			c := sql[j]
			switch {
			case c == '\'' && j+1 < len(sql) && sql[j+1] == '\'':
				b.WriteByte('\'')
				j++
			case c == '\'':
				return loc, j + 1, b.String(), true, true
			case c == '\\' && escape:
				if j+1 >= len(sql) {
					return 0, 0, "", false, false
				}
				j++
				switch e := sql[j]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case 'b':
					b.WriteByte('\b')
				case 'f':
					b.WriteByte('\f')
				case '\\', '\'':
					b.WriteByte(e)
				default:
					return 0, 0, "", false, false // octal, hex, unicode escapes: left alone
				}
			default:
				b.WriteByte(c)
			}
		}
		return 0, 0, "", false, false
	}
	j := i
	if j < len(sql) && sql[j] == '-' {
		j++
		for j < len(sql) && (sql[j] == ' ' || sql[j] == '\t') {
			j++
		}
	}
	k := j
	for k < len(sql) && isDigit(sql[k]) {
		k++
	}
	if k == j || k < len(sql) && (sql[k] == '.' || sql[k] == 'e' || sql[k] == 'E' || isWordByte(sql[k])) {
		return 0, 0, "", false, false
	}
	v := sql[j:k]
	if j > i {
		v = "-" + v
	}
	return loc, k, v, false, true
}
