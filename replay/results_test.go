package replay

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestResultsRoundTrip(t *testing.T) {
	want := []*Result{
		{Session: "1", Seq: 1, SQL: "SELECT 1", Status: StatusOK, Tag: "SELECT 1", Columns: []Column{{Name: "?column?", TypeOID: 23}},
			Rows: 1, OrderedHash: "aa", MultisetHash: "bb", Sample: [][]*string{{hashStr("1"), nil, hashStr("")}}, Duration: time.Millisecond},
		{Session: "2", Seq: 2, SQL: "UPDATE t SET x = '<&>'", Status: StatusError, SQLState: "42P01", Message: "relation \"t\" does not exist",
			LockWait: &LockWait{BlockedBy: []string{"1"}}, Captured: &CapturedError{SQLState: "42P01", Message: "x"}},
	}
	var buf bytes.Buffer
	w, err := NewResultsWriter(&buf, ResultsHeader{Mode: ModeOrdered, SampleRows: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range want {
		if err := w.WriteResult(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "'<&>'") {
		t.Error("HTML characters are escaped; results should stay readable")
	}
	rr, err := NewResultsReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if h := rr.Header(); h.Version != ResultsFormatVersion || h.Mode != ModeOrdered || h.SampleRows != 20 {
		t.Errorf("header = %+v", h)
	}
	var got []*Result
	for rr.Next() {
		got = append(got, rr.Result())
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestResultsReaderErrors(t *testing.T) {
	tests := []struct {
		name, input, wantErr string
		header               bool // header reads fine, error comes from Next
	}{
		{"empty file", "", "empty file", false},
		{"not a results file", `{"dbtwin_workload":1}` + "\n", "not a dbtwin results header", false},
		{"newer version", `{"dbtwin_results":99}` + "\n", "newer than", false},
		{"cut short", `{"dbtwin_results":1}` + "\n" + `{"session":"1","seq":1,"sql":"x","status":"ok","rows":0,"duration_ns":1}` + "\n" + `{"session":"1","se`, "line 3: incomplete last line", true},
		{"malformed line", `{"dbtwin_results":1}` + "\n" + "not json\n", "line 2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := NewResultsReader(strings.NewReader(tt.input))
			if !tt.header {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewResultsReader error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for rr.Next() {
			}
			if err := rr.Err(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// appendResult writes exactly what encoding/json writes.
func TestAppendResultMatchesEncodingJSON(t *testing.T) {
	tests := []*Result{
		{},
		{Session: "1", Seq: 1, SQL: "SELECT 1", Status: StatusOK, Rows: 0},
		{Session: "s\"1\\", Seq: -3, Database: "db", SQL: "SELECT '\n\t\r\b\f\x01\x1f<&>' -- é ☃ \u2028\u2029 \xff\xfe end",
			Fingerprint: "abc", Status: StatusError, SQLState: "22012", Message: "division by zero", Tag: "SELECT 1", Statements: 3,
			Columns: []Column{{Name: "a", TypeOID: 23}, {Name: "", TypeOID: 0}}, Rows: 12,
			OrderedHash: "00ff", MultisetHash: "ff00",
			Sample: [][]*string{{hashStr("x"), nil, hashStr("")}, nil, {}}, SampleTruncated: true,
			Duration: 123456789, LockWait: &LockWait{BlockedBy: []string{"a", "b"}}, Captured: &CapturedError{SQLState: "X", Message: "m"}},
		{Session: "2", LockWait: &LockWait{}, Captured: &CapturedError{Message: ""}, Columns: []Column{}, Sample: [][]*string{}},
	}
	for i, r := range tests {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		if got := appendResult(nil, r); string(got) != want.String() {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want.String())
		}
	}
}

func BenchmarkAppendResult(b *testing.B) {
	r := &Result{Session: "3", Seq: 123456, Database: "bench", SQL: "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
		Fingerprint: "a74faacd91ac7cd8", Status: StatusOK, Tag: "SELECT 1", Columns: []Column{{Name: "abalance", TypeOID: 23}},
		Rows: 1, OrderedHash: "d2a40318b57f83f3ba64361c449b642c", MultisetHash: "511a61f90a5cff818aa9ce53780056ab",
		Sample: [][]*string{{hashStr("-4211")}}, Duration: 81234}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendResult(buf[:0], r)
	}
}
