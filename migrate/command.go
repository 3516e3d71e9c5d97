package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Command is an external migrator (liquibase update, atlas migrate apply,
// sqitch deploy, the application's own) run against the clone.
//
// The clone's connection details reach it through placeholders in Argv
// and Env — {{dsn}} (the DSN as given), {{url}} (as a postgres:// URL),
// {{host}}, {{port}}, {{user}}, {{password}}, {{dbname}}, and {{version}}
// (the target of ApplyUpTo) — and through the environment variables
// DBTWIN_DSN (the DSN) and DATABASE_URL (the URL), which are always set.
// Reports and logs show Argv with its placeholders, never expanded.
type Command struct {
	// Name labels the command in reports; default Argv[0].
	Name string
	// Argv is the program and its arguments, e.g.
	// {"atlas", "migrate", "apply", "--url", "{{url}}", "--dir", "file://migrations"}.
	Argv []string
	// Env adds KEY=VALUE pairs to dbtwin's own environment.
	Env []string
	// Dir is the working directory; default the current one.
	Dir string
	// Timeout bounds the run; 0 means only ctx does.
	Timeout time.Duration
}

var rePlaceholder = regexp.MustCompile(`\{\{\s*([a-z_]+)\s*\}\}`)

var placeholders = map[string]bool{"dsn": true, "url": true, "host": true, "port": true, "user": true, "password": true, "dbname": true, "version": true}

func (c *Command) validate() error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("command: empty argv")
	}
	for _, s := range append(append([]string(nil), c.Argv...), c.Env...) {
		for _, m := range rePlaceholder.FindAllStringSubmatch(s, -1) {
			if !placeholders[m[1]] {
				return fmt.Errorf("command: unknown placeholder {{%s}} (known: dsn, url, host, port, user, password, dbname, version)", m[1])
			}
		}
	}
	for _, e := range c.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("command: environment entry %q is not KEY=VALUE", e)
		}
	}
	return nil
}

func (c *Command) label() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Argv[0]
}

// usesVersion reports whether {{version}} appears anywhere.
func (c *Command) usesVersion() bool {
	for _, s := range append(append([]string(nil), c.Argv...), c.Env...) {
		for _, m := range rePlaceholder.FindAllStringSubmatch(s, -1) {
			if m[1] == "version" {
				return true
			}
		}
	}
	return false
}

// dsnVars computes the placeholder values for dsn.
func dsnVars(dsn string) (map[string]string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN %s: %w", pgdsn.Redact(dsn), err)
	}
	v := map[string]string{
		"dsn":      dsn,
		"host":     cfg.Host,
		"port":     strconv.Itoa(int(cfg.Port)),
		"user":     cfg.User,
		"password": cfg.Password,
		"dbname":   cfg.Database,
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		v["url"] = dsn
	} else {
		u := url.URL{Scheme: "postgres", Path: "/" + cfg.Database}
		q := url.Values{}
		if cfg.Password != "" {
			u.User = url.UserPassword(cfg.User, cfg.Password)
		} else {
			u.User = url.User(cfg.User)
		}
		if strings.HasPrefix(cfg.Host, "/") {
			q.Set("host", cfg.Host)
			q.Set("port", v["port"])
		} else {
			u.Host = cfg.Host + ":" + v["port"]
		}
		if cfg.TLSConfig == nil {
			q.Set("sslmode", "disable")
		}
		u.RawQuery = q.Encode()
		v["url"] = u.String()
	}
	return v, nil
}

func expand(s string, vars map[string]string) string {
	return rePlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		return vars[rePlaceholder.FindStringSubmatch(m)[1]]
	})
}

// scrub removes secrets from command output.
func scrub(s string, vars map[string]string) string {
	for _, k := range []string{"dsn", "url"} {
		if v := vars[k]; v != "" {
			s = strings.ReplaceAll(s, v, pgdsn.Redact(v))
		}
	}
	if p := vars["password"]; len(p) >= 4 {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}

// tailWriter keeps the last n bytes written to it.
type tailWriter struct {
	n   int
	buf []byte
}

// Write keeps the tail of p.
func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.n {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.n:]...)
	}
	return len(p), nil
}

// runCommand runs the external migrator as one "statement": locks of
// every other backend of the database are sampled while it runs, tables
// are snapshotted before and after.
func (m *Migrator) runCommand(ctx context.Context, upTo string) (*Report, error) {
	c := m.cfg.Command
	if upTo != "" && !c.usesVersion() {
		return nil, fmt.Errorf("apply migrations up to %s with %s: the command has no {{version}} placeholder", upTo, c.label())
	}
	vars, err := dsnVars(m.cfg.DSN)
	if err != nil {
		return nil, err
	}
	vars["version"] = upTo
	target := pgdsn.Describe(m.cfg.DSN)
	conn, err := pgx.Connect(ctx, m.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep := &Report{
		Format:         "command",
		Source:         scrub(strings.Join(c.Argv, " "), vars), // placeholders stay; literal secrets go
		Target:         target,
		UpTo:           upTo,
		SampleInterval: m.o.interval,
		Migrations:     []MigrationResult{},
	}
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&rep.ServerVersion); err != nil {
		return nil, fmt.Errorf("read server version of %s: %w", target, err)
	}
	known, err := userRelations(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("list relations of %s: %w", target, err)
	}
	before, err := snapshotFilenodes(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("snapshot tables of %s: %w", target, err)
	}
	// Every table is a candidate: count them all before (exact up to the
	// size limit), report those the command locked or rewrote.
	var all []countTarget
	for oid, f := range before {
		all = append(all, countTarget{oid: oid, name: f.name})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	rowsBefore, estBefore, err := countRows(ctx, conn, all, m.o.exactBytes)
	if err != nil {
		return nil, fmt.Errorf("count rows of %s: %w", target, err)
	}

	w, err := startWatcher(ctx, m.cfg.DSN, []uint32{conn.PgConn().PID()}, true, m.o.interval, m.o.log)
	if err != nil {
		return nil, err
	}
	tr := newLockTracker()
	w.track(tr)

	runCtx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	argv := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		argv[i] = expand(a, vars)
	}
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "DBTWIN_DSN="+vars["dsn"], "DATABASE_URL="+vars["url"])
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, expand(e, vars))
	}
	out := &tailWriter{n: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	m.o.log.Info("run migration command", "command", rep.Source, "target", target)

	tr.begin(0)
	t0 := time.Now()
	runErr := cmd.Run()
	d := time.Since(t0)
	tr.end(0, d)
	tr.txEnd(0, 0)
	w.stop()

	res := MigrationResult{Version: upTo, Name: c.label(), Duration: d, Output: scrub(string(bytes.ToValidUTF8(out.buf, nil)), vars)}
	sr := StatementResult{SQL: oneLine(rep.Source, 200), Duration: d}
	if locks := tr.result(known); len(locks[0]) > 0 {
		sr.Locks = locks[0]
	}
	if after, err := snapshotFilenodes(ctx, conn); err == nil {
		sr.Rewritten = rewrittenTables(before, after)
	}
	touched := map[string]bool{}
	for _, l := range sr.Locks {
		if l.Kind == "table" || l.Kind == "partitioned table" || l.Kind == "materialized view" {
			touched[l.Relation] = true
		}
	}
	for _, t := range sr.Rewritten {
		touched[t] = true
	}
	var ts []countTarget
	for _, t := range all {
		if touched[t.name] {
			ts = append(ts, t)
		}
	}
	if len(ts) > 0 {
		sr.RowsBefore = map[string]int64{}
		for _, t := range ts {
			if n, ok := rowsBefore[t.name]; ok {
				sr.RowsBefore[t.name] = n
			}
		}
		var estAfter []string
		sr.RowsAfter, estAfter, _ = countRows(ctx, conn, ts, m.o.exactBytes)
		for _, e := range estBefore {
			if touched[e] {
				sr.RowsEstimated = append(sr.RowsEstimated, e)
			}
		}
		sr.RowsEstimated = mergeSorted(sr.RowsEstimated, estAfter)
	}
	rep.Duration = d
	if runErr != nil {
		if ctx.Err() == nil && runCtx.Err() != nil {
			runErr = fmt.Errorf("%w (timeout %v)", runErr, c.Timeout)
		}
		err := fmt.Errorf("run %s: %w", c.label(), runErr)
		if tail := lastLines(res.Output, 5); tail != "" {
			err = fmt.Errorf("run %s: %w: %s", c.label(), runErr, tail)
		}
		sr.Error = err.Error()
		res.Statements = []StatementResult{sr}
		res.Error = err.Error()
		rep.Migrations = append(rep.Migrations, res)
		m.o.log.Warn("migration command failed", "command", rep.Source, "err", err)
		return rep, &ApplyError{Failed: res, File: c.label(), Err: err}
	}
	res.Statements = []StatementResult{sr}
	rep.Migrations = append(rep.Migrations, res)
	m.o.log.Info("migration command done", "duration", d)
	return rep, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}
