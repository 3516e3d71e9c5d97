package replay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// replaySession replays one captured session on its own connection. Its methods
// are called from one goroutine at a time (the session's worker); pid may be
// read from others.
type replaySession struct {
	id       string
	e        *engine
	database string
	app      string

	conn   *pgconn.PgConn
	pid    atomic.Uint32 // backend pid of conn, 0 when not connected
	hasher *RowHasher

	// scratch for extended-protocol parameters
	vals    [][]byte
	oids    []uint32
	formats []int16
}

func newReplaySession(e *engine, id string) *replaySession {
	return &replaySession{id: id, e: e, hasher: NewRowHasher()}
}

// fingerprint returns the fingerprint of sql.
func (s *replaySession) fingerprint(sql string) string { return s.e.fps.get(sql) }

// noteConnect remembers who the captured session connected as.
func (s *replaySession) noteConnect(ev *Event) {
	if ev.Database != "" {
		s.database = ev.Database
	}
	if ev.Application != "" {
		s.app = ev.Application
	}
}

// connect opens the session's connection if it has none (or a broken one).
func (s *replaySession) connect(ctx context.Context) error {
	if s.conn != nil && !s.conn.IsClosed() {
		return nil
	}
	s.dropConn()
	cfg := s.e.base
	if s.app != "" {
		cfg = cfg.Copy()
		cfg.RuntimeParams["application_name"] = s.app
	}
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect session %s: %w", s.id, err)
	}
	s.conn = c
	s.pid.Store(c.PID())
	return nil
}

// dropConn forgets a connection, closing it if it is still open.
func (s *replaySession) dropConn() {
	s.pid.Store(0)
	if s.conn == nil {
		return
	}
	if !s.conn.IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.conn.Close(ctx)
		cancel()
	}
	s.conn = nil
}

// close ends the session (a disconnect event or the end of the workload).
func (s *replaySession) close() { s.dropConn() }

// exec replays one statement event. interrupted is true when ctx ended
// while it ran: the result is then meaningless and must not be written.
func (s *replaySession) exec(ctx context.Context, ev *Event) (res *Result, interrupted bool) {
	res = &Result{
		Session:  ev.Session,
		Seq:      ev.Seq,
		Database: ev.Database,
		SQL:      ev.SQL,
		Captured: ev.Error,
	}
	if res.Database == "" {
		res.Database = s.database
	}
	if replayIsCopyFromStdin(ev.SQL) {
		res.Fingerprint = s.fingerprint(ev.SQL)
		res.Status = StatusSkipped
		res.Message = "COPY FROM STDIN: the workload holds no data to send"
		return res, false
	}
	if err := s.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, true
		}
		res.Fingerprint = s.fingerprint(ev.SQL)
		res.Status = StatusConnLost
		res.Message = err.Error()
		return res, false
	}

	s.hasher.Reset()
	start := time.Now()
	var err error
	if ev.Params == nil {
		err = s.runSimple(ctx, ev.SQL, res)
	} else {
		err = s.runExtended(ctx, ev, res)
	}
	res.Duration = time.Since(start)
	if res.Columns != nil || res.Rows > 0 {
		res.OrderedHash = s.hasher.Ordered()
		res.MultisetHash = s.hasher.Multiset()
	}
	if err == nil {
		res.Status = StatusOK
		return res, false
	}
	if ctx.Err() != nil {
		return nil, true
	}
	var pgErr *pgconn.PgError
	var skip *replaySkipError
	switch {
	case errors.As(err, &skip):
		res.Status = StatusSkipped
		res.Message = skip.reason
	case errors.As(err, &pgErr):
		res.SQLState = pgErr.Code
		res.Message = pgErr.Message
		switch {
		case s.conn.IsClosed():
			res.Status = StatusConnLost
			s.e.log.Warn("replay connection lost", "session", s.id, "seq", ev.Seq, "sqlstate", pgErr.Code, "message", pgErr.Message)
		case pgErr.Code == "57014":
			res.Status = StatusTimeout
		default:
			res.Status = StatusError
		}
	case s.conn.IsClosed():
		res.Status = StatusConnLost
		res.Message = err.Error()
		s.e.log.Warn("replay connection lost", "session", s.id, "seq", ev.Seq, "err", err)
	default: // refused by the client library (e.g. too many parameters)
		res.Status = StatusError
		res.Message = err.Error()
	}
	if s.conn != nil && s.conn.IsClosed() {
		s.dropConn()
	}
	return res, false
}

// replaySkipError is a statement the engine cannot run as captured.
type replaySkipError struct{ reason string }

func (e *replaySkipError) Error() string { return e.reason }

func (s *replaySession) runSimple(ctx context.Context, sql string, res *Result) error {
	mrr := s.conn.Exec(ctx, sql)
	res.Fingerprint = s.fingerprint(sql) // while the server works
	idx := 0
	for mrr.NextResult() {
		s.readResult(mrr.ResultReader(), idx, res)
		idx++
	}
	if idx > 1 {
		res.Statements = idx
	}
	return mrr.Close()
}

func (s *replaySession) runExtended(ctx context.Context, ev *Event, res *Result) error {
	n := len(ev.Params)
	s.vals = s.vals[:0]
	s.oids = s.oids[:0]
	s.formats = s.formats[:0]
	binary := false
	for i, p := range ev.Params {
		s.oids = append(s.oids, p.TypeOID)
		switch {
		case p.Value == nil:
			s.vals = append(s.vals, nil)
			s.formats = append(s.formats, 0)
		case p.Binary:
			b, err := base64.StdEncoding.DecodeString(*p.Value)
			if err != nil {
				res.Fingerprint = s.fingerprint(ev.SQL)
				return &replaySkipError{fmt.Sprintf("decode binary parameter $%d: %v", i+1, err)}
			}
			s.vals = append(s.vals, b)
			s.formats = append(s.formats, 1)
			binary = true
		default:
			s.vals = append(s.vals, []byte(*p.Value))
			s.formats = append(s.formats, 0)
		}
	}
	formats := s.formats
	if !binary {
		formats = nil // all text
	}
	oids := s.oids
	if n == 0 {
		oids = nil
	}
	rr := s.conn.ExecParams(ctx, ev.SQL, s.vals, oids, formats, nil)
	res.Fingerprint = s.fingerprint(ev.SQL)
	return s.readResult(rr, 0, res)
}

// readResult streams one result's rows into the hasher and the sample and
// returns its error.
func (s *replaySession) readResult(rr *pgconn.ResultReader, idx int, res *Result) error {
	if fds := rr.FieldDescriptions(); len(fds) > 0 {
		cols := make([]Column, len(fds))
		for i, fd := range fds {
			cols[i] = Column{Name: fd.Name, TypeOID: fd.DataTypeOID}
		}
		res.Columns = cols
	}
	k := s.e.opts.SampleRows
	limit := s.e.opts.SampleValueBytes
	for rr.NextRow() {
		vals := rr.Values()
		s.hasher.Add(idx, vals)
		if len(res.Sample) < k {
			row := make([]*string, len(vals))
			for i, v := range vals {
				if v == nil {
					continue
				}
				if len(v) > limit {
					v = v[:limit]
					res.SampleTruncated = true
				}
				str := string(v)
				row[i] = &str
			}
			res.Sample = append(res.Sample, row)
		}
	}
	res.Rows = s.hasher.Rows()
	tag, err := rr.Close()
	if t := tag.String(); t != "" {
		res.Tag = t
	}
	return err
}

// replayIsCopyFromStdin reports whether sql is a COPY … FROM STDIN, whose data a
// workload does not hold (replaying it would leave the server waiting).
func replayIsCopyFromStdin(sql string) bool {
	s := strings.TrimLeft(sql, " \t\r\n(")
	if len(s) < 4 || !strings.EqualFold(s[:4], "copy") {
		return false
	}
	return strings.Contains(strings.ToLower(s), "stdin")
}
