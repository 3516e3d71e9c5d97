// Package localtest starts throwaway PostgreSQL clusters for tests, through
// the same clone/local backend that dbtwin users run. There is no mock: a
// test that needs a database gets a real one, and its cleanup removes it.
package localtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
)

// Start starts a cluster for the test and registers its teardown with
// t.Cleanup before checking for errors, so nothing is left behind even when
// the test fails. It fails the test with the reason (and what to install) if
// PostgreSQL binaries are missing.
func Start(t testing.TB, opts ...func(*local.Config)) *local.Cluster {
	t.Helper()
	var cfg local.Config
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := local.Start(ctx, cfg)
	if c != nil {
		t.Cleanup(func() {
			if err := c.Close(context.Background()); err != nil {
				t.Errorf("tear down sandbox: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("start a local PostgreSQL sandbox: %v", err)
	}
	return c
}

// WithTCP makes the cluster listen on 127.0.0.1 with a password too.
func WithTCP(c *local.Config) { c.TCP = true }

// StateDir returns a fresh state directory of the test's own, under the
// default one (short enough for Unix socket paths, traversable by the
// server's user), and removes it — with any cluster still registered in it —
// when the test ends. Tests that list or garbage-collect sandboxes use it so
// that concurrent test runs on one machine never see each other's clusters.
func StateDir(t testing.TB) string {
	t.Helper()
	parent := local.DefaultStateDir()
	if err := os.MkdirAll(parent, 0o711); err != nil {
		t.Fatalf("create state directory: %v", err)
	}
	dir, err := os.MkdirTemp(parent, "t-")
	if err != nil {
		t.Fatalf("create state directory: %v", err)
	}
	// The server's user must traverse it when tests run as root.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatalf("create state directory: %v", err)
	}
	t.Cleanup(func() {
		_, _ = local.GC(context.Background(), dir, local.GCOptions{IncludeKept: true})
		for _, r := range mustList(dir) {
			_ = local.Down(context.Background(), dir, r.Name)
		}
		os.RemoveAll(dir)
	})
	return dir
}

func mustList(dir string) []local.Record {
	recs, _ := local.List(dir)
	return recs
}
