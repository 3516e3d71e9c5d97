package compare

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/replay"
)

// mk builds an ok result whose hashes, row count, tag and sample come
// from rows (hashed with the real replay.RowHasher).
func mk(seq int64, sql string, rows [][]string, opts ...func(*replay.Result)) *replay.Result {
	r := &replay.Result{Session: "s1", Seq: seq, SQL: sql, Status: replay.StatusOK,
		Columns: []replay.Column{{Name: "id", TypeOID: 23}, {Name: "v", TypeOID: 25}}, Duration: time.Millisecond}
	setRows(r, rows)
	for _, o := range opts {
		o(r)
	}
	return r
}

func setRows(r *replay.Result, rows [][]string) {
	h := replay.NewRowHasher()
	r.Sample = nil
	for _, row := range rows {
		vals := make([][]byte, len(row))
		srow := make([]*string, len(row))
		for i, v := range row {
			if v == "<null>" {
				continue
			}
			vals[i] = []byte(v)
			s := v
			srow[i] = &s
		}
		h.Add(0, vals)
		r.Sample = append(r.Sample, srow)
	}
	r.Rows = int64(len(rows))
	r.Tag = fmt.Sprintf("SELECT %d", len(rows))
	if rows != nil {
		r.OrderedHash, r.MultisetHash = h.Ordered(), h.Multiset()
	}
}

func withErr(state, msg string) func(*replay.Result) {
	return func(r *replay.Result) {
		r.Status, r.SQLState, r.Message = replay.StatusError, state, msg
		r.Columns, r.Sample, r.Rows, r.Tag, r.OrderedHash, r.MultisetHash = nil, nil, 0, "", "", ""
	}
}

func withStatus(s replay.Status) func(*replay.Result) {
	return func(r *replay.Result) { r.Status = s }
}

func withCols(cols ...replay.Column) func(*replay.Result) {
	return func(r *replay.Result) { r.Columns = cols }
}

func withTag(tag string) func(*replay.Result) {
	return func(r *replay.Result) {
		r.Tag, r.Columns, r.Sample, r.Rows, r.OrderedHash, r.MultisetHash = tag, nil, nil, 0, "", ""
	}
}

func withSampleLimit(n int) func(*replay.Result) {
	return func(r *replay.Result) {
		if len(r.Sample) > n {
			r.Sample = r.Sample[:n]
		}
	}
}

func withDur(d time.Duration) func(*replay.Result) {
	return func(r *replay.Result) { r.Duration = d }
}

func withSession(s string) func(*replay.Result) {
	return func(r *replay.Result) { r.Session = s }
}

// results writes a results file with the real writer.
func results(t testing.TB, rs ...*replay.Result) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	w, err := replay.NewResultsWriter(&buf, replay.ResultsHeader{Mode: replay.ModeOrdered, SampleRows: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r == nil {
			continue
		}
		if err := w.WriteResult(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// run compares result lists (control nil: no control file).
func run(t testing.TB, cfg Config, base, cand, ctrl []*replay.Result) *Report {
	t.Helper()
	var c *bytes.Buffer
	if ctrl != nil {
		c = results(t, ctrl...)
	}
	var rep *Report
	var err error
	if c == nil {
		rep, err = Compare(context.Background(), results(t, base...), results(t, cand...), nil, cfg)
	} else {
		rep, err = Compare(context.Background(), results(t, base...), results(t, cand...), c, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func rows(vals ...string) [][]string {
	var out [][]string
	for i := 0; i+1 < len(vals); i += 2 {
		out = append(out, []string{vals[i], vals[i+1]})
	}
	return out
}
