package replay

import (
	"bufio"
	"fmt"
	"strconv"
)

// stderrSource assembles log records from a stderr log: a line that matches
// the prefix and has a primary severity (LOG, ERROR …) starts a record;
// tab-indented lines continue its last field; DETAIL, STATEMENT, CONTEXT …
// lines of the same process add fields. A record is complete when the next
// one starts, so the source always reads one line ahead.
type stderrSource struct {
	lr  *lineReader
	p   *Prefix
	st  *statsKeeper
	tp  *timeParser
	max int

	m       prefixMatch
	cur     logRecord // the record being assembled
	have    bool      // cur holds a record
	dropped bool      // cur grew beyond max: skip it
	size    int
	field   *string // the field continuation lines extend
	buf     []byte  // its text so far
	scratch string  // fields the reader does not use: HINT, CONTEXT …
}

func newStderrSource(name string, br *bufio.Reader, p *Prefix, opts ReaderOptions) *stderrSource {
	st := newStatsKeeper(name, FormatStderr, opts.MaxWarnings)
	st.st.Prefix = p.String()
	return &stderrSource{
		lr:  newLineReader(br, st, opts.MaxRecordBytes),
		p:   p,
		st:  st,
		tp:  newTimeParser(opts.TimeZone, st),
		max: opts.MaxRecordBytes,
	}
}

func (s *stderrSource) stats() *statsKeeper { return s.st }
func (s *stderrSource) err() error          { return s.lr.readErr() }

func (s *stderrSource) next(rec *logRecord) bool {
	for {
		line, n, ok := s.lr.next()
		if !ok {
			if s.have {
				s.endField()
				s.have = false
				if !s.dropped {
					*rec = s.cur
					return true
				}
			}
			return false
		}
		if len(line) > 0 && line[0] == '\t' {
			if !s.have || s.field == nil {
				s.st.warn(n, "continuation line without a message", line)
				continue
			}
			s.grow(n, len(line))
			if !s.dropped {
				s.buf = append(s.buf, '\n')
				s.buf = append(s.buf, line[1:]...)
			}
			continue
		}
		if !s.p.match(line, &s.m) {
			if len(line) == 0 {
				continue
			}
			s.st.warn(n, fmt.Sprintf("line does not match log_line_prefix %q", s.p.String()), line)
			continue
		}
		if auxSeverities[s.m.sev] {
			if !s.have || !s.sameProcess(line) {
				s.st.warn(n, s.m.sev+" line without a message before it", line)
				if s.have {
					// Keep the current record; its continuation lines
					// are the stray line's.
					s.endField()
					s.field = &s.scratch
				}
				continue
			}
			s.endField()
			switch s.m.sev {
			case "DETAIL":
				s.field = &s.cur.detail
			case "STATEMENT":
				s.field = &s.cur.statement
			default:
				s.field = &s.scratch
			}
			s.grow(n, len(line)-s.m.msgStart)
			if !s.dropped {
				s.buf = append(s.buf[:0], line[s.m.msgStart:]...)
			}
			continue
		}
		// A primary line: it completes the record before it.
		var out logRecord
		emit := false
		if s.have {
			s.endField()
			out, emit = s.cur, !s.dropped
		}
		s.start(line, n)
		if emit {
			*rec = out
			return true
		}
	}
}

// start begins a record at a primary line that s.m matched.
func (s *stderrSource) start(line []byte, n int64) {
	m := &s.m
	s.cur = logRecord{line: n, severity: m.sev}
	s.have, s.dropped, s.size = true, false, 0
	s.field = &s.cur.message
	s.grow(n, len(line))
	if s.dropped {
		return
	}
	if v := m.value(line, pfTime); v != nil {
		var ok bool
		if m.timeKind == 'n' {
			s.cur.time, ok = parseEpoch(v)
		} else {
			s.cur.time, ok = s.tp.parse(v, n)
		}
		if !ok {
			s.st.warn(n, "malformed timestamp", v)
		}
	}
	if v := m.value(line, pfPID); v != nil {
		s.cur.pid, _ = strconv.Atoi(string(v))
	}
	if v := m.value(line, pfSession); v != nil {
		s.cur.session = string(v)
	}
	if v := m.value(line, pfSessStart); v != nil {
		s.cur.sessionStart, _ = s.tp.parse(v, n)
	}
	if v := m.value(line, pfUser); v != nil {
		s.cur.user = string(v)
	}
	if v := m.value(line, pfDB); v != nil {
		s.cur.db = string(v)
	}
	if s.p.has[pfApp] && m.vals[pfApp][1] >= 0 {
		s.cur.app, s.cur.hasApp = string(m.value(line, pfApp)), true
	}
	if v := m.value(line, pfState); v != nil {
		s.cur.sqlstate = string(v)
	}
	if v := m.value(line, pfBackend); v != nil {
		s.cur.backend = string(v)
	}
	s.buf = append(s.buf[:0], line[m.msgStart:]...)
}

// sameProcess reports whether the auxiliary line s.m matched comes from the
// process of the current record.
func (s *stderrSource) sameProcess(line []byte) bool {
	if v := s.m.value(line, pfSession); v != nil {
		return string(v) == s.cur.session
	}
	if v := s.m.value(line, pfPID); v != nil {
		pid, _ := strconv.Atoi(string(v))
		return pid == s.cur.pid
	}
	return true
}

// grow accounts n more bytes to the current record and drops it once it is
// too large.
func (s *stderrSource) grow(line int64, n int) {
	s.size += n
	if s.size > s.max && !s.dropped {
		s.dropped = true
		s.buf = s.buf[:0]
		s.st.warn(line, fmt.Sprintf("log message longer than %d bytes skipped", s.max), nil)
	}
}

// endField stores the text of the field being assembled.
func (s *stderrSource) endField() {
	if s.field != nil && !s.dropped {
		*s.field = string(s.buf)
	}
	s.field = nil
	s.buf = s.buf[:0]
}
