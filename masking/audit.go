package masking

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/dbtwin/dbtwin/internal/pgdsn"
)

// AuditOptions configure [Audit].
type AuditOptions struct {
	// SampleRows is how many source rows are sampled per masked table
	// (default 1000).
	SampleRows int
	// TrustConstraints lets the clone's own valid primary keys, unique
	// constraints and foreign keys stand for the audit's counts: right for
	// a clone whose constraints were built after its masked rows were
	// loaded (a masked clone.Clone: PostgreSQL checked every one of them
	// then), wrong where masking may have bypassed them (in place, with
	// triggers off). Each such check is reported Enforced.
	TrustConstraints bool
	// Jobs is how many sessions read the clone's masked columns in full,
	// in parallel, a table or partition each (default 2).
	Jobs int
}

// AuditReport is what [Audit] found: one line per constraint and per
// masked column. It holds counts, never values.
type AuditReport struct {
	Constraints []ConstraintCheck `json:"constraints"`
	Columns     []LeakCheck       `json:"columns"`
}

// ConstraintCheck is one primary key, unique constraint or foreign key (or
// a reference the rules declare) validated over the clone.
type ConstraintCheck struct {
	Table string `json:"table"`
	Name  string `json:"name"`
	// Kind is "primary key", "unique", "foreign key" or "reference".
	Kind string `json:"kind"`
	// Violations counts duplicate key values or rows whose reference finds
	// nothing. For references the source's own count is subtracted
	// (orphans the source already had are not the masking's doing).
	Violations int64 `json:"violations"`
	// Enforced is set when the clone holds the constraint itself, valid
	// and over the same columns: PostgreSQL checked it when it was built
	// on the masked rows and enforces it since, so the audit did not count
	// again (Violations is 0).
	Enforced bool `json:"enforced,omitempty"`
}

// LeakCheck is the leak audit of one masked column.
type LeakCheck struct {
	Table, Column, Domain string
	// Sampled is how many distinct original values were sampled (for free
	// text and JSON: values found inside).
	Sampled int `json:"sampled"`
	// Leaked is how many original values appear in this column of the
	// clone: in the row that came from theirs, or — for domains whose
	// outputs come from a space too large to meet real values by chance —
	// in any row.
	Leaked int `json:"leaked"`
	// Coincidental is how many original values were found where the
	// domain's output space is small enough for chance to explain them
	// (chanceExplains): in other rows, for an IPv4 address with its first 8
	// bits kept, a phone number or a 4-byte integer against a large table;
	// in their own row, for a keyed permutation of short values (a
	// 5-digit postcode stays as it is once in 100,000). They are not
	// leaks; more of them than chance gives are.
	Coincidental int `json:"coincidental,omitempty"`
	// Skipped says why a column was not audited.
	Skipped string `json:"skipped,omitempty"`
}

// String is "public.users.email (domain customer_email): 500 values
// sampled, 0 leaked".
func (l LeakCheck) String() string {
	if l.Skipped != "" {
		return fmt.Sprintf("%s.%s (domain %s): not audited: %s", l.Table, l.Column, l.Domain, l.Skipped)
	}
	s := fmt.Sprintf("%s.%s (domain %s): %d values sampled, %d leaked", l.Table, l.Column, l.Domain, l.Sampled, l.Leaked)
	if l.Coincidental > 0 {
		s += fmt.Sprintf(" (%d more found where chance explains them: a space this small)", l.Coincidental)
	}
	return s
}

// Err returns an error naming every violated constraint and every leaking
// column, or nil.
func (r *AuditReport) Err() error {
	var bad []string
	for _, c := range r.Constraints {
		if c.Violations > 0 {
			bad = append(bad, fmt.Sprintf("%s %s on %s: %d violation(s)", c.Kind, c.Name, c.Table, c.Violations))
		}
	}
	for _, l := range r.Columns {
		if l.Leaked > 0 {
			bad = append(bad, "leak: "+l.String())
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("audit masked clone: %d problem(s):\n  %s", len(bad), strings.Join(bad, "\n  "))
}

// WriteText writes one line per constraint and column.
func (r *AuditReport) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Constraints {
		if c.Enforced {
			fmt.Fprintf(&b, "%-11s %s on %s: enforced by the clone\n", c.Kind, c.Name, c.Table)
			continue
		}
		fmt.Fprintf(&b, "%-11s %s on %s: %d violation(s)\n", c.Kind, c.Name, c.Table, c.Violations)
	}
	for _, l := range r.Columns {
		b.WriteString(l.String() + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Audit verifies a masked clone before anything uses it:
//
//   - every primary key, unique constraint and foreign key of the source
//     holds over the clone's rows (whether or not the clone has the
//     constraint yet), and so do the references the rules declare;
//   - no original value of a masked column appears in the clone's masked
//     output of its domain. Original values are sampled from the source
//     (in a read-only transaction) and kept only as keyed hashes under a
//     key drawn for this audit; the clone's masked columns are then read
//     in full and hashed the same way.
//
// Bijections over a column's own declared range and shifts within a value
// space (date_shift, noise) are not leak-audited: their outputs are other
// rows' values by design. Check the report with [AuditReport.Err].
func Audit(ctx context.Context, sourceDSN, cloneDSN string, plan *Plan, opts AuditOptions) (*AuditReport, error) {
	if opts.SampleRows <= 0 {
		opts.SampleRows = 1000
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 2
	}
	src, err := pgx.Connect(ctx, sourceDSN)
	if err != nil {
		return nil, fmt.Errorf("audit: connect to source %s: %w", pgdsn.Describe(sourceDSN), err)
	}
	defer src.Close(context.WithoutCancel(ctx))
	clone, err := pgx.Connect(ctx, cloneDSN)
	if err != nil {
		return nil, fmt.Errorf("audit: connect to clone %s: %w", pgdsn.Describe(cloneDSN), err)
	}
	defer clone.Close(context.WithoutCancel(ctx))
	tx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("audit: begin read-only transaction on the source: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	rep := &AuditReport{}
	if err := auditConstraints(ctx, src, clone, plan, opts.TrustConstraints, rep); err != nil {
		return nil, err
	}
	if err := auditLeaks(ctx, src, clone, cloneDSN, plan, opts, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

func quoteIdents(cols []string, prefix string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = prefix + pgx.Identifier{c}.Sanitize()
	}
	return out
}

// auditConstraints checks the source's keys and foreign keys over the
// clone's rows: a clone whose constraints are not built yet (or were lost)
// is checked all the same. With trust, a constraint the clone holds, valid
// and over the same columns, is reported Enforced instead of counted
// (AuditOptions.TrustConstraints): on the 856 MB fixture that spares 4 s of
// GROUP BY and anti-join queries.
func auditConstraints(ctx context.Context, src, clone *pgx.Conn, plan *Plan, trust bool, rep *AuditReport) error {
	cat := plan.cat
	count := func(conn *pgx.Conn, q string) (int64, error) {
		var n int64
		err := conn.QueryRow(ctx, q).Scan(&n)
		return n, err
	}
	enforced := map[string]string{}
	if trust {
		var err error
		if enforced, err = validConstraints(ctx, clone); err != nil {
			return fmt.Errorf("audit: read the clone's constraints: %w", err)
		}
	}
	for _, t := range cat.Tables {
		if t.Parent != "" {
			continue // checked through the partitioned table
		}
		id := pgx.Identifier{t.Schema, t.Name}.Sanitize()
		keys := append([]*Constraint(nil), t.Uniques...)
		if t.PrimaryKey != nil {
			keys = append([]*Constraint{t.PrimaryKey}, keys...)
		}
		for i, k := range keys {
			kind := "unique"
			if i == 0 && t.PrimaryKey != nil {
				kind = "primary key"
			}
			if enforced[constraintKey(t.Schema, t.Name, k.Name)] == constraintSig(kind, k.Columns, "", nil) {
				rep.Constraints = append(rep.Constraints, ConstraintCheck{Table: t.QualifiedName(), Name: k.Name, Kind: kind, Enforced: true})
				continue
			}
			cols := quoteIdents(k.Columns, "")
			q := fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s GROUP BY %s HAVING count(*) > 1) d",
				id, notNullAll(cols), strings.Join(cols, ", "))
			n, err := count(clone, q)
			if err != nil {
				return fmt.Errorf("audit %s %s on %s: %w", kind, k.Name, t.QualifiedName(), err)
			}
			rep.Constraints = append(rep.Constraints, ConstraintCheck{Table: t.QualifiedName(), Name: k.Name, Kind: kind, Violations: n})
		}
		for _, fk := range t.ForeignKeys {
			rt := cat.Table(fk.RefTable)
			if rt == nil {
				continue
			}
			if enforced[constraintKey(t.Schema, t.Name, fk.Name)] == constraintSig("foreign key", fk.Columns, rt.QualifiedName(), fk.RefColumns) {
				rep.Constraints = append(rep.Constraints, ConstraintCheck{Table: t.QualifiedName(), Name: fk.Name, Kind: "foreign key", Enforced: true})
				continue
			}
			n, err := count(clone, orphansQuery(t, fk.Columns, rt, fk.RefColumns))
			if err != nil {
				return fmt.Errorf("audit foreign key %s on %s: %w", fk.Name, t.QualifiedName(), err)
			}
			rep.Constraints = append(rep.Constraints, ConstraintCheck{Table: t.QualifiedName(), Name: fk.Name, Kind: "foreign key", Violations: n})
		}
	}
	for _, r := range plan.rules.References {
		ft, tt := cat.Table(r.Table), cat.Table(r.RefTable)
		if ft == nil || tt == nil {
			continue
		}
		q := orphansQuery(ft, r.Columns, tt, r.RefColumns)
		// The source counts its own orphans meanwhile: each query scans a
		// whole table, on servers of their own.
		var before int64
		var srcErr error
		var wg sync.WaitGroup
		wg.Go(func() { before, srcErr = count(src, q) })
		n, err := count(clone, q)
		wg.Wait()
		if err != nil {
			return fmt.Errorf("audit reference %s → %s: %w", r.Table, r.RefTable, err)
		}
		if srcErr != nil {
			return fmt.Errorf("audit reference %s → %s on the source: %w", r.Table, r.RefTable, srcErr)
		}
		rep.Constraints = append(rep.Constraints, ConstraintCheck{Table: ft.QualifiedName(),
			Name: fmt.Sprintf("%s(%s) → %s(%s)", r.Table, strings.Join(r.Columns, ", "), r.RefTable, strings.Join(r.RefColumns, ", ")),
			Kind: "reference", Violations: max(n-before, 0)})
	}
	return nil
}

// validConstraints returns the primary keys, unique constraints and
// foreign keys that conn's database holds and has validated, by
// constraintKey, as constraintSig describes them.
func validConstraints(ctx context.Context, conn *pgx.Conn) (map[string]string, error) {
	rows, err := conn.Query(ctx, `
SELECT n.nspname, c.relname, k.conname, k.contype::text,
       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.ord),
       coalesce(rn.nspname || '.' || rc.relname, ''),
       ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum ORDER BY u.ord)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE k.contype IN ('p', 'u', 'f') AND k.convalidated`)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	var schema, table, name, typ, ref string
	var cols, refCols []string
	_, err = pgx.ForEachRow(rows, []any{&schema, &table, &name, &typ, &cols, &ref, &refCols}, func() error {
		kind := "foreign key"
		switch typ {
		case "p":
			kind = "primary key"
		case "u":
			kind = "unique"
		}
		m[constraintKey(schema, table, name)] = constraintSig(kind, cols, ref, refCols)
		return nil
	})
	return m, err
}

// constraintKey names a constraint of a table.
func constraintKey(schema, table, name string) string {
	return schema + "\x00" + table + "\x00" + name
}

// constraintSig describes a constraint: its kind, its columns and, for a
// foreign key, the table and columns it refers to.
func constraintSig(kind string, cols []string, ref string, refCols []string) string {
	return kind + "(" + strings.Join(cols, "\x00") + ")" + ref + "(" + strings.Join(refCols, "\x00") + ")"
}

func notNullAll(cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c + " IS NOT NULL"
	}
	return strings.Join(parts, " AND ")
}

// orphansQuery counts rows of t whose (cols) — all non-NULL, as MATCH
// SIMPLE has it — match no row of rt.
func orphansQuery(t *Table, cols []string, rt *Table, refCols []string) string {
	c := quoteIdents(cols, "c.")
	p := quoteIdents(refCols, "p.")
	eq := make([]string, len(c))
	for i := range c {
		eq[i] = p[i] + " = " + c[i]
	}
	return fmt.Sprintf("SELECT count(*) FROM %s c WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s)",
		pgx.Identifier{t.Schema, t.Name}.Sanitize(), notNullAll(c), pgx.Identifier{rt.Schema, rt.Name}.Sanitize(), strings.Join(eq, " AND "))
}

// leakKey is a keyed hash of a (domain, value) pair.
type leakKey [16]byte

// auditor hashes (domain, value) pairs under a key drawn for one audit.
// It is not safe for concurrent use.
type auditor struct {
	plan  *Plan
	key   auditKey
	buf   []byte
	json  jsonParser            // reused for each JSON value
	paths map[string][]pathStep // JSON path rules, parsed once
	// only, when set, holds the domains whose values are wanted: free
	// text is searched for those kinds only (see scanUnit.scan).
	only map[string]map[leakKey]bool
}

// auditKey is what one audit hashes under: two seeds of hash/maphash,
// drawn for the audit and shared by its sessions.
//
// The key exists so that the audit never holds an original value in the
// clear: its sets hold 128-bit hashes, which never leave the process. A
// cryptographic MAC adds nothing to that (its key would sit in the same
// memory as the hashes): HMAC-SHA256 was a seventh of the audit's CPU time,
// maphash (driven by the hardware's AES instructions) is a twenty-fifth,
// measured on the 856 MB fixture. Equal values always hash alike, so no leak can
// hide behind the hash; two different values that hash alike would only
// add a false match, and at 128 bits a billion clone values meet ten
// thousand sampled originals so by accident about once in 2^84 audits.
type auditKey [2]maphash.Seed

func newAuditKey() auditKey { return auditKey{maphash.MakeSeed(), maphash.MakeSeed()} }

func newAuditor(plan *Plan, key auditKey) *auditor {
	return &auditor{plan: plan, key: key, paths: map[string][]pathStep{}}
}

// hash is the 128-bit keyed hash of domain || 0 || v.
func (a *auditor) hash(domain string, v []byte) leakKey {
	a.buf = append(append(append(a.buf[:0], domain...), 0), v...)
	var k leakKey
	binary.LittleEndian.PutUint64(k[:8], maphash.Bytes(a.key[0], a.buf))
	binary.LittleEndian.PutUint64(k[8:], maphash.Bytes(a.key[1], a.buf))
	return k
}

// steps returns path parsed, from the auditor's cache.
func (a *auditor) steps(path string) ([]pathStep, error) {
	if st, ok := a.paths[path]; ok {
		return st, nil
	}
	st, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	a.paths[path] = st
	return st, nil
}

// pairs calls f with every (domain, value) a column's value holds: the value
// itself for plain transforms; for free text and JSON, what the scrub and
// the paths select, under their domains.
func (a *auditor) pairs(cp *colPlan, v []byte, f func(domain string, v []byte)) {
	spec := a.plan.domains[cp.decision.Spec.DomainName()]
	switch spec.Transform {
	case "scrub":
		a.scrubPairs(spec.Options.ScrubDomains, v, f)
	case "jsonb":
		p := &a.json
		p.reset(v)
		p.space()
		root, err := p.value(0)
		if err != nil {
			return
		}
		for _, pr := range spec.Options.Paths {
			if pr.Null {
				continue
			}
			steps, err := a.steps(pr.Path)
			if err != nil {
				continue
			}
			d := pr.Spec.DomainName()
			visitPath(root, steps, func(n *jnode) {
				if n.kind == 's' || n.kind == 'n' {
					f(d, []byte(n.str))
					n.done = true
				}
			})
		}
		if spec.Options.Scrub {
			var rest func(n *jnode)
			rest = func(n *jnode) {
				switch {
				case n.done:
				case n.kind == 's':
					a.scrubPairs(spec.Options.ScrubDomains, []byte(n.str), f)
				case n.kind == 'o' || n.kind == 'a':
					for _, c := range n.vals {
						rest(c)
					}
				}
			}
			rest(root)
		}
	default:
		f(spec.DomainName(), v)
	}
}

func (a *auditor) scrubPairs(sd ScrubDomains, v []byte, f func(string, []byte)) {
	names := [numFindKinds]string{sd.Email, sd.IBAN, sd.Card, sd.IP, sd.Phone, sd.Name}
	var on [numFindKinds]bool
	for k := range names {
		if names[k] == "" {
			names[k] = findKindNames[k]
		}
		on[k] = names[k] != "off" && (a.only == nil || a.only[names[k]] != nil)
	}
	for _, fd := range findPII(v, &on) {
		f(names[fd.kind], v[fd.start:fd.end])
	}
}

// visitPath calls f on the nodes steps select below v (objects and arrays
// selected are descended into).
func visitPath(v *jnode, steps []pathStep, f func(*jnode)) {
	if len(steps) == 0 {
		if v.kind == 'o' || v.kind == 'a' {
			for _, c := range v.vals {
				visitPath(c, nil, f)
			}
			return
		}
		f(v)
		return
	}
	st := steps[0]
	switch st.kind {
	case stepKey, stepDeep:
		if v.kind == 'o' {
			for i, k := range v.keys {
				if k == st.key {
					visitPath(v.vals[i], steps[1:], f)
				}
			}
		}
		if st.kind == stepDeep && (v.kind == 'o' || v.kind == 'a') {
			for _, c := range v.vals {
				visitPath(c, steps, f)
			}
		}
	case stepIndex:
		if v.kind == 'a' && st.index < len(v.vals) {
			visitPath(v.vals[st.index], steps[1:], f)
		}
	case stepAll:
		if v.kind == 'a' || v.kind == 'o' {
			for _, c := range v.vals {
				visitPath(c, steps[1:], f)
			}
		}
	}
}

// auditSkip says why a masked column is not leak-audited, or "".
func auditSkip(spec Spec) string {
	switch spec.Transform {
	case "date_shift", "noise":
		return "shifts values within their own space: outputs are other rows' values by design"
	case "constant", "template", "regex":
		return "output does not derive from the value by a keyed map"
	case "int":
		if spec.Options.Min != nil {
			return "bijection over the declared range: outputs are other rows' values by design"
		}
	}
	return ""
}

// wideSpace reports whether a domain's outputs may come from a space so
// large (or so unlike real values) that an original value found anywhere in
// its output is a leak, not a coincidence: whether the audit reads the
// clone's columns in full for it. Whether the space is large enough for
// the table at hand is decided after that read (outputSpaceBits, chanceExplains):
// 900 sampled addresses among 185,000 masked ones that keep their first 8
// bits meet by chance about once an audit. Dictionary fakes and format-
// preserving encryption of short values can equal another row's real
// value, so they are checked row by row only.
func wideSpace(spec Spec) bool {
	switch spec.Transform {
	case "email", "card", "iban", "hash", "uuid", "phone", "ip", "redact":
		return true
	case "int":
		return spec.Options.Min == nil
	}
	return false
}

// leakSignificance is how unlikely under chance alone the matches an
// audit finds must be before they count as leaks: one audit in a thousand
// failing a clean clone.
const leakSignificance = 0.001

// chanceExplains reports whether finding k matches, where chance alone
// gives expected of them on average (masked values that equal an original
// because the transform's output space is small: another row's value, or
// the row's own, a fixed point of a keyed permutation), is something
// chance does at least once in a thousand audits (Poisson). Then the
// matches are coincidental, not leaks. A column left unmasked matches
// every sampled value and never passes for chance.
func chanceExplains(k int, expected float64) bool {
	return k == 0 || float64(k) <= expected || poissonTail(k, expected) >= leakSignificance
}

// poissonTail is P(X >= k) for X ~ Poisson(lambda), k > lambda.
func poissonTail(k int, lambda float64) float64 {
	if lambda <= 0 {
		return 0
	}
	lg, _ := math.Lgamma(float64(k) + 1)
	logTerm := -lambda + float64(k)*math.Log(lambda) - lg
	sum := 0.0
	for i := k; i < k+10000; i++ {
		t := math.Exp(logTerm)
		sum += t
		if t <= sum*1e-12 {
			break
		}
		logTerm += math.Log(lambda) - math.Log(float64(i+1))
	}
	return sum
}

// outputSpaceBits is the log2 of the number of values the domain's
// transform can mask the original x into: what the transform keeps of x
// (a prefix, a country code, the length, the class of each character)
// fixes the rest. A keyed permutation leaves x as it is with probability
// 2^-bits; a masked value equals a given original of x's kind as often.
// +Inf stands for outputs that real values do not meet: e-mail addresses
// under reserved domains, hashes, redactions, UUIDs (2^122).
func outputSpaceBits(spec Spec, x []byte) float64 {
	digits := 0
	for _, c := range x {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	log10 := math.Log2(10)
	switch spec.Transform {
	case "ip":
		if bytes.IndexByte(x, ':') >= 0 {
			return float64(128 - spec.Options.KeepPrefix6)
		}
		return float64(32 - spec.Options.KeepPrefix)
	case "int":
		switch spec.intType {
		case "int2":
			return 15 // the sign is kept
		case "int4":
			return 31
		}
		return 63
	case "phone":
		if (spec.Options.KeepCountryCode == nil || *spec.Options.KeepCountryCode) && len(x) > 0 && x[0] == '+' {
			digits -= 3 // country codes have up to three digits
		}
		return float64(max(digits, 0)) * log10
	case "card":
		digits -= 1 + spec.Options.KeepFirst // the check digit is recomputed
		if spec.Options.KeepLast4 {
			digits -= 4
		}
		return float64(max(digits, 0)) * log10
	case "fpe", "national_id", "postcode":
		// Each class of characters (or the alphabet's) is permuted as
		// a whole; the rest is kept.
		if a := spec.Options.Alphabet; a != "" {
			n := 0
			for _, c := range x {
				if strings.IndexByte(a, c) >= 0 {
					n++
				}
			}
			return float64(n) * math.Log2(float64(len(a)))
		}
		letters := 0
		for _, c := range x {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
				letters++
			}
		}
		return float64(digits)*log10 + float64(letters)*math.Log2(26)
	case "iban":
		// The country and the check digits are kept; the BBAN's letters
		// stay letters, so counting them as digits errs on the small side.
		return float64(max(len(bytes.ReplaceAll(x, []byte(" "), nil))-4, 0)) * log10
	}
	return math.Inf(1)
}

// rowAligner finds a source row's clone row: the clone's primary key is the
// source's, each key column kept or masked by a transform of its own.
type rowAligner struct {
	cols []*Column
	t    []Transform // nil: kept
}

func newRowAligner(plan *Plan, t *Table) *rowAligner {
	if t.PrimaryKey == nil {
		return nil
	}
	tm := plan.maskers[t.QualifiedName()]
	ra := &rowAligner{}
	for _, name := range t.PrimaryKey.Columns {
		c := t.Column(name)
		var tr Transform
		if tm != nil {
			switch cp := tm.cols[name]; {
			case cp == nil || cp.action == Keep:
			case cp.action == Mask && len(cp.reads) == 0:
				tr = cp.t
			default:
				return nil
			}
		}
		ra.cols = append(ra.cols, c)
		ra.t = append(ra.t, tr)
	}
	return ra
}

// cloneKey maps a source key (text values) to the clone's.
func (ra *rowAligner) cloneKey(key []string) ([]string, bool) {
	out := make([]string, len(key))
	for i, k := range key {
		if ra.t[i] == nil {
			out[i] = k
			continue
		}
		v, err := ra.t[i].Append(nil, []byte(k))
		if err != nil {
			return nil, false
		}
		out[i] = string(v)
	}
	return out, true
}

// wideScan is a masked table whose columns the domain-wide check reads in
// full, with what the row-by-row check found in it and what the full read
// finds: by column, by domain, the values read and the sampled originals
// found among them.
type wideScan struct {
	t       *Table
	cps     []*colPlan
	lcs     []*LeakCheck
	leaked  []map[leakKey]bool
	mu      sync.Mutex // guards scanned and found, which the sessions add to
	scanned []map[string]int64
	found   []map[string]map[leakKey]bool
}

// scanWide reads the masked columns of every table in later in full, in
// jobs sessions on the clone (the first one conn), each table (each leaf
// partition of a partitioned one) in one session: an original value of a
// wide domain found anywhere in a column's output counts against it,
// unless chance explains it (chanceExplains: then it is coincidental).
func scanWide(ctx context.Context, conn *pgx.Conn, dsn string, plan *Plan, key auditKey, jobs int,
	later []*wideScan, sets map[string]map[leakKey]bool, spaceBits map[string]float64) error {
	var units []scanUnit
	for _, w := range later {
		w.scanned = make([]map[string]int64, len(w.cps))
		w.found = make([]map[string]map[leakKey]bool, len(w.cps))
		for i := range w.cps {
			w.scanned[i] = map[string]int64{}
			w.found[i] = map[string]map[leakKey]bool{}
		}
		if !w.t.Partitioned {
			units = append(units, scanUnit{w, w.t})
			continue
		}
		for _, t := range plan.cat.Tables {
			if !t.Partitioned && plan.cat.Root(t) == w.t {
				units = append(units, scanUnit{w, t})
			}
		}
	}
	queue := make(chan scanUnit, len(units))
	for _, u := range units {
		queue <- u
	}
	close(queue)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	for j := range max(1, min(jobs, len(units))) {
		wg.Go(func() {
			c := conn
			if j > 0 {
				var err error
				if c, err = pgx.Connect(ctx, dsn); err != nil {
					fail(fmt.Errorf("audit: connect to clone %s: %w", pgdsn.Describe(dsn), err))
					return
				}
				defer c.Close(context.WithoutCancel(ctx))
			}
			// The scan looks only for the domains that have sampled
			// originals (sets): free text is not searched for kinds none
			// of whose values could count. A kind left out no longer keeps
			// the searched ones off a span it held, so they find what they
			// found before, or more, never less.
			a := newAuditor(plan, key)
			a.only = sets
			for u := range queue {
				if ctx.Err() != nil {
					return
				}
				if err := u.scan(ctx, c, a, sets); err != nil {
					fail(fmt.Errorf("audit: read %s on the clone: %w", u.t.QualifiedName(), err))
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, w := range later {
		for i := range w.cps {
			for d, hs := range w.found[i] {
				expected := float64(w.scanned[i][d]) * float64(len(sets[d])) / math.Exp2(spaceBits[d])
				if chanceExplains(len(hs), expected) {
					w.lcs[i].Coincidental += len(hs)
					continue
				}
				for h := range hs {
					w.leaked[i][h] = true
					w.lcs[i].Leaked++
				}
			}
		}
	}
	return nil
}

// scanUnit is one table that scanWide reads: a wideScan's table, or one of
// its leaf partitions.
type scanUnit struct {
	w *wideScan
	t *Table
}

// scan reads u.t's masked columns in full and adds what it finds to u.w.
func (u scanUnit) scan(ctx context.Context, conn *pgx.Conn, a *auditor, sets map[string]map[leakKey]bool) error {
	w := u.w
	scanned := make([]map[string]int64, len(w.cps))
	found := make([]map[string]map[leakKey]bool, len(w.cps))
	for i := range w.cps {
		scanned[i] = map[string]int64{}
		found[i] = map[string]map[leakKey]bool{}
	}
	err := readRows(ctx, conn, u.t, nil, w.cps, 0, nil, func(_ []string, vals [][]byte) {
		for i, v := range vals {
			if v == nil {
				continue
			}
			a.pairs(w.cps[i], v, func(d string, x []byte) {
				if sets[d] == nil {
					return
				}
				scanned[i][d]++
				h := a.hash(d, x)
				if sets[d][h] && !w.leaked[i][h] {
					if found[i][d] == nil {
						found[i][d] = map[leakKey]bool{}
					}
					found[i][d][h] = true
				}
			})
		}
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.cps {
		for d, n := range scanned[i] {
			w.scanned[i][d] += n
		}
		for d, hs := range found[i] {
			if w.found[i][d] == nil {
				w.found[i][d] = map[leakKey]bool{}
			}
			for h := range hs {
				w.found[i][d][h] = true
			}
		}
	}
	return nil
}

func auditLeaks(ctx context.Context, src, clone *pgx.Conn, cloneDSN string, plan *Plan, opts AuditOptions, rep *AuditReport) error {
	key := newAuditKey()
	a := newAuditor(plan, key)
	// Domain-wide: domain → hashes of sampled originals, and the log2 of
	// the number of outputs the smallest of them can be masked into.
	sets := map[string]map[leakKey]bool{}
	spaceBits := map[string]float64{}
	var checks []*LeakCheck
	var later []*wideScan
	for _, t := range plan.cat.Tables {
		tm := plan.maskers[t.QualifiedName()]
		if t.Parent != "" || tm == nil {
			continue
		}
		var cps []*colPlan
		var lcs []*LeakCheck
		for _, name := range tm.order {
			cp := tm.cols[name]
			if cp.action != Mask {
				continue
			}
			spec := plan.domains[cp.decision.Spec.DomainName()]
			lc := &LeakCheck{Table: t.QualifiedName(), Column: name, Domain: spec.DomainName(), Skipped: auditSkip(spec)}
			checks = append(checks, lc)
			if lc.Skipped == "" {
				cps = append(cps, cp)
				lcs = append(lcs, lc)
			}
		}
		if len(cps) == 0 {
			continue
		}
		ra := newRowAligner(plan, t)
		// Sample source rows: key, then the masked columns. Per row and
		// column, keep the hashes of what the value holds.
		// Each sampled value keeps its hash and the chance that a keyed
		// permutation leaves it as it is (2^-outputSpaceBits).
		type sampledValue struct {
			h      leakKey
			chance float64
		}
		type srcRow struct {
			key    []string
			hashes [][]sampledValue
		}
		var rows []srcRow
		seen := make([]map[leakKey]bool, len(cps))
		for i := range seen {
			seen[i] = map[leakKey]bool{}
		}
		var keyCols []*Column
		if ra != nil {
			keyCols = ra.cols
		}
		err := readRows(ctx, src, t, keyCols, cps, opts.SampleRows, nil, func(key []string, vals [][]byte) {
			r := srcRow{key: key, hashes: make([][]sampledValue, len(cps))}
			for i, v := range vals {
				if v == nil {
					continue
				}
				a.pairs(cps[i], v, func(d string, x []byte) {
					if len(strings.TrimSpace(string(x))) == 0 || auditSkip(plan.domains[d]) != "" {
						return
					}
					h := a.hash(d, x)
					spec := plan.domains[d]
					bits := outputSpaceBits(spec, x)
					r.hashes[i] = append(r.hashes[i], sampledValue{h, math.Exp2(-bits)})
					if !seen[i][h] {
						seen[i][h] = true
						lcs[i].Sampled++
					}
					if wideSpace(spec) {
						if sets[d] == nil {
							sets[d] = map[leakKey]bool{}
							spaceBits[d] = math.Inf(1)
						}
						sets[d][h] = true
						spaceBits[d] = min(spaceBits[d], bits)
					}
				})
			}
			rows = append(rows, r)
		})
		if err != nil {
			return fmt.Errorf("audit: sample %s on the source: %w", t.QualifiedName(), err)
		}
		// Row by row: the clone row of each sampled source row must not hold
		// what the source row held, more often than chance explains.
		// leaked holds, by column, the originals accounted for (as leaks
		// or coincidences), which the domain-wide check does not count
		// again.
		leaked := make([]map[leakKey]bool, len(cps))
		for i := range leaked {
			leaked[i] = map[leakKey]bool{}
		}
		fixedChance := make([]float64, len(cps)) // expected matches by chance, by column
		rowHits := make([]map[leakKey]bool, len(cps))
		for i := range rowHits {
			rowHits[i] = map[leakKey]bool{}
		}
		if ra == nil {
			for i, lc := range lcs {
				if !wideSpace(plan.domains[cps[i].decision.Spec.DomainName()]) && cps[i].decision.Spec.Transform != "scrub" && cps[i].decision.Spec.Transform != "jsonb" {
					lc.Skipped = "no primary key to align source and clone rows, and its fakes can equal real values"
				}
			}
		} else {
			want := map[string]int{} // clone key → index in rows
			keys := make([][]string, len(ra.cols))
			for ri, r := range rows {
				ck, ok := ra.cloneKey(r.key)
				if !ok {
					continue
				}
				want[strings.Join(ck, "\x00")] = ri
				for k := range ck {
					keys[k] = append(keys[k], ck[k])
				}
			}
			err := readRows(ctx, clone, t, ra.cols, cps, 0, keys, func(key []string, vals [][]byte) {
				ri, ok := want[strings.Join(key, "\x00")]
				if !ok {
					return
				}
				for i, v := range vals {
					if v == nil || len(rows[ri].hashes[i]) == 0 {
						continue
					}
					have := map[leakKey]bool{}
					a.pairs(cps[i], v, func(d string, x []byte) { have[a.hash(d, x)] = true })
					for _, sv := range rows[ri].hashes[i] {
						fixedChance[i] += sv.chance
						if have[sv.h] {
							rowHits[i][sv.h] = true
						}
					}
				}
			})
			if err != nil {
				return fmt.Errorf("audit: read %s on the clone: %w", t.QualifiedName(), err)
			}
			for i, hs := range rowHits {
				explained := chanceExplains(len(hs), fixedChance[i])
				for h := range hs {
					leaked[i][h] = true
				}
				if explained {
					lcs[i].Coincidental += len(hs)
				} else {
					lcs[i].Leaked += len(hs)
				}
			}
		}
		later = append(later, &wideScan{t: t, cps: cps, lcs: lcs, leaked: leaked})
	}
	// Domain-wide, once every domain is sampled.
	if err := scanWide(ctx, clone, cloneDSN, plan, key, opts.Jobs, later, sets, spaceBits); err != nil {
		return err
	}
	for _, lc := range checks {
		rep.Columns = append(rep.Columns, *lc)
	}
	return nil
}

// readRows calls f with the key columns' and the masked columns' text values
// (nil for NULL) of at most limit rows (0: all; sampled with TABLESAMPLE on
// big tables), or, with keys, of the rows whose key is one of keys (given
// column by column, as text). The values are pgx's buffer, valid only until
// f returns (an audit reads millions and keeps hashes of them); the key is
// f's to keep.
func readRows(ctx context.Context, conn *pgx.Conn, t *Table, keyCols []*Column, cps []*colPlan, limit int, keys [][]string, f func(key []string, vals [][]byte)) error {
	var exprs []string
	for _, c := range keyCols {
		exprs = append(exprs, pgx.Identifier{c.Name}.Sanitize()+"::text")
	}
	for _, cp := range cps {
		exprs = append(exprs, pgx.Identifier{cp.name}.Sanitize()+"::text")
	}
	id := pgx.Identifier{t.Schema, t.Name}.Sanitize()
	q := fmt.Sprintf("SELECT %s FROM %s", strings.Join(exprs, ", "), id)
	var args []any
	switch {
	case keys != nil:
		if len(keys[0]) == 0 {
			return nil
		}
		var cols, casts, arrays []string
		for i, c := range keyCols {
			cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
			casts = append(casts, fmt.Sprintf("k%d::%s", i, c.Display))
			arrays = append(arrays, fmt.Sprintf("$%d::text[]", i+1))
			args = append(args, keys[i])
		}
		names := make([]string, len(keyCols))
		for i := range names {
			names[i] = fmt.Sprintf("k%d", i)
		}
		q += fmt.Sprintf(" WHERE (%s) IN (SELECT %s FROM unnest(%s) AS u(%s))",
			strings.Join(cols, ", "), strings.Join(casts, ", "), strings.Join(arrays, ", "), strings.Join(names, ", "))
	case limit > 0:
		var reltuples float64
		if err := conn.QueryRow(ctx, `SELECT COALESCE(sum(reltuples), 0) FROM pg_class WHERE oid = $1::regclass OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`, id).Scan(&reltuples); err != nil {
			return err
		}
		if reltuples > float64(10*limit) && !t.Partitioned {
			q = fmt.Sprintf("SELECT %s FROM %s TABLESAMPLE SYSTEM (%g)", strings.Join(exprs, ", "), id, math.Min(100, 300*float64(limit)/reltuples))
		}
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	nk := len(keyCols)
	vals := make([][]byte, len(cps))
	for rows.Next() {
		raw := rows.RawValues()
		var key []string
		if nk > 0 {
			key = make([]string, nk)
			for i := range nk {
				key[i] = string(raw[i])
			}
		}
		copy(vals, raw[nk:])
		f(key, vals)
	}
	return rows.Err()
}
