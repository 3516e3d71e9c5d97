package progress

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone"
)

// feed sends a clone's worth of events from several goroutines, as the
// copier does.
func feed(r *Renderer) {
	r.PhaseStart(clone.PhaseSchema)
	r.PhaseDone(clone.Phase{Name: clone.PhaseSchema, Duration: 1200 * time.Millisecond})
	r.PhaseStart(clone.PhaseData)
	plan := []clone.TableInfo{
		{Name: "public.orders", Bytes: 8 << 20, Chunks: 2},
		{Name: "Sales.Quarterly Report", Bytes: 3 << 20, Chunks: 1},
		{Name: "public.empty", Bytes: 0, Chunks: 1},
	}
	r.Start(plan)
	var wg sync.WaitGroup
	for _, t := range plan {
		wg.Go(func() {
			var sent int64
			// Stream more than estimated, in several steps.
			for sent < t.Bytes+t.Bytes/4 {
				r.Advance(t.Name, 1<<20)
				sent += 1 << 20
			}
			r.TableDone(clone.TableResult{Name: t.Name, Rows: sent / 100, Bytes: sent,
				Duration: 500 * time.Millisecond, Chunks: t.Chunks, Format: "binary"})
		})
	}
	wg.Wait()
	r.PhaseDone(clone.Phase{Name: clone.PhaseData, Duration: 2 * time.Second})
}

func TestPlain(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	r := New(&buf, false, logger)
	feed(r)
	r.Close()
	r.Close()
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="phase done" phase=schema duration=1.2s`,
		`level=INFO msg="copying tables" tables=3 bytes=11534336 size="11.0 MiB"`,
		`msg="table copied" table=public.orders rows=104857 bytes=10485760 duration=500ms MB/s=21.0 chunks=2 format=binary`,
		`msg="table copied" table="Sales.Quarterly Report" rows=41943 bytes=4194304`,
		`msg="table copied" table=public.empty rows=0 bytes=0`,
		`msg="phase done" phase=data duration=2s`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 6 {
		t.Errorf("%d lines, want 6 (a line per phase, the start, a line per table):\n%s", n, out)
	}
}

func TestTerminal(t *testing.T) {
	var buf syncBuffer
	r := New(&buf, true, nil)
	fmt.Fprintln(r.Writer(), "a log line while the bars are up")
	feed(r)
	r.Close()
	r.Close()
	fmt.Fprintln(r.Writer(), "a log line after Close")
	out := buf.String()
	for _, want := range []string{"✓ schema", "✓ data", "total", "100 %", "a log line while the bars are up", "a log line after Close"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, out)
		}
	}
	// Events after Close are ignored, not a panic or a hang.
	r.Advance("public.orders", 1)
	r.TableDone(clone.TableResult{Name: "public.orders"})
}

// One renderer, several clones in a row (the demo clones every tenant).
func TestTerminalSeveralClones(t *testing.T) {
	var buf syncBuffer
	r := New(&buf, true, nil)
	feed(r)
	feed(r)
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs after two clones")
	}
	if n := strings.Count(buf.String(), "✓ data"); n != 2 {
		t.Errorf("%d data phases shown, want 2", n)
	}
}

// A failed clone: Close with tables still running takes their bars down
// and returns.
func TestTerminalCloseMidCopy(t *testing.T) {
	var buf syncBuffer
	r := New(&buf, true, nil)
	r.PhaseStart(clone.PhaseData)
	r.Start([]clone.TableInfo{{Name: "a", Bytes: 100}, {Name: "b", Bytes: 100}})
	r.Advance("a", 10)
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs with a table bar still open")
	}
}

// Restore sends phases only.
func TestTerminalPhasesOnly(t *testing.T) {
	var buf syncBuffer
	r := New(&buf, true, nil)
	r.PhaseStart(clone.PhaseRestore)
	r.PhaseDone(clone.Phase{Name: clone.PhaseRestore, Duration: time.Second})
	r.Close()
	if !strings.Contains(buf.String(), "✓ restore") {
		t.Errorf("output: %q", buf.String())
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []any{&bytes.Buffer{}, f} {
		if IsTerminal(w.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("IsTerminal(%T) = true", w)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprint(b.buf.String())
}
