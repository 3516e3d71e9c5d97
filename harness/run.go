package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/server"
	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/internal/workdir"
	"github.com/dbtwin/dbtwin/masking"
	"github.com/dbtwin/dbtwin/migrate"
	"github.com/dbtwin/dbtwin/replay"
	"github.com/dbtwin/dbtwin/reports"
)

// RunOptions tune one verification run (Run). The zero value runs every
// tenant of the config, one after another, and writes the reports the
// config asks for.
type RunOptions struct {
	// Tenant, when set, runs only the tenant of that name.
	Tenant string
	// Shard, when set (Count > 0), runs only the tenants whose 0-based
	// position in the config is Index-1 modulo Count: one job of a CI
	// matrix. Its JSON report is the shard's, for `dbtwin report merge`.
	Shard Shard
	// Parallel is how many tenants run at once, each with its own
	// databases in the one sandbox (default 1: one after another).
	Parallel int
	// Jobs is the number of parallel copy workers per clone (0: one per
	// CPU).
	Jobs int
	// StateDir is where the local sandbox and its record live (default
	// local.DefaultStateDir()).
	StateDir string
	// TempDir is where the run's scratch directory (the prepared workload)
	// is made and removed again (default os.TempDir()).
	TempDir string
	// ReportDir and Formats override the config's report section.
	ReportDir string
	Formats   []string
	// Terminal receives the terminal report when "terminal" is among the
	// formats; nil leaves it out.
	Terminal io.Writer
	// Logger receives one line per stage per tenant; nil discards them.
	Logger *slog.Logger
	// Progress, if set, is given to every clone (progress bars). It is not
	// used with Parallel > 1, where bars of several clones would mix.
	Progress clone.Progress
	// ReplayProgress, if set, makes a counter for each replay, labelled
	// "replay <tenant> <role>" (internal/progress.NewCounter makes one).
	ReplayProgress func(label string) Counter
	// Version is the dbtwin version recorded in the report.
	Version string
	// RunID labels the sandbox (default random).
	RunID string
	// MaskKey is the masking key; nil reads DBTWIN_MASK_KEY (the CLI never
	// sets it: only the demo, with its public demo key, does).
	MaskKey []byte
}

// Counter follows one replay's progress: Update now and then with the
// statements done out of the total (-1: unknown), Close at the end.
type Counter interface {
	Update(done, total int64)
	Close()
}

// Shard is one part of a run split over several jobs: Index of Count,
// 1-based ("2/4" is Index 2, Count 4). The zero Shard is the whole run.
type Shard struct {
	Index, Count int
}

// ParseShard parses "i/n" (1 ≤ i ≤ n); "" is the zero Shard.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("parse shard %q: want i/n with 1 ≤ i ≤ n, e.g. 2/4", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// String is "i/n", or "" for the whole run.
func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// includes reports whether the tenant at 0-based position i is in the shard.
func (s Shard) includes(i int) bool {
	return s.Count == 0 || i%s.Count == s.Index-1
}

// Database roles of a tenant in the sandbox: "<tenant>_<role>".
const (
	roleGolden    = "golden"
	roleBaseline  = "baseline"
	roleCandidate = "candidate"
	roleControl   = "control"
)

// Run verifies a release against the tenants of cfg: for each tenant it
// clones the source (or restores the dump) into a golden copy — masked
// when cfg.Masking.Rules is set, with the key from DBTWIN_MASK_KEY — fans
// the golden copy out into baseline, candidate and control by template
// copy, applies the migrations to the candidate (and lints them against the
// workload), replays the workload (masked like the data) on all three,
// compares the results statement by statement with the control as the
// noise filter, compares the final contents of every table, captures
// EXPLAIN plans of the statements that got slower, and writes the reports.
//
// Everything happens in one sandbox (a local cluster, or the server of the
// "server" backend), torn down at the end — also on an error or when ctx is
// cancelled. Each tenant's results files stay in the report directory,
// under <tenant>/results-{baseline,candidate,control}.jsonl, so that
// `dbtwin compare` can be run on them again.
//
// Run returns the merged report of every tenant it ran. A regression is in
// the report's verdict, not an error: a failed migration is a finding too.
// The error is for a run that could not do its job (a config mistake, an
// unreachable source, a sandbox that did not start); when some tenants
// finished before another one failed, the report of those is returned (and
// written) along with the error.
func Run(ctx context.Context, cfg *Config, opts RunOptions) (*compare.Report, error) {
	r, err := newRunner(cfg, opts)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// runner is one Run in progress: what was prepared before any tenant
// started, and what every tenant shares.
type runner struct {
	cfg       *Config
	opts      RunOptions
	log       *slog.Logger
	tenants   []TenantConfig
	cmpCfg    compare.Config
	formats   []string
	reportDir string

	workloadFormat replay.Format
	migSet         *migrate.Set     // nil with a migration command
	migCmd         *migrate.Command // nil with a migration directory
	rules          *masking.Rules   // nil without masking
	maskKey        []byte

	// Set in run.
	runID   string
	sb      clone.Sandbox
	binDir  string
	tempDir string

	// plainWorkload is the workload converted once, for every tenant,
	// when nothing is masked.
	plainOnce sync.Once
	plain     preparedWorkload
	plainErr  error
}

// newRunner checks everything that can be checked without a database, so
// that a config mistake fails before a sandbox starts.
func newRunner(cfg *Config, opts RunOptions) (*runner, error) {
	if cfg == nil {
		return nil, errors.New("run: no config")
	}
	r := &runner{cfg: cfg, opts: opts, log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.opts.Parallel < 1 {
		r.opts.Parallel = 1
	}
	if r.opts.Parallel > 1 {
		r.opts.Progress = nil
	}
	if opts.Shard.Count < 0 || (opts.Shard.Count > 0 && (opts.Shard.Index < 1 || opts.Shard.Index > opts.Shard.Count)) {
		return nil, fmt.Errorf("run: shard %d/%d: want 1 ≤ i ≤ n", opts.Shard.Index, opts.Shard.Count)
	}
	var names []string
	for i, t := range cfg.Tenants {
		names = append(names, t.Name)
		if opts.Tenant != "" && t.Name != opts.Tenant {
			continue
		}
		if !opts.Shard.includes(i) {
			continue
		}
		r.tenants = append(r.tenants, t)
	}
	if opts.Tenant != "" && len(r.tenants) == 0 {
		if opts.Shard.Count > 0 {
			return nil, fmt.Errorf("run: tenant %q is not in shard %s", opts.Tenant, opts.Shard)
		}
		return nil, fmt.Errorf("run: no tenant %q in %s (tenants: %s)", opts.Tenant, cfg.path, strings.Join(names, ", "))
	}

	var err error
	if r.cmpCfg, err = cfg.compareConfig(); err != nil {
		return nil, err
	}
	r.formats = cfg.Report.Formats
	if len(opts.Formats) > 0 {
		r.formats = opts.Formats
	}
	if len(r.formats) == 0 {
		r.formats = DefaultFormats
	}
	for _, f := range r.formats {
		if _, err := reports.New(f); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
	}
	r.reportDir = cfg.Report.Dir
	if opts.ReportDir != "" {
		r.reportDir = opts.ReportDir
	}
	if r.reportDir == "" {
		r.reportDir = "dbtwin-report"
	}

	if r.workloadFormat, err = replay.ParseFormat(cfg.Workload.Format); err != nil {
		return nil, cfg.errAt(err.Error(), "workload", "format")
	}
	if r.workloadFormat == replay.FormatStderr || r.workloadFormat == replay.FormatAuto {
		if cfg.Workload.LogPrefix != "" {
			if _, err := replay.CompilePrefix(cfg.Workload.LogPrefix); err != nil {
				return nil, cfg.errAt(err.Error(), "workload", "log_prefix")
			}
		}
	}
	if _, err := os.Stat(cfg.Workload.File); err != nil {
		return nil, cfg.errAt(err.Error(), "workload", "file")
	}

	switch {
	case cfg.Migrations.Dir != "":
		format, err := migrate.ParseFormat(cfg.Migrations.Format)
		if err != nil {
			return nil, cfg.errAt(err.Error(), "migrations", "format")
		}
		if r.migSet, err = migrate.Discover(cfg.Migrations.Dir, format); err != nil {
			return nil, cfg.errAt(err.Error(), "migrations", "dir")
		}
	case len(cfg.Migrations.Command) > 0:
		r.migCmd = &migrate.Command{Argv: cfg.Migrations.Command}
		// Validate the command the way the migrator will (placeholders).
		if _, err := migrate.New(migrate.Config{DSN: "dbname=check", Command: r.migCmd}); err != nil {
			return nil, cfg.errAt(err.Error(), "migrations", "command")
		}
	default:
		return nil, cfg.errAt("give dir (a migration directory) or command (an external migrator)", "migrations")
	}

	if cfg.Masking.Rules != "" {
		if r.rules, err = masking.LoadRules(cfg.Masking.Rules); err != nil {
			return nil, err
		}
		if r.maskKey = opts.MaskKey; r.maskKey == nil {
			if r.maskKey, err = MaskKeyFromEnv(); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// compareConfig returns the validated comparison settings. ParseConfig
// starts the compare section from compare.DefaultConfig, so a key the file
// does not give keeps its default; a Config built in code without compare
// settings gets the defaults here.
func (c *Config) compareConfig() (compare.Config, error) {
	cc := c.Compare
	if reflect.ValueOf(cc).IsZero() {
		cc = compare.DefaultConfig()
	}
	if err := cc.Validate(); err != nil {
		return cc, c.errAt(err.Error(), "compare")
	}
	return cc, nil
}

// run starts the sandbox, runs the tenants and writes the reports.
func (r *runner) run(ctx context.Context) (_ *compare.Report, err error) {
	r.runID = r.opts.RunID
	if r.runID == "" {
		r.runID = clone.NewRunID()
	}
	if len(r.tenants) == 0 {
		// An empty shard (more shards than tenants) is not an error: its
		// report says so, and merging it adds nothing.
		r.log.Info("no tenant in this shard", "shard", r.opts.Shard.String(), "tenants", len(r.cfg.Tenants))
		rep := &compare.Report{Version: compare.SchemaVersion, Meta: compare.Meta{DbtwinVersion: r.opts.Version,
			Notes: []string{fmt.Sprintf("shard %s has no tenant (%d tenants in the config)", r.opts.Shard, len(r.cfg.Tenants))}}}
		rep.Recompute()
		return rep, r.writeReports(rep)
	}

	if r.tempDir, err = workdir.Make(r.opts.TempDir, "run-"+r.runID); err != nil {
		return nil, fmt.Errorf("create the run's scratch directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(r.tempDir); rerr != nil {
			r.log.Warn("remove the run's scratch directory", "dir", r.tempDir, "err", rerr)
		}
	}()

	if err := r.openSandbox(ctx); err != nil {
		return nil, err
	}
	defer func() {
		start := time.Now()
		if cerr := r.sb.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("tear down sandbox %s: %w", r.sb.Name(), cerr))
			return
		}
		r.log.Info("sandbox torn down", "sandbox", r.sb.Name(), "took", time.Since(start).Round(time.Millisecond))
	}()

	reps := make([]*compare.Report, len(r.tenants))
	errs := make([]error, len(r.tenants))
	sem := make(chan struct{}, r.opts.Parallel)
	var wg sync.WaitGroup
	for i, t := range r.tenants {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("tenant %s: %w", t.Name, context.Cause(ctx))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			reps[i], errs[i] = r.runTenant(ctx, t)
		}()
	}
	wg.Wait()

	var done []*compare.Report
	var failed []string
	for i, rep := range reps {
		if errs[i] != nil {
			failed = append(failed, r.tenants[i].Name)
			continue
		}
		done = append(done, rep)
	}
	runErr := errors.Join(errs...)
	if len(done) == 0 {
		return nil, runErr
	}
	merged, err := reports.Merge(done...)
	if err != nil {
		return nil, errors.Join(runErr, err)
	}
	for _, name := range failed {
		merged.Meta.Notes = append(merged.Meta.Notes, fmt.Sprintf("tenant %s: not verified: the harness failed (see the log)", name))
	}
	if werr := r.writeReports(merged); werr != nil {
		return merged, errors.Join(runErr, werr)
	}
	return merged, runErr
}

// writeReports writes the report files (and the terminal report).
func (r *runner) writeReports(rep *compare.Report) error {
	term := r.opts.Terminal
	formats := r.formats
	if term == nil {
		formats = nil
		for _, f := range r.formats {
			if f != "terminal" {
				formats = append(formats, f)
			}
		}
		if len(formats) == 0 {
			return nil
		}
	}
	paths, err := WriteReports(rep, r.reportDir, formats, term)
	for _, p := range paths {
		r.log.Info("wrote report", "file", p)
	}
	if err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	return nil
}

// openSandbox starts the local cluster or opens the server sandbox.
func (r *runner) openSandbox(ctx context.Context) error {
	start := time.Now()
	switch r.cfg.Sandbox.Backend {
	case "server":
		sb, err := server.Open(ctx, server.Config{DSN: r.cfg.Sandbox.DSN, RunID: r.runID})
		if err != nil {
			return fmt.Errorf("open sandbox: %w", err)
		}
		r.sb, r.binDir = sb, r.cfg.Sandbox.PGBinDir
	default:
		c, err := local.Start(ctx, local.Config{
			BinDir:   r.cfg.Sandbox.PGBinDir,
			StateDir: r.opts.StateDir,
			RunID:    r.runID,
			Logger:   r.log,
			// An external migrator (Liquibase over JDBC, say) may not speak
			// Unix sockets: give it TCP.
			TCP: r.migCmd != nil,
		})
		if err != nil {
			return fmt.Errorf("start sandbox: %w", err)
		}
		r.sb, r.binDir = c, c.BinDir()
	}
	r.log.Info("sandbox ready", "sandbox", r.sb.Name(), "tenants", len(r.tenants), "parallel", r.opts.Parallel,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// dbName is the sandbox database of a tenant's role.
func dbName(tenant, role string) string { return tenant + "_" + role }

// migrationDSN is the connection string the migrator gets for db: over TCP
// for an external command on a local cluster, else the sandbox's own.
func (r *runner) migrationDSN(db string) string {
	if r.migCmd != nil {
		if t, ok := r.sb.(interface{ TCPDSN(string) string }); ok {
			if dsn := t.TCPDSN(db); dsn != "" {
				return dsn
			}
		}
	}
	return r.sb.DSN(db)
}
