package replay

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// goldenInputs lists the real server logs under testdata/logs (see its
// README): every file that is not a golden output or a side file.
func goldenInputs(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("testdata", "logs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, p := range all {
		switch ext := filepath.Ext(p); ext {
		case ".log", ".csv", ".json":
			in = append(in, p)
		}
	}
	if len(in) == 0 {
		t.Fatal("no logs under testdata/logs")
	}
	return in
}

// goldenOptions returns the reader options for a golden input: its
// log_line_prefix comes from a NAME.prefix file when the reader could not
// detect it.
func goldenOptions(t testing.TB, path string) ReaderOptions {
	t.Helper()
	var opts ReaderOptions
	if b, err := os.ReadFile(path + ".prefix"); err == nil {
		opts.Prefix = strings.TrimSuffix(string(b), "\n")
	}
	return opts
}

// checkGolden compares got with the golden file, or rewrites it with
// -update; on a mismatch it writes got next to it as NAME.got.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./replay -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		_ = os.WriteFile(golden+".got", got, 0o644)
		t.Errorf("%s differs from what the reader gives (written to %s.got; go test ./replay -update accepts it)", golden, golden)
	}
}

// TestConvertGolden converts each real log under testdata/logs to JSONL and
// compares the output and its summary with the committed golden files.
func TestConvertGolden(t *testing.T) {
	for _, in := range goldenInputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			ctx := context.Background()
			r, err := Open(ctx, in, goldenOptions(t, in))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var out bytes.Buffer
			sum, err := Convert(ctx, r, &out)
			if err != nil {
				t.Fatal(err)
			}
			if sum.WarningCount != 0 {
				t.Errorf("warnings in a real log: %v", sum.Warnings)
			}
			base := strings.TrimSuffix(in, filepath.Ext(in))
			checkGolden(t, base+".golden.jsonl", out.Bytes())
			checkGolden(t, base+".golden.summary", []byte(sum.String()))

			// The JSONL reads back to the same events.
			back, err := NewReader(ctx, "golden.jsonl", bytes.NewReader(out.Bytes()), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			sum2, err := Convert(ctx, back, &again)
			if err != nil {
				t.Fatal(err)
			}
			if st := back.Stats(); st.Format != FormatJSONL || st.WarningCount != 0 {
				t.Errorf("reading the JSONL back: format %s, warnings %v", st.Format, st.Warnings)
			}
			if a, b := eventLines(out.Bytes()), eventLines(again.Bytes()); a != b {
				t.Errorf("JSONL round trip changed the events:\n%s\nvs\n%s", a, b)
			}
			if sum2.Statements != sum.Statements || sum2.Sessions != sum.Sessions || sum2.Fingerprints != sum.Fingerprints {
				t.Errorf("round trip summary %+v, want the counts of %+v", sum2, sum)
			}
		})
	}
}

// eventLines drops the header line of a JSONL workload.
func eventLines(b []byte) string {
	_, rest, _ := bytes.Cut(b, []byte("\n"))
	return string(rest)
}
