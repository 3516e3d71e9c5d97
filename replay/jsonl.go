package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// WorkloadHeader is the first line of a JSONL workload file:
//
//	{"dbtwin_workload":1,"source":"postgresql.log","format":"stderr","log_line_prefix":"%m [%p] "}
//
// followed by one Event per line, as JSON, in Seq order. A reader refuses a
// file whose version is newer than FormatVersion and ignores keys it does
// not know, so fields can be added without a new version.
type WorkloadHeader struct {
	// Version is the format version, FormatVersion when written.
	Version int `json:"dbtwin_workload"`
	// Source names what the workload was captured from (a log file name,
	// "proxy").
	Source string `json:"source,omitempty"`
	// Format is the format it was converted from.
	Format Format `json:"format,omitempty"`
	// Prefix is the log_line_prefix of a stderr source.
	Prefix string `json:"log_line_prefix,omitempty"`
}

// WorkloadWriter writes a JSONL workload: the header, then one event per
// line. It buffers; call Flush (or Close) at the end, and check its error.
type WorkloadWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
	err error
}

// NewWorkloadWriter writes the header h (its Version set to FormatVersion)
// and returns a writer for the events.
func NewWorkloadWriter(w io.Writer, h WorkloadHeader) (*WorkloadWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	h.Version = FormatVersion
	ww := &WorkloadWriter{bw: bw, enc: enc}
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("write workload header: %w", err)
	}
	return ww, nil
}

// Write writes one event. After an error every call returns it.
func (w *WorkloadWriter) Write(ev Event) error {
	if w.err != nil {
		return w.err
	}
	if err := w.enc.Encode(ev); err != nil {
		w.err = fmt.Errorf("write workload event %d: %w", ev.Seq, err)
	}
	return w.err
}

// Flush writes out what is buffered.
func (w *WorkloadWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("write workload: %w", err)
	}
	return w.err
}

// Close flushes; it does not close the underlying writer.
func (w *WorkloadWriter) Close() error { return w.Flush() }

// jsonlReader reads a JSONL workload.
type jsonlReader struct {
	ctx    context.Context
	lr     *lineReader
	st     *statsKeeper
	em     *emitter
	header WorkloadHeader
	last   int64 // Seq of the last event read
	cur    Event
	err    error
	n      int64
}

// newJSONLReader reads the header and returns a reader for the events. It
// refuses input without a header or with a newer version.
func newJSONLReader(ctx context.Context, name string, br *bufio.Reader, opts ReaderOptions) (*jsonlReader, error) {
	st := newStatsKeeper(name, FormatJSONL, opts.MaxWarnings)
	lr := newLineReader(br, st, opts.MaxRecordBytes)
	var line []byte
	var n int64
	for {
		l, ln, ok := lr.next()
		if !ok {
			if err := lr.readErr(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("read %s: empty input, want a dbtwin workload header", name)
		}
		if len(bytes.TrimSpace(l)) > 0 {
			line, n = l, ln
			break
		}
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, fmt.Errorf("read %s:%d: workload header is not a JSON object: %w", name, n, err)
	}
	if _, ok := probe["dbtwin_workload"]; !ok {
		return nil, fmt.Errorf("read %s:%d: not a dbtwin workload: the first line has no \"dbtwin_workload\" key", name, n)
	}
	var h WorkloadHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("read %s:%d: malformed workload header: %w", name, n, err)
	}
	if h.Version < 1 {
		return nil, fmt.Errorf("read %s:%d: workload format version %d is not valid", name, n, h.Version)
	}
	if h.Version > FormatVersion {
		return nil, fmt.Errorf("read %s:%d: workload format version %d is newer than this dbtwin reads (%d): upgrade dbtwin", name, n, h.Version, FormatVersion)
	}
	if h.Prefix != "" {
		st.st.Prefix = h.Prefix
	}
	filtered := !opts.Filter.IsZero()
	return &jsonlReader{
		ctx: ctx, lr: lr, st: st, header: h,
		em: newEmitter(opts.Filter, filtered, filtered, st),
	}, nil
}

// Header returns the workload's header.
func (r *jsonlReader) Header() WorkloadHeader { return r.header }

func (r *jsonlReader) Next() bool {
	for {
		if ev, ok := r.em.pop(); ok {
			r.cur = ev
			r.st.st.Events++
			return true
		}
		if r.err != nil {
			return false
		}
		r.n++
		if r.n&255 == 0 {
			if err := r.ctx.Err(); err != nil {
				r.err = err
				return false
			}
		}
		line, n, ok := r.lr.next()
		if !ok {
			r.err = r.lr.readErr()
			if r.err == nil {
				r.err = errDone
			}
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			r.st.warn(n, fmt.Sprintf("malformed event: %v", err), line)
			continue
		}
		if reason := r.check(&ev); reason != "" {
			r.st.warn(n, reason, line)
			continue
		}
		r.last = ev.Seq
		r.em.push(ev)
	}
}

// errDone marks a clean end of input inside jsonlReader.
var errDone = errors.New("done")

// check returns why ev cannot be used, or "".
func (r *jsonlReader) check(ev *Event) string {
	switch ev.Kind {
	case KindConnect, KindStatement, KindDisconnect:
	default:
		return fmt.Sprintf("event has unknown kind %q", ev.Kind)
	}
	switch {
	case ev.Session == "":
		return "event has no session"
	case ev.Seq <= r.last:
		return fmt.Sprintf("event seq %d does not follow %d", ev.Seq, r.last)
	case ev.Kind == KindStatement && ev.SQL == "":
		return "statement event has no sql"
	}
	return ""
}

func (r *jsonlReader) Event() Event { return r.cur }

func (r *jsonlReader) Err() error {
	if r.err == errDone {
		return nil
	}
	return r.err
}

func (r *jsonlReader) Stats() ReaderStats { return r.st.snapshot() }
