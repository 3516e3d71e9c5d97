package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestCounterPlainLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	c := NewCounter(&buf, false, log, "replay baseline")
	clock := time.Unix(0, 0)
	c.now = func() time.Time { return clock }
	c.start, c.lastLog = clock, clock
	c.Update(10, 100) // too soon for a line
	clock = clock.Add(11 * time.Second)
	c.Update(50, 100) // a progress line, with rate and ETA
	c.Update(60, 100) // too soon again
	clock = clock.Add(time.Second)
	c.Update(100, 100)
	c.Close()
	c.Close()
	out := buf.String()
	if n := strings.Count(out, "msg=progress"); n != 1 {
		t.Errorf("%d progress lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "done=50") || !strings.Contains(out, "eta=11s") {
		t.Errorf("progress line lacks done/eta:\n%s", out)
	}
	if n := strings.Count(out, "msg=done"); n != 1 || !strings.Contains(out, "done=100") {
		t.Errorf("want one final line with done=100:\n%s", out)
	}
}
