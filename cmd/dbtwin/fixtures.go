package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/internal/termtable"
)

func runFixtures(ctx context.Context, e *env, args []string) error {
	if err := onlySubcommand(e, args, "fixtures", "gen", "--target DSN [--tenants N] [--scale S] [--seed K]", "Generate the fixture databases."); err != nil {
		return err
	}
	def := fixtures.DefaultConfig()
	var c common
	fs := newFlagSet("fixtures gen", "--target DSN [--tenants N] [--scale S] [--seed K] [--replace]",
		`Generate realistic multi-tenant SaaS databases, one per tenant
(tenant_<name>), on the server that --target points at: accounts, users full
of PII, orders, payments (card numbers, IBANs), support tickets with emails
and phones in free text, a partitioned audit log with nested PII in jsonb.
The first tenant is large (2x scale), the second tiny, the third unusual
(NULLs, unicode, long text). The same seed always gives the same data.
--scale 1 is about 100 MB per tenant.`, e)
	target := fs.String("target", "", "connection string of the server to create the tenant databases on (its database is only used to connect)")
	cfg := def
	fs.IntVar(&cfg.Tenants, "tenants", def.Tenants, "number of tenant databases")
	fs.Float64Var(&cfg.Scale, "scale", def.Scale, "size: 1 ≈ 100 MB per tenant; fractions work")
	fs.Int64Var(&cfg.Seed, "seed", def.Seed, "random seed; the same seed gives the same data")
	fs.BoolVar(&cfg.Replace, "replace", false, "drop and recreate tenant databases that already exist")
	c.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *target == "" {
		return usagef(fs, "--target is required (a connection string, e.g. \"host=/tmp/sock user=me dbname=postgres\")")
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q", fs.Arg(0))
	}
	if err := cfg.Validate(); err != nil {
		return usagef(fs, "%v", err)
	}
	log, err := c.logger(e)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	cfg.Logger = log
	start := time.Now()
	sums, err := fixtures.Generate(ctx, *target, cfg)
	if err != nil {
		return err
	}
	return printFixtureSummary(e, sums, pgdsn.Describe(*target), time.Since(start))
}

func printFixtureSummary(e *env, sums []fixtures.Summary, where string, took time.Duration) error {
	t := termtable.New(e.stdout, "TENANT", "DATABASE", "SHAPE", "ROWS", "SIZE", "TIME")
	var bytes int64
	for _, s := range sums {
		var rows int64
		for _, tc := range s.Tables {
			rows += tc.Rows
		}
		bytes += s.Bytes
		if err := t.Append(s.Tenant.Name, s.Tenant.Database, s.Tenant.Shape, fmt.Sprint(rows), humanBytes(s.Bytes), s.Duration.Round(time.Millisecond).String()); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "generated %d tenant database(s), %s, on %s in %s\n", len(sums), humanBytes(bytes), where, took.Round(time.Millisecond))
	return nil
}

func humanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
