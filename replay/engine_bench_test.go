package replay

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// BenchmarkReplay measures ordered and concurrent replay throughput
// (statements/s, every result hashed and written as JSON) on a select-only
// workload like pgbench -S: four sessions, interleaved, each statement a
// primary-key lookup.
func BenchmarkReplay(b *testing.B) {
	c := engStartSandbox(b, `CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
		INSERT INTO accounts SELECT g, 1, 0, '' FROM generate_series(1, 100000) g;
		ANALYZE accounts;`)
	const sessions, perSession = 4, 5000
	w := newEngWorkload()
	for i := range sessions {
		w.connect(strconv.Itoa(i))
	}
	for i := range sessions * perSession {
		aid := (i*7919)%100000 + 1
		w.sql(strconv.Itoa(i%sessions), "SELECT abalance FROM accounts WHERE aid = "+strconv.Itoa(aid)+";")
	}
	for _, bc := range []struct {
		name string
		opts EngineOptions
	}{
		{"ordered", EngineOptions{Mode: ModeOrdered}},
		{"concurrent", EngineOptions{Mode: ModeConcurrent}},
		{"ordered-no-fingerprint", EngineOptions{Mode: ModeOrdered, Fingerprint: func(string) string { return "" }}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n int64
			for b.Loop() {
				rw, err := NewResultsWriter(io.Discard, ResultsHeader{})
				if err != nil {
					b.Fatal(err)
				}
				st, err := Replay(context.Background(), NewSliceSource(w.evs), c.DSN("app"), bc.opts, rw)
				if err != nil {
					b.Fatal(err)
				}
				if st.OK != sessions*perSession {
					b.Fatal(fmt.Sprintf("stats %+v", st))
				}
				n += st.Statements
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "stmts/s")
		})
	}
}
