// Command benchmask measures what masking costs, in one run on one machine,
// on one normal fixture tenant (--scale 3 ≈ 260 MB):
//
//  1. clone.Clone (in process) of the tenant three ways, alternately, --runs
//     times each: unmasked (binary COPY), "text" (the tables the rules mask
//     streamed as text COPY but unchanged: the cost of text COPY alone) and
//     masked with masking/testdata/fixture_masking.yaml (binary COPY where
//     the masker has binary codecs for every column it converts). It prints each wall
//     time and the CPU time of dbtwin (with pg_dump and pg_restore) and of
//     the PostgreSQL server, the best wall time of each kind, the
//     masked/unmasked ratio against the target (≤ 1.25×) and the CPU ratio,
//     which a busy machine disturbs less than wall time; after each masked
//     clone, the leak audit `dbtwin clone --mask` runs on it, timed apart;
//  2. per table, the masked clone's time against the unmasked one's, and
//     the row filter alone (masking.FilterCopyBinary or FilterCopyText, in
//     the format the clone uses) on each masked table's rows (read into
//     memory first), on one core: where the masking's time goes;
//  3. every transform on one core (testing.Benchmark, in process): values/s
//     and allocations per value, the keyed-hash and bijective ones checked
//     against 1,000,000 values/s.
//
// The masking key is DBTWIN_MASK_KEY when set, else a fixed benchmark key;
// the output says which (by fingerprint, never the key). --cpuprofile and
// --filterprofile write CPU profiles of the masked clone and of the row
// filter. Run it with `make bench-mask`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/dbtwin/dbtwin/internal/cputime"
	"github.com/dbtwin/dbtwin/masking"
)

// benchKey is used when DBTWIN_MASK_KEY is not set. It is not a secret:
// it only makes runs comparable.
const benchKey = "dbtwin-benchmark-key-not-a-secret"

type config struct {
	scale         float64
	jobs          int
	runs          int
	rules         string
	benchTime     time.Duration
	cpuProfile    string
	filterProfile string
	skipClone     bool
}

func main() {
	testing.Init() // testing.Benchmark reads -test.benchtime
	var cfg config
	fs := flag.NewFlagSet("benchmask", flag.ContinueOnError)
	fs.Float64Var(&cfg.scale, "scale", 3, "fixture scale of the tenant (1 ≈ 100 MB)")
	fs.IntVar(&cfg.jobs, "jobs", 2, "parallel COPY workers of each clone")
	fs.IntVar(&cfg.runs, "runs", 2, "clones of each kind, alternating (0: measure the row filter alone)")
	fs.StringVar(&cfg.rules, "rules", "masking/testdata/fixture_masking.yaml", "masking rules for the fixture schema")
	fs.DurationVar(&cfg.benchTime, "benchtime", 300*time.Millisecond, "time per transform benchmark")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the last masked clone to this file")
	fs.StringVar(&cfg.filterProfile, "filterprofile", "", "write a CPU profile of the row filter alone to this file")
	fs.BoolVar(&cfg.skipClone, "transforms-only", false, "only measure the transforms")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmask:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	key, keyNote := []byte(benchKey), "fixed benchmark key (DBTWIN_MASK_KEY not set)"
	if k := os.Getenv("DBTWIN_MASK_KEY"); k != "" {
		key, keyNote = []byte(k), "key from DBTWIN_MASK_KEY"
	}
	kr, err := masking.NewKeyring(key)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "benchmask: %s (fingerprint %s); GOMAXPROCS %d, %d CPUs; load average %s\n",
		keyNote, kr.Fingerprint(), runtime.GOMAXPROCS(0), runtime.NumCPU(), loadAverage())
	if !cfg.skipClone {
		if err := benchClone(ctx, cfg, kr, out); err != nil {
			return err
		}
	}
	return benchTransforms(cfg, kr, out)
}

// benchClone clones the tenant unmasked and masked, alternately.
func benchClone(ctx context.Context, cfg config, kr *masking.Keyring, out io.Writer) error {
	c, err := local.Start(ctx, local.Config{})
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "sandbox: PostgreSQL %d cluster %s; clone jobs %d\n", c.Major(), c.Name(), cfg.jobs)

	const src = "source"
	if err := c.CreateDatabase(ctx, src); err != nil {
		return err
	}
	start := time.Now()
	sum, err := fixtures.Fill(ctx, c.DSN(src), fixtures.Tenant{Name: src, Database: src, Shape: fixtures.ShapeNormal, Scale: cfg.scale}, 1)
	if err != nil {
		return fmt.Errorf("generate the fixture: %w", err)
	}
	fmt.Fprintf(out, "fixture: one normal tenant at scale %g: %s, %d rows, generated in %s\n",
		cfg.scale, mb(sum.Bytes), sum.Rows(), time.Since(start).Round(time.Millisecond))

	conn, err := c.Conn(ctx, src)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cat, err := masking.LoadCatalog(ctx, conn)
	if err != nil {
		return err
	}
	rules, err := masking.LoadRules(cfg.rules)
	if err != nil {
		return err
	}
	plan, err := masking.NewPlan(rules, cat, kr)
	if err != nil {
		return err
	}
	if err := describeMasking(ctx, conn, plan, out); err != nil {
		return err
	}

	if cfg.runs <= 0 {
		return benchFilter(ctx, conn, plan, cfg.filterProfile, out)
	}
	pm, ok := c.Record().ServerPID()
	if !ok {
		return fmt.Errorf("find the postmaster of %s", c.Name())
	}
	type kind struct {
		name     string
		masker   clone.Masker
		walls    []time.Duration
		cpuSelf  time.Duration // summed over runs
		cpuSrv   time.Duration
		best     *clone.Result
		bestWall time.Duration
	}
	kinds := []*kind{
		{name: "unmasked"},
		{name: "text", masker: textPassthrough{plan}},
		{name: "masked", masker: plan},
	}
	var bestAudit time.Duration
	fmt.Fprintln(out, "clones (unmasked: binary COPY; text: the tables the rules mask as text COPY, unchanged; masked: through the masker):")
	for i := range cfg.runs {
		for _, k := range kinds {
			if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
				return err
			}
			dst := fmt.Sprintf("clone_%s_%d", k.name, i+1)
			var prof *os.File
			if k.masker == clone.Masker(plan) && cfg.cpuProfile != "" && i == cfg.runs-1 {
				if prof, err = os.Create(cfg.cpuProfile); err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(prof); err != nil {
					return err
				}
			}
			before := cputime.Read(pm)
			start := time.Now()
			res, err := clone.Clone(ctx, c.DSN(src), c.DSN(dst), clone.Options{Jobs: cfg.jobs, Masker: k.masker})
			wall := time.Since(start)
			if prof != nil {
				pprof.StopCPUProfile()
				prof.Close()
			}
			if err != nil {
				return fmt.Errorf("%s clone: %w", k.name, err)
			}
			time.Sleep(200 * time.Millisecond) // let the server reap the clone's backends
			used := cputime.Read(pm).Sub(before)
			k.cpuSelf += used.Client
			k.cpuSrv += used.Server
			fmt.Fprintf(out, "  run %d %-8s %8s wall, CPU dbtwin %6s postgres %6s  (%s)\n", i+1, k.name, wall.Round(time.Millisecond),
				used.Client.Round(10*time.Millisecond), used.Server.Round(10*time.Millisecond), phases(res))
			k.walls = append(k.walls, wall)
			if k.best == nil || wall < k.bestWall {
				k.best, k.bestWall = res, wall
			}
			if k.masker == clone.Masker(plan) {
				// The leak audit `dbtwin clone --mask` runs next, with the
				// clone's own keys standing for its counts, as there.
				before := cputime.Read(pm)
				start := time.Now()
				rep, err := masking.Audit(ctx, c.DSN(src), c.DSN(dst), plan, masking.AuditOptions{TrustConstraints: true, Jobs: cfg.jobs})
				if err == nil {
					err = rep.Err()
				}
				if err != nil {
					return fmt.Errorf("audit the masked clone: %w", err)
				}
				aw := time.Since(start)
				time.Sleep(200 * time.Millisecond)
				used := cputime.Read(pm).Sub(before)
				fmt.Fprintf(out, "  run %d %-8s %8s wall, CPU dbtwin %6s postgres %6s  (the leak audit clone --mask runs after the masked clone)\n", i+1, "audit",
					aw.Round(time.Millisecond), used.Client.Round(10*time.Millisecond), used.Server.Round(10*time.Millisecond))
				if bestAudit == 0 || aw < bestAudit {
					bestAudit = aw
				}
			}
			if err := c.DropDatabase(ctx, dst); err != nil {
				return err
			}
		}
	}
	un, tx, ma := kinds[0], kinds[1], kinds[2]
	ratio := float64(ma.bestWall) / float64(un.bestWall)
	verdict := "met"
	if ratio > 1.25 {
		verdict = "NOT met"
	}
	fmt.Fprintf(out, "clone wall time, best of %d: unmasked %s, text %s, masked %s: masked/unmasked %.2f× (target ≤ 1.25×: %s); text/unmasked %.2f×\n",
		cfg.runs, un.bestWall.Round(time.Millisecond), tx.bestWall.Round(time.Millisecond), ma.bestWall.Round(time.Millisecond), ratio, verdict,
		float64(tx.bestWall)/float64(un.bestWall))
	cpu := func(k *kind) time.Duration { return (k.cpuSelf + k.cpuSrv) / time.Duration(cfg.runs) }
	fmt.Fprintf(out, "clone CPU time (dbtwin + pg_dump/pg_restore + postgres), mean of %d: unmasked %s, text %s, masked %s: masked/unmasked %.2f×, text/unmasked %.2f×\n",
		cfg.runs, cpu(un).Round(10*time.Millisecond), cpu(tx).Round(10*time.Millisecond), cpu(ma).Round(10*time.Millisecond),
		float64(cpu(ma))/float64(cpu(un)), float64(cpu(tx))/float64(cpu(un)))
	fmt.Fprintf(out, "leak audit of the masked clone, best of %d: %s (%.2f× the masked clone's wall time; not in the ratio above)\n",
		cfg.runs, bestAudit.Round(time.Millisecond), float64(bestAudit)/float64(ma.bestWall))
	if cfg.cpuProfile != "" {
		fmt.Fprintf(out, "CPU profile of the last masked clone: %s (go tool pprof -top %s)\n", cfg.cpuProfile, cfg.cpuProfile)
	}

	// Per table: where the masked clone spends its time.
	byName := map[string]clone.TableResult{}
	for _, t := range un.best.Tables {
		byName[t.Name] = t
	}
	tables := slices.Clone(ma.best.Tables)
	slices.SortFunc(tables, func(a, b clone.TableResult) int { return int(b.Duration - a.Duration) })
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tsize\trows\tunmasked\tformat\tmasked\tformat\tratio\t")
	for _, t := range tables {
		u := byName[t.Name]
		r := "-"
		if u.Duration > 0 {
			r = fmt.Sprintf("%.2f×", float64(t.Duration)/float64(u.Duration))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", t.Name, mb(t.Bytes), t.Rows,
			u.Duration.Round(time.Millisecond), u.Format, t.Duration.Round(time.Millisecond), t.Format, r)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return benchFilter(ctx, conn, plan, cfg.filterProfile, out)
}

// benchFilter measures the row filter alone, on one core, per masked
// table, in the COPY format the clone uses for it (FilterCopyBinary where
// the masker converts only types it has binary codecs for and no column's
// binary form embeds a type OID, FilterCopyText otherwise): the table's
// COPY data is read into memory first, so neither server is involved.
func benchFilter(ctx context.Context, conn *pgx.Conn, plan *masking.Plan, profile string, out io.Writer) error {
	if _, err := conn.Exec(ctx, "SET datestyle = ISO; SET intervalstyle = postgres; SET extra_float_digits = 3; SET timezone = 'UTC'"); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY pg_relation_size(c.oid) DESC`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	fmt.Fprintln(out, "row filter alone (rows already in memory, one core):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tformat\tCOPY data\trows\tfilter\tMB/s\trows/s\t")
	var total time.Duration
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, name := range names {
		tm := plan.Table(name)
		if tm == nil {
			continue
		}
		cols := tm.Columns()
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = pgx.Identifier{c}.Sanitize()
		}
		schema, table, _ := strings.Cut(name, ".")
		ident := pgx.Identifier{schema, table}.Sanitize()
		// The copier's rule (roughly): composites and arrays of composites
		// or ranges travel as text; arrays of enums and domains are
		// relabelled in binary.
		var embedsOIDs bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
			LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
			WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
			  AND (t.typtype = 'c' OR e.typtype IN ('c', 'r')))`, ident).Scan(&embedsOIDs); err != nil {
			return err
		}
		format, filter := "text", masking.FilterCopyText
		if !embedsOIDs && tm.CanFilterBinary(cols) {
			format, filter = "binary", masking.FilterCopyBinary
		}
		var buf strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &buf, fmt.Sprintf("COPY %s (%s) TO STDOUT (FORMAT %s)", ident, strings.Join(quoted, ", "), format)); err != nil {
			return fmt.Errorf("copy %s out: %w", name, err)
		}
		data := buf.String()
		start := time.Now()
		n, err := filter(ctx, io.Discard, strings.NewReader(data), tm, cols)
		d := time.Since(start)
		if err != nil {
			return err
		}
		total += d
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.1f\t%s\t\n", name, format, mb(int64(len(data))), n, d.Round(time.Millisecond),
			float64(len(data))/(1<<20)/d.Seconds(), thousands(float64(n)/d.Seconds()))
	}
	fmt.Fprintf(tw, "total\t\t\t\t%s\t\t\t\n", total.Round(time.Millisecond))
	return tw.Flush()
}

// describeMasking prints, for the largest tables, how many columns the
// rules mask (transform, null or default), and checks the issue's "at
// least 8 columns across the largest tables".
func describeMasking(ctx context.Context, conn *pgx.Conn, plan *masking.Plan, out io.Writer) error {
	rows, err := conn.Query(ctx, `
SELECT n.nspname || '.' || c.relname,
       CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(t.relid)) FROM pg_partition_tree(c.oid) t)::bigint
            ELSE pg_total_relation_size(c.oid) END AS size
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = 'public'
 ORDER BY size DESC`)
	if err != nil {
		return fmt.Errorf("list table sizes: %w", err)
	}
	type tsize struct {
		name string
		size int64
	}
	sizes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tsize, error) {
		var t tsize
		err := r.Scan(&t.name, &t.size)
		return t, err
	})
	if err != nil {
		return fmt.Errorf("list table sizes: %w", err)
	}
	masked := map[string][]string{}
	total := map[string]int{}
	for _, d := range plan.Decisions() {
		total[d.Table]++
		if d.Decision.Action != masking.Keep {
			masked[d.Table] = append(masked[d.Table], d.Column)
		}
	}
	var all int64
	for _, t := range sizes {
		all += t.size
	}
	fmt.Fprintln(out, "masking rules on the largest tables (covering 90% of the data):")
	var cum int64
	n := 0
	for _, t := range sizes {
		if cum >= all*9/10 {
			break
		}
		cum += t.size
		n += len(masked[t.name])
		fmt.Fprintf(out, "  %-30s %8s  %2d of %2d columns masked  %s\n", t.name, mb(t.size), len(masked[t.name]), total[t.name], strings.Join(masked[t.name], ", "))
	}
	verdict := "ok"
	if n < 8 {
		verdict = "FEWER than the 8 the benchmark needs"
	}
	fmt.Fprintf(out, "  %d masked columns in these tables (%s)\n", n, verdict)
	return nil
}

// textPassthrough makes the copier stream the tables plan masks as text
// COPY, unchanged: what text COPY costs without the masking.
type textPassthrough struct{ plan *masking.Plan }

// MaskTable implements clone.Masker.
func (p textPassthrough) MaskTable(table string, columns []string) (text, binary func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error), targetColumns []string) {
	if p.plan.Table(table) == nil {
		return nil, nil, nil
	}
	return func(_ context.Context, dst io.Writer, src io.Reader) (int64, error) {
		_, err := io.Copy(dst, src)
		return 0, err // the copier counts rows from COPY FROM's tag
	}, nil, columns
}

// ChangedColumns implements clone.Masker: nothing is changed.
func (p textPassthrough) ChangedColumns(string) []string { return nil }

func phases(res *clone.Result) string {
	var parts []string
	for _, p := range res.Phases {
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, p.Duration.Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// transformBench is one transform measured on realistic inputs.
type transformBench struct {
	name   string
	class  string // "bijective", "keyed hash" or "" (no throughput target)
	spec   masking.Spec
	target masking.Target
	inputs []string // nil: integers
}

// transformBenches covers every transform but template (which reads other
// columns of its row and is measured with the row filter).
var transformBenches = []transformBench{
	{"int/int8", "bijective", masking.Spec{Transform: "int"}, masking.Target{Type: "int8"}, nil},
	{"int/int4", "bijective", masking.Spec{Transform: "int"}, masking.Target{Type: "int4"}, nil},
	{"uuid", "bijective", masking.Spec{Transform: "uuid"}, masking.Target{Type: "uuid"}, []string{"6ba7b810-9dad-41d1-80b4-00c04fd430c8", "1b4e28ba-2fa1-41d2-883f-0016d3cca427"}},
	{"fpe/sku", "bijective", masking.Spec{Transform: "fpe"}, masking.Target{}, []string{"AB-123456", "ZX-998877"}},
	{"fpe/vat", "bijective", masking.Spec{Transform: "fpe"}, masking.Target{}, []string{"DE123456789", "FR12345678901"}},
	{"national_id", "bijective", masking.Spec{Transform: "national_id"}, masking.Target{}, []string{"078-05-1120", "219-09-9999"}},
	{"postcode", "bijective", masking.Spec{Transform: "postcode"}, masking.Target{}, []string{"94103", "SW1A 1AA"}},
	{"phone", "bijective", masking.Spec{Transform: "phone"}, masking.Target{}, []string{"+1 (415) 555-0123", "020 7946 0018"}},
	{"email/unique", "bijective", masking.Spec{Transform: "email"}, masking.Target{Unique: true}, []string{"john.doe@gmail.com", "mary.major@corp.example.org"}},
	{"ip/v4", "bijective", masking.Spec{Transform: "ip"}, masking.Target{Type: "inet"}, []string{"192.168.1.20", "10.20.30.40"}},
	{"ip/v6", "bijective", masking.Spec{Transform: "ip"}, masking.Target{Type: "inet"}, []string{"2001:db8::1", "fe80::1ff:fe23:4567:890a"}},
	{"hash", "keyed hash", masking.Spec{Transform: "hash", Options: masking.Options{Length: 16}}, masking.Target{}, []string{"tok_1a2b3c4d5e6f", "tok_ffeeddccbbaa"}},
	{"email/fake", "keyed hash", masking.Spec{Transform: "email"}, masking.Target{}, []string{"john.doe@gmail.com", "mary.major@corp.example.org"}},
	{"first_name", "keyed hash", masking.Spec{Transform: "first_name"}, masking.Target{}, []string{"John", "Mary"}},
	{"last_name", "keyed hash", masking.Spec{Transform: "last_name"}, masking.Target{}, []string{"Smith", "Major"}},
	{"full_name", "keyed hash", masking.Spec{Transform: "full_name"}, masking.Target{}, []string{"John Smith", "Mary Major"}},
	{"street_address", "keyed hash", masking.Spec{Transform: "street_address"}, masking.Target{}, []string{"12 Main Street", "742 Evergreen Terrace"}},
	{"city", "keyed hash", masking.Spec{Transform: "city"}, masking.Target{}, []string{"Springfield", "Berlin"}},
	{"card", "", masking.Spec{Transform: "card", Options: masking.Options{KeepFirst: 1}}, masking.Target{}, []string{"4111 1111 1111 1111", "5500000000000004"}},
	{"iban", "", masking.Spec{Transform: "iban"}, masking.Target{}, []string{"GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"}},
	{"date_shift", "", masking.Spec{Transform: "date_shift"}, masking.Target{Type: "timestamptz"}, []string{"2024-01-02 03:04:05+00", "1984-03-07 00:00:00+00"}},
	{"noise", "", masking.Spec{Transform: "noise"}, masking.Target{Type: "numeric"}, []string{"123.45", "99.99"}},
	{"redact", "", masking.Spec{Transform: "redact", Options: masking.Options{KeepFirst: 2, KeepLast: 2}}, masking.Target{}, []string{"confidential", "secret value"}},
	{"regex", "", masking.Spec{Transform: "regex", Options: masking.Options{Pattern: `\d`, Replace: "#"}}, masking.Target{}, []string{"order 12345", "ref 987"}},
	{"constant", "", masking.Spec{Transform: "constant", Options: masking.Options{Value: "x"}}, masking.Target{}, []string{"anything"}},
	{"scrub/ticket", "", masking.Spec{Transform: "scrub"}, masking.Target{}, []string{"Hi, I can't log in with jane.roe@gmail.com since yesterday. Please call me back on +1 (415) 555-0123, I'm available after 5pm. Thanks, Jane"}},
	{"jsonb/audit", "", masking.Spec{Transform: "jsonb", Options: masking.Options{Paths: []masking.PathRule{
		{Path: "$.actor.email", Spec: masking.Spec{Transform: "email"}},
		{Path: "$.actor.name", Spec: masking.Spec{Transform: "full_name"}},
		{Path: "$.actor.ip", Spec: masking.Spec{Transform: "ip"}},
	}}}, masking.Target{Type: "jsonb"}, []string{`{"actor": {"id": 42, "ip": "10.1.2.3", "name": "John Doe", "email": "john@x.com"}, "action": "user.login", "request": {"path": "/login"}}`}},
}

// benchTransforms measures each transform on one core.
func benchTransforms(cfg config, kr *masking.Keyring, out io.Writer) error {
	if err := flag.Set("test.benchtime", cfg.benchTime.String()); err != nil {
		return err
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	fmt.Fprintf(out, "transforms, one core (GOMAXPROCS 1), %s each; target ≥ 1,000,000 values/s for keyed-hash and bijective transforms:\n", cfg.benchTime)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transform\tvalues/s\tns/value\tallocs/value\tB/value\tclass\ttarget\t")
	failed := 0
	for _, bc := range transformBenches {
		tr, err := masking.NewTransform(kr, bc.spec, bc.target)
		if err != nil {
			return fmt.Errorf("transform %s: %w", bc.name, err)
		}
		inputs := make([][]byte, 1024)
		for i := range inputs {
			if bc.inputs == nil {
				inputs[i] = strconv.AppendInt(nil, int64(i*7919+1), 10)
			} else {
				inputs[i] = []byte(bc.inputs[i%len(bc.inputs)])
				if strings.HasPrefix(bc.name, "scrub/") {
					// Free texts are all different: the scrub remembers
					// repeated short values, which would measure a lookup.
					inputs[i] = fmt.Appendf(inputs[i], " (ticket %d)", i)
				}
			}
		}
		var benchErr error
		res := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]byte, 0, 4096)
			for i := 0; i < b.N; i++ {
				var err error
				if dst, err = tr.Append(dst[:0], inputs[i&1023]); err != nil {
					benchErr = err
					b.FailNow()
				}
			}
		})
		if benchErr != nil {
			return fmt.Errorf("transform %s: %w", bc.name, benchErr)
		}
		perSec := float64(res.N) / res.T.Seconds()
		verdict := "-"
		if bc.class != "" {
			verdict = "met"
			if perSec < 1e6 {
				verdict = "NOT met"
				failed++
			}
		}
		class := bc.class
		if class == "" {
			class = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%d\t%s\t%s\t\n", bc.name, thousands(perSec), float64(res.T.Nanoseconds())/float64(res.N),
			res.AllocsPerOp(), res.AllocedBytesPerOp(), class, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(out, "%d keyed-hash or bijective transform(s) below 1,000,000 values/s\n", failed)
	} else {
		fmt.Fprintln(out, "every keyed-hash and bijective transform at or above 1,000,000 values/s")
	}
	return nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func thousands(v float64) string {
	s := strconv.FormatInt(int64(v), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
