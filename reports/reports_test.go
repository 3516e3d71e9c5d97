package reports

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/compare"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name; -update rewrites it, a
// mismatch writes testdata/name.got next to it.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./reports -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		if err := os.WriteFile(path+".got", got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s differs from the golden file; see %s.got (go test ./reports -update accepts it)", path, path)
		return
	}
	os.Remove(path + ".got")
}

func TestGolden(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			r, err := New(name)
			if err != nil {
				t.Fatal(err)
			}
			rep := fixture()
			before := mustJSON(t, rep)
			var buf bytes.Buffer
			if err := r.Render(&buf, rep); err != nil {
				t.Fatal(err)
			}
			golden(t, Filename(r), buf.Bytes())
			if !bytes.Equal(before, mustJSON(t, rep)) {
				t.Error("Render modified the report")
			}
			var again bytes.Buffer
			if err := r.Render(&again, fixture()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Error("output is not deterministic")
			}
		})
	}
}

func TestFixtureCoversEveryClass(t *testing.T) {
	rep := fixture()
	seen := map[compare.Class]bool{}
	for _, tr := range rep.Tenants {
		for _, f := range tr.Findings {
			seen[f.Class] = true
			for _, c := range f.Classes {
				seen[c.Class] = true
			}
		}
	}
	for _, c := range compare.Classes() {
		if !seen[c] {
			t.Errorf("the fixture has no %s finding", c)
		}
	}
	if !rep.Verdict.Regressions || rep.Verdict.ExitCode != 1 || rep.Tenants[1].Verdict.Regressions {
		t.Errorf("verdicts: overall %+v, globex %+v", rep.Verdict, rep.Tenants[1].Verdict)
	}
}

func TestJUnitStructure(t *testing.T) {
	var buf bytes.Buffer
	if err := (JUnit{}).Render(&buf, fixture()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Time     string `xml:"time,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Time      string `xml:"time,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("junit is not XML: %v", err)
	}
	tests, failures, skipped := 0, 0, 0
	for _, s := range doc.Suites {
		f, sk := 0, 0
		for _, c := range s.Cases {
			if c.Name == "" || c.Classname == "" || c.Time == "" {
				t.Errorf("suite %s: test case without name, classname or time: %+v", s.Name, c)
			}
			if c.Failure != nil {
				f++
				if c.Failure.Message == "" || c.Failure.Type == "" || c.Failure.Text == "" {
					t.Errorf("failure without message, type or text: %+v", c.Failure)
				}
			}
			if c.Skipped != nil {
				sk++
			}
		}
		if s.Tests != len(s.Cases) || s.Failures != f || s.Skipped != sk || s.Time == "" {
			t.Errorf("suite %s counts: tests %d/%d failures %d/%d skipped %d/%d", s.Name, s.Tests, len(s.Cases), s.Failures, f, s.Skipped, sk)
		}
		tests, failures, skipped = tests+s.Tests, failures+s.Failures, skipped+s.Skipped
	}
	if doc.Tests != tests || doc.Failures != failures || doc.Skipped != skipped || len(doc.Suites) != 2 {
		t.Errorf("totals: %d/%d tests, %d/%d failures, %d/%d skipped, %d suites", doc.Tests, tests, doc.Failures, failures, doc.Skipped, skipped, len(doc.Suites))
	}
	// One test case per fingerprint per tenant, named after it.
	want := len(fixture().Tenants[0].Findings)
	got := 0
	for _, c := range doc.Suites[0].Cases {
		if strings.HasSuffix(c.Classname, ".statements") {
			got++
		}
	}
	if doc.Suites[0].Name != "dbtwin.acme" || got != want {
		t.Errorf("suite %s: %d statement test cases, want %d", doc.Suites[0].Name, got, want)
	}
}

func TestMarkdownTruncation(t *testing.T) {
	for _, limit := range []int{3000, 6000, 9000} {
		var buf bytes.Buffer
		if err := (Markdown{MaxBytes: limit}).Render(&buf, fixture()); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if len(out) > limit {
			t.Errorf("limit %d: %d bytes", limit, len(out))
		}
		if !strings.HasPrefix(out, "## ❌ dbtwin: ") || !strings.Contains(out, "Report truncated") {
			t.Errorf("limit %d: no headline or no truncation note:\n%s", limit, out)
		}
		if strings.Count(out, "<details>") != strings.Count(out, "</details>") {
			t.Errorf("limit %d: a <details> is cut in half", limit)
		}
	}
	var full bytes.Buffer
	if err := (Markdown{}).Render(&full, fixture()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(full.String(), "Report truncated") {
		t.Error("the default limit truncated a small report")
	}
}

func TestNewRenderer(t *testing.T) {
	for _, n := range append(Names(), "md", "TEXT") {
		if r, err := New(n); err != nil || r == nil {
			t.Errorf("New(%q) = %v, %v", n, r, err)
		}
	}
	if _, err := New("pdf"); err == nil || !strings.Contains(err.Error(), "html, json, junit, markdown, terminal") {
		t.Errorf("New(pdf): err = %v", err)
	}
}

func mustJSON(t *testing.T, r *compare.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := (JSON{}).Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
