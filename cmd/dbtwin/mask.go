package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dbtwin/dbtwin/harness"
	"github.com/dbtwin/dbtwin/internal/atomicfile"
	"github.com/dbtwin/dbtwin/masking"
	"github.com/dbtwin/dbtwin/replay"
)

func runMask(ctx context.Context, e *env, args []string) error {
	const desc = `Masking: find PII and rewrite it with keyed, deterministic transforms.

  scan      score every column of a database for PII and propose a rules file
  apply     mask a dbtwin sandbox database in place (clones made by snapshot)
  workload  mask the literals and parameters of a captured workload with the
            same keys, so replayed lookups still find the masked rows

The key comes from DBTWIN_MASK_KEY (never a flag or a file). Masking a clone
while it streams is 'dbtwin clone --mask RULES'.`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		newFlagSet("mask", "scan|apply|workload [flags]", desc, e).Usage()
		if len(args) == 0 {
			return usagef(nil, "missing subcommand: scan, apply or workload")
		}
		return nil
	}
	switch args[0] {
	case "scan":
		return maskScan(ctx, e, args[1:])
	case "apply":
		return maskApply(ctx, e, args[1:])
	case "workload":
		return maskWorkload(ctx, e, args[1:])
	}
	return usagef(nil, "unknown subcommand %q: want scan, apply or workload", args[0])
}

func maskApply(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("mask apply", "--target DSN --rules FILE",
		`Mask a clone in place, for clones that could not be masked while they
streamed (a restored dump, a volume snapshot). Only a dbtwin sandbox is
accepted: a database in an embedded sandbox (sandbox up / run / demo) or one
marked as a sandbox by a dbtwin backend; anything else is refused
untouched. All masked tables are rewritten in one transaction (nothing is
half-masked), keys are re-checked, then the tables are rewritten on disk so
old row versions are gone. The key comes from DBTWIN_MASK_KEY.`, e)
	target := fs.String("target", "", "connection string of the sandbox database to mask")
	rules := fs.String("rules", "", "masking rules file")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *rules == "" {
		return usagef(fs, "--target and --rules are required")
	}
	log, err := c.logger(e)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	key, err := harness.MaskKeyFromEnv()
	if err != nil {
		return err
	}
	rs, err := masking.LoadRules(*rules)
	if err != nil {
		return err
	}
	// The plan comes from the target's own catalog: it holds the copy.
	plan, _, err := harness.LoadMaskPlan(ctx, *target, rs, key)
	if err != nil {
		return err
	}
	rep, err := masking.ApplyInPlace(ctx, *target, plan, masking.ApplyOptions{StateDir: c.stateDir, Logger: log})
	if rep != nil {
		rep.WriteText(e.stdout)
	}
	return err
}

func maskScan(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("mask scan", "--source DSN [--format rules|json|markdown] [--out FILE]",
		`Score every column of the source database by its name, type and a sample
of its values (emails, phones, card numbers, IBANs, national ids, IPs, dates
of birth, names, secrets, jsonb keys, free text containing any of these), and
print a proposed rules file with confidence and match counts. Sampled values
are never printed. The source is only read (READ ONLY transaction).`, e)
	source := fs.String("source", "", "connection string of the database to scan")
	format := fs.String("format", "rules", "output: rules (a masking.yaml to start from), json or markdown")
	out := fs.String("out", "-", "write to this file instead of standard output")
	sample := fs.Int("sample", 1000, "rows sampled per table")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *source == "" {
		return usagef(fs, "--source is required")
	}
	write := map[string]func(*masking.Report, io.Writer) error{
		"rules":    (*masking.Report).WriteRules,
		"json":     (*masking.Report).WriteJSON,
		"markdown": (*masking.Report).WriteMarkdown,
	}[*format]
	if write == nil {
		return usagef(fs, "--format %q: want rules, json or markdown", *format)
	}
	rep, err := masking.Scan(ctx, *source, masking.ScanOptions{SampleRows: *sample})
	if err != nil {
		return err
	}
	if *out == "-" {
		return write(rep, e.stdout)
	}
	f, err := atomicfile.Create(*out)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(rep, f); err != nil {
		return err
	}
	return f.Commit()
}

func maskWorkload(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("mask workload", "--rules FILE --schema DSN --in WORKLOAD --out FILE",
		`Mask a captured workload with the same keys and rules as the clone: the
literals and bind parameters that compare against, insert into or update a
masked column (WHERE email = $1, IN (…), INSERT … VALUES, UPDATE … SET) get
the column's transform, so a replayed lookup still finds its (masked) row.
A statement that does not parse cannot be checked and is dropped, counted.
The input is any workload format dbtwin reads; the output is dbtwin JSONL.`, e)
	rules := fs.String("rules", "", "masking rules file (the one the clone was made with)")
	schema := fs.String("schema", "", "connection string of a database with the schema (the source, or a clone)")
	in := fs.String("in", "", "workload to mask (PostgreSQL log or dbtwin JSONL)")
	out := fs.String("out", "", "masked workload to write (dbtwin JSONL)")
	var wf workloadFlags
	wf.register(fs)
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *rules == "":
		return usagef(fs, "--rules is required")
	case *schema == "":
		return usagef(fs, "--schema is required")
	case *in == "" || *out == "":
		return usagef(fs, "--in and --out are required")
	}
	ropts, err := wf.options(fs)
	if err != nil {
		return err
	}
	key, err := harness.MaskKeyFromEnv()
	if err != nil {
		return err
	}
	rs, err := masking.LoadRules(*rules)
	if err != nil {
		return err
	}
	plan, _, err := harness.LoadMaskPlan(ctx, *schema, rs, key)
	if err != nil {
		return err
	}
	r, err := replay.Open(ctx, *in, ropts)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := atomicfile.Create(*out)
	if err != nil {
		return err
	}
	defer f.Abort()
	w, err := replay.NewWorkloadWriter(f, replay.WorkloadHeader{Source: r.Stats().Name + " (masked)", Format: r.Stats().Format})
	if err != nil {
		return err
	}
	var events, literals, params, dropped int64
	for r.Next() {
		ev := r.Event()
		res, err := plan.MaskEvent(&ev)
		if errors.Is(err, masking.ErrUnparsable) {
			dropped++
			continue
		}
		if err != nil {
			return err
		}
		literals += int64(res.Literals)
		params += int64(res.Params)
		if err := w.Write(ev); err != nil {
			return err
		}
		events++
	}
	if err := r.Err(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "masked workload %s: %d events, %d literals and %d parameters masked, %d unparsable statements dropped\n",
		*out, events, literals, params, dropped)
	return nil
}

func runWorkload(ctx context.Context, e *env, args []string) error {
	if err := onlySubcommand(e, args, "workload", "convert", "--in FILE --out FILE", "Work with captured workloads."); err != nil {
		return err
	}
	var c common
	fs := newFlagSet("workload convert", "--in FILE --out FILE [--log-format F] [--log-prefix P]",
		`Convert a captured workload — a PostgreSQL stderr log (any log_line_prefix),
csvlog or jsonlog, gzipped or not — to dbtwin's JSONL workload format, and
print a summary: sessions, statements, fingerprints, time span and the lines
skipped, by reason. Malformed lines are counted warnings with their line
numbers, never a failure.`, e)
	in := fs.String("in", "", "the log to read")
	out := fs.String("out", "", "the JSONL workload to write")
	var wf workloadFlags
	wf.register(fs)
	database := fs.StringSlice("database", nil, "keep only sessions on these databases")
	user := fs.StringSlice("user", nil, "keep only sessions of these users")
	app := fs.StringSlice("application", nil, "keep only sessions of these application names")
	from := fs.String("from", "", "keep only events at or after this time (RFC 3339, e.g. 2026-11-25T08:00:00Z)")
	to := fs.String("to", "", "keep only events before this time (RFC 3339)")
	c.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return usagef(fs, "--in and --out are required")
	}
	filter := replay.Filter{Databases: *database, Users: *user, Applications: *app}
	for _, tw := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--from", *from, &filter.From}, {"--to", *to, &filter.To}} {
		if tw.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, tw.v)
		if err != nil {
			return usagef(fs, "%s %q: want an RFC 3339 time such as 2026-11-25T08:00:00Z", tw.flag, tw.v)
		}
		*tw.dst = t
	}
	ropts, err := wf.options(fs)
	if err != nil {
		return err
	}
	ropts.Filter = filter
	r, err := replay.Open(ctx, *in, ropts)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := atomicfile.Create(*out)
	if err != nil {
		return err
	}
	defer f.Abort()
	sum, err := replay.Convert(ctx, r, f)
	if err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	fmt.Fprint(e.stdout, sum.String())
	return nil
}
