package replay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// proxyConn is one client connection through the capture proxy.
type proxyConn struct {
	p    *Proxy
	up   *pgconn.Config
	log  *slog.Logger
	clog *captureLog
	id   string

	client   net.Conn
	upstream net.Conn
	connMu   sync.Mutex // guards upstream and aborted
	aborted  bool

	// Session as the startup message named it.
	database, user, app string

	// mu guards the protocol state below, shared by the two relay
	// directions.
	mu      sync.Mutex
	stmts   map[string]proxyStmt    // prepared statements by name ("" unnamed)
	portals map[string]*proxyPortal // bound portals by name
	fifo    []proxyPending          // requests awaiting their response, in order sent
}

type proxyStmt struct {
	sql  string
	oids []uint32
}

type proxyPortal struct {
	stmt     string
	sql      string
	params   []Param
	executed bool
}

type pendingKind uint8

const (
	pendingSimple pendingKind = iota // a Query: settled at ReadyForQuery
	pendingParse                     // a Parse: settled by ParseComplete or an error
	pendingExec                      // an Execute: settled by CommandComplete, an error …
	pendingSync                      // a Sync: ends a batch at ReadyForQuery
)

type proxyPending struct {
	kind   pendingKind
	ticket *captureTicket // simple, exec
	start  time.Time
	sql    string // parse
	err    *CapturedError
	skip   bool // COPY FROM STDIN: not recorded
}

// abort closes both sides, ending the relay.
func (c *proxyConn) abort() {
	c.connMu.Lock()
	c.aborted = true
	up := c.upstream
	c.connMu.Unlock()
	c.client.Close()
	if up != nil {
		up.Close()
	}
}

// flushOnRead flushes the other direction's pending output whenever the
// protocol reader needs more input: everything received so far has been
// forwarded, so nothing waits in a buffer while we block reading.
type flushOnRead struct {
	r     io.Reader
	flush func() error
	dirty *bool
}

func (f *flushOnRead) Read(b []byte) (int, error) {
	if *f.dirty {
		*f.dirty = false
		if err := f.flush(); err != nil {
			return 0, err
		}
	}
	return f.r.Read(b)
}

func (c *proxyConn) serve(ctx context.Context) {
	defer c.abort()
	var toUpDirty, toClientDirty bool
	var frontend *pgproto3.Frontend
	backend := pgproto3.NewBackend(&flushOnRead{r: c.client, flush: func() error { return frontend.Flush() }, dirty: &toUpDirty}, c.client)

	// Startup: refuse encryption, forward cancels, get the startup message.
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := backend.ReceiveStartupMessage()
		if err != nil {
			c.log.Debug("capture proxy: read startup message", "conn", c.id, "err", err)
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := c.client.Write([]byte{'N'}); err != nil {
				return
			}
		case *pgproto3.CancelRequest:
			c.forwardCancel(ctx, m)
			return
		case *pgproto3.StartupMessage:
			startup = &pgproto3.StartupMessage{ProtocolVersion: m.ProtocolVersion, Parameters: map[string]string{}}
			for k, v := range m.Parameters {
				startup.Parameters[k] = v
			}
		}
	}
	c.user = startup.Parameters["user"]
	c.database = startup.Parameters["database"]
	if c.database == "" {
		c.database = c.user
	}
	c.app = startup.Parameters["application_name"]

	up, err := dialUpstream(ctx, c.up)
	if err != nil {
		c.log.Warn("capture proxy: connect upstream", "conn", c.id, "err", err)
		backend.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "08006",
			Message: "dbtwin capture proxy could not connect to the upstream server: " + err.Error()})
		_ = backend.Flush()
		return
	}
	c.connMu.Lock()
	c.upstream = up
	aborted := c.aborted
	c.connMu.Unlock()
	if aborted {
		up.Close()
		return
	}
	frontend = pgproto3.NewFrontend(&flushOnRead{r: up, flush: backend.Flush, dirty: &toClientDirty}, up)
	connStart := time.Now()

	// Authentication and the rest of the startup, in lock step.
	frontend.Send(startup)
	if err := frontend.Flush(); err != nil {
		return
	}
	for ready := false; !ready; {
		msg, err := frontend.Receive()
		if err != nil {
			c.log.Debug("capture proxy: read upstream during startup", "conn", c.id, "err", err)
			return
		}
		backend.Send(msg)
		switch msg.(type) {
		case *pgproto3.AuthenticationCleartextPassword, *pgproto3.AuthenticationMD5Password,
			*pgproto3.AuthenticationSASL, *pgproto3.AuthenticationSASLContinue,
			*pgproto3.AuthenticationGSS, *pgproto3.AuthenticationGSSContinue:
			if err := backend.Flush(); err != nil {
				return
			}
			if err := backend.SetAuthType(frontend.GetAuthType()); err != nil {
				return
			}
			resp, err := backend.Receive()
			if err != nil {
				return
			}
			frontend.Send(resp)
			if err := frontend.Flush(); err != nil {
				return
			}
		case *pgproto3.ErrorResponse:
			_ = backend.Flush()
			return // authentication failed or the server refused us: no session
		case *pgproto3.ReadyForQuery:
			ready = true
		}
	}
	if err := backend.Flush(); err != nil {
		return
	}

	c.p.sessions.Add(1)
	c.stmts = map[string]proxyStmt{}
	c.portals = map[string]*proxyPortal{}
	c.clog.record(Event{Session: c.id, Time: connStart, Kind: KindConnect, Database: c.database, User: c.user, Application: c.app})

	// Relay both ways until either side closes.
	var wg sync.WaitGroup
	wg.Go(func() {
		defer c.abort()
		for {
			msg, err := backend.Receive()
			if err != nil {
				return
			}
			c.fromClient(msg)
			frontend.Send(msg)
			toUpDirty = true
			if _, ok := msg.(*pgproto3.Terminate); ok {
				_ = frontend.Flush()
				return
			}
		}
	})
	wg.Go(func() {
		defer c.abort()
		for {
			msg, err := frontend.Receive()
			if err != nil {
				return
			}
			c.fromServer(msg)
			backend.Send(msg)
			toClientDirty = true
		}
	})
	wg.Wait()
	c.finish()
}

// fromClient records what the client asks for.
func (c *proxyConn) fromClient(msg pgproto3.FrontendMessage) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m := msg.(type) {
	case *pgproto3.Query:
		p := proxyPending{kind: pendingSimple, start: now}
		if strings.TrimSpace(m.String) != "" { // an empty query has nothing to replay
			p.ticket = c.clog.begin(c.statement(now, m.String, nil, ""))
		}
		c.fifo = append(c.fifo, p)
	case *pgproto3.Parse:
		c.stmts[m.Name] = proxyStmt{sql: m.Query, oids: append([]uint32(nil), m.ParameterOIDs...)}
		c.fifo = append(c.fifo, proxyPending{kind: pendingParse, start: now, sql: m.Query})
	case *pgproto3.Bind:
		st, ok := c.stmts[m.PreparedStatement]
		portal := &proxyPortal{stmt: m.PreparedStatement}
		if ok {
			portal.sql = st.sql
			portal.params = bindParams(m, st.oids)
		}
		c.portals[m.DestinationPortal] = portal
	case *pgproto3.Execute:
		portal := c.portals[m.Portal]
		switch {
		case portal == nil || portal.sql == "":
			c.p.skipped.Add(1)
			c.fifo = append(c.fifo, proxyPending{kind: pendingExec, start: now, skip: true})
		case portal.executed: // more rows from a suspended portal: already recorded
			c.fifo = append(c.fifo, proxyPending{kind: pendingExec, start: now, skip: true})
		default:
			portal.executed = true
			t := c.clog.begin(c.statement(now, portal.sql, portal.params, portal.stmt))
			c.fifo = append(c.fifo, proxyPending{kind: pendingExec, ticket: t, start: now})
		}
	case *pgproto3.Close:
		if m.ObjectType == 'S' {
			delete(c.stmts, m.Name)
		} else {
			delete(c.portals, m.Name)
		}
	case *pgproto3.Sync:
		c.fifo = append(c.fifo, proxyPending{kind: pendingSync})
	case *pgproto3.FunctionCall:
		c.p.skipped.Add(1)
	}
}

func (c *proxyConn) statement(at time.Time, sql string, params []Param, prepared string) Event {
	return Event{Session: c.id, Time: at, Kind: KindStatement, Database: c.database, User: c.user, Application: c.app,
		SQL: sql, Params: params, Prepared: prepared}
}

// bindParams converts a Bind's values to Params (copies: the message's
// buffers are reused).
func bindParams(m *pgproto3.Bind, oids []uint32) []Param {
	params := make([]Param, len(m.Parameters))
	for i, v := range m.Parameters {
		var format int16
		switch len(m.ParameterFormatCodes) {
		case 0:
		case 1:
			format = m.ParameterFormatCodes[0]
		default:
			if i < len(m.ParameterFormatCodes) {
				format = m.ParameterFormatCodes[i]
			}
		}
		if i < len(oids) {
			params[i].TypeOID = oids[i]
		}
		if v == nil {
			continue
		}
		var s string
		if format == 1 {
			s = base64.StdEncoding.EncodeToString(v)
			params[i].Binary = true
		} else {
			s = string(v)
		}
		params[i].Value = &s
	}
	return params
}

// fromServer settles pending requests from the server's responses.
func (c *proxyConn) fromServer(msg pgproto3.BackendMessage) {
	switch msg.(type) {
	case *pgproto3.DataRow, *pgproto3.RowDescription, *pgproto3.BindComplete, *pgproto3.NoData,
		*pgproto3.ParameterDescription, *pgproto3.CopyData, *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		return // the common case: nothing to settle
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fifo) == 0 {
		return
	}
	head := &c.fifo[0]
	switch m := msg.(type) {
	case *pgproto3.ParseComplete:
		if head.kind == pendingParse {
			c.pop()
		}
	case *pgproto3.CommandComplete, *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
		if head.kind == pendingExec {
			c.settle(head, now, nil)
			c.pop()
		}
	case *pgproto3.CopyInResponse:
		if head.kind == pendingSimple || head.kind == pendingExec {
			head.skip = true
		}
	case *pgproto3.ErrorResponse:
		e := &CapturedError{SQLState: m.Code, Message: m.Message}
		switch head.kind {
		case pendingSimple:
			if head.err == nil {
				head.err = e
			}
		case pendingExec:
			c.settle(head, now, e)
			c.pop()
		case pendingParse:
			// A Parse failed. If an Execute of it follows in this batch, that
			// statement is what failed; record it, with the error, once.
			exec := -1
			for i := 1; i < len(c.fifo) && c.fifo[i].kind != pendingSync; i++ {
				if c.fifo[i].kind == pendingExec {
					exec = i
					break
				}
			}
			if exec > 0 && c.fifo[exec].ticket != nil {
				c.settle(&c.fifo[exec], now, e)
				c.fifo[exec].ticket = nil
			} else if exec < 0 {
				ev := c.statement(head.start, head.sql, nil, "")
				ev.Duration = now.Sub(head.start)
				ev.Error = e
				c.p.statements.Add(1)
				c.clog.record(ev)
			}
			c.pop()
		}
	case *pgproto3.ReadyForQuery:
		if head.kind == pendingSimple {
			c.settle(head, now, head.err)
			c.pop()
			return
		}
		// End of an extended batch: what was not answered never ran.
		for len(c.fifo) > 0 {
			p := c.fifo[0]
			c.pop()
			if p.kind == pendingExec && p.ticket != nil {
				c.clog.drop(p.ticket)
			}
			if p.kind == pendingSync {
				break
			}
		}
	}
}

func (c *proxyConn) pop() {
	c.fifo[0] = proxyPending{}
	c.fifo = c.fifo[1:]
}

// settle writes a pending statement's outcome (or drops it if it is not
// to be recorded).
func (c *proxyConn) settle(p *proxyPending, now time.Time, e *CapturedError) {
	if p.ticket == nil {
		return
	}
	if p.skip {
		c.clog.drop(p.ticket)
		c.p.skipped.Add(1)
	} else {
		c.clog.complete(p.ticket, now.Sub(p.start), e)
		c.p.statements.Add(1)
	}
	p.ticket = nil
}

// finish records the end of the session: statements still unanswered
// (the connection broke mid-statement) are kept without an outcome.
func (c *proxyConn) finish() {
	now := time.Now()
	c.mu.Lock()
	for i := range c.fifo {
		p := &c.fifo[i]
		if p.ticket != nil {
			c.settle(p, now, p.err)
		}
	}
	c.fifo = nil
	c.mu.Unlock()
	c.clog.record(Event{Session: c.id, Time: now, Kind: KindDisconnect, Database: c.database, User: c.user, Application: c.app})
}

// forwardCancel passes a client's cancel request to the upstream server.
func (c *proxyConn) forwardCancel(ctx context.Context, m *pgproto3.CancelRequest) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	up, err := dialUpstream(ctx, c.up)
	if err != nil {
		c.log.Warn("capture proxy: forward cancel request", "err", err)
		return
	}
	defer up.Close()
	buf, err := m.Encode(nil)
	if err == nil {
		_, err = up.Write(buf)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.log.Warn("capture proxy: forward cancel request", "err", fmt.Errorf("write: %w", err))
		return
	}
	// The server closes the connection when it has processed the request.
	var b [1]byte
	_ = up.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = up.Read(b[:])
}
