package replay

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestWorkloadWriterFormat(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWorkloadWriter(&buf, WorkloadHeader{Version: 99, Source: "proxy"})
	if err != nil {
		t.Fatal(err)
	}
	v := "a<b>&'c'"
	evs := []Event{
		{Seq: 1, Session: "s1", Time: time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC), Kind: KindConnect, Database: "d", User: "u"},
		{Seq: 2, Session: "s1", Kind: KindStatement, SQL: "SELECT $1, $2", Params: []Param{{Value: &v, TypeOID: 25}, {}}, Prepared: "p", Duration: time.Millisecond,
			Error: &CapturedError{SQLState: "22012", Message: "division by zero"}},
	}
	for _, ev := range evs {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := `{"dbtwin_workload":1,"source":"proxy"}
{"seq":1,"session":"s1","time":"2024-01-02T03:04:05.0000006Z","kind":"connect","database":"d","user":"u"}
{"seq":2,"session":"s1","time":"0001-01-01T00:00:00Z","kind":"statement","sql":"SELECT $1, $2","params":[{"value":"a<b>&'c'","type":25},{"value":null}],"prepared":"p","duration_ns":1000000,"error":{"sqlstate":"22012","message":"division by zero"}}
`
	if buf.String() != want {
		t.Errorf("written:\n%s\nwant:\n%s", buf.String(), want)
	}
	evs2, st := readAll(t, buf.String(), ReaderOptions{})
	if st.Format != FormatJSONL || len(evs2) != 2 || *evs2[1].Params[0].Value != v || evs2[1].Params[1].Value != nil || evs2[1].Params[0].TypeOID != 25 {
		t.Errorf("read back %+v (%+v)", evs2, st)
	}
}

func TestJSONLReader(t *testing.T) {
	header := `{"dbtwin_workload":1,"source":"x"}` + "\n"
	tests := []struct {
		name  string
		input string
		opts  ReaderOptions
		err   string // NewReader error
		want  string
		warns []string
	}{
		{name: "newer version", input: `{"dbtwin_workload":2}` + "\n", err: "version 2 is newer than this dbtwin reads (1): upgrade dbtwin"},
		{name: "version zero", input: `{"dbtwin_workload":0}` + "\n", err: "version 0 is not valid"},
		{name: "no header", input: `{"seq":1,"session":"a","kind":"connect"}` + "\n", opts: ReaderOptions{Format: FormatJSONL}, err: `no "dbtwin_workload" key`},
		{name: "empty", input: "", opts: ReaderOptions{Format: FormatJSONL}, err: "empty input"},
		{name: "header not json", input: "nope\n", opts: ReaderOptions{Format: FormatJSONL}, err: "header is not a JSON object"},
		{
			name: "bad lines are warnings",
			input: header + `{"seq":1,"session":"a","kind":"connect"}
{"seq":2,"session":"a","kind":"statement","sql":"SELECT 1","future_field":true}
not json
{"seq":2,"session":"a","kind":"statement","sql":"SELECT 2"}
{"seq":3,"session":"","kind":"statement","sql":"SELECT 3"}
{"seq":4,"session":"a","kind":"explode"}
{"seq":5,"session":"a","kind":"statement"}

{"seq":9,"session":"a","kind":"disconnect"}
`,
			want:  "1 a connect\n2 a statement \"SELECT 1\"\n9 a disconnect\n",
			warns: []string{"4: malformed event", "5: event seq 2 does not follow 2", "6: event has no session", "7: event has unknown kind", "8: statement event has no sql"},
		},
		{
			name: "a filter renumbers and makes up connects",
			input: header + `{"seq":1,"session":"a","kind":"connect","database":"x"}
{"seq":2,"session":"b","kind":"connect","database":"y","time":"2024-01-02T03:04:05Z"}
{"seq":3,"session":"b","kind":"statement","sql":"SELECT 1","database":"y","time":"2024-01-02T03:04:07Z"}
{"seq":4,"session":"a","kind":"statement","sql":"SELECT 2","database":"x"}
`,
			opts: ReaderOptions{Filter: Filter{Databases: []string{"y"}, From: time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)}},
			want: "1 b connect\n2 b statement \"SELECT 1\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(context.Background(), "w.jsonl", strings.NewReader(tt.input), tt.opts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "read w.jsonl") {
					t.Fatalf("NewReader error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var evs []Event
			for r.Next() {
				evs = append(evs, r.Event())
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			if got := brief(evs); got != tt.want {
				t.Errorf("events:\n%s\nwant:\n%s", got, tt.want)
			}
			st := r.Stats()
			if int(st.WarningCount) != len(tt.warns) {
				t.Fatalf("warnings %v, want %v", st.Warnings, tt.warns)
			}
			for i, w := range tt.warns {
				if got := st.Warnings[i].String(); !strings.HasPrefix(got, "w.jsonl:"+w) {
					t.Errorf("warning %q, want w.jsonl:%s…", got, w)
				}
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatAuto, "auto": FormatAuto, "STDERR": FormatStderr, "csvlog": FormatCSVLog, "jsonlog": FormatJSONLog, " jsonl ": FormatJSONL} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("syslog"); err == nil {
		t.Error("ParseFormat(syslog) succeeded")
	}
}
