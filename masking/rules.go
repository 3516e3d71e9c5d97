package masking

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Action is what happens to a column.
type Action int

// The actions.
const (
	// Undecided: no rule says; the plan fails (fail closed) unless the rules
	// say unlisted: keep.
	Undecided Action = iota
	// Mask rewrites the column with a transform.
	Mask
	// Keep copies the column as it is.
	Keep
	// Null writes NULL.
	Null
	// Default leaves the column out of the copy, so the target's column
	// default applies.
	Default
)

// String returns the action as a rules file writes it.
func (a Action) String() string {
	switch a {
	case Mask:
		return "mask"
	case Keep:
		return "keep"
	case Null:
		return "null"
	case Default:
		return "default"
	}
	return "undecided"
}

// Decision is a column's fate and where it came from.
type Decision struct {
	Action Action
	// Spec is the transform (Mask).
	Spec Spec
	// Reason says why a kept column is safe (Keep), as written.
	Reason string
	// Source locates the rule: "masking.yaml:12", "masking.yaml:40
	// (default)", "foreign key orders_user_id_fkey → public.users.id",
	// "unlisted: keep", "generated column".
	Source string

	line int
}

// Rules is a parsed masking rules file. Build a [Plan] from it to check it
// against a database.
type Rules struct {
	// File is the name errors use.
	File string
	// UnlistedKeep is set by "unlisted: keep": columns without a decision
	// are kept instead of failing the run.
	UnlistedKeep bool
	// ScrubDomains are the default domains of every scrub (free text and
	// jsonb with scrub: true).
	ScrubDomains ScrubDomains
	// Domains declare a domain's transform once ("domains:"); columns then
	// say only {domain: name}.
	Domains map[string]DomainRule
	// Defaults decide columns no table rule names, first match wins.
	Defaults []DefaultRule
	// References are foreign keys the schema does not declare.
	References []Reference
	// Tables are the per-table column decisions, in file order.
	Tables []*TableRule
}

// DomainRule declares a domain's transform.
type DomainRule struct {
	Spec Spec
	line int
}

// DefaultRule decides every column that matches it: column name glob, type
// (base or declared) and table glob; empty matches all.
type DefaultRule struct {
	Name, Type, Table string
	Decision          Decision
}

// Reference declares that Columns of Table reference RefColumns of
// RefTable, like a foreign key the schema does not declare.
type Reference struct {
	Table, RefTable     string
	Columns, RefColumns []string
	line                int
}

// TableRule holds the decisions for one table.
type TableRule struct {
	// Name is the table as written ("users" or "billing.invoices").
	Name string
	// All, when set, decides every column ("sessions: keep").
	All     *Decision
	Columns []ColumnRule
	line    int
}

// ColumnRule is one column's decision.
type ColumnRule struct {
	Name     string
	Decision Decision
}

// LoadRules reads and parses a rules file.
func LoadRules(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load masking rules: %w", err)
	}
	return ParseRules(filepath.Base(path), data)
}

// ParseRules parses a rules file; name is used in error messages
// ("masking.yaml:12: …"). It checks syntax, transform names and options;
// [NewPlan] checks the rules against a database.
func ParseRules(name string, data []byte) (*Rules, error) {
	p := &rulesParser{file: name}
	r, err := p.parse(data)
	if err != nil {
		return nil, err
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return r, nil
}

type rulesParser struct {
	file string
	errs []error
}

func (p *rulesParser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.file, line, fmt.Sprintf(format, args...)))
}

func (p *rulesParser) parse(data []byte) (*Rules, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p.file, err)
	}
	r := &Rules{File: p.file, Domains: map[string]DomainRule{}}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty rules file (run dbtwin mask scan to propose one)", p.file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the rules file must be a mapping (version, tables, …)", p.file, root.Line)
	}
	// domains first: columns may refer to them wherever they appear.
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "domains" {
			p.domains(r, root.Content[i+1])
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			p.errorf(k.Line, "%q given twice", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "version":
			if v.Value != "1" {
				p.errorf(v.Line, "version %q is not supported (this dbtwin reads version 1)", v.Value)
			}
		case "unlisted":
			switch v.Value {
			case "keep":
				r.UnlistedKeep = true
			case "fail":
			default:
				p.errorf(v.Line, "unlisted must be fail or keep, not %q", v.Value)
			}
		case "scrub_domains":
			r.ScrubDomains = p.scrubDomains(v)
		case "domains":
		case "defaults":
			p.defaults(r, v)
		case "references":
			p.references(r, v)
		case "tables":
			p.tables(r, v)
		default:
			p.errorf(k.Line, "unknown key %q (known: version, unlisted, scrub_domains, domains, defaults, references, tables)", k.Value)
		}
	}
	if !seen["version"] {
		p.errorf(root.Line, "version: 1 is required")
	}
	// Columns that name only a domain take its transform.
	resolve := func(d *Decision, where string) {
		if d.Action != Mask || d.Spec.Transform != "" {
			return
		}
		dr, ok := r.Domains[d.Spec.Domain]
		if !ok {
			p.errorf(d.line, "%sdomain %q is not declared under domains: (give mask: <transform> or declare it)", where, d.Spec.Domain)
			return
		}
		opts := d.Spec.Options
		d.Spec = dr.Spec
		if !optionsEmpty(opts) {
			p.errorf(d.line, "%soptions belong to the domain declaration (line %d)", where, dr.line)
		}
	}
	for _, t := range r.Tables {
		for i := range t.Columns {
			c := &t.Columns[i]
			where := fmt.Sprintf("table %q column %q: ", t.Name, c.Name)
			resolve(&c.Decision, where)
			resolvePaths(&c.Decision.Spec, func(d *Decision) { resolve(d, where) })
		}
		if t.All != nil {
			resolve(t.All, fmt.Sprintf("table %q: ", t.Name))
		}
	}
	for i := range r.Defaults {
		resolve(&r.Defaults[i].Decision, "default: ")
	}
	return r, nil
}

// resolvePaths calls f on the decisions of a jsonb spec's paths.
func resolvePaths(s *Spec, f func(*Decision)) {
	for i := range s.Options.Paths {
		pr := &s.Options.Paths[i]
		if pr.Null {
			continue
		}
		d := Decision{Action: Mask, Spec: pr.Spec, line: pr.line}
		f(&d)
		pr.Spec = d.Spec
	}
}

func optionsEmpty(o Options) bool { return reflect.ValueOf(o).IsZero() }

func (p *rulesParser) domains(r *Rules, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "domains must map domain names to transforms")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := r.Domains[k.Value]; dup {
			p.errorf(k.Line, "domain %q declared twice", k.Value)
			continue
		}
		where := fmt.Sprintf("domain %q: ", k.Value)
		var spec Spec
		switch v.Kind {
		case yaml.ScalarNode:
			spec = Spec{Transform: v.Value}
			if _, ok := transformInfo(v.Value); !ok {
				p.errorf(v.Line, "%sunknown transform %q (known: %s)", where, v.Value, knownTransforms())
				continue
			}
		case yaml.MappingNode:
			d, _ := p.decision(v, where, decisionDomain)
			spec = d.Spec
		default:
			p.errorf(v.Line, "%sexpected a transform name or {transform: …}", where)
			continue
		}
		spec.Domain = k.Value
		r.Domains[k.Value] = DomainRule{Spec: spec, line: v.Line}
	}
}

func (p *rulesParser) scrubDomains(n *yaml.Node) ScrubDomains {
	var sd ScrubDomains
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "scrub_domains must map email, phone, card, iban, ip, name to domain names (or off)")
		return sd
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "email":
			sd.Email = v.Value
		case "phone":
			sd.Phone = v.Value
		case "card":
			sd.Card = v.Value
		case "iban":
			sd.IBAN = v.Value
		case "ip":
			sd.IP = v.Value
		case "name":
			sd.Name = v.Value
		default:
			p.errorf(k.Line, "scrub_domains: unknown kind %q (known: email, phone, card, iban, ip, name)", k.Value)
		}
	}
	return sd
}

func (p *rulesParser) defaults(r *Rules, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, "defaults must be a list of {name:, type:, table:, <decision>}")
		return
	}
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			p.errorf(item.Line, "a default must be a mapping: {name: \"*_email\", mask: email}")
			continue
		}
		d, m := p.decision(item, "default: ", decisionDefault)
		if m.name == "" && m.typ == "" && m.table == "" {
			p.errorf(item.Line, "default: give name, type or table to match")
		}
		for _, glob := range []string{m.name, m.table} {
			if _, err := filepath.Match(glob, ""); err != nil {
				p.errorf(item.Line, "default: bad pattern %q", glob)
			}
		}
		d.Source = fmt.Sprintf("%s:%d (default)", p.file, item.Line)
		r.Defaults = append(r.Defaults, DefaultRule{Name: m.name, Type: m.typ, Table: m.table, Decision: d})
	}
}

func (p *rulesParser) references(r *Rules, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, "references must be a list of {from: table(columns), to: table(columns)}")
		return
	}
	for _, item := range n.Content {
		var raw struct{ From, To string }
		if err := item.Decode(&raw); err != nil || raw.From == "" || raw.To == "" {
			p.errorf(item.Line, "a reference needs from: and to: (\"audit_log.actor_user_id\" or \"orders(account_id, user_id)\")")
			continue
		}
		ft, fc, ok1 := parseColumnRef(raw.From)
		tt, tc, ok2 := parseColumnRef(raw.To)
		if !ok1 || !ok2 || len(fc) != len(tc) {
			p.errorf(item.Line, "reference %s → %s: write table.column or table(col, col) on both sides, with as many columns", raw.From, raw.To)
			continue
		}
		r.References = append(r.References, Reference{Table: ft, Columns: fc, RefTable: tt, RefColumns: tc, line: item.Line})
	}
}

// parseColumnRef parses "table.column", "schema.table.column" or
// "[schema.]table(col, col)".
func parseColumnRef(s string) (table string, cols []string, ok bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		for _, c := range strings.Split(s[i+1:len(s)-1], ",") {
			if c = strings.TrimSpace(c); c == "" {
				return "", nil, false
			}
			cols = append(cols, strings.TrimSpace(c))
		}
		return strings.TrimSpace(s[:i]), cols, true
	}
	i := strings.LastIndexByte(s, '.')
	if i <= 0 || i == len(s)-1 {
		return "", nil, false
	}
	return s[:i], []string{s[i+1:]}, true
}

func (p *rulesParser) tables(r *Rules, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "tables must map table names to their columns")
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if l, dup := seen[k.Value]; dup {
			p.errorf(k.Line, "table %q listed twice (first at line %d)", k.Value, l)
			continue
		}
		seen[k.Value] = k.Line
		t := &TableRule{Name: k.Value, line: k.Line}
		r.Tables = append(r.Tables, t)
		where := fmt.Sprintf("table %q: ", k.Value)
		if v.Kind == yaml.ScalarNode {
			d, _ := p.decision(v, where, decisionColumn)
			if d.Action == Mask {
				p.errorf(v.Line, "%sa whole table can be keep, null or default, not masked by one transform", where)
			}
			t.All = &d
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.errorf(v.Line, "%sexpected a mapping of columns", where)
			continue
		}
		cols := map[string]int{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			ck, cv := v.Content[j], v.Content[j+1]
			if l, dup := cols[ck.Value]; dup {
				p.errorf(ck.Line, "table %q column %q listed twice (first at line %d)", k.Value, ck.Value, l)
				continue
			}
			cols[ck.Value] = ck.Line
			d, _ := p.decision(cv, fmt.Sprintf("table %q column %q: ", k.Value, ck.Value), decisionColumn)
			t.Columns = append(t.Columns, ColumnRule{Name: ck.Value, Decision: d})
		}
	}
}

// Where a decision is written, which changes the keys it may have.
const (
	decisionColumn  = iota
	decisionDefault // name/type/table match keys too
	decisionDomain  // "transform:" instead of "mask:", no keep
	decisionPath    // jsonb path: mask or null
)

type matchKeys struct{ name, typ, table string }

// decision parses a column decision: a scalar (keep, null, default or a
// transform name) or a mapping ({mask: t, domain: d, <options>},
// {domain: d}, {keep: reason} or {keep: true, reason: …}).
func (p *rulesParser) decision(n *yaml.Node, where string, kind int) (Decision, matchKeys) {
	d := Decision{line: n.Line, Source: fmt.Sprintf("%s:%d", p.file, n.Line)}
	var m matchKeys
	if n.Kind == yaml.ScalarNode {
		switch v := n.Value; {
		case v == "" && n.Tag == "!!null":
			p.errorf(n.Line, "%sno decision (write keep, null, default or a transform)", where)
		case v == "keep" && kind != decisionPath:
			d.Action = Keep
		case v == "null" || v == "~":
			d.Action = Null
		case v == "default" && kind != decisionPath:
			d.Action = Default
		case v == "mask":
			p.errorf(n.Line, "%smask needs a transform: {mask: email}", where)
		default:
			if _, ok := transformInfo(v); !ok {
				p.errorf(n.Line, "%sunknown transform %q (known: %s)", where, v, knownTransforms())
			}
			d.Action = Mask
			d.Spec.Transform = v
		}
		return d, m
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "%sexpected keep, null, default, a transform or a mapping", where)
		return d, m
	}
	maskKey := "mask"
	if kind == decisionDomain {
		maskKey = "transform"
	}
	// First pass: the decision itself.
	var optNodes [][2]*yaml.Node
	keepSet := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Value == maskKey:
			d.Action = Mask
			d.Spec.Transform = v.Value
			if _, ok := transformInfo(v.Value); !ok {
				p.errorf(v.Line, "%sunknown transform %q (known: %s)", where, v.Value, knownTransforms())
			}
		case k.Value == "domain" && kind != decisionDomain:
			d.Spec.Domain = v.Value
			if d.Action == Undecided {
				d.Action = Mask
			}
		case k.Value == "keep" && (kind == decisionColumn || kind == decisionDefault):
			keepSet = true
			if v.Tag == "!!bool" {
				if v.Value != "true" {
					p.errorf(v.Line, "%skeep: false is not a decision", where)
				}
			} else {
				d.Reason = strings.TrimSpace(v.Value)
			}
		case k.Value == "reason" && (kind == decisionColumn || kind == decisionDefault):
			d.Reason = strings.TrimSpace(v.Value)
		case k.Value == "null" && kind == decisionPath:
			if v.Value != "true" {
				p.errorf(v.Line, "%snull: true is the only form", where)
			}
			d.Action = Null
		case kind == decisionDefault && (k.Value == "name" || k.Value == "type" || k.Value == "table"):
			switch k.Value {
			case "name":
				m.name = v.Value
			case "type":
				m.typ = v.Value
			case "table":
				m.table = v.Value
			}
		case kind == decisionDefault && (k.Value == "action"):
			switch v.Value {
			case "null":
				d.Action = Null
			case "default":
				d.Action = Default
			case "keep":
				keepSet = true
			default:
				p.errorf(v.Line, "%saction must be keep, null or default", where)
			}
		default:
			optNodes = append(optNodes, [2]*yaml.Node{k, v})
		}
	}
	if keepSet {
		if d.Action != Undecided {
			p.errorf(n.Line, "%skeep and mask exclude each other", where)
		}
		d.Action = Keep
	}
	if d.Action == Undecided {
		p.errorf(n.Line, "%sno decision (give %s: <transform>, domain:, keep: or action:)", where, maskKey)
		return d, m
	}
	if len(optNodes) > 0 && d.Action != Mask {
		p.errorf(optNodes[0][0].Line, "%s%q applies only to masked columns", where, optNodes[0][0].Value)
		return d, m
	}
	info, known := transformInfo(d.Spec.Transform)
	for _, kv := range optNodes {
		k, v := kv[0], kv[1]
		if d.Spec.Transform == "" { // domain only: options are checked against the domain later
			p.option(&d.Spec, k, v, where)
			continue
		}
		if known && !slices.Contains(info.Options, k.Value) {
			opts := strings.Join(info.Options, ", ")
			if opts == "" {
				opts = "none"
			}
			p.errorf(k.Line, "%stransform %q has no option %q (its options: %s)", where, d.Spec.Transform, k.Value, opts)
			continue
		}
		p.option(&d.Spec, k, v, where)
	}
	return d, m
}

// option decodes one transform option into spec.
func (p *rulesParser) option(spec *Spec, k, v *yaml.Node, where string) {
	o := &spec.Options
	bad := func(want string) { p.errorf(v.Line, "%soption %s must be %s", where, k.Value, want) }
	intVal := func(dst *int) {
		x, err := strconv.Atoi(v.Value)
		if err != nil || v.Kind != yaml.ScalarNode {
			bad("an integer")
			return
		}
		*dst = x
	}
	int64Val := func() *int64 {
		x, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil || v.Kind != yaml.ScalarNode {
			bad("an integer")
			return nil
		}
		return &x
	}
	boolVal := func() bool {
		var b bool
		if err := v.Decode(&b); err != nil {
			bad("true or false")
		}
		return b
	}
	strVal := func() string {
		if v.Kind != yaml.ScalarNode {
			bad("a string")
		}
		return v.Value
	}
	switch k.Value {
	case "min":
		o.Min = int64Val()
	case "max":
		o.Max = int64Val()
	case "unique":
		o.Unique = boolVal()
	case "keep_domain":
		o.KeepDomain = boolVal()
	case "alphabet":
		o.Alphabet = strVal()
	case "keep_country_code":
		b := boolVal()
		o.KeepCountryCode = &b
	case "keep_first":
		intVal(&o.KeepFirst)
	case "keep_last":
		intVal(&o.KeepLast)
	case "keep_last4":
		o.KeepLast4 = boolVal()
	case "mask_char":
		o.MaskChar = strVal()
	case "keep_prefix":
		intVal(&o.KeepPrefix)
	case "keep_prefix6":
		intVal(&o.KeepPrefix6)
	case "window_days":
		intVal(&o.WindowDays)
	case "by":
		o.By = strVal()
	case "percent":
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			bad("a number")
		}
		o.Percent = f
	case "pattern":
		o.Pattern = strVal()
	case "replace":
		o.Replace = strVal()
	case "value":
		o.Value = strVal()
	case "template":
		o.Template = strVal()
	case "length":
		intVal(&o.Length)
	case "scrub":
		o.Scrub = boolVal()
	case "scrub_domains":
		o.ScrubDomains = p.scrubDomains(v)
	case "paths":
		if v.Kind != yaml.MappingNode {
			bad("a mapping of JSON paths to transforms")
			return
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			pk, pv := v.Content[i], v.Content[i+1]
			pw := fmt.Sprintf("%spath %s: ", where, pk.Value)
			if _, err := parsePath(pk.Value); err != nil {
				p.errorf(pk.Line, "%s%v", where, err)
				continue
			}
			d, _ := p.decision(pv, pw, decisionPath)
			pr := PathRule{Path: pk.Value, Null: d.Action == Null, Spec: d.Spec, line: pv.Line}
			o.Paths = append(o.Paths, pr)
		}
	default:
		p.errorf(k.Line, "%sunknown option %q", where, k.Value)
	}
}
