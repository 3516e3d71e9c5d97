package replay

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// fuzzOptions keep fuzzed inputs' memory small and make the pending-event
// bound bite.
var fuzzOptions = ReaderOptions{MaxRecordBytes: 4096, MaxPending: 8, MaxWarnings: 5}

// addGoldenSeeds adds the real logs under testdata/logs with extension ext
// to the corpus, through add.
func addGoldenSeeds(f *testing.F, ext string, add func(b []byte)) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "logs", "*"+ext))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
		// Its first lines alone, so that mutations reach deep states fast.
		if i := bytes.IndexByte(b[min(len(b), 1500):], '\n'); i >= 0 {
			add(b[:min(len(b), 1500)+i+1])
		}
	}
}

// drain reads r to the end and checks what every Reader promises: events
// have a session and increasing Seq, statements have SQL, nothing outgrows
// the configured bounds, and Stats agree with what was read.
func drain(t *testing.T, r Reader, opts ReaderOptions) {
	t.Helper()
	var last, n int64
	for r.Next() {
		ev := r.Event()
		n++
		if ev.Session == "" {
			t.Fatalf("event %d has no session: %+v", ev.Seq, ev)
		}
		if ev.Seq <= last {
			t.Fatalf("seq %d after %d", ev.Seq, last)
		}
		last = ev.Seq
		switch ev.Kind {
		case KindConnect, KindDisconnect:
		case KindStatement:
			if ev.SQL == "" && ev.Error == nil {
				t.Fatalf("statement %d without SQL", ev.Seq)
			}
			if len(ev.SQL) > opts.MaxRecordBytes {
				t.Fatalf("statement %d is %d bytes, over the %d bound", ev.Seq, len(ev.SQL), opts.MaxRecordBytes)
			}
		default:
			t.Fatalf("event %d has kind %q", ev.Seq, ev.Kind)
		}
		if lr, ok := r.(*logReader); ok {
			if pending := len(lr.queue) - lr.qhead; pending > opts.MaxPending+1 {
				t.Fatalf("%d events pending, over the %d bound", pending, opts.MaxPending)
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Err on in-memory input: %v", err)
	}
	st := r.Stats()
	if st.Events != n {
		t.Fatalf("Stats.Events %d, read %d", st.Events, n)
	}
	if len(st.Warnings) > opts.MaxWarnings || int64(len(st.Warnings)) > st.WarningCount {
		t.Fatalf("%d warnings kept of %d, bound %d", len(st.Warnings), st.WarningCount, opts.MaxWarnings)
	}
}

// fuzzRead runs a reader of format over data with fuzzOptions and checks it.
func fuzzRead(t *testing.T, format Format, prefix string, data []byte) {
	opts := fuzzOptions
	opts.Format, opts.Prefix = format, prefix
	r, err := NewReader(context.Background(), "fuzz", bytes.NewReader(data), opts)
	if err != nil {
		return // undetectable prefix, bad JSONL header: an error, not a crash
	}
	drain(t, r, opts.withDefaults())
}
