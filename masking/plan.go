package masking

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Plan is a rules file checked against a database's catalog: every column
// of every table has a decision, foreign keys are closed over, domains are
// consistent, and every transform is built for its column. It is immutable
// and safe for concurrent use.
type Plan struct {
	kr      *Keyring
	cat     *Catalog
	rules   *Rules
	dec     map[string]map[string]*Decision // root table → column → decision
	domains map[string]Spec                 // effective spec per domain
	maskers map[string]*TableMasker         // root table → masker (nil: nothing to mask)
}

// ColumnDecision is one column's decision in a [Plan].
type ColumnDecision struct {
	Table, Column string
	Decision      Decision
}

// PlanError lists the columns no rule decides (the run fails closed), or
// the other problems found while checking rules against the catalog.
type PlanError struct {
	// Undecided are "schema.table.column" names without a decision.
	Undecided []string
	// Problems are located messages ("masking.yaml:12: …").
	Problems []string
	file     string
}

// Error lists the problems, then the undecided columns, one per line.
func (e *PlanError) Error() string {
	var b strings.Builder
	if len(e.Problems) > 0 {
		b.WriteString(strings.Join(e.Problems, "\n"))
	}
	if len(e.Undecided) > 0 {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s: %d column(s) have no masking decision (fail closed: add them under tables:, add a default, or set unlisted: keep):", e.file, len(e.Undecided))
		for _, c := range e.Undecided {
			b.WriteString("\n  " + c)
		}
	}
	return b.String()
}

// fkEdge links a referencing column to the column it references.
type fkEdge struct {
	from, to colRef
	name     string
}

type colRef struct{ table, column string }

func (c colRef) String() string { return c.table + "." + c.column }

// NewPlan checks rules against cat and builds every column's transform
// keyed by kr.
func NewPlan(rules *Rules, cat *Catalog, kr *Keyring) (*Plan, error) {
	if kr == nil {
		return nil, fmt.Errorf("new masking plan: %w", errNoKey)
	}
	p := &Plan{kr: kr, cat: cat, rules: rules, dec: map[string]map[string]*Decision{}, domains: map[string]Spec{}, maskers: map[string]*TableMasker{}}
	perr := &PlanError{file: rules.File}
	problem := func(line int, format string, args ...any) {
		loc := rules.File
		if line > 0 {
			loc = fmt.Sprintf("%s:%d", rules.File, line)
		}
		perr.Problems = append(perr.Problems, loc+": "+fmt.Sprintf(format, args...))
	}
	roots := []*Table{}
	for _, t := range cat.Tables {
		if t.Parent == "" {
			roots = append(roots, t)
			p.dec[t.QualifiedName()] = map[string]*Decision{}
		}
	}

	// 1. Explicit table rules.
	for _, tr := range rules.Tables {
		t := cat.Table(tr.Name)
		if t == nil {
			problem(tr.line, "table %q does not exist in the database", tr.Name)
			continue
		}
		if t.Parent != "" {
			problem(tr.line, "table %q is a partition of %s: write its rules on %s (partitions follow it)", tr.Name, t.Parent, cat.Root(t).QualifiedName())
			continue
		}
		d := p.dec[t.QualifiedName()]
		for _, cr := range tr.Columns {
			c := t.Column(cr.Name)
			if c == nil {
				problem(cr.Decision.line, "table %q column %q does not exist in the database", tr.Name, cr.Name)
				continue
			}
			if c.Generated && cr.Decision.Action != Keep {
				problem(cr.Decision.line, "table %q column %q is generated: the target computes it from the other columns, so it can only be keep", tr.Name, cr.Name)
				continue
			}
			dd := cr.Decision
			d[c.Name] = &dd
		}
		if tr.All != nil {
			for _, c := range t.Columns {
				if _, ok := d[c.Name]; !ok && !c.Generated {
					dd := *tr.All
					d[c.Name] = &dd
				}
			}
		}
	}

	// 2. Foreign-key closure over the explicit decisions.
	edges := p.edges(problem)
	p.close(edges)

	// 3. Defaults for what is still open, then closure again.
	for _, t := range roots {
		d := p.dec[t.QualifiedName()]
		for _, c := range t.Columns {
			if _, ok := d[c.Name]; ok || c.Generated {
				continue
			}
			if dr := matchDefault(rules.Defaults, t, c); dr != nil {
				dd := dr.Decision
				d[c.Name] = &dd
			}
		}
	}
	p.close(edges)

	// 4. Generated columns, unlisted columns.
	for _, t := range roots {
		d := p.dec[t.QualifiedName()]
		for _, c := range t.Columns {
			if _, ok := d[c.Name]; ok {
				continue
			}
			switch {
			case c.Generated:
				d[c.Name] = &Decision{Action: Keep, Reason: "generated column", Source: "generated column"}
			case rules.UnlistedKeep:
				d[c.Name] = &Decision{Action: Keep, Source: "unlisted: keep"}
			default:
				perr.Undecided = append(perr.Undecided, t.QualifiedName()+"."+c.Name)
			}
		}
	}

	// Transforms without a default domain get their column's.
	for _, t := range roots {
		for _, c := range t.Columns {
			if d := p.dec[t.QualifiedName()][c.Name]; d != nil && d.Action == Mask && d.Spec.DomainName() == "" {
				dd := *d
				dd.Spec.Domain = t.QualifiedName() + "." + c.Name
				p.dec[t.QualifiedName()][c.Name] = &dd
			}
		}
	}

	// 5. Conflicts across foreign keys, NULL and DEFAULT feasibility.
	for _, e := range edges {
		a, b := p.decision(e.from), p.decision(e.to)
		if a == nil || b == nil {
			continue
		}
		if msg := conflict(a, b); msg != "" {
			problem(0, "conflicting rules on the two ends of foreign key %s: %s (%s) %s, but %s (%s) %s", e.name, e.from, a.Source, describe(a), e.to, b.Source, describe(b))
		}
	}
	for _, t := range roots {
		for _, c := range t.Columns {
			d := p.dec[t.QualifiedName()][c.Name]
			if d == nil {
				continue
			}
			switch {
			case d.Action == Null && c.NotNull:
				problem(d.line, "table %q column %q: null on a NOT NULL column", t.Name, c.Name)
			case d.Action == Null && t.IsUnique(c.Name) && t.PrimaryKey != nil && slices.Contains(t.PrimaryKey.Columns, c.Name):
				problem(d.line, "table %q column %q: null on a primary-key column", t.Name, c.Name)
			case d.Action == Default && c.NotNull && !c.HasDefault && !c.Identity:
				problem(d.line, "table %q column %q: default on a NOT NULL column that has no default", t.Name, c.Name)
			case d.Action == Mask && c.IsArray():
				problem(d.line, "table %q column %q: arrays (%s) cannot be masked element by element yet; use null, default or keep with a reason", t.Name, c.Name, c.Display)
			}
		}
	}
	if len(perr.Problems) > 0 || len(perr.Undecided) > 0 {
		return nil, perr
	}

	// 6. Domains: one transform per domain, unique where any column is.
	p.resolveDomains(roots, problem)
	if len(perr.Problems) > 0 {
		return nil, perr
	}

	// 7. Build the transforms.
	b := &builder{kr: kr, domains: func(name string) (Spec, bool) {
		s, ok := p.domains[name]
		if !ok {
			if dr, ok2 := rules.Domains[name]; ok2 {
				return p.withScrubDefaults(dr.Spec), true
			}
		}
		return s, ok
	}}
	for _, t := range roots {
		tm := &TableMasker{table: t.QualifiedName(), cols: map[string]*colPlan{}}
		masks := false
		for _, c := range t.Columns {
			d := p.dec[t.QualifiedName()][c.Name]
			cp := &colPlan{name: c.Name, action: d.Action, decision: d, typ: c.Type}
			tm.cols[c.Name] = cp
			tm.order = append(tm.order, c.Name)
			if c.Generated {
				cp.generated = true
			}
			if d.Action == Keep {
				continue
			}
			masks = true
			if d.Action != Mask {
				continue
			}
			spec := p.domains[d.Spec.DomainName()]
			tr, err := b.build(spec, c.target(t.QualifiedName(), t.IsUnique(c.Name)))
			if err != nil {
				problem(d.line, "table %q column %q: %v", t.Name, c.Name, err)
				continue
			}
			cp.t = tr
			cp.reads = rowColumns(tr)
		}
		// Row transforms read columns of the same table; templates read
		// masked values, so they cannot read other templates.
		for _, name := range tm.order {
			cp := tm.cols[name]
			for _, r := range cp.reads {
				other, ok := tm.cols[r]
				switch {
				case !ok:
					problem(cp.decision.line, "table %q column %q: reads column %q, which the table does not have", t.Name, name, r)
				case len(other.reads) > 0 && cp.decision.Spec.Transform == "template":
					problem(cp.decision.line, "table %q column %q: template reads %q, which is itself computed from the row", t.Name, name, r)
				case other.action == Default:
					problem(cp.decision.line, "table %q column %q: reads %q, which is left to its default", t.Name, name, r)
				}
			}
		}
		if masks {
			p.maskers[t.QualifiedName()] = tm
		}
	}
	if len(perr.Problems) > 0 {
		return nil, perr
	}
	return p, nil
}

// decision returns the decision for a column, or nil.
func (p *Plan) decision(c colRef) *Decision {
	if d, ok := p.dec[c.table]; ok {
		return d[c.column]
	}
	return nil
}

// edges returns the foreign keys (declared and from the rules' references)
// between root tables' columns.
func (p *Plan) edges(problem func(int, string, ...any)) []fkEdge {
	var out []fkEdge
	seen := map[string]bool{}
	add := func(e fkEdge) {
		k := e.from.String() + ">" + e.to.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	for _, t := range p.cat.Tables {
		root := p.cat.Root(t).QualifiedName()
		for _, fk := range t.ForeignKeys {
			rt := p.cat.Table(fk.RefTable)
			if rt == nil {
				continue
			}
			ref := p.cat.Root(rt).QualifiedName()
			for i := range fk.Columns {
				add(fkEdge{from: colRef{root, fk.Columns[i]}, to: colRef{ref, fk.RefColumns[i]}, name: fk.Name})
			}
		}
	}
	for _, r := range p.rules.References {
		ft, tt := p.cat.Table(r.Table), p.cat.Table(r.RefTable)
		if ft == nil || tt == nil {
			problem(r.line, "reference %s → %s: table does not exist in the database", r.Table, r.RefTable)
			continue
		}
		ft, tt = p.cat.Root(ft), p.cat.Root(tt)
		for i := range r.Columns {
			if ft.Column(r.Columns[i]) == nil || tt.Column(r.RefColumns[i]) == nil {
				problem(r.line, "reference %s(%s) → %s(%s): column does not exist", r.Table, r.Columns[i], r.RefTable, r.RefColumns[i])
				continue
			}
			add(fkEdge{from: colRef{ft.QualifiedName(), r.Columns[i]}, to: colRef{tt.QualifiedName(), r.RefColumns[i]}, name: fmt.Sprintf("%s:%d", p.rules.File, r.line)})
		}
	}
	return out
}

// close propagates mask and keep decisions across foreign keys, both ways,
// to columns that have none yet.
func (p *Plan) close(edges []fkEdge) {
	for changed := true; changed; {
		changed = false
		for _, e := range edges {
			a, b := p.decision(e.from), p.decision(e.to)
			switch {
			case a == nil && b != nil && (b.Action == Mask || b.Action == Keep):
				d := *b
				d.Source = fmt.Sprintf("foreign key %s → %s", e.name, e.to)
				p.dec[e.from.table][e.from.column] = &d
				changed = true
			case b == nil && a != nil && (a.Action == Mask || a.Action == Keep):
				d := *a
				d.Source = fmt.Sprintf("foreign key %s ← %s", e.name, e.from)
				p.dec[e.to.table][e.to.column] = &d
				changed = true
			}
		}
	}
}

// conflict explains why two ends of a foreign key cannot have these
// decisions, or returns "".
func conflict(from, to *Decision) string {
	switch {
	case from.Action == Null || from.Action == Default:
		return "" // a referencing column may be emptied
	case from.Action == Mask && to.Action == Mask:
		if from.Spec.DomainName() != to.Spec.DomainName() || fingerprint(from.Spec) != fingerprint(to.Spec) {
			return "different transforms"
		}
		return ""
	case from.Action == Keep && to.Action == Keep:
		return ""
	}
	return "mask on one end only"
}

func describe(d *Decision) string {
	if d.Action == Mask {
		return fmt.Sprintf("masks with %q in domain %q", d.Spec.Transform, d.Spec.DomainName())
	}
	return "is " + d.Action.String()
}

// fingerprint identifies a transform and its options (not the computed
// unique flag).
func fingerprint(s Spec) string {
	o := s.Options
	o.Unique = false
	b, _ := json.Marshal(struct {
		T string
		O Options
	}{s.Transform, o})
	return string(b)
}

// typeAliases maps SQL spellings to pg_type names for defaults' type:.
var typeAliases = map[string]string{
	"bigint": "int8", "integer": "int4", "int": "int4", "smallint": "int2",
	"character varying": "varchar", "character": "bpchar", "char": "bpchar",
	"timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp", "timestamp": "timestamp",
	"boolean": "bool", "double precision": "float8", "real": "float4", "decimal": "numeric",
}

func matchDefault(defs []DefaultRule, t *Table, c *Column) *DefaultRule {
	for i := range defs {
		d := &defs[i]
		if d.Table != "" {
			m1, _ := filepath.Match(d.Table, t.Name)
			m2, _ := filepath.Match(d.Table, t.QualifiedName())
			if !m1 && !m2 {
				continue
			}
		}
		if d.Name != "" {
			if m, _ := filepath.Match(d.Name, c.Name); !m {
				continue
			}
		}
		if d.Type != "" {
			want := d.Type
			if a, ok := typeAliases[want]; ok {
				want = a
			}
			if want != c.Type && d.Type != c.Display {
				continue
			}
		}
		return d
	}
	return nil
}

// resolveDomains checks that every use of a domain names the same
// transform and options, and computes its effective spec.
func (p *Plan) resolveDomains(roots []*Table, problem func(int, string, ...any)) {
	type use struct {
		spec   Spec
		source string
		line   int
	}
	uses := map[string][]use{}
	unique := map[string]bool{}
	intTypes := map[string][]string{}
	for name, dr := range p.rules.Domains {
		uses[name] = append(uses[name], use{dr.Spec, fmt.Sprintf("%s:%d", p.rules.File, dr.line), dr.line})
	}
	var walk func(s Spec, source string, line int)
	walk = func(s Spec, source string, line int) {
		uses[s.DomainName()] = append(uses[s.DomainName()], use{s, source, line})
		for _, pr := range s.Options.Paths {
			if !pr.Null {
				walk(pr.Spec, fmt.Sprintf("%s:%d", p.rules.File, pr.line), pr.line)
			}
		}
	}
	for _, t := range roots {
		for _, c := range t.Columns {
			d := p.dec[t.QualifiedName()][c.Name]
			if d == nil || d.Action != Mask {
				continue
			}
			walk(d.Spec, d.Source, d.line)
			dn := d.Spec.DomainName()
			if t.IsUnique(c.Name) {
				unique[dn] = true
			}
			if d.Spec.Transform == "int" {
				intTypes[dn] = append(intTypes[dn], c.Type)
			}
		}
	}
	names := make([]string, 0, len(uses))
	for n := range uses {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		us := uses[name]
		first := us[0]
		for _, u := range us[1:] {
			if fingerprint(u.spec) != fingerprint(first.spec) {
				problem(u.line, "domain %q is masked with %s here but with %s at %s: one domain, one transform", name, specString(u.spec), specString(first.spec), first.source)
			}
		}
		s := p.withScrubDefaults(first.spec)
		s.Domain = name
		if unique[name] {
			s.Options.Unique = true
		}
		if ts := intTypes[name]; len(ts) > 0 {
			s.intType = narrowestInt(ts)
		}
		p.domains[name] = s
	}
}

// withScrubDefaults fills a scrub or jsonb spec's empty scrub domains from
// the file's scrub_domains.
func (p *Plan) withScrubDefaults(s Spec) Spec {
	d, f := &s.Options.ScrubDomains, p.rules.ScrubDomains
	for _, pair := range [][2]*string{{&d.Email, &f.Email}, {&d.Phone, &f.Phone}, {&d.Card, &f.Card}, {&d.IBAN, &f.IBAN}, {&d.IP, &f.IP}, {&d.Name, &f.Name}} {
		if *pair[0] == "" {
			*pair[0] = *pair[1]
		}
	}
	return s
}

func specString(s Spec) string {
	b, _ := json.Marshal(s.Options)
	if string(b) == "{}" {
		return fmt.Sprintf("%q", s.Transform)
	}
	return fmt.Sprintf("%q %s", s.Transform, b)
}

func narrowestInt(types []string) string {
	rank := map[string]int{"int2": 0, "int4": 1, "int8": 2, "numeric": 3}
	best := types[0]
	for _, t := range types[1:] {
		if rank[t] < rank[best] {
			best = t
		}
	}
	if best == "numeric" {
		return "int8"
	}
	return best
}

// Table returns the masker for a table ("public.users", "users", or a
// partition, which follows its partitioned table), or nil when nothing in
// the table is masked, nulled or defaulted — the copier then streams it
// unchanged.
func (p *Plan) Table(name string) *TableMasker {
	t := p.cat.Table(name)
	if t == nil {
		return nil
	}
	return p.maskers[p.cat.Root(t).QualifiedName()]
}

// Decisions lists every column's decision, sorted by table and column
// position.
func (p *Plan) Decisions() []ColumnDecision {
	var out []ColumnDecision
	for _, t := range p.cat.Tables {
		if t.Parent != "" {
			continue
		}
		for _, c := range t.Columns {
			if d := p.dec[t.QualifiedName()][c.Name]; d != nil {
				out = append(out, ColumnDecision{Table: t.QualifiedName(), Column: c.Name, Decision: *d})
			}
		}
	}
	return out
}

// Domain returns the transform of a domain as it applies to free values
// (workload parameters, scrub findings), or false when no rule uses it.
func (p *Plan) Domain(name string) (Transform, bool) {
	s, ok := p.domains[name]
	if !ok {
		return nil, false
	}
	b := &builder{kr: p.kr, domains: func(n string) (Spec, bool) { sp, ok := p.domains[n]; return sp, ok }}
	t := Target{Type: "text"}
	if s.Transform == "int" {
		t.Type = s.intType
	}
	if s.Transform == "uuid" {
		t.Type = "uuid"
	}
	if s.Transform == "ip" {
		t.Type = "inet"
	}
	tr, err := b.build(s, t)
	if err != nil {
		return nil, false
	}
	return tr, true
}
