package clone

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// wireBufSize is the relay's read buffer: what one read of the source's
// socket can take and one write to the target's can send.
const wireBufSize = 256 << 10

// wireFlushAt is how much the relay gathers before it writes to the
// target (each write wakes the target's backend), and wireMinRead the room
// it keeps for a read.
const (
	wireFlushAt = 128 << 10
	wireMinRead = 64 << 10
)

// maxWireMessage bounds a message from the source other than CopyData, which
// the relay holds whole (an ErrorResponse, a NoticeResponse); PostgreSQL's
// are a few KiB.
const maxWireMessage = 16 << 20

// relay copies a table that passes through untouched: it runs srcSQL (COPY
// ... TO STDOUT) on src and dstSQL (COPY ... FROM STDIN) on dst and hands
// the source's CopyData messages to the target as they came, without
// looking inside them.
//
// That is the PostgreSQL protocol's own affordance: a CopyData message's
// bytes may be cut anywhere, and both directions frame them alike, so the
// bytes read from the source's socket can be written to the target's as
// they are, in runs of 128 KiB or more (each write wakes the target's
// backend). stream, the general path, goes through pgx's CopyTo, which
// hands over one row per call (a Write per row, millions for a large
// table), and re-frames them into new messages: on the 856 MB fixture
// the relay takes dbtwin's own user CPU from about 1.0 s to 0.4 s.
//
// Both connections are used directly (pgconn's SyncConn, then Conn), and
// are idle and usable again when relay returns nil. On an error the stream
// is abandoned mid-protocol, so relay closes both connections: the caller
// aborts the clone and must not use them again. It returns the rows loaded
// (the target's COPY command tag) and the bytes of row data that came out
// of the source, like stream.
func relay(ctx context.Context, src, dst *pgconn.PgConn, srcSQL, dstSQL string, rel *arrayRelabeler, advance func(int64)) (rows, bytes int64, err error) {
	if err := src.SyncConn(ctx); err != nil {
		return 0, 0, fmt.Errorf("copy out of source: %w", err)
	}
	if err := dst.SyncConn(ctx); err != nil {
		return 0, 0, fmt.Errorf("copy into target: %w", err)
	}
	sc, dc := src.Conn(), dst.Conn()
	// Cancellation unblocks every read and write at once; the connections
	// are closed on the way out then, so the deadline never outlives this
	// call on a connection that is used again.
	stop := context.AfterFunc(ctx, func() {
		past := time.Unix(1, 0)
		_ = sc.SetDeadline(past)
		_ = dc.SetDeadline(past)
	})
	defer func() {
		stopped := stop()
		if err != nil || !stopped {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			_ = sc.Close()
			_ = dc.Close()
		}
	}()

	// The target first: if it refuses the COPY (a column the source has
	// and the clone lacks), the source has not started sending.
	if err := send(dc, &pgproto3.Query{String: dstSQL}); err != nil {
		return 0, 0, fmt.Errorf("copy into target: send COPY: %w", err)
	}
	// The target's answers are read by pgx's decoder (the relay itself
	// reads only the source's stream).
	tr := pgproto3.NewFrontend(dc, nil)
	if err := awaitCopyIn(tr); err != nil {
		return 0, 0, fmt.Errorf("copy into target: %w", err)
	}

	// From here the target reads CopyData until CopyDone or CopyFail. It
	// says nothing unless it fails, in which case it sends ErrorResponse
	// and ReadyForQuery at once and ignores the rest of the stream: a
	// reader watches for that, so a failing target stops the copy instead
	// of letting the source send the whole table first.
	tgtDone := make(chan copyOutcome, 1)
	go func() {
		tag, err := readToReady(tr)
		tgtDone <- copyOutcome{tag, err}
	}()
	if err := send(sc, &pgproto3.Query{String: srcSQL}); err != nil {
		return 0, 0, fmt.Errorf("copy out of source: send COPY: %w", err)
	}

	var (
		buf       = make([]byte, wireBufSize)
		out, p, w int   // buf[out:p] is parsed, due to the target; buf[p:w] is not parsed yet
		payload   int   // bytes of the current CopyData message not parsed yet
		reported  int64 // bytes already reported to advance
		srcErr    error // the source's ErrorResponse
		srcTag    pgconn.CommandTag
		copyOut   bool // the source answered CopyOutResponse
		copyEnded bool // CopyDone or CopyFail went to the target
		ready     bool // the source sent ReadyForQuery
	)
	flush := func() error {
		if p > out {
			if _, err := dc.Write(buf[out:p]); err != nil {
				return targetWriteError(err, tgtDone)
			}
			out = p
		}
		return nil
	}
	for !ready {
		// Parse what came: CopyData passes on as it is (relabelled in
		// place), whole or in part; other messages are read whole, and
		// not passed on.
		for !ready {
			if payload > 0 {
				k := min(payload, w-p)
				if k == 0 {
					break
				}
				if rel != nil {
					if err := rel.edit(buf[p : p+k]); err != nil {
						return 0, bytes, fmt.Errorf("copy out of source: %w", err)
					}
				}
				p += k
				payload -= k
				continue
			}
			if w-p < 5 {
				break
			}
			typ, n := buf[p], int(binary.BigEndian.Uint32(buf[p+1:]))
			if n < 4 || (typ != 'd' && n > maxWireMessage) {
				return 0, bytes, fmt.Errorf("copy out of source: message %q of %d bytes: the server's stream is not the PostgreSQL protocol", typ, n)
			}
			if typ == 'd' {
				if !copyOut || copyEnded {
					return 0, bytes, errors.New("copy out of source: CopyData outside the COPY")
				}
				bytes += int64(n - 4)
				payload = n - 4
				p += 5
				continue
			}
			if w-p < 1+n {
				break
			}
			if err := flush(); err != nil {
				return 0, bytes, err
			}
			body := buf[p+5 : p+1+n]
			p += 1 + n
			out = p
			switch typ {
			case 'H': // CopyOutResponse
				copyOut = true
			case 'c': // CopyDone
				if rel != nil {
					if err := rel.end(); err != nil {
						return 0, bytes, fmt.Errorf("copy out of source: %w", err)
					}
				}
				if err := send(dc, &pgproto3.CopyDone{}); err != nil {
					return 0, bytes, targetWriteError(err, tgtDone)
				}
				copyEnded = true
			case 'E':
				srcErr = errorResponse(body)
				if copyOut && !copyEnded {
					// The target rolls back what it loaded.
					if err := send(dc, &pgproto3.CopyFail{Message: "the source failed"}); err != nil {
						return 0, bytes, targetWriteError(err, tgtDone)
					}
					copyEnded = true
				}
			case 'C': // CommandComplete: "COPY n"
				srcTag = pgconn.NewCommandTag(strings.TrimSuffix(string(body), "\x00"))
			case 'Z': // ReadyForQuery
				ready = true
			}
			// NoticeResponse, ParameterStatus and NotificationResponse
			// need nothing from the relay.
		}
		// The target gets large writes: each one wakes its backend.
		if p-out >= wireFlushAt {
			if err := flush(); err != nil {
				return 0, bytes, err
			}
		}
		if bytes-reported >= progressEvery || ready {
			advance(bytes - reported)
			reported = bytes
		}
		if ready {
			break
		}
		select {
		case o := <-tgtDone:
			// The target ended the COPY while the source still sends.
			if o.err == nil {
				o.err = errors.New("the server ended the COPY before the data did")
			}
			return 0, bytes, fmt.Errorf("copy into target: %w", o.err)
		default:
		}

		// Room for the next read: move what the target has not had down
		// to the front, or grow for a message larger than the buffer.
		if len(buf)-w < wireMinRead {
			if out > 0 {
				w = copy(buf, buf[out:w])
				p -= out
				out = 0
			}
			if len(buf)-w < wireMinRead {
				buf = append(buf, make([]byte, len(buf))...)
			}
		}
		n, err := sc.Read(buf[w:])
		w += n
		if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return 0, bytes, fmt.Errorf("copy out of source: %w", err)
		}
	}

	if !copyEnded {
		// The source refused the COPY before starting it.
		srcErr = cmp.Or(srcErr, errors.New("the server ended the query without a COPY"))
		if err := send(dc, &pgproto3.CopyFail{Message: "the source failed"}); err != nil {
			return 0, bytes, targetWriteError(err, tgtDone)
		}
	}
	tgt := <-tgtDone
	switch {
	case srcErr != nil:
		return 0, bytes, fmt.Errorf("copy out of source: %w", srcErr)
	case tgt.err != nil:
		return 0, bytes, fmt.Errorf("copy into target: %w", tgt.err)
	case tgt.tag.RowsAffected() != srcTag.RowsAffected():
		// The relay's own end-to-end check.
		return 0, bytes, fmt.Errorf("the source sent %d rows and the target loaded %d", srcTag.RowsAffected(), tgt.tag.RowsAffected())
	}
	return tgt.tag.RowsAffected(), bytes, nil
}

// copyOutcome is how the target's side of a COPY ended.
type copyOutcome struct {
	tag pgconn.CommandTag
	err error
}

// targetWriteError is the error for a failed write to the target: the
// target's own ErrorResponse when it sent one (a server that fails a COPY
// may also drop the connection), else the write's.
func targetWriteError(werr error, tgtDone <-chan copyOutcome) error {
	select {
	case o := <-tgtDone:
		if o.err != nil {
			return fmt.Errorf("copy into target: %w", o.err)
		}
	case <-time.After(time.Second):
	}
	return fmt.Errorf("copy into target: %w", werr)
}

// awaitCopyIn reads the target's answer to COPY ... FROM STDIN up to its
// CopyInResponse, or to ReadyForQuery after an error.
func awaitCopyIn(fe *pgproto3.Frontend) error {
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyInResponse:
			return nil
		case *pgproto3.ErrorResponse:
			pgErr := pgconn.ErrorResponseToPgError(msg)
			if _, err := readToReady(fe); err != nil && !isPgError(err) {
				return err
			}
			return pgErr
		case *pgproto3.ReadyForQuery:
			return errors.New("the server did not start the COPY")
		}
	}
}

// readToReady reads messages up to ReadyForQuery and returns the command
// tag and the first ErrorResponse among them.
func readToReady(fe *pgproto3.Frontend) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	var pgErr error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return tag, err
		}
		switch msg := msg.(type) {
		case *pgproto3.CommandComplete:
			tag = pgconn.NewCommandTag(string(msg.CommandTag))
		case *pgproto3.ErrorResponse:
			if pgErr == nil {
				pgErr = pgconn.ErrorResponseToPgError(msg)
			}
		case *pgproto3.ReadyForQuery:
			return tag, pgErr
		}
	}
}

// errorResponse turns an ErrorResponse body into the *pgconn.PgError pgx
// would have returned.
func errorResponse(body []byte) error {
	var msg pgproto3.ErrorResponse
	if err := msg.Decode(body); err != nil {
		return fmt.Errorf("decode the server's error: %w", err)
	}
	return pgconn.ErrorResponseToPgError(&msg)
}

// send writes msg, one of pgproto3's (Query, CopyDone, CopyFail), to a
// connection used directly.
func send(w io.Writer, msg pgproto3.FrontendMessage) error {
	b, err := msg.Encode(nil)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
