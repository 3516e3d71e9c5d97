package reports

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/compare"
)

// shard returns a single-tenant report of the fixture's tenant i, as a
// shard of a matrix run would write it, read back from its JSON.
func shard(t *testing.T, i int, version string) *compare.Report {
	t.Helper()
	f := fixture()
	r := &compare.Report{Version: compare.SchemaVersion, Meta: compare.Meta{DbtwinVersion: version}, Tenants: []compare.TenantReport{f.Tenants[i]}}
	r.Recompute()
	var buf bytes.Buffer
	if err := (JSON{}).Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestMerge(t *testing.T) {
	want, err := Sanitize(fixture())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		shards    func(t *testing.T) []*compare.Report
		wantErr   string
		wantNotes []string
	}{
		{name: "two shards, any order", shards: func(t *testing.T) []*compare.Report {
			return []*compare.Report{shard(t, 1, "v0.3.0-test"), shard(t, 0, "v0.3.0-test")}
		}},
		{name: "different versions are noted", shards: func(t *testing.T) []*compare.Report {
			return []*compare.Report{shard(t, 0, "v0.3.0-test"), shard(t, 1, "v0.2.9")}
		}, wantNotes: []string{"shards were made by different dbtwin versions: v0.2.9, v0.3.0-test"}},
		{name: "a tenant twice", shards: func(t *testing.T) []*compare.Report {
			return []*compare.Report{shard(t, 0, ""), shard(t, 1, ""), shard(t, 0, "")}
		}, wantErr: `tenant "acme" is in report 1 and report 3`},
		{name: "newer schema", shards: func(t *testing.T) []*compare.Report {
			s := shard(t, 0, "")
			s.Version = compare.SchemaVersion + 1
			return []*compare.Report{s}
		}, wantErr: "upgrade dbtwin"},
		{name: "nothing", shards: func(*testing.T) []*compare.Report { return nil }, wantErr: "no reports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.shards(t)
			before := mustJSON(t, &compare.Report{Version: 1, Tenants: flatten(in)})
			got, err := Merge(in...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Verdict, want.Verdict) || !reflect.DeepEqual(got.Summary, want.Summary) {
				t.Errorf("merged verdict %+v summary %+v\nwant %+v %+v", got.Verdict, got.Summary, want.Verdict, want.Summary)
			}
			if !reflect.DeepEqual(got.Tenants, want.Tenants) {
				t.Error("merged tenants differ from the fixture's")
			}
			if !reflect.DeepEqual(got.Meta.Notes, tt.wantNotes) {
				t.Errorf("notes = %q, want %q", got.Meta.Notes, tt.wantNotes)
			}
			if !bytes.Equal(before, mustJSON(t, &compare.Report{Version: 1, Tenants: flatten(in)})) {
				t.Error("Merge modified its inputs")
			}
		})
	}
}

func TestMergePassingShards(t *testing.T) {
	pass := shard(t, 1, "v") // globex: no regressions
	got, err := Merge(pass)
	if err != nil {
		t.Fatal(err)
	}
	if got.Verdict.Regressions || got.Verdict.ExitCode != 0 {
		t.Errorf("verdict = %+v, want no regressions", got.Verdict)
	}
	got, err = Merge(pass, shard(t, 0, "v"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Verdict.Regressions || got.Verdict.ExitCode != 1 || !strings.HasPrefix(got.Verdict.Reasons[0], "acme: ") {
		t.Errorf("verdict = %+v, want acme's regressions", got.Verdict)
	}
}

func TestReadJSONErrors(t *testing.T) {
	for _, in := range []string{"", "{", `{"tenants": []}`, `{"dbtwin_report": 99}`} {
		if _, err := ReadJSON(strings.NewReader(in)); err == nil || !strings.HasPrefix(err.Error(), "read report: ") {
			t.Errorf("ReadJSON(%q): err = %v", in, err)
		}
	}
}

func flatten(rs []*compare.Report) []compare.TenantReport {
	var out []compare.TenantReport
	for _, r := range rs {
		out = append(out, r.Tenants...)
	}
	return out
}
