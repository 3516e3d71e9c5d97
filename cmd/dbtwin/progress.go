package main

import (
	"io"
	"log/slog"
	"sync"

	"github.com/dbtwin/dbtwin/internal/progress"
)

// withProgress returns the command's logger re-pointed so its lines print
// above the progress bars on a terminal, and the progress renderer (bars on
// a terminal, log lines elsewhere). Close the renderer when the work ends.
func withProgress(e *env, c *common) (*slog.Logger, *progress.Renderer, error) {
	sw := &switchWriter{w: e.stderr}
	log, err := c.loggerTo(sw)
	if err != nil {
		return nil, nil, err
	}
	r := progress.New(e.stderr, progress.IsTerminal(e.stderr), log)
	sw.set(r.Writer())
	return log, r, nil
}

// switchWriter lets the logger be built before the renderer it writes
// through exists.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) { s.mu.Lock(); s.w = w; s.mu.Unlock() }

func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(b)
}
