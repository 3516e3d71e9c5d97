package replay

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/sqlinfo"
)

// logRecord is one PostgreSQL log message, whichever format it came in: the
// stderr reader assembles it from a prefixed line, its tab-indented
// continuation lines and the DETAIL/STATEMENT/… lines that follow; csvlog
// and jsonlog have it as one record.
type logRecord struct {
	line         int64 // first physical line
	time         time.Time
	pid          int
	session      string // %c or session_id; "" if the format lacks it
	sessionStart time.Time
	user, db     string
	app          string
	hasApp       bool // the format reports the application (so "" is real)
	sqlstate     string
	severity     string
	message      string
	detail       string
	statement    string // STATEMENT: line, csvlog query, jsonlog statement
	backend      string // backend_type, when known
}

// recordSource yields log records; the stderr, csvlog and jsonlog readers
// implement it.
type recordSource interface {
	// next fills rec with the next record; false at the end of input or on
	// an error (see err).
	next(rec *logRecord) bool
	err() error
	stats() *statsKeeper
}

// logReader turns log records into Events. It is the Reader of every
// PostgreSQL log format.
//
// What PostgreSQL 15 logs (found by experiment; see the integration test):
//
//   - log_statement=all: "statement: SQL" before a simple-protocol statement
//     runs, "execute NAME: SQL" with "DETAIL: parameters: $1 = '…'" before an
//     extended-protocol one. A statement that fails is followed by "ERROR"
//     with a "STATEMENT: SQL" line; one that fails before it is logged (a
//     syntax error, an unknown table in a Parse message) has only the ERROR.
//   - log_min_duration_statement=0: "duration: 0.123 ms  statement: SQL" or
//     "duration: … ms  parse|bind|execute NAME: SQL" after each step ends.
//     A statement that fails has no duration line, only ERROR + STATEMENT;
//     a failing extended-protocol statement has its bind line (with the
//     parameters) and then the ERROR.
//   - both: "statement: SQL" / "execute NAME: SQL" first, then a bare
//     "duration: … ms" without the text; parse and bind lines still carry
//     their text.
//
// So: a statement or execute line opens a statement, which a bare duration
// or an ERROR of the same session closes; a duration line with text is a
// whole statement; parse and bind lines are not statements; an ERROR whose
// STATEMENT is not the session's open statement is a statement of its own,
// with the parameters of the session's last bind of the same text.
//
// Limits: parameter values cut by log_parameter_max_length look like whole
// values; a statement that fails in Bind under log_statement alone has no
// parameters in the log (only its ERROR and STATEMENT lines); messages in
// a language other than English (lc_messages) are not recognised.
type logReader struct {
	ctx  context.Context
	src  recordSource
	st   *statsKeeper
	opts ReaderOptions
	em   *emitter

	sessions map[string]*logSession
	pidSess  map[int]*logSession // current session of each pid, for logs without %c
	pidGen   map[int]int
	queue    []*queuedEvent // events in capture order, some not final yet
	qhead    int
	nrec     int64

	copySQL       string // the last text that looked like a COPY
	copyFromStdin bool   // and whether it is COPY … FROM STDIN

	rec  logRecord
	cur  Event
	err  error
	done bool
}

// queuedEvent is an event that may still get its duration or error.
type queuedEvent struct {
	ev       Event
	final    bool
	released bool // left the queue before it was final (MaxPending)
}

// openStmt is the statement a session is running as far as the log says.
type openStmt struct {
	q       *queuedEvent // nil when the statement was skipped
	sql     string
	skipped string // reason, when q is nil
}

// bindInfo is a session's last bind line (log_min_duration_statement).
type bindInfo struct {
	name, sql string
	params    []Param
}

// logSession is what the reader remembers of one open session.
type logSession struct {
	id          string
	pid         int
	db, user    string
	app         string
	replication bool
	used        bool // has had a connect or statement
	open        *openStmt
	bind        *bindInfo
	lastSeen    int64
}

// maxSessions bounds the sessions remembered; beyond it the least recently
// seen half is forgotten (sessions whose disconnection was not logged).
const maxSessions = 100_000

func newLogReader(ctx context.Context, src recordSource, opts ReaderOptions) *logReader {
	return &logReader{
		ctx:      ctx,
		src:      src,
		st:       src.stats(),
		opts:     opts,
		em:       newEmitter(opts.Filter, true, true, src.stats()),
		sessions: map[string]*logSession{},
		pidSess:  map[int]*logSession{},
		pidGen:   map[int]int{},
	}
}

// Next advances to the next event.
func (r *logReader) Next() bool {
	for {
		if ev, ok := r.em.pop(); ok {
			r.cur = ev
			r.st.st.Events++
			return true
		}
		if r.release() {
			continue
		}
		if r.done {
			return false
		}
		if r.nrec&255 == 0 {
			if err := r.ctx.Err(); err != nil {
				r.err = err
				r.finish()
				continue
			}
		}
		if !r.src.next(&r.rec) {
			if err := r.src.err(); err != nil {
				r.err = err
			}
			r.finish()
			continue
		}
		r.nrec++
		r.handle(&r.rec)
	}
}

// Event returns the current event.
func (r *logReader) Event() Event { return r.cur }

// Err returns the error that stopped Next, if any.
func (r *logReader) Err() error { return r.err }

// Stats reports what the reader has seen so far.
func (r *logReader) Stats() ReaderStats { return r.st.snapshot() }

// finish marks the end of input: every queued event becomes final.
func (r *logReader) finish() {
	r.done = true
	for _, q := range r.queue[r.qhead:] {
		q.final = true
	}
}

// release moves final events from the head of the queue to the emitter, and
// forces the head out when the queue is over MaxPending. It reports whether
// it moved anything.
func (r *logReader) release() bool {
	moved := false
	for r.qhead < len(r.queue) {
		q := r.queue[r.qhead]
		if !q.final {
			if len(r.queue)-r.qhead <= r.opts.MaxPending {
				break
			}
			q.released = true
		}
		r.queue[r.qhead] = nil
		r.qhead++
		r.em.push(q.ev)
		moved = true
	}
	if r.qhead == len(r.queue) {
		r.queue, r.qhead = r.queue[:0], 0
	} else if r.qhead > 1024 && r.qhead*2 > len(r.queue) {
		n := copy(r.queue, r.queue[r.qhead:])
		clear(r.queue[n:])
		r.queue, r.qhead = r.queue[:n], 0
	}
	return moved
}

func (r *logReader) enqueue(ev Event, final bool) *queuedEvent {
	q := &queuedEvent{ev: ev, final: final}
	r.queue = append(r.queue, q)
	return q
}

// source locates a record for Event.Source.
func (r *logReader) source(rec *logRecord) string {
	return r.st.st.Name + ":" + strconv.FormatInt(rec.line, 10)
}

// handle turns one record into events and session state.
func (r *logReader) handle(rec *logRecord) {
	if rec.backend != "" && rec.backend != "client backend" {
		r.st.skip(SkipBackground)
		return
	}
	s := r.session(rec)
	if s.replication {
		r.st.skip(SkipReplication)
		return
	}
	switch rec.severity {
	case "LOG":
		r.handleLog(rec, s)
	case "ERROR", "FATAL", "PANIC":
		r.handleError(rec, s)
	default:
		r.st.skip(SkipOther)
	}
}

func (r *logReader) handleLog(rec *logRecord, s *logSession) {
	msg := rec.message
	switch {
	case strings.HasPrefix(msg, "statement: "):
		r.statement(rec, s, msg[len("statement: "):], 0, false, "", nil)
	case strings.HasPrefix(msg, "execute "):
		r.extended(rec, s, msg[len("execute "):], "execute", 0, false)
	case strings.HasPrefix(msg, "duration: "):
		r.duration(rec, s, msg[len("duration: "):])
	case strings.HasPrefix(msg, "connection authorized: "):
		r.connect(rec, s, msg[len("connection authorized: "):])
	case strings.HasPrefix(msg, "replication connection authorized: "):
		s.replication = true
		r.st.skip(SkipReplication)
	case strings.HasPrefix(msg, "disconnection: "):
		r.disconnect(rec, s)
	default:
		r.st.skip(SkipOther)
	}
}

// session finds or starts the session a record belongs to. Without %c (or
// csvlog/jsonlog's session id) a session is pid and session start (%s),
// which together make the same id as %c, or else the pid alone, with a new
// session whenever the pid connects again.
func (r *logReader) session(rec *logRecord) *logSession {
	id := rec.session
	if id == "" && rec.pid != 0 && !rec.sessionStart.IsZero() {
		id = strconv.FormatInt(rec.sessionStart.Unix(), 16) + "." + strconv.FormatInt(int64(rec.pid), 16)
	}
	var s *logSession
	if id == "" && rec.pid != 0 {
		s = r.pidSess[rec.pid]
		newConn := rec.severity == "LOG" && strings.HasPrefix(rec.message, "connection received: ")
		if s != nil && newConn && s.used {
			// The pid connected again: its previous session is over.
			r.closeOpen(s)
			r.drop(s)
			s = nil
		}
		if s == nil {
			r.pidGen[rec.pid]++
			id = strconv.Itoa(rec.pid)
			if g := r.pidGen[rec.pid]; g > 1 {
				id += "." + strconv.Itoa(g)
			}
			s = &logSession{id: id, pid: rec.pid}
			r.pidSess[rec.pid] = s
			r.sessions[id] = s
		}
	} else {
		if id == "" {
			id = "0" // the prefix identifies no session
		}
		s = r.sessions[id]
		if s == nil {
			s = &logSession{id: id, pid: rec.pid}
			r.sessions[id] = s
		}
	}
	s.lastSeen = r.nrec
	if rec.user != "" && rec.user != "[unknown]" {
		s.user = rec.user
	}
	if rec.db != "" && rec.db != "[unknown]" {
		s.db = rec.db
	}
	if rec.hasApp {
		s.app = rec.app
		if s.app == "[unknown]" { // what %a prints for no application_name
			s.app = ""
		}
	}
	if len(r.sessions) > maxSessions {
		r.forget()
	}
	return s
}

// forget drops the least recently seen half of the sessions.
func (r *logReader) forget() {
	all := make([]*logSession, 0, len(r.sessions))
	for _, s := range r.sessions {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].lastSeen < all[j].lastSeen })
	for _, s := range all[:len(all)/2] {
		r.drop(s)
	}
}

func (r *logReader) drop(s *logSession) {
	delete(r.sessions, s.id)
	if s.pid != 0 && r.pidSess[s.pid] == s {
		delete(r.pidSess, s.pid)
	}
}

// event returns an event of session s for record rec.
func (r *logReader) event(rec *logRecord, s *logSession, kind Kind) Event {
	return Event{
		Session: s.id, Time: rec.time, Kind: kind,
		Database: s.db, User: s.user, Application: s.app,
		Source: r.source(rec),
	}
}

// closeOpen ends the session's open statement: nothing more will be added
// to it.
func (r *logReader) closeOpen(s *logSession) {
	if s.open != nil && s.open.q != nil {
		s.open.q.final = true
	}
	s.open = nil
}

// statement records a statement. complete: its duration line is in, so no
// ERROR can follow (log_min_duration_statement without log_statement).
func (r *logReader) statement(rec *logRecord, s *logSession, sql string, dur time.Duration, complete bool, prepared string, params []Param) {
	r.closeOpen(s)
	s.used = true
	if strings.TrimSpace(sql) == "" {
		r.st.skip(SkipEmpty)
		if !complete {
			s.open = &openStmt{sql: sql, skipped: SkipEmpty}
		}
		return
	}
	if r.isCopyFromStdin(sql) {
		r.st.skip(SkipCopyFromStdin)
		if !complete {
			s.open = &openStmt{sql: sql, skipped: SkipCopyFromStdin}
		}
		return
	}
	ev := r.event(rec, s, KindStatement)
	ev.SQL, ev.Prepared, ev.Params, ev.Duration = sql, prepared, params, dur
	if complete {
		ev.Time = ev.Time.Add(-dur) // logged when it ended
	}
	q := r.enqueue(ev, complete)
	if !complete {
		s.open = &openStmt{q: q, sql: sql}
	}
}

// extended handles "execute|bind|parse NAME[/PORTAL]: SQL" (rest is after
// the verb) with the record's parameters.
func (r *logReader) extended(rec *logRecord, s *logSession, rest, verb string, dur time.Duration, complete bool) {
	if strings.HasPrefix(rest, "fetch from ") {
		r.closeOpen(s)
		r.st.skip(SkipFetch)
		return
	}
	name, sql, ok := strings.Cut(rest, ": ")
	if !ok {
		r.st.warn(rec.line, "malformed "+verb+" message", []byte(rec.message))
		return
	}
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i] // the portal
	}
	if name == "<unnamed>" {
		name = ""
	}
	var params []Param
	if d, ok := strings.CutPrefix(rec.detail, "parameters: "); ok {
		var err error
		if params, err = parseParams(d); err != nil {
			r.st.warn(rec.line, err.Error(), []byte(rec.detail))
			params = nil
		}
	}
	switch verb {
	case "parse":
		r.closeOpen(s)
		r.st.skip(SkipParseBind)
	case "bind":
		r.closeOpen(s)
		s.bind = &bindInfo{name: name, sql: sql, params: params}
		r.st.skip(SkipParseBind)
	default:
		s.bind = nil
		r.statement(rec, s, sql, dur, complete, name, params)
	}
}

// duration handles "duration: 1.234 ms[  statement|execute|parse|bind …]".
func (r *logReader) duration(rec *logRecord, s *logSession, msg string) {
	num, rest, ok := strings.Cut(msg, " ms")
	ms, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || ms < 0 || math.IsInf(ms, 0) || math.IsNaN(ms) || ms > 1e12 {
		r.st.warn(rec.line, "malformed duration", []byte(msg))
		return
	}
	dur := time.Duration(math.Round(ms*1000)) * time.Microsecond
	if dur == 0 {
		dur = time.Nanosecond // "0.000 ms": known, and not "unknown"
	}
	if rest == "" {
		// log_statement logged the text already; this ends it.
		o := s.open
		switch {
		case o != nil && o.q != nil && !o.q.released:
			o.q.ev.Duration = dur
			r.closeOpen(s)
		case o != nil && o.q == nil:
			r.closeOpen(s) // a skipped statement
		default:
			r.st.skip(SkipDurationNoStatement)
		}
		return
	}
	rest, ok = strings.CutPrefix(rest, "  ")
	if !ok {
		r.st.warn(rec.line, "malformed duration", []byte(msg))
		return
	}
	for _, verb := range []string{"execute", "bind", "parse"} {
		if after, ok := strings.CutPrefix(rest, verb+" "); ok {
			r.extended(rec, s, after, verb, dur, true)
			return
		}
	}
	if sql, ok := strings.CutPrefix(rest, "statement: "); ok {
		r.statement(rec, s, sql, dur, true, "", nil)
		return
	}
	r.st.skip(SkipOther) // auto_explain plans and the like
}

// handleError ties an ERROR (or FATAL) to the statement that failed.
func (r *logReader) handleError(rec *logRecord, s *logSession) {
	stmt := rec.statement
	o := s.open
	if o != nil && (stmt == "" || stmt == o.sql) {
		switch {
		case o.q == nil:
			r.st.skip(o.skipped)
		case o.q.released:
			r.st.warn(rec.line, fmt.Sprintf("error logged after its statement was released (more than %d events pending): not attached", r.opts.MaxPending), []byte(rec.message))
		default:
			o.q.ev.Error = &CapturedError{SQLState: rec.sqlstate, Message: rec.message}
		}
		r.closeOpen(s)
		return
	}
	if strings.TrimSpace(stmt) == "" {
		r.st.skip(SkipErrorNoStatement)
		return
	}
	// The statement was not logged before it failed: a syntax error, an
	// error during Parse or Bind, or log_min_duration_statement alone.
	var params []Param
	prepared := ""
	if b := s.bind; b != nil && b.sql == stmt {
		params, prepared = b.params, b.name
	}
	s.bind = nil
	r.closeOpen(s)
	if r.isCopyFromStdin(stmt) {
		r.st.skip(SkipCopyFromStdin)
		return
	}
	s.used = true
	ev := r.event(rec, s, KindStatement)
	ev.SQL, ev.Prepared, ev.Params = stmt, prepared, params
	ev.Error = &CapturedError{SQLState: rec.sqlstate, Message: rec.message}
	r.enqueue(ev, true)
}

// connect handles "connection authorized: user=U database=D
// application_name=A[ SSL enabled (…)][ GSS (…)]".
func (r *logReader) connect(rec *logRecord, s *logSession, msg string) {
	r.closeOpen(s)
	user, db, app := parseConnectionAuthorized(msg)
	if user != "" {
		s.user = user
	}
	if db != "" {
		s.db = db
	}
	if app != "" {
		s.app = app
	}
	s.used = true
	r.enqueue(r.event(rec, s, KindConnect), true)
}

// parseConnectionAuthorized splits the fields of a connection authorized
// message; names with spaces that look like the next key can be split
// wrongly, which is why prefix values win when the prefix has them.
func parseConnectionAuthorized(msg string) (user, db, app string) {
	ends := []string{" SSL enabled (", " GSS (", " identity="}
	cut := func(s string) string {
		for _, e := range ends {
			if i := strings.Index(s, e); i >= 0 {
				s = s[:i]
			}
		}
		return s
	}
	rest, ok := strings.CutPrefix(msg, "user=")
	if !ok {
		return "", "", ""
	}
	rest = cut(rest)
	if i := strings.Index(rest, " application_name="); i >= 0 {
		app = rest[i+len(" application_name="):]
		rest = rest[:i]
	}
	if i := strings.Index(rest, " database="); i >= 0 {
		db = rest[i+len(" database="):]
		rest = rest[:i]
	}
	return rest, db, app
}

func (r *logReader) disconnect(rec *logRecord, s *logSession) {
	r.closeOpen(s)
	r.enqueue(r.event(rec, s, KindDisconnect), true)
	r.drop(s)
}

// isCopyFromStdin reports whether sql holds COPY … FROM STDIN, asking the
// parser only when both words appear, and only once for a text repeated.
func (r *logReader) isCopyFromStdin(sql string) bool {
	if !containsFold(sql, "copy") || !containsFold(sql, "stdin") {
		return false
	}
	if sql != r.copySQL {
		r.copySQL, r.copyFromStdin = sql, sqlinfo.CopyFromStdin(sql)
	}
	return r.copyFromStdin
}

// containsFold reports whether s contains the lowercase ASCII word sub,
// ignoring ASCII case.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if s[i]|0x20 != sub[0] {
			continue
		}
		j := 1
		for j < n && s[i+j]|0x20 == sub[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}
