package clone_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
)

// lineMasker is a stand-in for package masking: it rewrites the second
// column of every text COPY row of the given tables, or fails on a given
// row.
type lineMasker struct {
	tables  []string
	failAt  int64
	asked   []string
	columns map[string][]string
}

func (m *lineMasker) MaskTable(table string, columns []string) (text, binary func(context.Context, io.Writer, io.Reader) (int64, error), targetColumns []string) {
	m.asked = append(m.asked, table)
	if m.columns == nil {
		m.columns = map[string][]string{}
	}
	m.columns[table] = columns
	if !slices.Contains(m.tables, table) {
		return nil, nil, nil
	}
	return func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
		sc := bufio.NewScanner(src)
		var n int64
		for sc.Scan() {
			n++
			if n == m.failAt {
				return n, errors.New("transform refused a value")
			}
			f := strings.Split(sc.Text(), "\t")
			f[1] = "masked-" + f[0] + "@example.com"
			if _, err := fmt.Fprintln(dst, strings.Join(f, "\t")); err != nil {
				return n, err
			}
		}
		return n, sc.Err()
	}, nil, columns
}

// ChangedColumns: the second column, which MaskTable rewrites.
func (m *lineMasker) ChangedColumns(table string) []string {
	if !slices.Contains(m.tables, table) {
		return nil
	}
	return m.columns[table][1:2]
}

func TestCloneWithMasker(t *testing.T) {
	ctx := context.Background()
	c := localtest.Start(t)
	if err := c.CreateDatabase(ctx, "src"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.DSN("src"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL UNIQUE, note text,
			domain text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED);
		INSERT INTO people (id, email, note) SELECT g, 'person' || g || '@real.example', 'tab	and \ backslash' FROM generate_series(1, 5000) g;
		CREATE INDEX people_email_lower ON people (lower(email));
		CREATE TABLE contacts AS SELECT id, email FROM people;
		CREATE TABLE untouched AS SELECT g AS id, 'keep' || g AS v FROM generate_series(1, 100) g;
		ANALYZE;
		-- The source's statistics of contacts no longer describe its rows:
		-- statistics copied and statistics gathered on the clone differ.
		INSERT INTO contacts SELECT g, 'late' || g || '@real.example' FROM generate_series(5001, 6000) g`); err != nil {
		t.Fatal(err)
	}

	m := &lineMasker{tables: []string{"public.people", "public.contacts"}}
	res, err := clone.Clone(ctx, c.DSN("src"), c.DSN("dst"), clone.Options{Jobs: 2, Masker: m})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.columns["public.people"], ","); got != "id,email,note" {
		t.Errorf("masker got columns %q; want the COPY columns without the generated one", got)
	}
	for _, tr := range res.Tables {
		// The stand-in masker has no binary filter: text.
		if tr.Name == "public.people" && (tr.Format != "text" || !tr.Masked) {
			t.Errorf("masked table copied in %s format, masked %v; want text, masked", tr.Format, tr.Masked)
		}
		if tr.Name == "public.untouched" && (tr.Format != "binary" || tr.Masked) {
			t.Errorf("unmasked table copied in %s format, masked %v; want binary, not masked", tr.Format, tr.Masked)
		}
	}
	dst, err := pgx.Connect(ctx, c.DSN("dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)
	var rows, leaked int64
	var domain, note string
	if err := dst.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE email LIKE '%real.example'),
		min(domain), min(note) FROM people`).Scan(&rows, &leaked, &domain, &note); err != nil {
		t.Fatal(err)
	}
	if rows != 5000 || leaked != 0 {
		t.Errorf("clone has %d rows, %d with the original email; want 5000 and 0", rows, leaked)
	}
	if domain != "example.com" {
		t.Errorf("generated column = %q, want it recomputed from the masked email", domain)
	}
	if note != "tab\tand \\ backslash" {
		t.Errorf("unmasked column of a masked table changed: %q", note)
	}

	// Statistics of a masked table are gathered from the masked rows (the
	// source's hold its values: e-mail addresses in the most common values
	// and histograms of email, domain and the expression index), those of
	// the others copied from the source.
	var masked, unmasked, leakedStats int
	if err := dst.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE tablename IN ('people', 'people_email_lower', 'contacts')),
		count(*) FILTER (WHERE tablename = 'untouched'),
		count(*) FILTER (WHERE concat(most_common_vals, histogram_bounds) LIKE '%real.example%')
		FROM pg_stats WHERE schemaname = 'public'`).Scan(&masked, &unmasked, &leakedStats); err != nil {
		t.Fatal(err)
	}
	if masked != 7 || unmasked != 2 || leakedStats != 0 {
		t.Errorf("statistics on the clone: %d rows for the masked tables and index (want 7), %d for the other (want 2), %d with source values (want 0)",
			masked, unmasked, leakedStats)
	}
	// contacts: the e-mail column's gathered, the id column's copied (the
	// source's, which end at 5000).
	var idStats, wantIDStats string
	idSQL := `SELECT concat_ws(' | ', null_frac, n_distinct, histogram_bounds) FROM pg_stats WHERE tablename = 'contacts' AND attname = 'id'`
	if err := conn.QueryRow(ctx, idSQL).Scan(&wantIDStats); err != nil {
		t.Fatal(err)
	}
	if err := dst.QueryRow(ctx, idSQL).Scan(&idStats); err != nil {
		t.Fatal(err)
	}
	if idStats != wantIDStats || !strings.HasSuffix(idStats, ",5000}") {
		t.Errorf("statistics of contacts.id, an unmasked column of a masked table, on the clone:\n%s\nwant the source's:\n%s", idStats, wantIDStats)
	}
	var analyzed string
	if err := dst.QueryRow(ctx, `SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL`).Scan(&analyzed); err != nil {
		t.Fatal(err)
	}
	if analyzed != "contacts,people" {
		t.Errorf("tables analyzed on the clone: %s; want contacts,people (untouched's statistics copied)", analyzed)
	}

	// A failing filter fails the clone with the table named, and leaves
	// nothing behind.
	_, err = clone.Clone(ctx, c.DSN("src"), c.DSN("dst2"), clone.Options{Jobs: 1, Masker: &lineMasker{tables: []string{"public.people"}, failAt: 10}})
	if err == nil || !strings.Contains(err.Error(), `"public.people"`) || !strings.Contains(err.Error(), "transform refused") {
		t.Fatalf("clone with a failing masker: err = %v", err)
	}
	var left int
	if err := dst.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE 'dst2%'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("a failed masked clone left %d database(s) behind", left)
	}
}
