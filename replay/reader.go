package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Reader yields the events of a workload one at a time, in the
// bufio.Scanner shape:
//
//	for r.Next() {
//		ev := r.Event()
//		…
//	}
//	if err := r.Err(); err != nil { … }
//
// Next advances to the next event and reports whether there is one; Event
// returns it (valid until the next call to Next); Err returns the error that
// stopped Next, nil at a clean end of input. A malformed or unsupported line
// does not stop a Reader: it becomes a counted, located warning or a counted
// skip in Stats.
//
// Readers stream with bounded memory: they keep pending state per open
// session (a statement waiting for its ERROR or duration line, the last bind
// parameters), never the whole input. Events have strictly increasing Seq
// and a non-empty Session.
type Reader interface {
	Next() bool
	Event() Event
	Err() error
	// Stats reports what the reader has seen so far: the detected format,
	// line counts, warnings and skips. It may be called at any time.
	Stats() ReaderStats
}

// Format names a workload input format.
type Format string

// The workload input formats.
const (
	// FormatAuto detects the format from the input's first lines.
	FormatAuto Format = "auto"
	// FormatStderr is PostgreSQL's plain-text log (log_destination=stderr)
	// with some log_line_prefix.
	FormatStderr Format = "stderr"
	// FormatCSVLog is PostgreSQL's csvlog.
	FormatCSVLog Format = "csvlog"
	// FormatJSONLog is PostgreSQL 15's jsonlog.
	FormatJSONLog Format = "jsonlog"
	// FormatJSONL is dbtwin's own workload format (see Writer).
	FormatJSONL Format = "jsonl"
)

// ParseFormat parses a --log-format value; "" means FormatAuto.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatAuto, nil
	case FormatAuto, FormatStderr, FormatCSVLog, FormatJSONLog, FormatJSONL:
		return f, nil
	}
	return "", fmt.Errorf("parse log format %q: want one of auto, stderr, csvlog, jsonlog, jsonl", s)
}

// ReaderOptions configure a Reader. The zero value reads any format,
// detecting it.
type ReaderOptions struct {
	// Format is the input format; "" or FormatAuto detects it from content.
	Format Format
	// Prefix is the server's log_line_prefix, in PostgreSQL's own escape
	// syntax ("%m [%p] %q%u@%d "), for stderr logs. Empty: detected from
	// the first lines among common prefixes (see DetectPrefix).
	Prefix string
	// Filter keeps only the matching events; the zero Filter keeps all.
	Filter Filter
	// TimeZone interprets time zone abbreviations in log timestamps other
	// than UTC, GMT and numeric offsets (set it to the server's
	// log_timezone, e.g. time.LoadLocation("Europe/Berlin")). Nil: such
	// abbreviations are read as UTC, with one warning.
	TimeZone *time.Location
	// MaxWarnings is how many warnings Stats keeps in detail (all are
	// counted). Zero: 100.
	MaxWarnings int
	// MaxRecordBytes bounds one log record or JSONL line (a statement's
	// text included); a longer one is skipped with a warning. Zero: 64 MiB.
	MaxRecordBytes int
	// MaxPending bounds how many events wait for a later line of their
	// session (an ERROR, a duration) before they are released as they are:
	// with log_statement alone, a session's last statement stays open until
	// that session logs again, and holds back the events after it. It
	// bounds memory (a few hundred bytes per event) when sessions stay idle
	// for long; an ERROR logged after its statement was released is a
	// warning. Zero: 100000.
	MaxPending int
}

func (o ReaderOptions) withDefaults() ReaderOptions {
	if o.MaxWarnings == 0 {
		o.MaxWarnings = 100
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = 64 << 20
	}
	if o.MaxPending == 0 {
		o.MaxPending = 100_000
	}
	if o.Format == "" {
		o.Format = FormatAuto
	}
	return o
}

// Warning is a line that a Reader could not use, and where it was.
type Warning struct {
	// File is the input's name, Line its 1-based line number.
	File string `json:"file"`
	Line int64  `json:"line"`
	// Reason says what was wrong, in a few words.
	Reason string `json:"reason"`
	// Text is the start of the offending line (at most 120 bytes).
	Text string `json:"text,omitempty"`
}

// String renders the warning as "file:line: reason: \"text\"".
func (w Warning) String() string {
	s := fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Reason)
	if w.Text != "" {
		s += fmt.Sprintf(": %q", w.Text)
	}
	return s
}

// ReaderStats is what a Reader has seen so far.
type ReaderStats struct {
	// Name is the input's name (a file name, or what NewReader was given).
	Name string `json:"name"`
	// Format is the input format, as given or detected.
	Format Format `json:"format"`
	// Prefix is the log_line_prefix used for stderr logs, as given or
	// detected.
	Prefix string `json:"prefix,omitempty"`
	// Lines is how many physical lines were read.
	Lines int64 `json:"lines"`
	// Events is how many events were returned by Next.
	Events int64 `json:"events"`
	// Skipped counts records that were read but deliberately not turned
	// into events, by reason (see the Skip… constants).
	Skipped map[string]int64 `json:"skipped,omitempty"`
	// WarningCount counts every warning; Warnings holds the first
	// ReaderOptions.MaxWarnings of them.
	WarningCount int64     `json:"warning_count"`
	Warnings     []Warning `json:"warnings,omitempty"`
}

// Reasons for skipping a record, as counted in ReaderStats.Skipped.
const (
	// SkipOther: a log message that is not about a statement or a session
	// (checkpoints, autovacuum, startup …).
	SkipOther = "other log message"
	// SkipParseBind: a parse or bind line of the extended protocol; the
	// execute line is the statement.
	SkipParseBind = "parse/bind step"
	// SkipFetch: "execute fetch from", more rows from a portal that was
	// already counted.
	SkipFetch = "execute fetch from portal"
	// SkipEmpty: an empty query string (clients send them as pings).
	SkipEmpty = "empty statement"
	// SkipCopyFromStdin: COPY … FROM STDIN, whose data is not in the log.
	SkipCopyFromStdin = "COPY FROM STDIN (data not in log)"
	// SkipReplication: a replication connection and what it ran.
	SkipReplication = "replication connection"
	// SkipErrorNoStatement: an ERROR or FATAL not tied to any statement
	// (authentication failures, a statement that was not logged).
	SkipErrorNoStatement = "error without statement"
	// SkipDurationNoStatement: a duration line whose statement is unknown.
	SkipDurationNoStatement = "duration without statement"
	// SkipFiltered: an event that the Filter rejected.
	SkipFiltered = "filtered out"
	// SkipBackground: a line from a process that is not a client session.
	SkipBackground = "background process"
)

// statsKeeper accumulates ReaderStats.
type statsKeeper struct {
	st  ReaderStats
	max int
}

func newStatsKeeper(name string, format Format, max int) *statsKeeper {
	return &statsKeeper{st: ReaderStats{Name: name, Format: format, Skipped: map[string]int64{}}, max: max}
}

func (k *statsKeeper) warn(line int64, reason string, text []byte) {
	k.st.WarningCount++
	if len(k.st.Warnings) >= k.max {
		return
	}
	if len(text) > 120 {
		text = text[:120]
	}
	k.st.Warnings = append(k.st.Warnings, Warning{File: k.st.Name, Line: line, Reason: reason, Text: string(bytes.ToValidUTF8(text, []byte("?")))})
}

func (k *statsKeeper) skip(reason string) { k.st.Skipped[reason]++ }

func (k *statsKeeper) snapshot() ReaderStats {
	s := k.st
	s.Skipped = make(map[string]int64, len(k.st.Skipped))
	for r, n := range k.st.Skipped {
		s.Skipped[r] = n
	}
	s.Warnings = append([]Warning(nil), k.st.Warnings...)
	return s
}

// sortedReasons returns the keys of a skip map, most frequent first, then by
// name.
func sortedReasons(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// peekSize is how much of the input format and prefix detection look at.
const peekSize = 64 << 10

// NewReader returns a Reader for the workload in r. name labels the input in
// warnings and Event.Source ("postgresql.log"). Gzip-compressed input is
// decompressed. With Format auto (the default) the format is detected from
// the first 64 KiB; with stderr and no Prefix, so is the log_line_prefix.
//
// The Reader stops early with ctx's error when ctx is cancelled.
func NewReader(ctx context.Context, name string, r io.Reader, opts ReaderOptions) (Reader, error) {
	opts = opts.withDefaults()
	br := bufio.NewReaderSize(r, peekSize)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read %s: open gzip: %w", name, err)
		}
		br = bufio.NewReaderSize(zr, peekSize)
	}
	head, err := br.Peek(peekSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	format := opts.Format
	if format == FormatAuto {
		format, err = DetectFormat(head)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	switch format {
	case FormatJSONL:
		return newJSONLReader(ctx, name, br, opts)
	case FormatStderr:
		prefix := opts.Prefix
		if prefix == "" {
			prefix, err = DetectPrefix(head)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
		}
		p, err := CompilePrefix(prefix)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		src := newStderrSource(name, br, p, opts)
		return newLogReader(ctx, src, opts), nil
	case FormatCSVLog:
		return newLogReader(ctx, newCSVSource(name, br, opts), opts), nil
	case FormatJSONLog:
		return newLogReader(ctx, newJSONLogSource(name, br, opts), opts), nil
	}
	return nil, fmt.Errorf("read %s: unknown log format %q", name, format)
}

var (
	_ Reader = (*logReader)(nil)
	_ Reader = (*jsonlReader)(nil)
	_ Reader = (*FileReader)(nil)
)

// FileReader is a Reader over a file that it closes.
type FileReader struct {
	Reader
	f *os.File
}

// Close closes the underlying file.
func (r *FileReader) Close() error { return r.f.Close() }

// Open opens the workload file at path (any format, possibly gzipped) and
// returns a Reader over it; the caller closes it. Warnings name the file by
// its base name.
func Open(ctx context.Context, path string, opts ReaderOptions) (*FileReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open workload: %w", err)
	}
	r, err := NewReader(ctx, filepath.Base(path), f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &FileReader{Reader: r, f: f}, nil
}

// DetectFormat says which format head (the start of an input) is in: a
// first line that is a JSON object with "dbtwin_workload" is JSONL, another
// JSON object with "error_severity" is jsonlog, a line that starts with a
// timestamp followed by a comma is csvlog, and anything else is taken for a
// stderr log.
func DetectFormat(head []byte) (Format, error) {
	line := firstLine(head)
	if len(line) == 0 {
		return FormatStderr, nil
	}
	if line[0] == '{' {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(line, &probe); err != nil {
			// A truncated first line (longer than the peek) still says
			// enough by its keys.
			switch {
			case bytes.Contains(line, []byte(`"dbtwin_workload"`)):
				return FormatJSONL, nil
			case bytes.Contains(line, []byte(`"error_severity"`)):
				return FormatJSONLog, nil
			}
			return "", fmt.Errorf("detect format: first line is not a JSON object: %w", err)
		}
		if _, ok := probe["dbtwin_workload"]; ok {
			return FormatJSONL, nil
		}
		if _, ok := probe["error_severity"]; ok {
			return FormatJSONLog, nil
		}
		return "", errors.New("detect format: first line is JSON but neither a dbtwin workload header nor a PostgreSQL jsonlog record")
	}
	if n := timestampLen(line); n > 0 && n < len(line) && line[n] == ',' {
		return FormatCSVLog, nil
	}
	return FormatStderr, nil
}

// firstLine returns the first non-blank line of b, without its newline.
func firstLine(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var line []byte
		if i < 0 {
			line, b = b, nil
		} else {
			line, b = b[:i], b[i+1:]
		}
		if len(bytes.TrimSpace(line)) > 0 {
			return bytes.TrimRight(line, "\r")
		}
	}
	return nil
}
