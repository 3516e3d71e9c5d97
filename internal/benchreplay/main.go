// Command benchreplay measures dbtwin's replay engine against pgreplay, in
// one run on one machine, on workloads pgreplay can finish:
//
//	tpcb    pgbench tpcb-like, 1 client (pgreplay hangs on more: lock waits)
//	select  pgbench select-only (-S), 4 clients
//
// For each it starts from a pgbench-initialised database, captures the
// workload with log_statement=all into a csvlog and a stderr log
// (log_line_prefix '%m|%u|%d|%c|', as pgreplay wants), then replays it into
// identical fresh copies: with dbtwin (in each --modes mode, reading the
// csvlog, every result hashed and written to a results file) and with
// pgreplay (-j -s 1000: as fast as it goes, reading the csvlog with -c, or
// the stderr log if that fails). --repeat rounds interleave the tools so
// that noise from other work on the machine spreads over all of them.
//
// It prints, per tool, statements per second (best and median round), the
// ratio to pgreplay, the replaying process's CPU time per statement and its
// peak RSS (dbtwin replays in a child process of this program, so the
// figures are the replay's alone), and checks that dbtwin and pgreplay left
// the same pgbench_accounts.
//
// The defaults capture about 450,000 statements per workload: 30 s or more
// of replay at pgreplay's 10,000–20,000 statements/s on a 2-core machine.
// Run it with `go run ./internal/benchreplay` (needs pgbench next to the
// server binaries and Debian's pgreplay: apt-get install pgreplay).
//
// With --rss-statements N it measures memory instead: it captures a csvlog
// of at least N statements (pgbench select-only, 4 clients, log_statement=
// all; no pgreplay involved), replays it with dbtwin alone (each --modes
// mode, in a child process reading the csvlog and writing every result,
// hashed, to a results file), and prints the child's peak RSS: the
// kernel's ru_maxrss of the child, and the VmHWM the child read from
// /proc/self/status just before it exited (the same high-water mark, seen
// from inside). The target is under 256 MB for a 1-million-statement log.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/replay"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type config struct {
	scale      int
	tpcbTx     int
	selectTx   int
	workloads  []string
	modes      []replay.Mode
	pgreplay   string
	speed      string
	cpuProfile string
	repeat     int
	gomaxprocs int
	rssStmts   int
}

func main() {
	var cfg config
	var workloads, modes string
	flag.IntVar(&cfg.scale, "scale", 10, "pgbench scale factor of the starting database")
	flag.IntVar(&cfg.tpcbTx, "tpcb-tx", 65000, "transactions of the tpcb-like capture (1 client, 7 statements each)")
	flag.IntVar(&cfg.selectTx, "select-tx", 110000, "transactions per client of the select-only capture (4 clients, 1 statement each)")
	flag.StringVar(&workloads, "workloads", "tpcb,select", "workloads to run: tpcb, select")
	flag.StringVar(&modes, "modes", "ordered,concurrent", "dbtwin replay modes to measure: ordered, concurrent")
	flag.StringVar(&cfg.pgreplay, "pgreplay", "pgreplay", "the pgreplay program")
	flag.StringVar(&cfg.speed, "pgreplay-speed", "1000", "pgreplay -s speed factor (with -j: as fast as it goes)")
	flag.IntVar(&cfg.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of the dbtwin replay process (0: Go's default)")
	flag.IntVar(&cfg.repeat, "repeat", 1, "rounds of replays (best and median are reported)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of each dbtwin replay to this file prefix")
	flag.IntVar(&cfg.rssStmts, "rss-statements", 0, "measure dbtwin's peak RSS replaying a csvlog of at least this many statements (pgbench select-only) instead of comparing with pgreplay; 0: off")
	child := flag.String("child", "", "internal: replay one workload in this process: csv|database|target DSN|mode")
	flag.Parse()
	if *child != "" {
		if err := runChild(context.Background(), *child, cfg.cpuProfile); err != nil {
			fmt.Fprintln(os.Stderr, "benchreplay child:", err)
			os.Exit(2)
		}
		return
	}
	cfg.workloads = strings.Split(workloads, ",")
	for _, m := range strings.Split(modes, ",") {
		cfg.modes = append(cfg.modes, replay.Mode(m))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if cfg.rssStmts > 0 {
		err = runRSS(ctx, cfg, os.Stdout)
	} else {
		err = run(ctx, cfg, os.Stdout)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreplay:", err)
		os.Exit(2)
	}
}

type row struct {
	workload, tool string
	statements     int64
	wall           time.Duration // best of the rounds
	median         time.Duration // median of the rounds
	peakRSS        int64         // KiB, the largest of the rounds
	vmHWM          int64         // KiB, VmHWM the dbtwin child reported for itself
	cpu            time.Duration // user+system CPU time of the replaying process (median round)
	note           string
}

// summarize folds the rounds of one tool into one row.
func summarize(rs []row) row {
	walls := make([]time.Duration, len(rs))
	cpus := make([]time.Duration, len(rs))
	out := rs[0]
	for i, r := range rs {
		walls[i], cpus[i] = r.wall, r.cpu
		out.peakRSS = max(out.peakRSS, r.peakRSS)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	out.wall, out.median, out.cpu = walls[0], walls[len(walls)/2], cpus[len(cpus)/2]
	return out
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	pgreplay, err := exec.LookPath(cfg.pgreplay)
	if err != nil {
		return fmt.Errorf("find pgreplay: %w (apt-get install pgreplay)", err)
	}
	c, err := local.Start(ctx, local.Config{Settings: map[string]string{
		"logging_collector":  "on",
		"log_destination":    "stderr,csvlog",
		"log_directory":      "log",
		"log_filename":       "bench-%Y%m%d-%H%M%S.log",
		"log_rotation_size":  "0",
		"log_rotation_age":   "0",
		"log_line_prefix":    "%m|%u|%d|%c|",
		"log_connections":    "on",
		"log_disconnections": "on",
		"log_min_messages":   "error",
		"lc_messages":        "C",
		"max_connections":    "50",
	}})
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	pgbench := filepath.Join(c.BinDir(), "pgbench")
	sock, err := pgconn.ParseConfig(c.DSN("postgres"))
	if err != nil {
		return err
	}
	logDir := filepath.Join(c.Record().DataDir(), "log")
	fmt.Fprintf(out, "benchreplay: PostgreSQL %d sandbox %s, pgbench scale %d\n", c.Major(), c.Name(), cfg.scale)

	if err := c.CreateDatabase(ctx, "base"); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, pgbench, "-h", sock.Host, "-p", strconv.Itoa(int(sock.Port)), "-U", local.Superuser,
		"-i", "-q", "-s", strconv.Itoa(cfg.scale), "base"); err != nil {
		return err
	}

	var rows []row
	for _, w := range cfg.workloads {
		var args []string
		switch w {
		case "tpcb":
			args = []string{"-n", "-c", "1", "-t", strconv.Itoa(cfg.tpcbTx)}
		case "select":
			args = []string{"-n", "-S", "-c", "4", "-j", "2", "-t", strconv.Itoa(cfg.selectTx)}
		default:
			return fmt.Errorf("unknown workload %q (want tpcb or select)", w)
		}
		db := "cap_" + w
		if err := c.CreateDatabaseFromTemplate(ctx, db, "base"); err != nil {
			return err
		}
		if err := execSQL(ctx, c.DSN("postgres"), fmt.Sprintf("ALTER DATABASE %s SET log_statement = 'all'", db)); err != nil {
			return err
		}
		fmt.Fprintf(out, "capturing %s: pgbench %s\n", w, strings.Join(args, " "))
		start := time.Now()
		files, err := captureLogs(ctx, c, logDir, func() error {
			return runCmd(ctx, nil, pgbench, append([]string{"-h", sock.Host, "-p", strconv.Itoa(int(sock.Port)), "-U", local.Superuser}, append(args, db)...)...)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "captured %s in %s: %s\n", w, time.Since(start).Round(time.Millisecond), strings.Join(files, ", "))
		csv, stderrLog := pick(files, ".csv"), pick(files, ".log")
		if csv == "" || stderrLog == "" {
			return fmt.Errorf("capture %s: want a .csv and a .log file, got %v", w, files)
		}

		// Each round replays with dbtwin (each mode) and with pgreplay, into
		// fresh copies of the starting state; rounds interleave the tools so
		// that noise from other work on the machine spreads over all.
		samples := map[string][]row{}
		var tools []string
		var stmts int64
		for round := 1; round <= cfg.repeat; round++ {
			for _, mode := range cfg.modes {
				target := fmt.Sprintf("dbtwin_%s_%s", w, mode)
				if err := c.DropDatabase(ctx, target); err != nil {
					return err
				}
				if err := c.CreateDatabaseFromTemplate(ctx, target, "base"); err != nil {
					return err
				}
				r, err := replayDbtwin(ctx, cfg, csv, db, c.DSN(target), mode)
				if err != nil {
					return err
				}
				r.workload = w
				stmts = r.statements
				if samples[r.tool] == nil {
					tools = append(tools, r.tool)
				}
				samples[r.tool] = append(samples[r.tool], r)
			}
			// pgreplay replays into the database named in the log: make it
			// the starting state again (without log_statement).
			if err := c.DropDatabase(ctx, db); err != nil {
				return err
			}
			if err := c.CreateDatabaseFromTemplate(ctx, db, "base"); err != nil {
				return err
			}
			r, err := replayPgreplay(ctx, pgreplay, cfg.speed, sock.Host, int(sock.Port), csv, stderrLog)
			if err != nil {
				return err
			}
			r.workload, r.statements = w, stmts
			if samples[r.tool] == nil {
				tools = append(tools, r.tool)
			}
			samples[r.tool] = append(samples[r.tool], r)
			fmt.Fprintf(out, "%s round %d:", w, round)
			for _, t := range tools {
				rs := samples[t]
				fmt.Fprintf(out, " %s %.0f/s", t, float64(stmts)/rs[len(rs)-1].wall.Seconds())
			}
			fmt.Fprintln(out)
		}
		for _, t := range tools {
			rows = append(rows, summarize(samples[t]))
		}

		if len(cfg.modes) > 0 {
			dbtwinDB := fmt.Sprintf("dbtwin_%s_%s", w, cfg.modes[0])
			a, err1 := queryString(ctx, c.DSN(dbtwinDB), "SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts")
			b, err2 := queryString(ctx, c.DSN(db), "SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts")
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			same := "yes"
			if a != b {
				same = "NO"
			}
			fmt.Fprintf(out, "%s: pgbench_accounts after dbtwin and after pgreplay equal: %s\n", w, same)
		}
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\nworkload\ttool\tstatements\tbest wall\tbest stmts/s\tmedian stmts/s\tbest vs pgreplay\tmedian vs pgreplay\tCPU µs/stmt\tpeak RSS\t\n")
	for _, r := range rows {
		var base row
		for _, b := range rows {
			if b.workload == r.workload && b.tool == "pgreplay" {
				base = b
			}
		}
		rss := "-"
		if r.peakRSS > 0 {
			rss = fmt.Sprintf("%.0f MB", float64(r.peakRSS)/1024)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.0f\t%.0f\t%.2fx\t%.2fx\t%.1f\t%s\t\n", r.workload, r.tool, r.statements, r.wall.Round(time.Millisecond),
			float64(r.statements)/r.wall.Seconds(), float64(r.statements)/r.median.Seconds(),
			base.wall.Seconds()/r.wall.Seconds(), base.median.Seconds()/r.median.Seconds(),
			float64(r.cpu.Microseconds())/float64(r.statements), rss)
	}
	tw.Flush()
	for _, r := range rows {
		if r.note != "" {
			fmt.Fprintf(out, "%s %s: %s\n", r.workload, r.tool, r.note)
		}
	}
	return nil
}

// captureLogs rotates the server log, runs capture, rotates again, and
// returns the log files written in between.
func captureLogs(ctx context.Context, c *local.Cluster, dir string, capture func() error) ([]string, error) {
	rotate := func() error {
		time.Sleep(1100 * time.Millisecond) // log_filename has second resolution
		return execSQL(ctx, c.DSN("postgres"), "SELECT pg_rotate_logfile()")
	}
	if err := rotate(); err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond)
	before, _ := filepath.Glob(filepath.Join(dir, "bench-*"))
	if err := capture(); err != nil {
		return nil, err
	}
	if err := rotate(); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond)
	after, _ := filepath.Glob(filepath.Join(dir, "bench-*"))
	// The capture went to the newest files of before (opened by the first
	// rotation); the second rotation opened files that are not in before.
	var newest string
	for _, f := range before {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".csv"), ".log")
		newest = max(newest, name)
	}
	var files []string
	for _, f := range after {
		if strings.HasPrefix(filepath.Base(f), newest+".") {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	return files, nil
}

func pick(files []string, ext string) string {
	for _, f := range files {
		if strings.HasSuffix(f, ext) {
			return f
		}
	}
	return ""
}

// replayDbtwin replays the csvlog's statements in database db into target
// in a child process (this program with -child), so that its peak RSS is
// the replay's alone.
func replayDbtwin(ctx context.Context, cfg config, csv, db, target string, mode replay.Mode) (row, error) {
	self, err := os.Executable()
	if err != nil {
		return row{}, err
	}
	prof := ""
	if cfg.cpuProfile != "" {
		prof = fmt.Sprintf("%s-%s-%s.pprof", cfg.cpuProfile, db, mode)
	}
	cmd := exec.CommandContext(ctx, self, "-cpuprofile", prof, "-child", strings.Join([]string{csv, db, target, string(mode)}, "|"))
	if cfg.gomaxprocs > 0 {
		cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", cfg.gomaxprocs))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return row{}, fmt.Errorf("dbtwin replay: %w\n%s", err, tail(stderr.String(), 10))
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		return row{}, fmt.Errorf("dbtwin replay: read child result %q: %w", out, err)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return row{tool: "dbtwin " + string(mode), statements: res.Statements, wall: res.Wall, peakRSS: rss, vmHWM: res.VmHWM, cpu: cpu, note: res.Note}, nil
}

type childResult struct {
	Statements int64         `json:"statements"`
	Wall       time.Duration `json:"wall"`
	Note       string        `json:"note"`
	VmHWM      int64         `json:"vmhwm_kib"` // the child's /proc/self/status VmHWM at the end, KiB
}

// runChild replays one workload and prints a childResult.
func runChild(ctx context.Context, spec, cpuProfile string) error {
	parts := strings.Split(spec, "|")
	if len(parts) != 4 {
		return fmt.Errorf("bad -child %q", spec)
	}
	csv, db, target, mode := parts[0], parts[1], parts[2], replay.Mode(parts[3])
	resultsFile, err := os.CreateTemp("", "benchreplay-results-*.jsonl")
	if err != nil {
		return err
	}
	defer os.Remove(resultsFile.Name())
	defer resultsFile.Close()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	start := time.Now()
	src, err := replay.Open(ctx, csv, replay.ReaderOptions{Format: replay.FormatCSVLog, Filter: replay.Filter{Databases: []string{db}}})
	if err != nil {
		return err
	}
	defer src.Close()
	w, err := replay.NewResultsWriter(resultsFile, replay.ResultsHeader{Mode: mode})
	if err != nil {
		return err
	}
	st, err := replay.Replay(ctx, src, target, replay.EngineOptions{Mode: mode}, w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	wall := time.Since(start)
	if err != nil {
		return err
	}
	fi, _ := resultsFile.Stat()
	note := fmt.Sprintf("%d ok, %d errors, %d lock waits, results file %.0f MB, reader: %d warnings",
		st.OK, st.Errors, st.LockWaits, float64(fi.Size())/1e6, src.Stats().WarningCount)
	return json.NewEncoder(os.Stdout).Encode(childResult{Statements: st.Statements, Wall: wall, Note: note, VmHWM: selfVmHWM()})
}

// selfVmHWM is this process's peak resident set size so far (VmHWM in
// /proc/self/status), in KiB; 0 where there is no /proc.
func selfVmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// runRSS captures a csvlog of at least cfg.rssStmts statements (pgbench
// select-only, 4 clients) and replays it with dbtwin in each mode, in a
// child process, printing the child's peak RSS.
func runRSS(ctx context.Context, cfg config, out io.Writer) error {
	c, err := local.Start(ctx, local.Config{Settings: map[string]string{
		"logging_collector":  "on",
		"log_destination":    "csvlog",
		"log_directory":      "log",
		"log_filename":       "bench-%Y%m%d-%H%M%S.log",
		"log_rotation_size":  "0",
		"log_rotation_age":   "0",
		"log_connections":    "on",
		"log_disconnections": "on",
		"log_min_messages":   "error",
		"lc_messages":        "C",
	}})
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	pgbench := filepath.Join(c.BinDir(), "pgbench")
	sock, err := pgconn.ParseConfig(c.DSN("postgres"))
	if err != nil {
		return err
	}
	conn := []string{"-h", sock.Host, "-p", strconv.Itoa(int(sock.Port)), "-U", local.Superuser}
	fmt.Fprintf(out, "benchreplay: peak RSS for a %d-statement log; PostgreSQL %d sandbox %s\n", cfg.rssStmts, c.Major(), c.Name())
	if err := c.CreateDatabase(ctx, "base"); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, pgbench, append(conn, "-i", "-q", "-s", "1", "base")...); err != nil {
		return err
	}
	const db = "cap_rss"
	if err := c.CreateDatabaseFromTemplate(ctx, db, "base"); err != nil {
		return err
	}
	if err := execSQL(ctx, c.DSN("postgres"), fmt.Sprintf("ALTER DATABASE %s SET log_statement = 'all'", db)); err != nil {
		return err
	}
	perClient := (cfg.rssStmts + 3) / 4
	args := []string{"-n", "-S", "-c", "4", "-j", "2", "-t", strconv.Itoa(perClient)}
	fmt.Fprintf(out, "capturing: pgbench %s\n", strings.Join(args, " "))
	start := time.Now()
	files, err := captureLogs(ctx, c, filepath.Join(c.Record().DataDir(), "log"), func() error {
		return runCmd(ctx, nil, pgbench, append(conn, append(args, db)...)...)
	})
	if err != nil {
		return err
	}
	csv := pick(files, ".csv")
	if csv == "" {
		return fmt.Errorf("capture: no .csv among %v", files)
	}
	fi, err := os.Stat(csv)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "captured in %s: %s, %.0f MB\n", time.Since(start).Round(time.Millisecond), csv, float64(fi.Size())/1e6)

	for _, mode := range cfg.modes {
		target := "rss_" + string(mode)
		if err := c.CreateDatabaseFromTemplate(ctx, target, "base"); err != nil {
			return err
		}
		r, err := replayDbtwin(ctx, cfg, csv, db, c.DSN(target), mode)
		if err != nil {
			return err
		}
		verdict := "under"
		if max(r.peakRSS, r.vmHWM) >= 256*1024 {
			verdict = "NOT under"
		}
		fmt.Fprintf(out, "dbtwin %s: %d statements in %s (%.0f/s); peak RSS %.1f MB (ru_maxrss), VmHWM %.1f MB: %s the 256 MB target\n  %s\n",
			mode, r.statements, r.wall.Round(time.Millisecond), float64(r.statements)/r.wall.Seconds(),
			float64(r.peakRSS)/1024, float64(r.vmHWM)/1024, verdict, r.note)
		if r.statements < int64(cfg.rssStmts) {
			fmt.Fprintf(out, "  note: the log held %d statements, fewer than the %d asked for\n", r.statements, cfg.rssStmts)
		}
		if err := c.DropDatabase(ctx, target); err != nil {
			return err
		}
	}
	return nil
}

// replayPgreplay replays the log with pgreplay, from the csvlog or, if
// pgreplay cannot parse that, from the stderr log.
func replayPgreplay(ctx context.Context, pgreplay, speed, host string, port int, csv, stderrLog string) (row, error) {
	var lastErr error
	for _, input := range []struct {
		args []string
		name string
	}{
		{[]string{"-c", csv}, "csvlog"},
		{[]string{stderrLog}, "stderr log"},
	} {
		args := append([]string{"-h", host, "-p", strconv.Itoa(port), "-j", "-s", speed}, input.args...)
		cmd := exec.CommandContext(ctx, pgreplay, args...)
		var outBuf strings.Builder
		cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if err != nil {
			lastErr = fmt.Errorf("pgreplay %s: %w\n%s", strings.Join(args, " "), err, tail(outBuf.String(), 10))
			continue
		}
		var rss int64
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return row{tool: "pgreplay", wall: wall, peakRSS: rss, cpu: cpu, note: "from the " + input.name + ": " + oneLine(tail(outBuf.String(), 12))}, nil
	}
	return row{}, lastErr
}

func runCmd(ctx context.Context, env []string, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(prog), strings.Join(args, " "), err, tail(string(out), 10))
	}
	return nil
}

func execSQL(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func queryString(ctx context.Context, dsn, sql string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var s string
	err = conn.QueryRow(ctx, sql).Scan(&s)
	return s, err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
