package replay

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func FuzzJSONL(f *testing.F) {
	addGoldenSeeds(f, ".golden.jsonl", func(b []byte) { f.Add(b, false) })
	f.Add([]byte(`{"dbtwin_workload":1}`+"\n"+`{"seq":1,"session":"a","kind":"statement","sql":"x","params":[{"value":null}]}`+"\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, filtered bool) {
		opts := fuzzOptions
		if filtered {
			opts.Filter = Filter{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Databases: []string{"work"}}
		}
		r, err := NewReader(context.Background(), "fuzz", bytes.NewReader(data), opts)
		if err != nil {
			return
		}
		drain(t, r, opts.withDefaults())
	})
}
