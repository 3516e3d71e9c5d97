package harness

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
)

// StateOptions tune CompareFinalState. The zero value uses the defaults.
type StateOptions struct {
	// ChunkRows is about how many rows share one checksum (default 1000).
	ChunkRows int
	// SampleKeys is how many differing primary keys are named per table
	// (default 5).
	SampleKeys int
}

// FinalState is what CompareFinalState found.
type FinalState struct {
	// Diffs are the tables whose contents differ between baseline and
	// candidate, sorted by name; AlsoInControl marks those whose only
	// differences are in what differs between baseline and control too.
	Diffs []compare.TableStateDiff
	// Notes say what was not compared, or compared only in part: tables
	// that only one side has, columns the migrations added, dropped or
	// retyped, tables without a primary key.
	Notes []string
	// Tables is how many tables were compared.
	Tables int
}

// CompareFinalState compares the contents of every table of the baseline
// with the candidate, and with the control for noise, after the replays.
//
// How: each table's rows are spread over K chunks by a hash of their
// primary key as text (K = the baseline's row estimate / ChunkRows, the
// same K on every side), and each chunk is summarized as a row count and
// the md5 of its rows' text in key order — one pass over the table per
// side, with memory bounded by a chunk. Chunks whose checksums differ
// mark the table. Only the columns both sides have, by name, are compared,
// each cast to text, so a column the migrations added or dropped does not
// make every row differ and a retyped column (integer → bigint) compares by
// its text; a note says so. A table without a primary key is chunked by
// the hash of the whole row and compared as a multiset of rows.
//
// Noise: when a table differs between baseline and control as well (now()
// in an UPDATE, a random default), the columns that differ there are
// found, per column checksums over the differing chunks; the table is a
// regression only if the candidate differs in another column, or in which
// rows exist. Otherwise it is reported with AlsoInControl.
//
// Every value read stays in the sandbox: the result holds table names,
// counts and a few primary keys (of masked clones, when masking is on).
func CompareFinalState(ctx context.Context, baselineDSN, candidateDSN, controlDSN string, opts StateOptions) (*FinalState, error) {
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = 1000
	}
	if opts.SampleKeys <= 0 {
		opts.SampleKeys = 5
	}
	var sides [3]*stateSide
	defer func() {
		for _, s := range sides {
			if s != nil {
				s.close(context.WithoutCancel(ctx))
			}
		}
	}()
	for i, dsn := range []string{baselineDSN, candidateDSN, controlDSN} {
		s, err := openStateSide(ctx, dsn)
		if err != nil {
			return nil, err
		}
		sides[i] = s
	}
	base, cand, ctrl := sides[0], sides[1], sides[2]

	out := &FinalState{}
	var names []string
	for name := range base.tables {
		names = append(names, name)
	}
	for name := range cand.tables {
		if base.tables[name] == nil {
			out.Notes = append(out.Notes, fmt.Sprintf("%s exists only on the candidate (created by the migrations): not compared", name))
		}
	}
	sort.Strings(names)
	for _, name := range names {
		bt, ct, kt := base.tables[name], cand.tables[name], ctrl.tables[name]
		if ct == nil {
			out.Notes = append(out.Notes, fmt.Sprintf("%s exists only on the baseline (dropped or renamed by the migrations): not compared", name))
			continue
		}
		if kt == nil {
			return nil, fmt.Errorf("compare final state: table %s is missing on the control", name)
		}
		sh, notes := commonShape(bt, ct)
		out.Notes = append(out.Notes, notes...)
		if len(sh.cols) == 0 {
			out.Notes = append(out.Notes, fmt.Sprintf("%s: no column in common: not compared", name))
			continue
		}
		d, err := compareTable(ctx, sh, base, cand, ctrl, opts)
		if err != nil {
			return nil, fmt.Errorf("compare final state of %s: %w", name, err)
		}
		out.Tables++
		if d != nil {
			out.Diffs = append(out.Diffs, *d)
		}
	}
	sort.Strings(out.Notes)
	return out, nil
}

// stateSide is one database being compared.
type stateSide struct {
	conn   *pgx.Conn
	tables map[string]*tableShape
}

func openStateSide(ctx context.Context, dsn string) (*stateSide, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("compare final state: connect to %s: %w", pgdsn.Describe(dsn), err)
	}
	s := &stateSide{conn: conn}
	// One snapshot for every table; the replays are over, but nothing else
	// should see a half-finished state either.
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("compare final state: %w", err)
	}
	if s.tables, err = loadShapes(ctx, conn); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("compare final state: read the tables of %s: %w", pgdsn.Describe(dsn), err)
	}
	return s, nil
}

func (s *stateSide) close(ctx context.Context) { s.conn.Close(ctx) }

// tableShape is a table's columns and primary key.
type tableShape struct {
	schema, name string
	cols         []column // in column order
	pk           []string // primary key columns, in key order
	estimate     float64  // pg_class.reltuples (-1: never analyzed)
}

type column struct{ name, typ string }

// display is the table's name as reports show it: "schema.name" outside
// public.
func (t *tableShape) display() string {
	if t.schema == "public" {
		return t.name
	}
	return t.schema + "." + t.name
}

func (t *tableShape) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// loadShapes reads every ordinary table and leaf partition (relkind r)
// outside the system schemas, with its columns and primary key.
func loadShapes(ctx context.Context, conn *pgx.Conn) (map[string]*tableShape, error) {
	rows, err := conn.Query(ctx, `
		SELECT n.nspname, c.relname, c.reltuples::float8, a.attname, format_type(a.atttypid, a.atttypmod),
		       coalesce(array_position(p.conkey, a.attnum), 0)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		LEFT JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
		WHERE c.relkind = 'r' AND c.relpersistence <> 't'
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		ORDER BY n.nspname, c.relname, a.attnum`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*tableShape{}
	pkPos := map[*tableShape]map[int]string{}
	for rows.Next() {
		var schema, name, col, typ string
		var est float64
		var pos int
		if err := rows.Scan(&schema, &name, &est, &col, &typ, &pos); err != nil {
			return nil, err
		}
		t := &tableShape{schema: schema, name: name, estimate: est}
		key := t.display()
		if have := out[key]; have != nil {
			t = have
		} else {
			out[key] = t
			pkPos[t] = map[int]string{}
		}
		t.cols = append(t.cols, column{name: col, typ: typ})
		if pos > 0 {
			pkPos[t][pos] = col
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for t, m := range pkPos {
		for i := 1; i <= len(m); i++ {
			t.pk = append(t.pk, m[i])
		}
	}
	return out, nil
}

// commonShape is the part of a table both sides have: the columns of the
// baseline that the candidate has too, and the baseline's primary key if
// all of its columns are among them. Notes say what was left out.
func commonShape(b, c *tableShape) (*tableShape, []string) {
	sh := &tableShape{schema: b.schema, name: b.name, estimate: b.estimate}
	ctyp := map[string]string{}
	for _, col := range c.cols {
		ctyp[col.name] = col.typ
	}
	var notes, dropped, retyped, added []string
	have := map[string]bool{}
	for _, col := range b.cols {
		t, ok := ctyp[col.name]
		if !ok {
			dropped = append(dropped, col.name)
			continue
		}
		if t != col.typ {
			retyped = append(retyped, fmt.Sprintf("%s (%s → %s)", col.name, col.typ, t))
		}
		have[col.name] = true
		sh.cols = append(sh.cols, col)
	}
	for _, col := range c.cols {
		if !have[col.name] {
			if _, inBase := indexOf(b.cols, col.name); !inBase {
				added = append(added, col.name)
			}
		}
	}
	name := b.display()
	if len(dropped) > 0 || len(added) > 0 {
		var parts []string
		if len(added) > 0 {
			parts = append(parts, "only on the candidate: "+strings.Join(added, ", "))
		}
		if len(dropped) > 0 {
			parts = append(parts, "only on the baseline: "+strings.Join(dropped, ", "))
		}
		notes = append(notes, fmt.Sprintf("%s compared on the %s both sides have (%s)", name, plural(len(sh.cols), "column"), strings.Join(parts, "; ")))
	}
	if len(retyped) > 0 {
		notes = append(notes, fmt.Sprintf("%s: retyped columns compared as text: %s", name, strings.Join(retyped, ", ")))
	}
	pkOK := len(b.pk) > 0
	for _, k := range b.pk {
		if !have[k] {
			pkOK = false
		}
	}
	if pkOK {
		sh.pk = b.pk
	} else {
		why := "it has no primary key"
		if len(b.pk) > 0 {
			why = "its primary key is not on both sides"
		}
		notes = append(notes, fmt.Sprintf("%s compared as a multiset of rows (%s): no sample keys", name, why))
	}
	return sh, notes
}

// plural formats "1 column" / "3 columns".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func indexOf(cols []column, name string) (int, bool) {
	for i, c := range cols {
		if c.name == name {
			return i, true
		}
	}
	return -1, false
}

// textOf is col cast to text, NULL kept apart from any text.
func textOf(col string) string {
	return "coalesce(" + pgx.Identifier{col}.Sanitize() + "::text, '\\N')"
}

// exprs returns the SQL of a row's key (as text) and of the row (as text,
// over cols).
func (t *tableShape) exprs(cols []column) (key, row string) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = pgx.Identifier{c.name}.Sanitize() + "::text"
	}
	row = "ROW(" + strings.Join(parts, ", ") + ")::text"
	switch len(t.pk) {
	case 0:
		key = row
	case 1:
		key = pgx.Identifier{t.pk[0]}.Sanitize() + "::text"
	default:
		ks := make([]string, len(t.pk))
		for i, k := range t.pk {
			ks[i] = pgx.Identifier{k}.Sanitize() + "::text"
		}
		key = "ROW(" + strings.Join(ks, ", ") + ")::text"
	}
	return key, row
}

// chunked wraps the table in a subquery with columns k (key text), r (row
// text over cols), ch (chunk number below $1) and the extra expressions.
func (t *tableShape) chunked(cols []column, extra ...string) string {
	key, row := t.exprs(cols)
	sel := "SELECT " + key + " AS k, " + row + " AS r"
	for i, e := range extra {
		sel += fmt.Sprintf(", %s AS x%d", e, i)
	}
	return "SELECT s0.*, mod(mod(hashtextextended(s0.k, 0), $1::bigint) + $1::bigint, $1::bigint) AS ch FROM (" +
		sel + " FROM ONLY " + t.ident() + ") s0"
}

// chunkSum is one chunk's count and checksum.
type chunkSum struct {
	n   int64
	md5 string
}

// parallel runs f on the three sides at once.
func parallel(sides []*stateSide, f func(i int, s *stateSide) error) error {
	errs := make([]error, len(sides))
	var wg sync.WaitGroup
	for i, s := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i, s)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// compareTable compares one table on the three sides; nil means equal.
func compareTable(ctx context.Context, t *tableShape, base, cand, ctrl *stateSide, opts StateOptions) (*compare.TableStateDiff, error) {
	k := int64(1)
	est := t.estimate
	if est < 0 {
		if err := base.conn.QueryRow(ctx, "SELECT count(*)::float8 FROM ONLY "+t.ident()).Scan(&est); err != nil {
			return nil, err
		}
	}
	if est > 0 {
		k = int64(math.Ceil(est / float64(opts.ChunkRows)))
	}
	q := `SELECT ch, count(*), md5(string_agg(r, E'\n' ORDER BY k COLLATE "C", r COLLATE "C")) FROM (` +
		t.chunked(t.cols) + `) s GROUP BY ch`
	sides := []*stateSide{base, cand, ctrl}
	var sums [3]map[int64]chunkSum
	var counts [3]int64
	err := parallel(sides, func(i int, s *stateSide) error {
		rows, err := s.conn.Query(ctx, q, k)
		if err != nil {
			return err
		}
		m := map[int64]chunkSum{}
		var ch, n int64
		var sum string
		_, err = pgx.ForEachRow(rows, []any{&ch, &n, &sum}, func() error {
			m[ch] = chunkSum{n, sum}
			counts[i] += n
			return nil
		})
		sums[i] = m
		return err
	})
	if err != nil {
		return nil, err
	}
	diffC := differingChunks(sums[0], sums[1])
	if len(diffC) == 0 {
		return nil, nil
	}
	diffN := differingChunks(sums[0], sums[2])
	d := &compare.TableStateDiff{
		Table:           t.display(),
		RowsBaseline:    counts[0],
		RowsCandidate:   counts[1],
		ChunksDiffering: len(diffC),
	}
	cols := t.cols // the columns that tell candidate from baseline
	if len(diffN) > 0 {
		if len(t.pk) == 0 {
			// Without a key, rows cannot be matched column by column:
			// the table is noisy as a whole.
			d.AlsoInControl = true
		} else {
			noisyKey, noisy, regress, err := columnNoise(ctx, t, sides, k, union(diffC, diffN), diffC)
			if err != nil {
				return nil, err
			}
			if !regress {
				d.AlsoInControl = true
			}
			if !noisyKey {
				cols = nil
				for i, c := range t.cols {
					if !noisy[i] {
						cols = append(cols, c)
					}
				}
			}
		}
	}
	if len(t.pk) > 0 {
		if d.AlsoInControl {
			cols = t.cols
		}
		keys, err := sampleKeys(ctx, t, cols, base, cand, k, diffC, opts.SampleKeys)
		if err != nil {
			return nil, err
		}
		d.SampleKeys = keys
	}
	return d, nil
}

// differingChunks lists the chunks whose sums differ, sorted.
func differingChunks(a, b map[int64]chunkSum) []int64 {
	var out []int64
	for ch, s := range a {
		if b[ch] != s {
			out = append(out, ch)
		}
	}
	for ch := range b {
		if _, ok := a[ch]; !ok {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out
}

func union(a, b []int64) []int64 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// columnNoise checksums the key and every column separately over the
// chunks given, on the three sides. A column (or the key set) is noisy
// when it differs between baseline and control; the candidate regresses
// when, in a chunk of diffC, it differs from the baseline in the key set
// or in a column that is not noisy.
func columnNoise(ctx context.Context, t *tableShape, sides []*stateSide, k int64, chunks, diffC []int64) (noisyKey bool, noisy []bool, regress bool, err error) {
	extra := make([]string, len(t.cols))
	aggs := []string{`md5(string_agg(k, E'\n' ORDER BY k COLLATE "C"))`}
	for i, c := range t.cols {
		extra[i] = textOf(c.name)
		aggs = append(aggs, fmt.Sprintf(`md5(string_agg(x%d, E'\n' ORDER BY k COLLATE "C"))`, i))
	}
	// The row expression is empty (ROW()): the key and the columns are
	// what is summed.
	q := "SELECT ch, " + strings.Join(aggs, ", ") + " FROM (" + t.chunked(nil, extra...) + ") s WHERE ch = ANY($2) GROUP BY ch"
	var sums [3]map[int64][]string
	err = parallel(sides, func(i int, s *stateSide) error {
		rows, err := s.conn.Query(ctx, q, k, chunks)
		if err != nil {
			return err
		}
		defer rows.Close()
		m := map[int64][]string{}
		for rows.Next() {
			vals := make([]any, len(aggs)+1)
			var ch int64
			strs := make([]string, len(aggs))
			vals[0] = &ch
			for j := range strs {
				vals[j+1] = &strs[j]
			}
			if err := rows.Scan(vals...); err != nil {
				return err
			}
			m[ch] = strs
		}
		sums[i] = m
		return rows.Err()
	})
	if err != nil {
		return false, nil, false, err
	}
	get := func(side int, ch int64, j int) string {
		if v, ok := sums[side][ch]; ok {
			return v[j]
		}
		return "" // the chunk is empty on that side
	}
	noisy = make([]bool, len(t.cols))
	for _, ch := range chunks {
		if get(0, ch, 0) != get(2, ch, 0) {
			noisyKey = true
		}
		for i := range t.cols {
			if get(0, ch, i+1) != get(2, ch, i+1) {
				noisy[i] = true
			}
		}
	}
	if noisyKey {
		// Which rows exist is itself non-deterministic (random keys): the
		// columns cannot be lined up, so the table counts as noise.
		return true, noisy, false, nil
	}
	for _, ch := range diffC {
		if get(0, ch, 0) != get(1, ch, 0) {
			return false, noisy, true, nil
		}
		for i := range t.cols {
			if !noisy[i] && get(0, ch, i+1) != get(1, ch, i+1) {
				return false, noisy, true, nil
			}
		}
	}
	return false, noisy, false, nil
}

// sampleKeys names up to n primary keys of rows that differ between
// baseline and candidate (over cols), from the first few differing chunks.
func sampleKeys(ctx context.Context, t *tableShape, cols []column, base, cand *stateSide, k int64, diffC []int64, n int) ([]string, error) {
	if len(diffC) > 3 {
		diffC = diffC[:3]
	}
	q := "SELECT k, md5(r) FROM (" + t.chunked(cols) + ") s WHERE ch = ANY($2)"
	var rows [2]map[string]string
	err := parallel([]*stateSide{base, cand}, func(i int, s *stateSide) error {
		rs, err := s.conn.Query(ctx, q, k, diffC)
		if err != nil {
			return err
		}
		m := map[string]string{}
		var key, sum string
		_, err = pgx.ForEachRow(rs, []any{&key, &sum}, func() error {
			m[key] = sum
			return nil
		})
		rows[i] = m
		return err
	})
	if err != nil {
		return nil, err
	}
	var keys []string
	for key, sum := range rows[0] {
		if c, ok := rows[1][key]; !ok || c != sum {
			keys = append(keys, key)
		}
	}
	for key := range rows[1] {
		if _, ok := rows[0][key]; !ok {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys, nil
}
