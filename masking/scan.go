package masking

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dbtwin/dbtwin/internal/pgdsn"
)

// PIIKind names a kind of personal or secret data the scanner recognises.
type PIIKind string

// The kinds of data Scan looks for.
const (
	KindEmail      PIIKind = "email"
	KindPhone      PIIKind = "phone"
	KindCard       PIIKind = "card"
	KindIBAN       PIIKind = "iban"
	KindNationalID PIIKind = "national_id"
	KindIP         PIIKind = "ip"
	KindBirthDate  PIIKind = "birth_date"
	KindPersonName PIIKind = "person_name"
	KindAddress    PIIKind = "address"
	KindCity       PIIKind = "city"
	KindPostcode   PIIKind = "postcode"
	KindSecret     PIIKind = "secret" // JWTs, API keys, password hashes, high-entropy tokens
	KindFreeText   PIIKind = "free_text"
	KindJSON       PIIKind = "json"
)

// Confidence grades a finding.
type Confidence string

// Confidence grades, from sure to unlikely.
const (
	High   Confidence = "high"
	Medium Confidence = "medium"
	Low    Confidence = "low"
	None   Confidence = "none"
)

func (c Confidence) rank() int {
	switch c {
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// ScanOptions configure [Scan].
type ScanOptions struct {
	// SampleRows is how many rows are read per table (default 1000).
	SampleRows int
	// Schemas limits the scan to these schemas (default: all but the
	// system ones).
	Schemas []string
}

// Report is what [Scan] found. It holds counts and verdicts, never a
// sampled value.
type Report struct {
	// Database is the scanned database's name.
	Database string         `json:"database"`
	Tables   []*TableReport `json:"tables"`
}

// TableReport is one table's part of a [Report].
type TableReport struct {
	Table string `json:"table"`
	// Sampled is how many rows were read.
	Sampled int             `json:"sampled_rows"`
	Columns []*ColumnReport `json:"columns"`
}

// ColumnReport is the verdict on one column.
type ColumnReport struct {
	Column string `json:"column"`
	// Type is the declared type.
	Type string `json:"type"`
	// Kind is the most likely kind of PII, or "" for none.
	Kind       PIIKind    `json:"kind,omitempty"`
	Confidence Confidence `json:"confidence"`
	// NonNull is how many sampled values were not NULL; Matches how many
	// of them looked like Kind.
	NonNull int `json:"non_null"`
	Matches int `json:"matches"`
	// Reasons explain the verdict ("name matches email", "type inet",
	// "87/100 values are e-mail addresses").
	Reasons []string `json:"reasons,omitempty"`
	// Found counts findings inside free text or JSON by kind.
	Found map[PIIKind]int `json:"found,omitempty"`
	// JSONKeys are the keys of JSON documents that hold PII, as "$..key"
	// paths, with the kind each holds.
	JSONKeys map[string]PIIKind `json:"json_keys,omitempty"`
	// Key is set for primary-key, unique and foreign-key columns.
	Key bool `json:"key,omitempty"`
	// Generated is set for generated columns (computed, never copied).
	Generated bool `json:"generated,omitempty"`
	// Proposal is the rule Scan proposes, in rules-file syntax.
	Proposal string `json:"proposal"`
}

// Scan samples every table of the database dsn names in one read-only,
// repeatable-read transaction and scores every column by its name, type
// and sampled values. Sampled values stay in memory for the scan only: the
// report holds counts and verdicts.
func Scan(ctx context.Context, dsn string, opts ScanOptions) (*Report, error) {
	if opts.SampleRows <= 0 {
		opts.SampleRows = 1000
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("scan: connect to %s: %w", pgdsn.Describe(dsn), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("scan: begin read-only transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rep := &Report{Database: conn.Config().Database}
	cat, err := LoadCatalog(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	for _, t := range cat.Tables {
		if t.Parent != "" {
			continue // sampled through the partitioned table
		}
		if len(opts.Schemas) > 0 && !containsString(opts.Schemas, t.Schema) {
			continue
		}
		tr, err := scanTable(ctx, conn, cat, t, opts.SampleRows)
		if err != nil {
			return nil, fmt.Errorf("scan table %s: %w", t.QualifiedName(), err)
		}
		rep.Tables = append(rep.Tables, tr)
	}
	return rep, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// keyColumns returns the columns of t that are keys or reference keys.
func keyColumns(cat *Catalog, t *Table) map[string]bool {
	keys := map[string]bool{}
	if t.PrimaryKey != nil {
		for _, c := range t.PrimaryKey.Columns {
			keys[c] = true
		}
	}
	for _, u := range t.Uniques {
		if len(u.Columns) == 1 {
			keys[u.Columns[0]] = true
		}
	}
	for _, fk := range t.ForeignKeys {
		for _, c := range fk.Columns {
			keys[c] = true
		}
	}
	return keys
}

func scanTable(ctx context.Context, conn *pgx.Conn, cat *Catalog, t *Table, n int) (*TableReport, error) {
	tr := &TableReport{Table: t.QualifiedName()}
	var exprs []string
	var cols []*Column
	for _, c := range t.Columns {
		if c.Type == "bytea" || c.Generated {
			continue // judged by name only
		}
		id := pgx.Identifier{c.Name}.Sanitize()
		if c.Type == "json" || c.Type == "jsonb" {
			exprs = append(exprs, id+"::text")
		} else {
			exprs = append(exprs, "left("+id+"::text, 8192)")
		}
		cols = append(cols, c)
	}
	samples := make([][]string, len(cols))
	if len(cols) > 0 {
		var reltuples float64
		if err := conn.QueryRow(ctx, `SELECT COALESCE(sum(c.reltuples), 0) FROM pg_class c WHERE c.oid = $1::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`,
			pgx.Identifier{t.Schema, t.Name}.Sanitize()).Scan(&reltuples); err != nil {
			return nil, err
		}
		from := pgx.Identifier{t.Schema, t.Name}.Sanitize()
		if reltuples > float64(10*n) && !t.Partitioned {
			pct := math.Min(100, 300*float64(n)/reltuples)
			from += fmt.Sprintf(" TABLESAMPLE SYSTEM (%g)", pct)
		}
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s LIMIT %d", strings.Join(exprs, ", "), from, n))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, err
			}
			for i, v := range vals {
				if s, ok := v.(string); ok {
					samples[i] = append(samples[i], s)
				}
			}
			tr.Sampled++
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	keys := keyColumns(cat, t)
	byName := map[string][]string{}
	for i, c := range cols {
		byName[c.Name] = samples[i]
	}
	for _, c := range t.Columns {
		cr := judgeColumn(c, byName[c.Name], keys[c.Name])
		tr.Columns = append(tr.Columns, cr)
	}
	return tr, nil
}

// judgeColumn scores one column.
func judgeColumn(c *Column, vals []string, key bool) *ColumnReport {
	cr := &ColumnReport{Column: c.Name, Type: c.Display, NonNull: len(vals), Key: key, Generated: c.Generated, Confidence: None}
	if c.Generated {
		cr.Proposal = "keep"
		return cr
	}
	hint, hintReason := nameHint(c.Name)
	switch {
	case c.Type == "inet" || c.Type == "cidr":
		cr.set(KindIP, High, "type "+c.Type)
		cr.Matches = len(vals)
	case c.Type == "json" || c.Type == "jsonb":
		judgeJSON(cr, vals)
	case c.Type == "date" || c.Type == "timestamp" || c.Type == "timestamptz":
		if hint == KindBirthDate {
			cr.set(KindBirthDate, High, hintReason)
			cr.Matches = len(vals)
		}
	case isTextual(c.Type):
		judgeText(cr, vals, hint)
	}
	if cr.Kind == "" && hint != "" && hint != KindBirthDate && hint != KindFreeText {
		// The name says so but no value agreed (or nothing was sampled).
		conf := Medium
		if len(vals) > 0 && !isTextual(c.Type) {
			conf = Low
		}
		if c.Type == "bytea" || isIntType(c.Type) {
			conf = Low
		}
		cr.set(hint, conf, hintReason)
	}
	cr.Proposal = propose(cr, c)
	return cr
}

func (cr *ColumnReport) set(k PIIKind, conf Confidence, reason string) {
	if cr.Kind == "" || conf.rank() > cr.Confidence.rank() {
		cr.Kind, cr.Confidence = k, conf
	}
	if reason != "" {
		cr.Reasons = append(cr.Reasons, reason)
	}
}

func isTextual(t string) bool {
	switch t {
	case "text", "varchar", "bpchar", "citext", "name":
		return true
	}
	return false
}

func isIntType(t string) bool { return t == "int2" || t == "int4" || t == "int8" }

// judgeText counts, over sampled strings, which detector each value
// satisfies as a whole, and what free text contains.
func judgeText(cr *ColumnReport, vals []string, hint PIIKind) {
	if len(vals) == 0 {
		return
	}
	counts := map[PIIKind]int{}
	found := map[PIIKind]int{}
	long := 0
	all := [numFindKinds]bool{true, true, true, true, true, true}
	for _, v := range vals {
		if k := wholeValueKind(v, hint); k != "" {
			counts[k]++
			continue
		}
		if strings.ContainsAny(v, " \n") && len(v) > 20 {
			long++
			fs := findPII([]byte(v), &all)
			seen := map[PIIKind]bool{}
			for _, f := range fs {
				k := findingKind(f.kind)
				if !seen[k] {
					found[k]++
					seen[k] = true
				}
			}
		}
	}
	best, bestN := PIIKind(""), 0
	for _, k := range []PIIKind{KindEmail, KindCard, KindIBAN, KindIP, KindNationalID, KindSecret, KindPhone, KindPersonName, KindAddress, KindCity, KindPostcode} {
		if counts[k] > bestN {
			best, bestN = k, counts[k]
		}
	}
	n := len(vals)
	if best != "" {
		ratio := float64(bestN) / float64(n)
		conf := Low
		switch {
		case ratio >= 0.5 || ratio >= 0.2 && hint == best:
			conf = High
		case ratio >= 0.1 || hint == best:
			conf = Medium
		}
		// Dictionary names and address words are weaker evidence alone.
		if (best == KindPersonName || best == KindCity || best == KindPostcode || best == KindAddress) && hint != best && conf == High {
			conf = Medium
		}
		cr.set(best, conf, fmt.Sprintf("%d/%d values look like %s", bestN, n, kindText(best)))
		cr.Matches = bestN
	}
	withPII := 0
	for _, c := range found {
		withPII = max(withPII, c)
	}
	if long > 0 && withPII > 0 {
		cr.Found = found
		conf := Medium
		if float64(withPII)/float64(n) >= 0.1 || hint == KindFreeText {
			conf = High
		}
		if cr.Kind == "" || conf.rank() >= cr.Confidence.rank() && cr.Matches < withPII {
			cr.Kind, cr.Confidence = KindFreeText, conf
			cr.Matches = withPII
		}
		cr.Reasons = append(cr.Reasons, fmt.Sprintf("free text: %s", foundText(found, n)))
	}
}

func findingKind(k int) PIIKind {
	return [numFindKinds]PIIKind{KindEmail, KindIBAN, KindCard, KindIP, KindPhone, KindPersonName}[k]
}

func foundText(found map[PIIKind]int, n int) string {
	var parts []string
	for k, c := range found {
		parts = append(parts, fmt.Sprintf("%s in %d/%d values", k, c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func kindText(k PIIKind) string {
	switch k {
	case KindEmail:
		return "e-mail addresses"
	case KindPhone:
		return "phone numbers"
	case KindCard:
		return "card numbers (Luhn)"
	case KindIBAN:
		return "IBANs (mod 97)"
	case KindNationalID:
		return "national identifiers"
	case KindIP:
		return "IP addresses"
	case KindPersonName:
		return "person names"
	case KindAddress:
		return "street addresses"
	case KindCity:
		return "city names"
	case KindPostcode:
		return "postal codes"
	case KindSecret:
		return "secrets (JWT or high-entropy tokens)"
	}
	return string(k)
}

// judgeJSON walks sampled documents: keys whose names or string values are
// PII become paths.
func judgeJSON(cr *ColumnReport, vals []string) {
	keys := map[string]PIIKind{}
	docs := 0
	all := [numFindKinds]bool{true, true, true, true, true, true}
	found := map[PIIKind]int{}
	for _, v := range vals {
		p := jsonParser{s: []byte(v)}
		p.space()
		root, err := p.value(0)
		if err != nil {
			continue
		}
		hit := false
		var walk func(n *jnode, key string)
		walk = func(n *jnode, key string) {
			switch n.kind {
			case 'o':
				for i, k := range n.keys {
					walk(n.vals[i], k)
				}
			case 'a':
				for _, c := range n.vals {
					walk(c, key)
				}
			case 's', 'n':
				if key == "" {
					return
				}
				k := wholeValueKind(n.str, "")
				if h, _ := nameHint(key); h != "" && h != KindFreeText && (k == "" || k == h) {
					k = h
				}
				if k != "" && k != KindFreeText {
					keys["$.."+key] = k
					hit = true
				} else if n.kind == 's' && len(n.str) > 20 {
					for _, f := range findPII([]byte(n.str), &all) {
						found[findingKind(f.kind)]++
						hit = true
					}
				}
			}
		}
		walk(root, "")
		if hit {
			docs++
		}
	}
	if docs == 0 {
		return
	}
	cr.JSONKeys = keys
	if len(found) > 0 {
		cr.Found = found
	}
	conf := Medium
	if float64(docs)/float64(len(vals)) >= 0.1 {
		conf = High
	}
	var ks []string
	for k, kind := range keys {
		ks = append(ks, k+" ("+string(kind)+")")
	}
	sort.Strings(ks)
	cr.set(KindJSON, conf, fmt.Sprintf("%d/%d documents hold PII; keys: %s", docs, len(vals), strings.Join(ks, ", ")))
	cr.Matches = docs
}
