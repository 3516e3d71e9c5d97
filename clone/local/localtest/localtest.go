// Package localtest starts throwaway PostgreSQL clusters for tests, through
// the same clone/local backend that dbtwin users run. There is no mock: a
// test that needs a database gets a real one, and its cleanup removes it.
package localtest

import (
	"context"
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
