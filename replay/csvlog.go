package replay

import (
	"bufio"
	"fmt"
	"strconv"
)

// csvlog columns (PostgreSQL 13–15; 12 lacks backend_type, 14 added
// leader_pid and query_id).
const (
	csvLogTime = iota
	csvUser
	csvDB
	csvPID
	csvFrom
	csvSession
	csvLineNum
	csvTag
	csvSessionStart
	csvVXID
	csvXID
	csvSeverity
	csvState
	csvMessage
	csvDetail
	csvHint
	csvInternalQuery
	csvInternalQueryPos
	csvContext
	csvQuery
	csvQueryPos
	csvLocation
	csvApp
	csvBackendType
	csvMinFields = csvApp + 1
)

// csvSource reads csvlog records: comma-separated fields, text in double
// quotes with quotes doubled, newlines inside quotes, one record per
// unquoted newline.
type csvSource struct {
	lr  *lineReader
	st  *statsKeeper
	tp  *timeParser
	max int

	fields [][]byte
	buf    []byte
}

func newCSVSource(name string, br *bufio.Reader, opts ReaderOptions) *csvSource {
	st := newStatsKeeper(name, FormatCSVLog, opts.MaxWarnings)
	return &csvSource{
		lr:  newLineReader(br, st, opts.MaxRecordBytes),
		st:  st,
		tp:  newTimeParser(opts.TimeZone, st),
		max: opts.MaxRecordBytes,
	}
}

func (s *csvSource) stats() *statsKeeper { return s.st }
func (s *csvSource) err() error          { return s.lr.readErr() }

func (s *csvSource) next(rec *logRecord) bool {
	for {
		first, ok := s.readRecord()
		if !ok {
			return false
		}
		if first < 0 {
			continue // malformed; warned
		}
		f := s.fields
		if len(f) == 1 && len(f[0]) == 0 {
			continue // blank line
		}
		if len(f) < csvMinFields {
			s.st.warn(first, fmt.Sprintf("csvlog record has %d fields, want at least %d", len(f), csvMinFields), f[0])
			continue
		}
		*rec = logRecord{
			line:      first,
			severity:  string(f[csvSeverity]),
			sqlstate:  string(f[csvState]),
			message:   string(f[csvMessage]),
			detail:    string(f[csvDetail]),
			statement: string(f[csvQuery]),
			session:   string(f[csvSession]),
			user:      string(f[csvUser]),
			db:        string(f[csvDB]),
			app:       string(f[csvApp]),
			hasApp:    true,
		}
		if len(f) > csvBackendType {
			rec.backend = string(f[csvBackendType])
		}
		rec.pid, _ = strconv.Atoi(string(f[csvPID]))
		if t, ok := s.tp.parse(f[csvLogTime], first); ok {
			rec.time = t
		} else {
			s.st.warn(first, "malformed log_time", f[csvLogTime])
		}
		return true
	}
}

// readRecord splits the next record into s.fields and returns its first
// line number, -1 for a record it skipped, false at the end.
func (s *csvSource) readRecord() (int64, bool) {
	s.fields = s.fields[:0]
	s.buf = s.buf[:0]
	var starts []int // field start offsets in buf
	var first int64
	inQuote := false
	fieldStart := true
	tooLong := false
	for {
		line, n, ok := s.lr.next()
		if !ok {
			if first == 0 {
				return 0, false
			}
			s.st.warn(first, "csvlog record ends inside a quoted field", nil)
			return -1, true
		}
		if first == 0 {
			first = n
			starts = append(starts[:0], 0)
		} else if !tooLong {
			s.buf = append(s.buf, '\n') // the newline inside quotes
		}
		if !tooLong && len(s.buf)+len(line) > s.max {
			tooLong = true
			s.st.warn(first, fmt.Sprintf("csvlog record longer than %d bytes skipped", s.max), nil)
		}
		for i := 0; i < len(line); {
			c := line[i]
			switch {
			case inQuote:
				j := i
				for j < len(line) && line[j] != '"' {
					j++
				}
				if !tooLong {
					s.buf = append(s.buf, line[i:j]...)
				}
				i = j
				if i < len(line) { // a quote
					if i+1 < len(line) && line[i+1] == '"' {
						if !tooLong {
							s.buf = append(s.buf, '"')
						}
						i += 2
					} else {
						inQuote = false
						i++
					}
				}
			case c == ',':
				starts = append(starts, len(s.buf))
				fieldStart = true
				i++
			case c == '"' && fieldStart:
				inQuote = true
				fieldStart = false
				i++
			default:
				fieldStart = false
				if !tooLong {
					s.buf = append(s.buf, c)
				}
				i++
			}
		}
		if inQuote {
			continue
		}
		if tooLong {
			return -1, true
		}
		for k, st := range starts {
			end := len(s.buf)
			if k+1 < len(starts) {
				end = starts[k+1]
			}
			s.fields = append(s.fields, s.buf[st:end])
		}
		return first, true
	}
}
