package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// Severity grades a finding.
type Severity string

// Severities, most serious first.
const (
	// SeverityError: the statement blocks production traffic, fails, or
	// breaks the old application. CI should fail.
	SeverityError Severity = "error"
	// SeverityWarning: hazardous depending on table size or on what the
	// old application does.
	SeverityWarning Severity = "warning"
	// SeverityInfo: checked and worth knowing, nothing to fix.
	SeverityInfo Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 3
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Rule describes one lint rule.
type Rule struct {
	// ID is the stable identifier ("DT001") used in suppressions.
	ID string `json:"id"`
	// Name is a short slug ("index-not-concurrent").
	Name string `json:"name"`
	// Severity is the rule's usual severity (a finding may be graded
	// lower when the hazard is uncertain, or higher when the captured
	// workload proves it).
	Severity Severity `json:"severity"`
	// Summary says what the rule catches.
	Summary string `json:"summary"`
}

// rules is the immutable rule table.
var rules = [...]Rule{
	{"DT000", "syntax-error", SeverityError, "the statement does not parse"},
	{"DT001", "index-not-concurrent", SeverityError, "CREATE INDEX without CONCURRENTLY on an existing table"},
	{"DT002", "concurrently-in-transaction", SeverityError, "a statement that cannot run in a transaction (CONCURRENTLY, VACUUM …) in a migration that runs in one"},
	{"DT003", "column-type-change", SeverityError, "ALTER COLUMN … TYPE: table rewrite under ACCESS EXCLUSIVE"},
	{"DT004", "set-not-null-scan", SeverityError, "SET NOT NULL without a validated CHECK (col IS NOT NULL)"},
	{"DT005", "constraint-not-valid", SeverityError, "FOREIGN KEY or CHECK constraint added without NOT VALID"},
	{"DT006", "unique-without-index", SeverityError, "UNIQUE / PRIMARY KEY / EXCLUDE added without an index built first"},
	{"DT007", "add-column-rewrite", SeverityError, "ADD COLUMN with a volatile default, serial, identity or stored generated column: table rewrite"},
	{"DT008", "drop-column", SeverityWarning, "DROP COLUMN the old application may still use"},
	{"DT009", "drop-table", SeverityWarning, "DROP TABLE / VIEW the old application may still use"},
	{"DT010", "rename-column", SeverityError, "RENAME COLUMN breaks the old application's queries"},
	{"DT011", "rename-table", SeverityError, "RENAME TABLE / VIEW breaks the old application's queries"},
	{"DT012", "table-rewrite-maintenance", SeverityError, "VACUUM FULL / CLUSTER: rewrite under ACCESS EXCLUSIVE"},
	{"DT013", "missing-lock-timeout", SeverityWarning, "ACCESS EXCLUSIVE on an existing table without SET lock_timeout first"},
	{"DT014", "add-column-not-null", SeverityError, "ADD COLUMN … NOT NULL without a default on an existing table"},
	{"DT015", "drop-index-not-concurrent", SeverityWarning, "DROP INDEX without CONCURRENTLY"},
	{"DT016", "reindex-not-concurrent", SeverityWarning, "REINDEX without CONCURRENTLY"},
	{"DT017", "truncate", SeverityWarning, "TRUNCATE of an existing table"},
	{"DT018", "enum-add-value-in-transaction", SeverityError, "ALTER TYPE … ADD VALUE inside a transaction before PostgreSQL 12"},
	{"DT019", "not-null-without-default", SeverityWarning, "a column becomes NOT NULL without a default: old INSERTs that omit it fail"},
}

// Rules returns the lint rules, in id order.
func Rules() []Rule { return append([]Rule(nil), rules[:]...) }

func ruleByID(id string) Rule {
	for _, r := range rules {
		if r.ID == id {
			return r
		}
	}
	return Rule{ID: id}
}

// Finding is one zero-downtime hazard in a migration.
type Finding struct {
	Rule     string   `json:"rule"`
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Version  string   `json:"version,omitempty"`
	// Statement is the offending statement, on one line, cut to 120
	// characters.
	Statement string `json:"statement"`
	// Message says what is wrong, naming the objects.
	Message string `json:"message"`
	// Lock is the lock the statement takes ("ACCESS EXCLUSIVE on users").
	Lock string `json:"lock,omitempty"`
	// Fix is the expand/contract way to make the change safely.
	Fix string `json:"fix"`
	// Queries are the captured queries of the old application the
	// statement breaks (DROP / RENAME / NOT NULL rules with a workload).
	Queries []QueryRef `json:"queries,omitempty"`
}

// Findings is a sorted list of findings (by file, line, rule).
type Findings []Finding

// Count returns the number of findings of severity s.
func (fs Findings) Count(s Severity) int {
	n := 0
	for _, f := range fs {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Worst returns the most serious severity present, "" when empty.
func (fs Findings) Worst() Severity {
	var w Severity
	for _, f := range fs {
		if f.Severity.rank() > w.rank() {
			w = f.Severity
		}
	}
	return w
}

// WriteText writes the findings for a terminal or a CI log:
//
//	FILE:LINE: RULE severity: message
//	    statement: …
//	    lock: …
//	    fix: …
//	    breaks: … (captured queries)
//
// then a one-line summary. The output is deterministic.
func (fs Findings) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s:%d: %s %s (%s): %s\n", f.File, f.Line, f.Rule, f.Severity, f.Name, f.Message)
		fmt.Fprintf(&b, "    statement: %s\n", f.Statement)
		if f.Lock != "" {
			fmt.Fprintf(&b, "    lock: %s\n", f.Lock)
		}
		fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
		for i, q := range f.Queries {
			if i == 5 {
				fmt.Fprintf(&b, "    breaks: … and %d more queries\n", len(f.Queries)-5)
				break
			}
			fp := q.Fingerprint
			if len(fp) > 8 {
				fp = fp[:8]
			}
			fmt.Fprintf(&b, "    breaks: [%s ×%d] %s (%s)\n", fp, q.Count, q.SQL, q.Uses)
		}
	}
	fmt.Fprintf(&b, "%d errors, %d warnings, %d infos\n", fs.Count(SeverityError), fs.Count(SeverityWarning), fs.Count(SeverityInfo))
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the findings as an indented JSON array.
func (fs Findings) WriteJSON(w io.Writer) error {
	out := fs
	if out == nil {
		out = Findings{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// LintOptions tunes Lint.
type LintOptions struct {
	// Workload, when set, cross-checks DROP, RENAME and NOT NULL changes
	// against the old application's captured queries.
	Workload *Workload
	// ServerMajor is the PostgreSQL major version the migrations will run
	// on (rules that depend on it: DT007 before 11, DT018 before 12, DT004
	// before 12). 0 means a current version.
	ServerMajor int
	// Disable lists rule ids not to report.
	Disable []string
	// Format is LintDir's format; FormatAuto detects it.
	Format Format
}

// LintDir discovers the migrations in dir and lints them.
func LintDir(dir string, opts LintOptions) (Findings, error) {
	set, err := Discover(dir, opts.Format)
	if err != nil {
		return nil, err
	}
	return Lint(set.Migrations, opts), nil
}

// Lint checks the up statements of migrations, in order, for
// zero-downtime hazards. State carries across migrations: a table created
// by an earlier migration of the set is new (nobody uses it yet), a CHECK
// validated earlier lets a later SET NOT NULL skip its scan. Suppress a
// finding with a comment "-- dbtwin:ignore DT003" (ids separated by
// spaces or commas; "all" for every rule) on the line before the
// statement or at the end of its first line.
func Lint(migs []Migration, opts LintOptions) Findings {
	l := &linter{
		opts:          opts,
		disabled:      map[string]bool{},
		created:       map[string]bool{},
		createdIdx:    map[string]bool{},
		addedCols:     map[string]map[string]*colState{},
		pendingChecks: map[string]map[string][]string{},
		validChecks:   map[string]map[string]bool{},
	}
	for _, id := range opts.Disable {
		l.disabled[strings.ToUpper(strings.TrimSpace(id))] = true
	}
	for i := range migs {
		l.migration(&migs[i])
	}
	sort.SliceStable(l.out, func(i, j int) bool {
		a, b := l.out[i], l.out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Rule < b.Rule
	})
	return l.out
}

// colState is what lint knows about a column added in the set.
type colState struct {
	notNull    bool
	hasDefault bool
}

type linter struct {
	opts     LintOptions
	disabled map[string]bool
	out      Findings

	created       map[string]bool                 // tables created in the set
	createdIdx    map[string]bool                 // indexes created in the set
	addedCols     map[string]map[string]*colState // table → column added in the set
	pendingChecks map[string]map[string][]string  // table → NOT VALID check → columns it proves NOT NULL
	validChecks   map[string]map[string]bool      // table → columns with a validated IS NOT NULL check

	mig         *Migration
	ignores     []ignoreDirective
	lockTimeout bool
}

func (l *linter) migration(m *Migration) {
	l.mig = m
	l.lockTimeout = false
	l.ignores = ignoreDirectives(m.Source)
	var all []parsedStmt
	for _, st := range m.Up {
		ps, err := parseStatement(st)
		if err != nil {
			line := st.Line
			var pe *pgparser.Error
			if errors.As(err, &pe) && pe.Cursorpos > 0 {
				line = st.Line + lineOfPosition(st.SQL, pe.Cursorpos) - 1
			}
			l.add(parsedStmt{sql: st.SQL, line: line}, "DT000", "", fmt.Sprintf("does not parse: %v", err), "fix the syntax: PostgreSQL will reject the migration", nil)
			continue
		}
		all = append(all, ps...)
	}
	lines := make([]int, len(all))
	for i, ps := range all {
		lines[i] = ps.line
	}
	l.resolveIgnores(lines)
	for _, ps := range all {
		l.statement(ps)
	}
}

// add records a finding unless disabled or suppressed.
func (l *linter) add(ps parsedStmt, id string, lock string, msg, fix string, queries []QueryRef, sev ...Severity) {
	if l.disabled[id] || l.ignored(ps.line, id) {
		return
	}
	r := ruleByID(id)
	s := r.Severity
	if len(sev) > 0 {
		s = sev[0]
	}
	l.out = append(l.out, Finding{
		Rule: id, Name: r.Name, Severity: s,
		File: l.mig.File, Line: ps.line, Version: l.mig.Version,
		Statement: oneLine(ps.sql, 120),
		Message:   msg, Lock: lock, Fix: fix, Queries: queries,
	})
}

// ignoreDirective is a "-- dbtwin:ignore …" comment.
type ignoreDirective struct {
	line   int
	target int // the statement line it applies to
	ids    map[string]bool
}

// ignoreDirectives finds suppression comments with the PostgreSQL
// scanner (falling back to a line search when the file does not scan).
func ignoreDirectives(src string) []ignoreDirective {
	var out []ignoreDirective
	addComment := func(text string, line int) {
		i := strings.Index(text, "dbtwin:ignore")
		if i < 0 {
			return
		}
		ids := map[string]bool{}
		for _, f := range strings.FieldsFunc(text[i+len("dbtwin:ignore"):], func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' || r == '*' || r == '/' }) {
			f = strings.ToUpper(f)
			if f != "ALL" && (len(f) < 3 || !strings.HasPrefix(f, "DT") || strings.Trim(f[2:], "0123456789") != "") {
				break // the ids end where the prose starts
			}
			ids[f] = true
		}
		if len(ids) == 0 {
			ids["ALL"] = true
		}
		out = append(out, ignoreDirective{line: line, ids: ids})
	}
	lines := newLineIndex(src)
	if sc, err := pg_query.Scan(src); err == nil {
		for _, tk := range sc.Tokens {
			if tk.Token == pg_query.Token_SQL_COMMENT || tk.Token == pg_query.Token_C_COMMENT {
				a, b := int(tk.Start), int(tk.End)
				if a >= 0 && b <= len(src) && a <= b {
					addComment(src[a:b], lines.line(max(b-1, a)))
				}
			}
		}
		return out
	}
	for i, l := range strings.Split(src, "\n") {
		if j := strings.Index(l, "--"); j >= 0 {
			addComment(l[j:], i+1)
		}
	}
	return out
}

// resolveIgnores points each directive at the statement it suppresses:
// one starting on the directive's own line, else the next statement, as
// long as only comments lie between them.
func (l *linter) resolveIgnores(stmtLines []int) {
	for i := range l.ignores {
		d := &l.ignores[i]
		d.target = -1
		for _, sl := range stmtLines {
			if sl == d.line {
				d.target = sl
				break
			}
			if sl > d.line {
				d.target = sl
				break
			}
		}
	}
}

func (l *linter) ignored(line int, id string) bool {
	for _, d := range l.ignores {
		if d.target == line && (d.ids[id] || d.ids["ALL"]) {
			return true
		}
	}
	return false
}

// tkey normalises a table name for the linter's maps.
func tkey(schema, name string) string {
	if schema == "" {
		schema = "public"
	}
	return schema + "." + name
}

// display names a table as written.
func display(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

func (l *linter) isNew(schema, name string) bool { return l.created[tkey(schema, name)] }

// noTxHow says how the migration's tool runs a statement outside a
// transaction.
func noTxHow(f Format) string {
	switch f {
	case FormatGoose:
		return "in its own migration marked -- +goose NO TRANSACTION"
	case FormatGolangMigrate:
		return "alone in its own migration file (golang-migrate runs a one-statement file outside any transaction)"
	case FormatFlyway:
		return "in its own migration (Flyway runs it outside a transaction) or with executeInTransaction=false in its .sql.conf"
	case FormatDbmate:
		return "in its own migration marked -- migrate:up transaction:false"
	case FormatAtlas:
		return "in its own file marked -- atlas:txmode none"
	case FormatPlain:
		return "in its own file marked -- dbtwin:no-transaction"
	}
	return "in a migration that does not run in a transaction"
}
