package masking

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
)

// TableMasker masks the rows of one table (and its partitions). Get one
// from [Plan.Table]; it is safe for concurrent use by several copies.
type TableMasker struct {
	table string
	cols  map[string]*colPlan
	order []string
	// noColCache turns the per-column caches off (tests: the reference).
	noColCache bool
}

type colPlan struct {
	name      string
	action    Action
	t         Transform
	reads     []string // other columns a row transform reads
	decision  *Decision
	generated bool
	// typ is the column's base type as pg_type names it ("int8", "text");
	// it decides whether a binary COPY can carry the column (binaryCodecFor).
	typ string
}

// Table returns the qualified name of the (root) table.
func (tm *TableMasker) Table() string { return tm.table }

// TargetColumns returns the columns the masked COPY writes, given the ones
// it reads: columns decided "default" are left out, so the target fills in
// its column default. Use it for the target's COPY … FROM STDIN column list.
func (tm *TableMasker) TargetColumns(columns []string) []string {
	out := make([]string, 0, len(columns))
	for _, c := range columns {
		if cp := tm.cols[c]; cp != nil && cp.action == Default {
			continue
		}
		out = append(out, c)
	}
	return out
}

// copyLimit bounds one row of COPY text (PostgreSQL's own limit on a
// field is 1 GB).
const copyLimit = 1 << 30

// FilterCopyText masks a stream in PostgreSQL COPY text format (the default
// format: tab-separated, \N for NULL, backslash escapes) from src to dst.
// columns are the columns of the COPY, in order; every one must be known to
// the plan (a column the plan has not seen fails the copy: fail closed).
// Masked columns are decoded, transformed and re-encoded; kept columns pass
// through byte for byte; "null" columns become \N; "default" columns are
// dropped (see [TableMasker.TargetColumns]). NULL stays NULL.
//
// The source session must use DateStyle ISO and client_encoding UTF8 (what
// the transforms parse). Memory is bounded by one row. It returns the
// number of rows written; cancelling ctx stops it between rows.
func FilterCopyText(ctx context.Context, dst io.Writer, src io.Reader, tm *TableMasker, columns []string) (rows int64, err error) {
	if tm == nil {
		return 0, errors.New("filter copy: no table masker (the plan masks nothing in this table: copy it unchanged)")
	}
	f, err := newCopyFilter(tm, columns)
	if err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(src, 64<<10)
	w := bufio.NewWriterSize(dst, 64<<10)
	var long []byte // a row longer than the reader's buffer
	for {
		if rows&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return rows, fmt.Errorf("mask table %s: %w", tm.table, err)
			}
		}
		line, rerr := r.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for rerr == bufio.ErrBufferFull {
				line, rerr = r.ReadSlice('\n')
				if len(long)+len(line) > copyLimit {
					return rows, fmt.Errorf("mask table %s row %d: longer than %d bytes", tm.table, rows+1, copyLimit)
				}
				long = append(long, line...)
			}
			line = long
		}
		if rerr != nil && rerr != io.EOF {
			return rows, fmt.Errorf("mask table %s: read: %w", tm.table, rerr)
		}
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if bytes.Equal(line, []byte(`\.`)) { // end-of-data marker
			break
		}
		if err := f.row(w, line, rows+1); err != nil {
			return rows, err
		}
		rows++
		if rerr == io.EOF {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return rows, fmt.Errorf("mask table %s: write: %w", tm.table, err)
	}
	return rows, nil
}

// copyFilter is the per-copy state: which transform applies at which
// position, and buffers reused from row to row.
type copyFilter struct {
	tm      *TableMasker
	cols    []*colPlan
	reads   [][]int // per position: positions a row transform reads
	decode  []bool  // per position: needs its decoded value
	late    []bool  // per position: masked after the others (row transforms)
	fields  [][]byte
	starts  []int // per position: where its field starts in the line
	nulls   []bool
	orig    [][]byte // decoded values
	out     [][]byte // masked values (decoded form)
	outNull []bool
	memo    rowMemo
	caches  []*colCache // per position: recent outputs of its transform (nil: none)
}

func newCopyFilter(tm *TableMasker, columns []string) (*copyFilter, error) {
	n := len(columns)
	f := &copyFilter{tm: tm, cols: make([]*colPlan, n), reads: make([][]int, n), decode: make([]bool, n), late: make([]bool, n),
		fields: make([][]byte, n), starts: make([]int, n), nulls: make([]bool, n), orig: make([][]byte, n), out: make([][]byte, n), outNull: make([]bool, n)}
	pos := map[string]int{}
	for i, c := range columns {
		cp := tm.cols[c]
		if cp == nil {
			return nil, fmt.Errorf("mask table %s: column %q is not in the masking plan (was it added after the plan was made? fail closed)", tm.table, c)
		}
		if _, dup := pos[c]; dup {
			return nil, fmt.Errorf("mask table %s: column %q listed twice", tm.table, c)
		}
		pos[c] = i
		f.cols[i] = cp
	}
	f.caches = make([]*colCache, n)
	for i, cp := range f.cols {
		if cp.action == Mask {
			f.decode[i] = true
			if !tm.noColCache && len(cp.reads) == 0 && cacheable(unwrap(cp.t)) {
				f.caches[i] = &colCache{seed: maphash.MakeSeed()}
			}
		}
		for _, r := range cp.reads {
			j, ok := pos[r]
			if !ok {
				return nil, fmt.Errorf("mask table %s: column %q reads column %q, which the COPY does not list", tm.table, cp.name, r)
			}
			f.reads[i] = append(f.reads[i], j)
			f.decode[j] = true
			f.late[i] = true
		}
	}
	return f, nil
}

// row masks one line (without its newline) and writes it.
func (f *copyFilter) row(w *bufio.Writer, line []byte, num int64) error {
	if err := f.splitText(line, num); err != nil {
		return err
	}
	if err := f.mask(num); err != nil {
		return err
	}
	return f.writeText(w, line)
}

// splitText finds the fields of a text COPY line and decodes the ones the
// transforms read.
func (f *copyFilter) splitText(line []byte, num int64) error {
	n := len(f.cols)
	// Split on tabs: raw tabs never occur inside a field.
	k := 0
	for start := 0; ; {
		i := bytes.IndexByte(line[start:], '\t')
		if k >= n {
			return fmt.Errorf("mask table %s row %d: more than %d fields", f.tm.table, num, n)
		}
		f.starts[k] = start
		if i < 0 {
			f.fields[k] = line[start:]
			k++
			break
		}
		f.fields[k] = line[start : start+i]
		k++
		start += i + 1
	}
	if k != n {
		return fmt.Errorf("mask table %s row %d: %d fields, want %d", f.tm.table, num, k, n)
	}
	for i, fld := range f.fields {
		f.nulls[i] = len(fld) == 2 && fld[0] == '\\' && fld[1] == 'N'
		if f.decode[i] && !f.nulls[i] {
			f.orig[i] = decodeCopy(f.orig[i][:0], fld)
		}
	}
	return nil
}

// mask computes the outputs of the masked columns from f.orig and f.nulls:
// plain transforms first, then the ones that read the row.
func (f *copyFilter) mask(num int64) error {
	f.memo.n = 0
	for pass := 0; pass < 2; pass++ {
		for i, cp := range f.cols {
			if f.late[i] != (pass == 1) {
				continue
			}
			switch cp.action {
			case Null:
				f.outNull[i] = true
			case Mask:
				if f.nulls[i] {
					f.outNull[i] = true
					continue
				}
				f.outNull[i] = false
				var err error
				if f.late[i] {
					f.out[i], err = appendRow(cp.t, f.out[i][:0], f.orig[i], rowView{f, f.reads[i]})
				} else if jt, ok := cp.t.(*jsonTransform); ok && jt.stream && f.memo.n > 0 {
					f.out[i], err = jt.appendStreamRow(f.out[i][:0], f.orig[i], &f.memo)
				} else {
					if c := f.caches[i]; c != nil {
						f.out[i], err = c.append(cp.t, f.out[i][:0], f.orig[i])
					} else {
						f.out[i], err = cp.t.Append(f.out[i][:0], f.orig[i])
					}
					if err == nil && memoizable(cp.t) {
						f.memo.add(cp.t, f.orig[i], f.out[i])
					}
				}
				if err != nil {
					return fmt.Errorf("mask table %s row %d column %s: %s: %w", f.tm.table, num, cp.name, cp.decision.Spec.Transform, err)
				}
			}
		}
	}
	return nil
}

// writeText writes the masked row in text COPY format; line is the row as
// it came, for the kept columns.
func (f *copyFilter) writeText(w *bufio.Writer, line []byte) error {
	n := len(f.cols)
	first := true
	for i := 0; i < n; i++ {
		cp := f.cols[i]
		if cp.action == Default {
			continue
		}
		if !first {
			w.WriteByte('\t')
		}
		first = false
		switch {
		case cp.action == Keep:
			// Kept columns in a row go out as they came, tabs included.
			j := i
			for j+1 < n && f.cols[j+1].action == Keep {
				j++
			}
			w.Write(line[f.starts[i] : f.starts[j]+len(f.fields[j])])
			i = j
		case f.outNull[i]:
			w.WriteString(`\N`)
		default:
			w.Write(encodeCopy(w.AvailableBuffer(), f.out[i]))
		}
	}
	return w.WriteByte('\n')
}

// rowView shows a row transform the columns it reads.
type rowView struct {
	f   *copyFilter
	pos []int
}

func (r rowView) original(i int) ([]byte, bool) {
	j := r.pos[i]
	if r.f.nulls[j] {
		return nil, false
	}
	return r.f.orig[j], true
}

func (r rowView) masked(i int) ([]byte, bool) {
	j := r.pos[i]
	switch r.f.cols[j].action {
	case Mask, Null:
		if r.f.outNull[j] {
			return nil, false
		}
		return r.f.out[j], true
	}
	return r.original(i)
}

// decodeCopy appends the value of a COPY text field (not \N).
func decodeCopy(dst, s []byte) []byte {
	for {
		j := bytes.IndexByte(s, '\\')
		if j < 0 {
			return append(dst, s...) // nothing (more) escaped
		}
		dst = append(dst, s[:j]...)
		if j == len(s)-1 {
			return append(dst, '\\') // a lone backslash at the end
		}
		i := j + 1
		switch c := s[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(s) {
				h, ok := unhex(s[i+1])
				if !ok {
					break
				}
				v = v<<4 | int(h)
				i++
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; n++ {
				i++
				v = v<<3 | int(s[i]-'0')
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
		s = s[i+1:]
	}
}

// copyEscapes maps each byte COPY text format escapes to the letter after
// the backslash (0: not escaped). Never changed.
var copyEscapes = [256]byte{'\\': '\\', '\n': 'n', '\r': 'r', '\t': 't', '\b': 'b', '\f': 'f', '\v': 'v'}

// encodeCopy appends v escaped for COPY text format.
func encodeCopy(dst, v []byte) []byte {
	start := 0
	for i, c := range v {
		if e := copyEscapes[c]; e != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', e)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}

// Changed returns the columns whose values the masker changes (masked,
// set to NULL or left to their default), in catalog order; generated
// columns, which the target computes, are not among them.
func (tm *TableMasker) Changed() []string {
	var out []string
	for _, c := range tm.order {
		if cp := tm.cols[c]; !cp.generated && cp.action != Keep {
			out = append(out, c)
		}
	}
	return out
}

// Columns returns the table's columns in catalog order, without generated
// columns (COPY neither reads nor writes them): the column list for the
// source's COPY … TO STDOUT.
func (tm *TableMasker) Columns() []string {
	out := make([]string, 0, len(tm.order))
	for _, c := range tm.order {
		if !tm.cols[c].generated {
			out = append(out, c)
		}
	}
	return slices.Clip(out)
}

// rowMemo remembers, for one row, what some column transforms made of their
// values, for the same transform meeting the same value again inside a JSON
// document of the row: an audit log's IP and user id columns and the IP
// and id in its payload. Transforms are deterministic, so the remembered
// output is the output.
type rowMemo struct {
	n   int
	ent [4]memoEntry
}

type memoEntry struct {
	t       Transform
	in, out []byte
}

const rowMemoMaxLen = 64

// memoizable: the permutations that cost most and that a row repeats.
func memoizable(t Transform) bool {
	switch t.(type) {
	case *ipTransform, *intTransform:
		return true
	}
	return false
}

// sameTransform reports whether a and b are the same transform: the same
// type, key and parameters (two builds for two columns of one domain).
func sameTransform(a, b Transform) bool {
	switch x := a.(type) {
	case *ipTransform:
		y, ok := b.(*ipTransform)
		return ok && *x == *y
	case *intTransform:
		y, ok := b.(*intTransform)
		return ok && *x == *y
	}
	return false
}

func (m *rowMemo) add(t Transform, in, out []byte) {
	if m.n == len(m.ent) || len(in) > rowMemoMaxLen || len(out) > rowMemoMaxLen {
		return
	}
	e := &m.ent[m.n]
	e.t, e.in, e.out = t, append(e.in[:0], in...), append(e.out[:0], out...)
	m.n++
}

// lookup returns what t made of in, if the row has it (m may be nil).
func (m *rowMemo) lookup(t Transform, in []byte) ([]byte, bool) {
	if m == nil {
		return nil, false
	}
	for i := range m.n {
		if e := &m.ent[i]; bytes.Equal(e.in, in) && sameTransform(e.t, t) {
			return e.out, true
		}
	}
	return nil, false
}

// colCache remembers, for one column of one copy, what its transform made
// of recent values: rows near each other repeat values (a user's orders,
// their shipping address, a card holder, a city), and the transforms are
// deterministic, so a remembered output is the output. Direct-mapped with
// colCacheSlots slots of at most colCacheMaxLen bytes each way: memory is
// bounded, and a copy uses its own (one goroutine, no locks).
type colCache struct {
	seed  maphash.Seed
	slots [colCacheSlots]colCacheSlot
}

type colCacheSlot struct {
	ok      bool
	in, out []byte
}

const (
	colCacheSlots  = 1024 // power of two
	colCacheMaxLen = 64
)

// cacheable: the keyed transforms whose columns repeat values.
func cacheable(t Transform) bool {
	switch t.(type) {
	case *dictTransform, *intTransform:
		return true
	}
	return false
}

// append is t.Append(dst, src), remembered.
func (c *colCache) append(t Transform, dst, src []byte) ([]byte, error) {
	if len(src) > colCacheMaxLen {
		return t.Append(dst, src)
	}
	s := &c.slots[maphash.Bytes(c.seed, src)&(colCacheSlots-1)]
	if s.ok && bytes.Equal(s.in, src) {
		return append(dst, s.out...), nil
	}
	n := len(dst)
	out, err := t.Append(dst, src)
	if err == nil && len(out)-n <= colCacheMaxLen {
		s.ok, s.in, s.out = true, append(s.in[:0], src...), append(s.out[:0], out[n:]...)
	}
	return out, err
}
