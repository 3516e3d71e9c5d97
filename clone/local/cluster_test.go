package local_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
)

func TestClusterLifecycle(t *testing.T) {
	ctx := context.Background()
	c := localtest.Start(t)
	rec := c.Record()

	// Registered, with this process as the owner.
	recs, err := local.List(filepath.Dir(rec.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if !containsName(recs, c.Name()) {
		t.Fatalf("List does not show the running cluster %s", c.Name())
	}
	if !rec.OwnerAlive() {
		t.Fatalf("record says the owner (this test, pid %d) is gone", rec.OwnerPID)
	}

	// Throwaway settings are in force.
	conn, err := c.Conn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		"wal_level": "minimal", "max_wal_senders": "0", "server_encoding": "UTF8",
		"listen_addresses": "",
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("setting %s = %q, want %q", name, got, want)
		}
	}
	conn.Close(ctx)

	// Databases: create, fill, copy from template, drop.
	if err := c.CreateDatabase(ctx, "golden"); err != nil {
		t.Fatal(err)
	}
	exec1(t, c.DSN("golden"), "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
	if err := c.CreateDatabaseFromTemplate(ctx, "baseline", "golden"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c.DSN("baseline"), "SELECT count(*) FROM t"); n != 1000 {
		t.Fatalf("template copy has %d rows, want 1000", n)
	}
	if err := c.DropDatabase(ctx, "baseline"); err != nil {
		t.Fatal(err)
	}
	if err := c.DropDatabase(ctx, "baseline"); err != nil {
		t.Fatalf("dropping a missing database: %v", err)
	}
	if n := count(t, c.DSN("postgres"), "SELECT count(*) FROM pg_database WHERE datname = 'baseline'"); n != 0 {
		t.Fatal("baseline still exists after DropDatabase")
	}
	if err := c.CreateDatabaseFromTemplate(ctx, "x", "no_such_template"); err == nil {
		t.Fatal("CreateDatabaseFromTemplate with a missing template succeeded")
	}

	// Close stops the server and removes every file and the record.
	pid, running := rec.ServerPID()
	if !running {
		t.Fatal("record does not show a running server")
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(rec.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s still exists after Close (err=%v)", rec.Dir, err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("server pid %d still runs after Close", pid)
	}
	recs, _ = local.List(filepath.Dir(rec.Dir))
	if containsName(recs, c.Name()) {
		t.Error("record still listed after Close")
	}
}

func TestTCPWithPassword(t *testing.T) {
	ctx := context.Background()
	c := localtest.Start(t, localtest.WithTCP)
	dsn := c.TCPDSN("postgres")
	if dsn == "" {
		t.Fatal("TCPDSN is empty for a TCP cluster")
	}
	if n := count(t, dsn, "SELECT 1"); n != 1 {
		t.Fatal("query over TCP failed")
	}
	wrong := strings.Replace(dsn, "password=", "password=wrong", 1)
	if conn, err := pgx.Connect(ctx, wrong); err == nil {
		conn.Close(ctx)
		t.Fatal("connecting with a wrong password succeeded")
	}
}

// TestGCAfterCrash starts a cluster in a child process, kills the child with
// SIGKILL (no cleanup can run) and checks that the server died with its
// owner and that GC removes what is left.
func TestGCAfterCrash(t *testing.T) {
	if os.Getenv("DBTWIN_TEST_CRASH_CHILD") == "1" {
		crashChild()
		return
	}
	stateDir := localtest.StateDir(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestGCAfterCrash$")
	cmd.Env = append(os.Environ(), "DBTWIN_TEST_CRASH_CHILD=1", "DBTWIN_STATE_DIR="+stateDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf) // the child prints "ready" once its cluster runs
	if !strings.Contains(string(buf[:n]), "ready") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start a cluster: %q", buf[:n])
	}
	recs, err := local.List(stateDir)
	if err != nil || len(recs) != 1 {
		t.Fatalf("want 1 registered cluster, got %d (%v)", len(recs), err)
	}
	rec := recs[0]
	serverPID, running := rec.ServerPID()
	if !running {
		t.Fatal("child's server is not running")
	}

	// A live owner's cluster is not garbage.
	removed, err := local.GC(context.Background(), stateDir, local.GCOptions{})
	if err != nil || len(removed) != 0 {
		t.Fatalf("GC with a live owner removed %v (err %v)", removed, err)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if rec.OwnerAlive() {
		t.Fatal("owner reported alive after SIGKILL")
	}
	// The parent-death signal stops the server without anyone's help.
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(serverPID, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if syscall.Kill(serverPID, 0) == nil {
		t.Errorf("server pid %d outlived its killed owner", serverPID)
	}
	removed, err = local.GC(context.Background(), stateDir, local.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != rec.Name {
		t.Fatalf("GC removed %v, want [%s]", removed, rec.Name)
	}
	if _, err := os.Stat(rec.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("GC left %s behind", rec.Dir)
	}
}

func crashChild() {
	c, err := local.Start(context.Background(), local.Config{StateDir: os.Getenv("DBTWIN_STATE_DIR")})
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error())
		os.Exit(1)
	}
	_ = c
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Minute) // killed long before this
	os.Exit(0)
}

// TestKeptClusterSurvivesGC checks that a cluster started with Keep (what
// `dbtwin sandbox up` does) is left alone by GC and removed by Down.
func TestKeptClusterSurvivesGC(t *testing.T) {
	ctx := context.Background()
	stateDir := localtest.StateDir(t)
	c, err := local.Start(ctx, local.Config{StateDir: stateDir, Keep: true})
	if c != nil {
		t.Cleanup(func() { c.Close(ctx) })
	}
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the owner is gone, as it is once `sandbox up` has returned.
	rec := c.Record()
	rec.OwnerPID = 0
	rewrite(t, stateDir, rec)
	if removed, err := local.GC(ctx, stateDir, local.GCOptions{}); err != nil || len(removed) != 0 {
		t.Fatalf("GC removed a kept cluster: %v (err %v)", removed, err)
	}
	if err := local.Down(ctx, stateDir, c.Name()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rec.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Down left %s behind", rec.Dir)
	}
	if err := local.Down(ctx, stateDir, c.Name()); err == nil || !strings.Contains(err.Error(), "sandbox ls") {
		t.Errorf("Down of a missing sandbox: err = %v, want a hint to `sandbox ls`", err)
	}
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	_, err := local.Start(ctx, local.Config{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "--pg-bindir") {
		t.Errorf("Start with an empty bin dir: err = %v", err)
	}
	long := filepath.Join(os.TempDir(), strings.Repeat("x", 120))
	_, err = local.Start(ctx, local.Config{StateDir: long})
	if err == nil || !strings.Contains(err.Error(), "DBTWIN_STATE_DIR") {
		t.Errorf("Start with a too-long state dir: err = %v", err)
	}
	os.RemoveAll(long)
	_, err = local.Start(ctx, local.Config{Settings: map[string]string{"no_such_setting": "1"}})
	if err == nil || !strings.Contains(err.Error(), "no_such_setting") {
		t.Errorf("Start with a bad setting: err = %v; want the server's complaint", err)
	}
}

func rewrite(t *testing.T, stateDir string, rec local.Record) {
	t.Helper()
	if err := local.WriteRecordForTest(stateDir, rec); err != nil {
		t.Fatal(err)
	}
}

func containsName(recs []local.Record, name string) bool {
	for _, r := range recs {
		if r.Name == name {
			return true
		}
	}
	return false
}

func exec1(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, dsn, sql string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkStart measures how long a fresh cluster takes to accept
// connections (the initdb template is cached after the first one), and how
// long Close takes to stop and remove it.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	// Warm the initdb cache outside the timed loop.
	c, err := local.Start(ctx, local.Config{})
	if err != nil {
		b.Fatal(err)
	}
	c.Close(ctx)
	var closeTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := local.Start(ctx, local.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		start := time.Now()
		if err := c.Close(ctx); err != nil {
			b.Fatal(err)
		}
		closeTime += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(closeTime.Milliseconds())/float64(b.N), "close-ms/op")
}
