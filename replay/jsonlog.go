package replay

import (
	"bufio"
	"encoding/json"
	"fmt"
)

// jsonLogLine is one record of PostgreSQL 15's jsonlog; keys whose value is
// NULL are left out by the server.
type jsonLogLine struct {
	Timestamp    string `json:"timestamp"`
	User         string `json:"user"`
	DBName       string `json:"dbname"`
	PID          int    `json:"pid"`
	SessionID    string `json:"session_id"`
	SessionStart string `json:"session_start"`
	Severity     string `json:"error_severity"`
	StateCode    string `json:"state_code"`
	Message      string `json:"message"`
	Detail       string `json:"detail"`
	Statement    string `json:"statement"`
	Application  string `json:"application_name"`
	BackendType  string `json:"backend_type"`
}

// jsonLogSource reads jsonlog: one JSON object per line.
type jsonLogSource struct {
	lr *lineReader
	st *statsKeeper
	tp *timeParser
}

func newJSONLogSource(name string, br *bufio.Reader, opts ReaderOptions) *jsonLogSource {
	st := newStatsKeeper(name, FormatJSONLog, opts.MaxWarnings)
	return &jsonLogSource{
		lr: newLineReader(br, st, opts.MaxRecordBytes),
		st: st,
		tp: newTimeParser(opts.TimeZone, st),
	}
}

func (s *jsonLogSource) stats() *statsKeeper { return s.st }
func (s *jsonLogSource) err() error          { return s.lr.readErr() }

func (s *jsonLogSource) next(rec *logRecord) bool {
	for {
		line, n, ok := s.lr.next()
		if !ok {
			return false
		}
		if len(line) == 0 {
			continue
		}
		var j jsonLogLine
		if err := json.Unmarshal(line, &j); err != nil {
			s.st.warn(n, fmt.Sprintf("malformed jsonlog record: %v", err), line)
			continue
		}
		if j.Severity == "" {
			s.st.warn(n, "jsonlog record without error_severity", line)
			continue
		}
		*rec = logRecord{
			line: n, pid: j.PID, session: j.SessionID,
			user: j.User, db: j.DBName, app: j.Application, hasApp: true,
			sqlstate: j.StateCode, severity: j.Severity, message: j.Message,
			detail: j.Detail, statement: j.Statement, backend: j.BackendType,
		}
		if t, ok := s.tp.parse([]byte(j.Timestamp), n); ok {
			rec.time = t
		} else {
			s.st.warn(n, "malformed timestamp", []byte(j.Timestamp))
		}
		return true
	}
}
