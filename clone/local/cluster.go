package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/internal/pgbin"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Superuser is the bootstrap superuser of every local cluster.
const Superuser = "dbtwin"

// Config says how to start a Cluster. The zero value is ready to use.
type Config struct {
	// BinDir holds initdb and postgres. Empty: found by pgbin.Find
	// (pg_config --bindir, PATH, /usr/lib/postgresql/*/bin; newest first).
	BinDir string
	// StateDir is where clusters and their records live. Empty:
	// DefaultStateDir().
	StateDir string
	// RunID labels the cluster with the run that started it. Empty: random.
	RunID string
	// OSUser is the unprivileged user the server runs as when this process
	// is root. Empty: $DBTWIN_PG_USER, else "postgres", else "nobody".
	OSUser string
	// TCP also makes the server listen on 127.0.0.1 on a free port, with a
	// random password (scram-sha-256). The Unix socket is always there.
	TCP bool
	// Keep makes the cluster outlive this process (dbtwin sandbox up): it is
	// not stopped when the process dies, and gc leaves it alone.
	Keep bool
	// Settings are extra server settings (name → value), applied after
	// the throwaway defaults.
	Settings map[string]string
	// Logger receives progress lines. Nil: discard.
	Logger *slog.Logger
}

// Cluster is a running throwaway PostgreSQL cluster. It implements
// clone.Sandbox. Close stops it and deletes every file it had.
type Cluster struct {
	rec      Record
	stateDir string
	bin      pgbin.Dir
	password string
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

var _ clone.Sandbox = (*Cluster)(nil)

// DefaultStateDir is where clusters live unless configured otherwise:
// $DBTWIN_STATE_DIR, else <temp dir>/dbtwin-<uid>. It is short on purpose:
// a Unix socket path must stay under about 100 bytes.
func DefaultStateDir() string {
	if d := os.Getenv("DBTWIN_STATE_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("dbtwin-%d", os.Getuid()))
}

// Start creates and starts a fresh cluster and waits until it accepts
// connections. The cluster is registered in the state directory before
// anything else happens, so even a crash halfway through leaves something
// that gc can find.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := pgbin.Find(ctx, cfg.BinDir, "initdb", "postgres")
	if err != nil {
		return nil, fmt.Errorf("start local sandbox: %w", err)
	}
	stateDir := cfg.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	owner, err := serverUser(cfg.OSUser)
	if err != nil {
		return nil, fmt.Errorf("start local sandbox: %w", err)
	}
	if err := ensureStateDir(stateDir, owner != nil); err != nil {
		return nil, fmt.Errorf("start local sandbox: %w", err)
	}
	runID := cfg.RunID
	if runID == "" {
		runID = clone.NewRunID()
	}
	name := "dbtwin-" + runID + "-" + randomHex(3)
	rec := Record{
		Name:     name,
		RunID:    runID,
		OwnerPID: os.Getpid(),
		Keep:     cfg.Keep,
		Dir:      filepath.Join(stateDir, name),
		Port:     5432,
		TCP:      cfg.TCP,
		BinDir:   bin.Path,
		Major:    bin.Major,
		OSUser:   currentUserName(),
		Created:  time.Now().UTC().Truncate(time.Second),
	}
	if owner != nil {
		rec.OSUser = owner.name
	}
	if st, ok := processStart(rec.OwnerPID); ok {
		rec.OwnerStart = st
	}
	if n := len(filepath.Join(rec.SocketDir(), ".s.PGSQL.65535")); n > 100 {
		return nil, fmt.Errorf("start local sandbox: state directory %s is too deep for a Unix socket path (%d bytes, limit ~100): set DBTWIN_STATE_DIR to a shorter path", stateDir, n)
	}
	if cfg.TCP {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("start local sandbox: pick a free port: %w", err)
		}
		rec.Port = port
	}
	if err := writeRecord(stateDir, rec); err != nil {
		return nil, fmt.Errorf("start local sandbox: %w", err)
	}
	c := &Cluster{rec: rec, stateDir: stateDir, bin: bin, log: log, exited: make(chan struct{})}
	start := time.Now()
	if err := c.start(ctx, cfg, owner); err != nil {
		_ = remove(context.WithoutCancel(ctx), stateDir, c.rec)
		return nil, fmt.Errorf("start local sandbox %s: %w", name, err)
	}
	log.Info("sandbox started", "name", name, "postgres", bin.Version, "dir", rec.Dir, "took", time.Since(start).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) start(ctx context.Context, cfg Config, owner *osUser) error {
	if err := os.Mkdir(c.rec.Dir, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(c.rec.SocketDir(), 0o700); err != nil {
		return err
	}
	tmpl, err := initdbTemplate(ctx, c.stateDir, c.bin, owner)
	if err != nil {
		return err
	}
	// cp -a keeps the template's owner and modes (the server insists on a
	// 0700 data directory owned by the user it runs as). GNU cp's
	// --reflink=auto makes it a copy-on-write clone on XFS, Btrfs or ZFS and
	// a plain copy elsewhere.
	cpArgs := []string{"-a", tmpl, c.rec.DataDir()}
	if runtime.GOOS == "linux" {
		cpArgs = append([]string{"--reflink=auto"}, cpArgs...)
	}
	if out, err := exec.CommandContext(ctx, "cp", cpArgs...).CombinedOutput(); err != nil {
		return fmt.Errorf("copy initdb template: %v: %s", err, bytes.TrimSpace(out))
	}
	hba := "# dbtwin throwaway cluster: the socket directory is private (0700).\n" +
		"local all all trust\n"
	if cfg.TCP {
		c.password = randomHex(16)
		hba += "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
	}
	if err := os.WriteFile(filepath.Join(c.rec.DataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	if owner != nil {
		for _, p := range []string{c.rec.Dir, c.rec.SocketDir(), filepath.Join(c.rec.DataDir(), "pg_hba.conf")} {
			if err := os.Chown(p, owner.uid, owner.gid); err != nil {
				return fmt.Errorf("hand %s to user %s: %w", p, owner.name, err)
			}
		}
	}

	settings := throwawaySettings(c.bin.Major)
	settings["port"] = strconv.Itoa(c.rec.Port)
	settings["unix_socket_directories"] = c.rec.SocketDir()
	settings["listen_addresses"] = ""
	if cfg.TCP {
		settings["listen_addresses"] = "127.0.0.1"
	}
	for k, v := range cfg.Settings {
		settings[k] = v
	}
	logf, err := os.OpenFile(c.rec.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	args := append([]string{"-D", c.rec.DataDir()}, settingArgs(settings)...)
	cmd := exec.Command(c.bin.Program("postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = sysProcAttr(owner, !cfg.Keep)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run postgres: %w", err)
	}
	c.cmd = cmd
	go func() { _ = cmd.Wait(); close(c.exited) }()
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	if c.password != "" {
		sql := "ALTER ROLE " + Superuser + " PASSWORD '" + c.password + "'"
		if err := clone.ExecMaintenance(ctx, c.DSN("postgres"), sql); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
	}
	return nil
}

// waitReady polls the socket until the server accepts a connection, the
// server exits, or ctx ends.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgconn.Connect(cctx, c.DSN("postgres"))
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited during startup; its log says:\n%s", tail(c.rec.LogFile(), 15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 60s (last error: %v); its log says:\n%s", err, tail(c.rec.LogFile(), 15))
		}
	}
}

// Name is the cluster's unique name ("dbtwin-<run id>-<suffix>").
func (c *Cluster) Name() string { return c.rec.Name }

// Record returns the cluster's registry record.
func (c *Cluster) Record() Record { return c.rec }

// Major is the server's PostgreSQL major version.
func (c *Cluster) Major() int { return c.bin.Major }

// BinDir is the directory of the PostgreSQL programs that run the cluster;
// client programs (pg_dump, psql) of the same version are there too.
func (c *Cluster) BinDir() string { return c.bin.Path }

// DSN returns a connection string for database db over the cluster's Unix
// socket, as the superuser. It carries no password (the socket directory is
// private to the server's user and to root).
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		pgdsn.Quote(c.rec.SocketDir()), c.rec.Port, Superuser, pgdsn.Quote(db))
}

// TCPDSN returns a connection string for database db over TCP on
// 127.0.0.1, with the cluster's password, or "" when the cluster was not
// started with TCP. Never log it unredacted.
func (c *Cluster) TCPDSN(db string) string {
	if !c.rec.TCP {
		return ""
	}
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable",
		c.rec.Port, Superuser, c.password, pgdsn.Quote(db))
}

// CreateDatabase creates an empty UTF8 database db.
func (c *Cluster) CreateDatabase(ctx context.Context, db string) error {
	if err := clone.ExecMaintenance(ctx, c.DSN("postgres"), clone.CreateDatabaseSQL(db, "", c.bin.Major)); err != nil {
		return fmt.Errorf("create database %q in sandbox %s: %w", db, c.rec.Name, err)
	}
	return nil
}

// CreateDatabaseFromTemplate creates db as a file-level copy of template.
func (c *Cluster) CreateDatabaseFromTemplate(ctx context.Context, db, template string) error {
	if err := clone.ExecMaintenance(ctx, c.DSN("postgres"), clone.CreateDatabaseSQL(db, template, c.bin.Major)); err != nil {
		return fmt.Errorf("create database %q from template %q in sandbox %s: %w", db, template, c.rec.Name, err)
	}
	return nil
}

// DropDatabase drops db, ending its sessions; a missing db is not an error.
func (c *Cluster) DropDatabase(ctx context.Context, db string) error {
	if err := clone.ExecMaintenance(ctx, c.DSN("postgres"), clone.DropDatabaseSQL(db, c.bin.Major)); err != nil {
		return fmt.Errorf("drop database %q in sandbox %s: %w", db, c.rec.Name, err)
	}
	return nil
}

// Close stops the server at once (immediate shutdown: nothing in it is worth
// a checkpoint) and removes the cluster's files and record. It is safe to
// call more than once and from a cancelled context's cleanup path.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		ctx := context.WithoutCancel(ctx)
		if c.cmd != nil && c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.exited
			}
		}
		c.closeErr = remove(ctx, c.stateDir, c.rec)
		if c.closeErr == nil {
			c.log.Info("sandbox removed", "name", c.rec.Name)
		}
	})
	return c.closeErr
}

// Conn opens a connection to database db in the cluster, for callers that
// need one quickly (tests, the CLI).
func (c *Cluster) Conn(ctx context.Context, db string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		return nil, fmt.Errorf("connect to database %q in sandbox %s: %w", db, c.rec.Name, err)
	}
	return conn, nil
}

type osUser struct {
	name     string
	uid, gid int
}

// serverUser returns the user the server must run as, or nil when this
// process is not root and the server simply runs as us.
func serverUser(want string) (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	cands := []string{want}
	if want == "" {
		cands = []string{os.Getenv("DBTWIN_PG_USER"), "postgres", "nobody"}
	}
	for _, n := range cands {
		if n == "" {
			continue
		}
		u, err := user.Lookup(n)
		if err != nil {
			if want != "" {
				return nil, fmt.Errorf("look up OS user %q to run postgres as (initdb refuses root): %w", want, err)
			}
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if uid == 0 {
			return nil, fmt.Errorf("OS user %q is root; PostgreSQL refuses to run as root: name an unprivileged user", n)
		}
		return &osUser{name: n, uid: uid, gid: gid}, nil
	}
	return nil, errors.New("running as root and no unprivileged OS user to run postgres as: create one (useradd postgres) or set DBTWIN_PG_USER")
}

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// ensureStateDir creates the state directory (private to us; traversable by
// the server's user when we are root) and refuses one that someone else owns.
func ensureStateDir(dir string, traversable bool) error {
	mode := os.FileMode(0o700)
	if traversable {
		mode = 0o711
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state directory %s belongs to uid %d, not to us: remove it or set DBTWIN_STATE_DIR", dir, st.Uid)
	}
	return os.Chmod(dir, mode)
}

// initdbTemplate returns a freshly initdb'ed data directory for this
// PostgreSQL installation, creating it once per state directory and version.
// Copying it takes a fraction of initdb's time, which is most of what makes
// a new cluster start in well under a second.
func initdbTemplate(ctx context.Context, stateDir string, bin pgbin.Dir, owner *osUser) (string, error) {
	key := fmt.Sprintf("initdb-%s-%s", bin.Version, shortHash(bin.Path))
	dir := filepath.Join(stateDir, "cache", key)
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	cache := filepath.Join(stateDir, "cache")
	if err := os.MkdirAll(cache, 0o711); err != nil {
		return "", fmt.Errorf("create initdb cache: %w", err)
	}
	work, err := os.MkdirTemp(cache, ".initdb-")
	if err != nil {
		return "", fmt.Errorf("create initdb cache: %w", err)
	}
	defer os.RemoveAll(work)
	if owner != nil {
		if err := os.Chown(work, owner.uid, owner.gid); err != nil {
			return "", fmt.Errorf("create initdb cache: %w", err)
		}
	}
	data := filepath.Join(work, "data")
	cmd := exec.CommandContext(ctx, bin.Program("initdb"),
		"--no-sync", "--auth=trust", "--username="+Superuser,
		"--encoding=UTF8", "--locale=C", "-D", data)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = sysProcAttr(owner, true)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, tailBytes(out, 15))
	}
	if err := os.Rename(data, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "PG_VERSION")); statErr == nil {
			return dir, nil // another process won the race
		}
		return "", fmt.Errorf("store initdb template: %w", err)
	}
	return dir, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

func shortHash(s string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return fmt.Sprintf("%08x", h)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tailBytes(b, n)
}

func tailBytes(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
