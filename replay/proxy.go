package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Proxy is the capture proxy: a PostgreSQL wire-protocol proxy that
// forwards everything between clients and an upstream server and records
// what the clients ran as a dbtwin JSONL workload (dbtwin capture proxy).
//
// Each client connection is one session. The proxy records a connect event
// (database, user, application_name from the startup message), every
// statement — a simple-protocol query string as sent, or an extended-
// protocol execution with its prepared text, bound parameters (type OIDs
// declared at Parse, text or binary format) and prepared statement name —
// with its start time, duration and error, and a disconnect event.
// Transaction boundaries are statements like any other. What the server
// never ran (the rest of an extended-protocol batch after an error) is not
// recorded; a Parse that failed before any Execute is recorded as a
// statement with its error, as a server log would show it. COPY … FROM
// STDIN is forwarded but not recorded (its data is not kept), and neither
// are function calls (the 'F' message).
//
// Startup: the proxy refuses SSL and GSS encryption from clients (they
// connect to a loopback port), forwards the client's startup message to the
// upstream and relays authentication both ways, so cleartext, MD5 and
// SCRAM work unchanged; the client's own credentials are used. Only the
// upstream DSN's address and sslmode matter: with sslmode other than
// disable the proxy negotiates TLS with the upstream as pgconn would
// (require, verify-ca, verify-full; prefer falls back to plain text).
// Cancel requests are forwarded.
//
// The zero value is not usable: set Upstream and Out. A Proxy serves once.
type Proxy struct {
	// Listen is the address ListenAndServe listens on; it must be a
	// loopback address ("127.0.0.1:6432").
	Listen string
	// Upstream is the DSN of the server to forward to.
	Upstream string
	// Out receives the JSONL workload. Serve flushes it before it returns.
	Out io.Writer
	// Logger receives connection errors. Nil: discard.
	Logger *slog.Logger
	// MaxPending bounds the events held back behind an unfinished statement
	// (see the workload's Seq order). 0: 100000.
	MaxPending int

	sessions   atomic.Int64
	statements atomic.Int64
	skipped    atomic.Int64
	events     atomic.Int64
}

// ProxyStats summarise what a Proxy recorded.
type ProxyStats struct {
	// Sessions is the number of client connections that started a session.
	Sessions int64
	// Statements is the number of statements recorded.
	Statements int64
	// Skipped counts statements forwarded but not recorded (COPY FROM
	// STDIN, function calls, executions of unknown prepared statements).
	Skipped int64
	// Events is the number of events written (statements, connects and
	// disconnects).
	Events int64
}

// Stats reports what the proxy has recorded so far.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{Sessions: p.sessions.Load(), Statements: p.statements.Load(), Skipped: p.skipped.Load(), Events: p.events.Load()}
}

// ListenAndServe listens on p.Listen (loopback only) and serves until ctx
// ends; see Serve.
func (p *Proxy) ListenAndServe(ctx context.Context) error {
	host, _, err := net.SplitHostPort(p.Listen)
	if err != nil {
		return fmt.Errorf("check capture proxy listen address %q: %w", p.Listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("check capture proxy listen address %q: only loopback addresses (127.0.0.1, ::1) are allowed", p.Listen)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", p.Listen, err)
	}
	return p.Serve(ctx, ln)
}

// Serve accepts client connections on ln until ctx ends, then closes ln
// and every open connection (recording their disconnects), writes what is
// still pending and flushes Out. It returns nil after a shutdown by ctx.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if p.Out == nil {
		ln.Close()
		return errors.New("start capture proxy: no output for the workload")
	}
	up, err := pgconn.ParseConfig(p.Upstream)
	if err != nil {
		ln.Close()
		return fmt.Errorf("parse upstream DSN %s: %w", pgdsn.Redact(p.Upstream), err)
	}
	maxPending := p.MaxPending
	if maxPending <= 0 {
		maxPending = 100_000
	}
	clog, err := newCaptureLog(p.Out, maxPending, &p.events)
	if err != nil {
		ln.Close()
		return err
	}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[*proxyConn]struct{}{}
		next  int64
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.abort()
		}
		mu.Unlock()
	})
	defer stop()

	// Flush now and then, so a crash loses little.
	flushDone := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = clog.flush()
			case <-flushDone:
				return
			}
		}
	})

	var acceptErr error
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				acceptErr = fmt.Errorf("accept client connection: %w", err)
			}
			break
		}
		next++
		c := &proxyConn{p: p, up: up, log: log, clog: clog, client: nc, id: strconv.FormatInt(next, 10)}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			nc.Close()
			break
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			c.serve(ctx)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
	ln.Close()
	mu.Lock()
	for c := range conns {
		c.abort()
	}
	mu.Unlock()
	close(flushDone)
	wg.Wait()
	if err := clog.close(); err != nil {
		return err
	}
	return acceptErr
}

// dialUpstream connects to the upstream server, negotiating TLS as its
// sslmode says (trying pgconn's fallbacks in order, as pgconn does).
func dialUpstream(ctx context.Context, cfg *pgconn.Config) (net.Conn, error) {
	type target struct {
		host string
		port uint16
		tls  *tls.Config
	}
	targets := []target{{cfg.Host, cfg.Port, cfg.TLSConfig}}
	for _, fb := range cfg.Fallbacks {
		targets = append(targets, target{fb.Host, fb.Port, fb.TLSConfig})
	}
	var errs []error
	for _, t := range targets {
		network, addr := pgconn.NetworkAddress(t.host, t.port)
		dctx := ctx
		if cfg.ConnectTimeout > 0 {
			var cancel context.CancelFunc
			dctx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
			defer cancel()
		}
		nc, err := cfg.DialFunc(dctx, network, addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("dial %s: %w", addr, err))
			continue
		}
		if t.tls == nil {
			return nc, nil
		}
		tc, err := startUpstreamTLS(dctx, nc, t.tls)
		if err != nil {
			nc.Close()
			errs = append(errs, fmt.Errorf("TLS to %s: %w", addr, err))
			continue
		}
		return tc, nil
	}
	return nil, errors.Join(errs...)
}

// startUpstreamTLS sends an SSLRequest and, if the server agrees, does the
// TLS handshake.
func startUpstreamTLS(ctx context.Context, nc net.Conn, cfg *tls.Config) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
		defer nc.SetDeadline(time.Time{})
	}
	req, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	if _, err := nc.Write(req); err != nil {
		return nil, err
	}
	var b [1]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil {
		return nil, err
	}
	if b[0] != 'S' {
		return nil, errors.New("server refused TLS")
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
