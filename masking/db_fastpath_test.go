package masking

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// withoutFastPaths turns off, in every transform of p, the fast paths
// (the one-pass JSON rewrite, the scrub's cache of repeated values, the
// per-column caches of a copy), so that p masks as the reference code does.
func withoutFastPaths(p *Plan) (streams, caches int) {
	var off func(tr Transform)
	off = func(tr Transform) {
		switch t := unwrap(tr).(type) {
		case *jsonTransform:
			if t.stream {
				streams++
			}
			t.stream = false
			if t.scrub != nil {
				off(t.scrub)
			}
		case *scrubber:
			if t.cache != nil {
				caches++
			}
			t.cache = nil
		}
	}
	for _, tm := range p.maskers {
		if tm == nil {
			continue
		}
		tm.noColCache = true
		for _, cp := range tm.cols {
			if cp.t != nil {
				off(cp.t)
			}
		}
	}
	return streams, caches
}

// testFastPathsFixture masks every table of the fixture tenants (the
// unusual one too: odd JSON, long texts) with the fast paths and without,
// and requires byte-identical COPY output. Each table is masked twice with
// the fast plan, so the second pass reads the scrub's caches.
func testFastPathsFixture(t *testing.T, ctx context.Context, env *dbEnv) {
	for _, db := range []string{env.src, env.unusual} {
		t.Run(db, func(t *testing.T) {
			e := *env
			e.src = db
			fast, _ := fixturePlan(t, ctx, &e, testKey)
			slow, _ := fixturePlan(t, ctx, &e, testKey)
			if streams, caches := withoutFastPaths(slow); streams == 0 || caches == 0 {
				t.Fatalf("the fixture rules should use both fast paths (JSON streams %d, scrub caches %d)", streams, caches)
			}
			conn := env.conn(t, ctx, db)
			if _, err := conn.Exec(ctx, "SET datestyle = ISO; SET intervalstyle = postgres; SET extra_float_digits = 3; SET timezone = 'UTC'"); err != nil {
				t.Fatal(err)
			}
			tables := 0
			for _, tab := range slow.cat.Tables {
				if tab.Partitioned {
					continue
				}
				root := slow.cat.Root(tab).QualifiedName()
				tmFast, tmSlow := fast.Table(root), slow.Table(root)
				if tmSlow == nil {
					continue
				}
				cols := tmSlow.Columns()
				q := make([]string, len(cols))
				for i, c := range cols {
					q[i] = pgx.Identifier{c}.Sanitize()
				}
				var in bytes.Buffer
				if _, err := conn.PgConn().CopyTo(ctx, &in, fmt.Sprintf("COPY %s (%s) TO STDOUT", pgx.Identifier{tab.Schema, tab.Name}.Sanitize(), strings.Join(q, ", "))); err != nil {
					t.Fatal(err)
				}
				var want bytes.Buffer
				if _, err := FilterCopyText(ctx, &want, bytes.NewReader(in.Bytes()), tmSlow, cols); err != nil {
					t.Fatal(err)
				}
				for pass := range 2 {
					var got bytes.Buffer
					if _, err := FilterCopyText(ctx, &got, bytes.NewReader(in.Bytes()), tmFast, cols); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got.Bytes(), want.Bytes()) {
						gl, wl := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
						for i := range min(len(gl), len(wl)) {
							if gl[i] != wl[i] {
								t.Fatalf("%s pass %d line %d: fast paths differ from the reference\nfast %q\nref  %q", tab.QualifiedName(), pass+1, i+1, gl[i], wl[i])
							}
						}
						t.Fatalf("%s pass %d: fast paths differ from the reference (%d vs %d lines)", tab.QualifiedName(), pass+1, len(gl), len(wl))
					}
				}
				tables++
			}
			if tables < 5 {
				t.Errorf("only %d masked tables compared", tables)
			}
		})
	}
}
