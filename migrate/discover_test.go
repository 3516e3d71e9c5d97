package migrate

import (
	"strings"
	"testing"
)

// migSummary is what the discovery tests compare: order, versions,
// transaction semantics and the up/down split.
type migSummary struct {
	version string
	name    string
	noTx    bool
	up      int // statements
	down    int
	line    int // line of the first up statement
}

func summarize(set *Set) []migSummary {
	var out []migSummary
	for _, m := range set.Migrations {
		s := migSummary{version: m.Version, name: m.Name, noTx: m.NoTransaction, up: len(m.Up), down: len(m.Down)}
		if len(m.Up) > 0 {
			s.line = m.Up[0].Line
		}
		out = append(out, s)
	}
	return out
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		dir    string
		format Format
		want   Format
		migs   []migSummary
	}{
		{"testdata/goose/ok", FormatAuto, FormatGoose, []migSummary{
			// CREATE TABLE, the StatementBegin/End function, the INSERT
			// (whose ';' inside a string does not split it).
			{version: "1", name: "create_widgets", up: 3, down: 2, line: 3},
			{version: "2", name: "widgets_name_idx", noTx: true, up: 1, down: 1, line: 3},
			// Two statements on one line; lower-case annotation.
			{version: "10", name: "widgets_color", up: 2, line: 2},
		}},
		{"testdata/golang-migrate/ok", FormatAuto, FormatGolangMigrate, []migSummary{
			// Several statements: one implicit transaction.
			{version: "1", name: "init", up: 2, down: 2, line: 1},
			// One statement: runs outside any transaction.
			{version: "2", name: "parts_idx", noTx: true, up: 1, line: 3},
			{version: "10", name: "gadgets_name", noTx: true, up: 1, line: 1},
		}},
		{"testdata/flyway/ok", FormatAuto, FormatFlyway, []migSummary{
			{version: "1", name: "create things", up: 1, line: 1},
			{version: "1.1", name: "things label idx", noTx: true, up: 1, line: 2},
			{version: "2", name: "backfill", noTx: true, up: 1, line: 1},
			{version: "10", name: "later", up: 1, line: 1},
			// Repeatables last, by description.
			{version: "", name: "a function", up: 1, line: 1},
			{version: "", name: "things view", up: 1, line: 1},
		}},
		{"testdata/dbmate/ok", FormatAuto, FormatDbmate, []migSummary{
			{version: "20240101000000", name: "create_gizmos", up: 2, down: 1, line: 2},
			{version: "20240102000000", name: "gizmos_kind_idx", noTx: true, up: 1, down: 1, line: 2},
		}},
		{"testdata/atlas/ok", FormatAuto, FormatAtlas, []migSummary{
			{version: "20240101000000", name: "create_doohickeys", up: 1, line: 1},
			{version: "20240102000000", name: "size_idx", noTx: true, up: 1, line: 2},
		}},
		{"testdata/plain/ok", FormatAuto, FormatPlain, []migSummary{
			{version: "1", name: "first", up: 1, line: 1},
			{version: "2", name: "second", up: 1, line: 1},
			// -- dbtwin:no-transaction
			{version: "3", name: "concurrently", noTx: true, up: 1, line: 2},
			{version: "10", name: "tenth", up: 1, line: 1},
			{version: "zz_last", up: 1, line: 2},
		}},
		// An explicit format overrides detection: goose files read as plain
		// SQL (annotations are comments).
		{"testdata/goose/ok", FormatPlain, FormatPlain, []migSummary{
			{version: "00001", name: "create_widgets", up: 5, line: 3},
			{version: "00002", name: "widgets_name_idx", up: 2, line: 3},
			{version: "00010", name: "widgets_color", up: 2, line: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.dir, "testdata/")+"/"+string(tt.format), func(t *testing.T) {
			set, err := Discover(tt.dir, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if set.Format != tt.want {
				t.Errorf("format = %q, want %q", set.Format, tt.want)
			}
			got := summarize(set)
			if len(got) != len(tt.migs) {
				t.Fatalf("got %d migrations %+v, want %d", len(got), got, len(tt.migs))
			}
			for i := range got {
				if got[i] != tt.migs[i] {
					t.Errorf("migration %d = %+v, want %+v", i, got[i], tt.migs[i])
				}
			}
			for _, m := range set.Migrations {
				if !strings.HasPrefix(m.File, tt.dir+"/") {
					t.Errorf("File = %q, want it under %s", m.File, tt.dir)
				}
			}
		})
	}
}

func TestDiscoverStatements(t *testing.T) {
	set, err := Discover("testdata/goose/ok", FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	up := set.Migrations[0].Up
	if !strings.HasPrefix(up[1].SQL, "CREATE FUNCTION widgets_touch()") || !strings.Contains(up[1].SQL, "END\n$$;") || up[1].Line != 9 {
		t.Errorf("StatementBegin block = %d: %q", up[1].Line, up[1].SQL)
	}
	if up[2].SQL != "INSERT INTO widgets (name) VALUES ('a;b'), ('c')" || up[2].Line != 16 {
		t.Errorf("insert = %d: %q", up[2].Line, up[2].SQL)
	}
	if d := set.Migrations[0].Down; d[0].SQL != "DROP FUNCTION widgets_touch()" || d[0].Line != 19 {
		t.Errorf("down = %+v", d)
	}
}

func TestDiscoverErrors(t *testing.T) {
	tests := []struct {
		dir    string
		format Format
		want   []string // substrings of the error
	}{
		{"testdata/goose/no_up", FormatGoose, []string{"testdata/goose/no_up/00001_forgot.sql", "no -- +goose Up annotation"}},
		{"testdata/goose/dup", FormatAuto, []string{"duplicate version 1", "testdata/goose/dup/00001_a.sql", "testdata/goose/dup/001_b.sql"}},
		{"testdata/goose/unterminated", FormatAuto, []string{"00001_fn.sql", "line 2", "StatementBegin without StatementEnd"}},
		{"testdata/goose/sql_before_up", FormatAuto, []string{"00001_x.sql", "line 1", "SQL before the -- +goose Up"}},
		{"testdata/golang-migrate/dup", FormatAuto, []string{"duplicate version 1", "01_b.up.sql", "1_a.up.sql"}},
		{"testdata/flyway/dup", FormatAuto, []string{"duplicate version", "V1__a.sql", "V1_0__b.sql"}},
		{"testdata/dbmate/no_up", FormatDbmate, []string{"20240101000000_x.sql", "no -- migrate:up block"}},
		{"testdata/atlas/bad_sum", FormatAuto, []string{"atlas.sum", "checksum mismatch", "20240102000000_size_idx.sql"}},
		{"testdata/auto/ambiguous", FormatAuto, []string{"goose (testdata/auto/ambiguous/00001_goose.sql)", "flyway (testdata/auto/ambiguous/V2__flyway.sql)", "name the format"}},
		{"testdata/nonexistent", FormatAuto, []string{"testdata/nonexistent"}},
		{"testdata/lint", FormatAuto, []string{"no .sql migration files"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.dir, "testdata/"), func(t *testing.T) {
			_, err := Discover(tt.dir, tt.format)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestFlywayChecksum(t *testing.T) {
	// Line terminators do not count, whatever they are.
	a := flywayChecksum("SELECT 1;\nSELECT 2;\n")
	if b := flywayChecksum("SELECT 1;\r\nSELECT 2;"); a != b {
		t.Errorf("checksum differs across line endings: %d vs %d", a, b)
	}
	// CRC32 (IEEE) of "SELECT 1;SELECT 2;" as a signed int, as Flyway
	// stores it in flyway_schema_history.checksum.
	if a != -1665099012 {
		t.Errorf("checksum = %d, want -1665099012", a)
	}
}
