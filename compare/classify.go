package compare

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/dbtwin/dbtwin/replay"
)

// typeNames names common PostgreSQL type OIDs for diff lines (immutable).
var typeNames = map[uint32]string{
	16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4",
	25: "text", 26: "oid", 114: "json", 142: "xml", 700: "float4", 701: "float8",
	790: "money", 869: "inet", 1042: "bpchar", 1043: "varchar", 1082: "date",
	1083: "time", 1114: "timestamp", 1184: "timestamptz", 1186: "interval",
	1266: "timetz", 1700: "numeric", 2950: "uuid", 3802: "jsonb",
}

// floatTypes are the types FloatTolerance applies to.
var floatTypes = map[uint32]bool{700: true, 701: true, 1700: true}

func typeName(oid uint32) string {
	if n, ok := typeNames[oid]; ok {
		return n
	}
	return "oid " + strconv.FormatUint(uint64(oid), 10)
}

func isOK(r *replay.Result) bool { return r.Status == replay.StatusOK }

// failed reports whether the statement ran and did not succeed.
func failed(r *replay.Result) bool {
	return r.Status == replay.StatusError || r.Status == replay.StatusTimeout || r.Status == replay.StatusConnLost
}

// outcomeOf describes how a statement ended on one side (nil: missing).
func outcomeOf(r *replay.Result) Outcome {
	if r == nil {
		return Outcome{Status: "missing"}
	}
	return Outcome{Status: string(r.Status), SQLState: r.SQLState, Message: clip(oneLine(r.Message), 300), Tag: r.Tag, Rows: r.Rows}
}

// diffPair classifies side x against baseline b: one of Same, Skipped,
// FixedError, NewError, ChangedError, DifferentColumns,
// DifferentRowCount, DifferentRows or Inconclusive.
func diffPair(b, x *replay.Result, ordered bool, rx *relax) Class {
	if b.Status == replay.StatusSkipped || x.Status == replay.StatusSkipped {
		return Skipped
	}
	switch {
	case failed(b) && isOK(x):
		return FixedError
	case isOK(b) && failed(x):
		return NewError
	case failed(b) && failed(x):
		if b.Status != x.Status || b.SQLState != x.SQLState {
			return ChangedError
		}
		return Same
	case !isOK(b) || !isOK(x): // an unknown status on one side
		if b.Status != x.Status {
			return ChangedError
		}
		return Same
	}
	if !sameColumns(b.Columns, x.Columns, rx) || b.Statements != x.Statements {
		return DifferentColumns
	}
	if b.Rows != x.Rows || b.Tag != x.Tag {
		return DifferentRowCount
	}
	hb, hx := b.MultisetHash, x.MultisetHash
	if ordered {
		hb, hx = b.OrderedHash, x.OrderedHash
	}
	if hb == hx {
		return Same
	}
	if !rx.appliesTo(b.Columns) {
		return DifferentRows
	}
	if !sampleComplete(b) || !sampleComplete(x) {
		return Inconclusive
	}
	if samplesEqual(b, x, ordered, rx) {
		return Same
	}
	return DifferentRows
}

// appliesTo reports whether ignore columns or a float tolerance can
// change the verdict on a result with these columns.
func (x *relax) appliesTo(cols []replay.Column) bool {
	for _, c := range cols {
		if x.ignoreColumns[c.Name] || (x.tolerance > 0 && floatTypes[c.TypeOID]) {
			return true
		}
	}
	return false
}

// sampleComplete reports whether the kept sample is the whole result.
func sampleComplete(r *replay.Result) bool {
	return !r.SampleTruncated && int64(len(r.Sample)) == r.Rows
}

func sameColumns(a, b []replay.Column, rx *relax) bool {
	a, b = keptColumns(a, rx), keptColumns(b, rx)
	return slices.Equal(a, b)
}

func keptColumns(cols []replay.Column, rx *relax) []replay.Column {
	if len(rx.ignoreColumns) == 0 {
		return cols
	}
	var out []replay.Column
	for _, c := range cols {
		if !rx.ignoreColumns[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// projection is the columns of a result that take part in a comparison,
// with whether each is tolerant.
type projection struct {
	index    []int
	tolerant []bool
}

func project(cols []replay.Column, rx *relax) projection {
	var p projection
	for i, c := range cols {
		if rx.ignoreColumns[c.Name] {
			continue
		}
		p.index = append(p.index, i)
		p.tolerant = append(p.tolerant, rx.tolerance > 0 && floatTypes[c.TypeOID])
	}
	return p
}

// samplesEqual compares complete samples under the rules: ignored
// columns dropped, tolerant columns compared numerically. Without ORDER BY
// both samples are sorted first (tolerant columns by number), so rows
// pair up as a multiset; two rows within tolerance of each other but on
// either side of a third could mis-pair, which can only report a
// difference that is not there, never hide one.
func samplesEqual(b, x *replay.Result, ordered bool, rx *relax) bool {
	if len(b.Sample) != len(x.Sample) {
		return false
	}
	p := project(b.Columns, rx)
	rb, rxs := projectRows(b.Sample, p.index), projectRows(x.Sample, project(x.Columns, rx).index)
	if !ordered {
		sortRows(rb, p.tolerant)
		sortRows(rxs, p.tolerant)
	}
	for i := range rb {
		if len(rb[i]) != len(rxs[i]) {
			return false
		}
		for j := range rb[i] {
			if !valueEqual(rb[i][j], rxs[i][j], p.tolerant[j], rx.tolerance) {
				return false
			}
		}
	}
	return true
}

func projectRows(rows [][]*string, index []int) [][]*string {
	out := make([][]*string, len(rows))
	for i, row := range rows {
		pr := make([]*string, len(index))
		for j, k := range index {
			if k < len(row) {
				pr[j] = row[k]
			}
		}
		out[i] = pr
	}
	return out
}

func sortRows(rows [][]*string, tolerant []bool) {
	slices.SortStableFunc(rows, func(a, b []*string) int {
		for j := range min(len(a), len(b)) {
			if c := compareValue(a[j], b[j], j < len(tolerant) && tolerant[j]); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(a), len(b))
	})
}

func compareValue(a, b *string, numeric bool) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if numeric {
		fa, ea := strconv.ParseFloat(*a, 64)
		fb, eb := strconv.ParseFloat(*b, 64)
		if ea == nil && eb == nil {
			return cmp.Compare(fa, fb)
		}
	}
	return strings.Compare(*a, *b)
}

// valueEqual compares two text values, within tolerance for a tolerant
// column: |a−b| ≤ tol × max(1, |a|, |b|).
func valueEqual(a, b *string, tolerant bool, tol float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if *a == *b {
		return true
	}
	if !tolerant {
		return false
	}
	fa, ea := strconv.ParseFloat(*a, 64)
	fb, eb := strconv.ParseFloat(*b, 64)
	if ea != nil || eb != nil {
		return false
	}
	if math.IsNaN(fa) || math.IsNaN(fb) || math.IsInf(fa, 0) || math.IsInf(fb, 0) {
		return fa == fb || (math.IsNaN(fa) && math.IsNaN(fb))
	}
	return math.Abs(fa-fb) <= tol*max(1, math.Abs(fa), math.Abs(fb))
}

// noiseExplains reports whether the control's difference from the baseline
// (ctrl) explains the candidate's (cand): the same class, or for data
// differences one at least as large (columns > row count > rows); for
// errors the control must have failed with the candidate's SQLSTATE.
func noiseExplains(cand, ctrl Class, candRes, ctrlRes *replay.Result) bool {
	if ctrl == Same || ctrl == Skipped {
		return false
	}
	switch cand {
	case NewError, ChangedError:
		return ctrl == cand && candRes.SQLState == ctrlRes.SQLState && candRes.Status == ctrlRes.Status
	case FixedError:
		return ctrl == FixedError
	}
	if cand.isData() && ctrl.isData() {
		return dataRank(ctrl) >= dataRank(cand)
	}
	return false
}

func dataRank(c Class) int {
	switch c {
	case DifferentColumns:
		return 3
	case DifferentRowCount:
		return 2
	case DifferentRows:
		return 1
	}
	return 0 // Inconclusive: explained by any data difference
}

// buildDiff renders a bounded sample of how x differs from b.
func buildDiff(b, x *replay.Result, class Class, ordered bool, rx *relax, maxLines int) *Diff {
	if b == nil || x == nil {
		return nil
	}
	switch class {
	case Same, Skipped:
		return nil
	case NewError, FixedError, ChangedError:
		return &Diff{Lines: []DiffLine{{DiffDelete, describe(b)}, {DiffInsert, describe(x)}}}
	}
	if !isOK(b) || !isOK(x) {
		return &Diff{Lines: []DiffLine{{DiffDelete, describe(b)}, {DiffInsert, describe(x)}}}
	}
	d := &Diff{}
	var head []DiffLine
	if class == DifferentRowCount {
		head = append(head, DiffLine{DiffDelete, describe(b)}, DiffLine{DiffInsert, describe(x)})
	}
	if class == DifferentColumns {
		d.Lines = DiffText(columnsText(b.Columns), columnsText(x.Columns), maxLines)
		return d
	}
	tb, nb := rowsText(b, ordered, rx)
	tx, nx := rowsText(x, ordered, rx)
	lines := DiffText(tb, tx, max(1, maxLines-len(head)))
	d.Lines = append(head, lines...)
	var notes []string
	if !sampleComplete(b) || !sampleComplete(x) {
		notes = append(notes, fmt.Sprintf("sample: first %d of %d rows (baseline), %d of %d (candidate); rows beyond it are not shown", nb, b.Rows, nx, x.Rows))
	}
	if !ordered {
		notes = append(notes, "no top-level ORDER BY: rows compared as a multiset, shown sorted")
	}
	if tb == tx && class != DifferentRowCount {
		notes = append(notes, "the sampled rows are equal: the difference is beyond the sample")
	}
	if len(rx.ignoreColumns) > 0 {
		notes = append(notes, "ignored columns left out")
	}
	d.Note = strings.Join(notes, "; ")
	return d
}

// describe is one line saying how a statement ended.
func describe(r *replay.Result) string {
	switch r.Status {
	case replay.StatusOK:
		s := "ok"
		if r.Tag != "" {
			s += " " + r.Tag
		}
		if len(r.Columns) > 0 {
			s += fmt.Sprintf(" (%s)", plural(int(r.Rows), "row"))
		}
		return s
	case replay.StatusSkipped:
		return "skipped: " + clip(oneLine(r.Message), 200)
	}
	s := string(r.Status)
	if r.SQLState != "" {
		s += " " + r.SQLState
	}
	if r.Message != "" {
		s += ": " + clip(oneLine(r.Message), 200)
	}
	return s
}

func columnsText(cols []replay.Column) string {
	var b strings.Builder
	for _, c := range cols {
		fmt.Fprintf(&b, "%s %s\n", c.Name, typeName(c.TypeOID))
	}
	return b.String()
}

// rowsText renders a result's sample as one line per row (a header line
// of column names first), sorted when the statement has no ORDER BY.
func rowsText(r *replay.Result, ordered bool, rx *relax) (string, int) {
	p := project(r.Columns, rx)
	var names []string
	for _, k := range p.index {
		names = append(names, cell(&r.Columns[k].Name))
	}
	rows := projectRows(r.Sample, p.index)
	lines := make([]string, len(rows))
	for i, row := range rows {
		cells := make([]string, len(row))
		for j, v := range row {
			if v == nil {
				cells[j] = "NULL"
			} else {
				cells[j] = cell(v)
			}
		}
		lines[i] = strings.Join(cells, " | ")
	}
	if !ordered {
		slices.Sort(lines)
	}
	return strings.Join(names, " | ") + "\n" + strings.Join(lines, "\n") + "\n", len(rows)
}

// cell renders a value on one line; it is quoted when it could be taken
// for NULL or holds a separator or control character.
func cell(v *string) string {
	s := *v
	if s == "NULL" || strings.Contains(s, " | ") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// clip cuts s to n runes, marking the cut with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
