package progress

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Counter shows progress through a known or growing number of items (the
// statements of a replay): a bar with done/total, rate and ETA on a
// terminal; elsewhere a log line every LogEvery. Update is safe for
// concurrent use and cheap enough to call per item.
type Counter struct {
	label string
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	mu       sync.Mutex
	p        *mpb.Progress
	bar      *mpb.Bar
	start    time.Time
	lastLog  time.Time
	done     int64
	total    int64
	finished bool
}

// NewCounter returns a Counter for label ("replay baseline") writing to w:
// a bar when isTerminal, otherwise a log line through logger (nil: a text
// logger on w) at most every 10 seconds and one at the end.
func NewCounter(w io.Writer, isTerminal bool, logger *slog.Logger, label string) *Counter {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(w, nil))
	}
	c := &Counter{label: label, log: logger, now: time.Now, every: 10 * time.Second}
	c.start, c.lastLog = c.now(), c.now()
	if isTerminal {
		c.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(150*time.Millisecond))
		c.bar = c.p.New(0, mpb.BarStyle(),
			mpb.PrependDecorators(decor.Name(label+" ", decor.WC{C: decor.DindentRight}), decor.CountersNoUnit("%d / %d", decor.WC{W: 18})),
			mpb.AppendDecorators(decor.Percentage(decor.WC{W: 5}), decor.Name(" "),
				decor.AverageSpeed(0, "%.0f/s", decor.WC{W: 10}), decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
	}
	return c
}

// Update records done items out of total (total 0: unknown yet).
func (c *Counter) Update(done, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.done, c.total = done, total
	if c.bar != nil {
		if total > 0 {
			c.bar.SetTotal(total, false)
		}
		c.bar.SetCurrent(done)
		return
	}
	if now := c.now(); now.Sub(c.lastLog) >= c.every {
		c.lastLog = now
		c.logLine("progress")
	}
}

func (c *Counter) logLine(msg string) {
	elapsed := c.now().Sub(c.start)
	rate := float64(c.done) / max(elapsed.Seconds(), 1e-9)
	attrs := []any{"task", c.label, "done", c.done, "rate_per_s", int64(rate), "elapsed", elapsed.Round(time.Second)}
	if c.total > 0 {
		attrs = append(attrs, "total", c.total)
		if rate > 0 && c.done < c.total {
			attrs = append(attrs, "eta", time.Duration(float64(c.total-c.done)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	c.log.Info(msg, attrs...)
}

// Close ends the bar (or logs the final line). Safe to call twice.
func (c *Counter) Close() {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.mu.Unlock()
	if c.bar != nil {
		c.bar.SetTotal(c.done, true)
		c.p.Wait()
		return
	}
	c.logLine("done")
}
