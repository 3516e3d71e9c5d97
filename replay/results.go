package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ResultsFormatVersion is the version of the results file format. A
// ResultsReader refuses a file whose header names a newer version.
const ResultsFormatVersion = 1

// Status says how a replayed statement ended.
type Status string

// The statuses of a replayed statement.
const (
	// StatusOK: the statement ran and the server reported success.
	StatusOK Status = "ok"
	// StatusError: the server reported an error (SQLState, Message).
	StatusError Status = "error"
	// StatusTimeout: statement_timeout cancelled it (SQLSTATE 57014).
	StatusTimeout Status = "timeout"
	// StatusConnLost: the connection broke while the statement ran (or
	// could not be opened for it); the session goes on on a new connection.
	StatusConnLost Status = "conn_lost"
	// StatusSkipped: the statement was not run (Message says why, e.g.
	// COPY … FROM STDIN, whose data a workload does not hold).
	StatusSkipped Status = "skipped"
)

// Column is one column of a statement's result.
type Column struct {
	// Name is the column name the server reported.
	Name string `json:"name"`
	// TypeOID is the column's data type.
	TypeOID uint32 `json:"type"`
}

// LockWait records that a replayed statement waited for a lock held by
// other replayed sessions (ordered mode), which the engine detected with
// pg_blocking_pids() and then went on starting the following statements of
// other sessions.
//
// Like Duration, it describes how the replay went rather than what the
// statement returned, and it is not fully deterministic: when one commit
// releases several statements waiting for the same row, the server decides
// which goes first, so which statements waited, and for whom, can differ
// between two replays of one workload; compare should treat it like
// Duration.
type LockWait struct {
	// BlockedBy are the captured session ids that held the lock or queued
	// for it ahead of this statement (pg_blocking_pids), sorted, gathered
	// over every check while the statement waited.
	BlockedBy []string `json:"blocked_by"`
}

// Result is what one replayed statement event produced: one line of a
// results file.
//
// A simple-protocol query string holding several statements ("BEGIN;
// UPDATE …; COMMIT") is one captured event and gives one Result:
// Statements says how many results the server returned, Tag is the last
// one's, Columns those of the last one that returned a row set, Rows the
// total, and the hashes and Sample cover every row of every inner result in
// order (each row hashed with the index of its inner result, so equal rows
// of different statements differ). If an inner statement fails, the server
// skips the rest of the string and the Result carries that error.
type Result struct {
	// Session is the captured session id.
	Session string `json:"session"`
	// Seq is the captured event's sequence number.
	Seq int64 `json:"seq"`
	// Database is the database the statement ran in when captured (for
	// reference; replay always uses the target DSN).
	Database string `json:"database,omitempty"`
	// SQL is the statement text as captured.
	SQL string `json:"sql"`
	// Fingerprint identifies the statement's shape (EngineOptions.Fingerprint).
	Fingerprint string `json:"fingerprint,omitempty"`

	// Status is how the statement ended.
	Status Status `json:"status"`
	// SQLState and Message are the server's error (or the reason for a
	// skip or a lost connection).
	SQLState string `json:"sqlstate,omitempty"`
	Message  string `json:"message,omitempty"`
	// Tag is the command tag ("SELECT 3", "UPDATE 1").
	Tag string `json:"tag,omitempty"`
	// Statements is how many results a multi-statement query string
	// returned; omitted when 1.
	Statements int `json:"statements,omitempty"`

	// Columns are the result's columns; nil when it returned no row set.
	Columns []Column `json:"columns,omitempty"`
	// Rows is the number of rows returned.
	Rows int64 `json:"rows"`
	// OrderedHash and MultisetHash hash the rows (see RowHasher); empty
	// when the statement returned no row set.
	OrderedHash  string `json:"ordered_hash,omitempty"`
	MultisetHash string `json:"multiset_hash,omitempty"`
	// Sample holds the first EngineOptions.SampleRows rows as text; nil elements
	// are NULL. Values longer than EngineOptions.SampleValueBytes are cut and
	// SampleTruncated is set.
	Sample          [][]*string `json:"sample,omitempty"`
	SampleTruncated bool        `json:"sample_truncated,omitempty"`

	// Duration is how long the statement took in this replay.
	Duration time.Duration `json:"duration_ns"`
	// LockWait is set when the statement waited for a lock held by another
	// replayed session.
	LockWait *LockWait `json:"lock_wait,omitempty"`
	// Captured is the error the statement raised when it was captured, if
	// any, for comparing with this replay's outcome.
	Captured *CapturedError `json:"captured_error,omitempty"`
}

// ResultWriter receives results as statements finish, in completion order
// (which in concurrent mode, and around lock waits in ordered mode, is not
// Seq order; Seq says the captured order). Replay calls WriteResult from a
// single goroutine of its own, never concurrently; every Result is new and
// may be kept.
type ResultWriter interface {
	WriteResult(r *Result) error
}

// ResultsHeader is the first line of a results file.
type ResultsHeader struct {
	// Version is ResultsFormatVersion when written.
	Version int `json:"dbtwin_results"`
	// Mode is the replay mode ("ordered" or "concurrent").
	Mode Mode `json:"mode,omitempty"`
	// SampleRows is EngineOptions.SampleRows of the replay.
	SampleRows int `json:"sample_rows,omitempty"`
}

// ResultsWriter writes a results file: JSON lines, a ResultsHeader first,
// then one Result per line. Only whole lines reach the underlying writer's
// buffer, and Close flushes, so a replay interrupted by Ctrl-C leaves a
// valid file. It is not safe for concurrent use.
type ResultsWriter struct {
	w    *bufio.Writer
	buf  bytes.Buffer
	enc  *json.Encoder
	line []byte
	err  error
}

var _ ResultWriter = (*ResultsWriter)(nil)

// NewResultsWriter writes h (with Version set) to w and returns a writer for
// the results that follow.
func NewResultsWriter(w io.Writer, h ResultsHeader) (*ResultsWriter, error) {
	rw := &ResultsWriter{w: bufio.NewWriterSize(w, 64<<10)}
	rw.enc = json.NewEncoder(&rw.buf)
	rw.enc.SetEscapeHTML(false)
	h.Version = ResultsFormatVersion
	if err := rw.encode(h); err != nil {
		return nil, fmt.Errorf("write results header: %w", err)
	}
	return rw, nil
}

// WriteResult appends r as one line.
func (rw *ResultsWriter) WriteResult(r *Result) error {
	if rw.err != nil {
		return rw.err
	}
	rw.line = appendResult(rw.line[:0], r)
	if _, err := rw.w.Write(rw.line); err != nil {
		rw.err = fmt.Errorf("write result of session %s seq %d: %w", r.Session, r.Seq, err)
		return rw.err
	}
	return nil
}

func (rw *ResultsWriter) encode(v any) error {
	if rw.err != nil {
		return rw.err
	}
	rw.buf.Reset()
	if err := rw.enc.Encode(v); err != nil { // Encode appends the newline
		return err
	}
	if _, err := rw.w.Write(rw.buf.Bytes()); err != nil {
		rw.err = err
		return err
	}
	return nil
}

// Flush writes buffered lines to the underlying writer.
func (rw *ResultsWriter) Flush() error {
	if rw.err != nil {
		return rw.err
	}
	if err := rw.w.Flush(); err != nil {
		rw.err = err
		return fmt.Errorf("flush results: %w", err)
	}
	return nil
}

// Close flushes. It does not close the underlying writer, which the caller
// owns.
func (rw *ResultsWriter) Close() error { return rw.Flush() }

// ResultsReader reads a results file back, in the bufio.Scanner shape:
//
//	for r.Next() { res := r.Result() }
//	if err := r.Err(); err != nil { … }
//
// A malformed line stops reading with an error naming its line number.
type ResultsReader struct {
	r      *bufio.Reader
	header ResultsHeader
	cur    *Result
	line   int
	err    error
}

// NewResultsReader reads and checks the header of a results file.
func NewResultsReader(r io.Reader) (*ResultsReader, error) {
	rr := &ResultsReader{r: bufio.NewReaderSize(r, 64<<10)}
	line, err := rr.readLine()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("read results header: empty file")
		}
		return nil, fmt.Errorf("read results header: %w", err)
	}
	if err := json.Unmarshal(line, &rr.header); err != nil || rr.header.Version == 0 {
		return nil, fmt.Errorf("read results header: line 1 is not a dbtwin results header (%q)", resultsClip(string(line), 80))
	}
	if rr.header.Version > ResultsFormatVersion {
		return nil, fmt.Errorf("read results header: format version %d is newer than this dbtwin reads (%d); upgrade dbtwin", rr.header.Version, ResultsFormatVersion)
	}
	return rr, nil
}

// Header is the file's header line.
func (rr *ResultsReader) Header() ResultsHeader { return rr.header }

// Next reads the next result; false at the end or on an error (see Err).
func (rr *ResultsReader) Next() bool {
	if rr.err != nil {
		return false
	}
	for {
		line, err := rr.readLine()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rr.err = fmt.Errorf("read results line %d: %w", rr.line, err)
			}
			return false
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		res := new(Result)
		if err := json.Unmarshal(line, res); err != nil {
			rr.err = fmt.Errorf("read results line %d: %w", rr.line, err)
			return false
		}
		rr.cur = res
		return true
	}
}

// Result is the result Next read. Each call to Next returns a new value.
func (rr *ResultsReader) Result() *Result { return rr.cur }

// Err is the first error other than the end of the file.
func (rr *ResultsReader) Err() error { return rr.err }

// readLine returns the next line without its newline. A last line without a
// newline is an error: it is a partly written line.
func (rr *ResultsReader) readLine() ([]byte, error) {
	line, err := rr.r.ReadBytes('\n')
	if len(line) > 0 {
		rr.line++
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, fmt.Errorf("incomplete last line (the file was cut short)")
		}
		return nil, err
	}
	return line[:len(line)-1], nil
}

func resultsClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
