package clone

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/jackc/pgx/v5"
)

// An array's binary COPY form starts with its number of dimensions, a
// has-nulls flag and its element type's OID, then the dimensions and the
// elements. A user-defined type (an enum, a domain, an extension type) has
// one OID on the source and another on the target. Older releases'
// array_recv refuse an array whose element OID is not the column's ("wrong
// element type"); newer ones (15 among them) check only built-in OIDs and
// read any other array as the column's element type. Rather than copy such
// a table in text, which costs both servers the text output and input of
// every column, the copier streams it in binary and rewrites that one OID
// in the header of each array, right on every release: in place in the
// relay (arrayRelabeler), or as a filter after the masker's
// (relabelArrays).

// binaryCopySignature opens every binary COPY stream.
var binaryCopySignature = []byte("PGCOPY\n\xff\r\n\x00")

// arrayElemOIDOffset is where the element type OID sits in an array's
// binary form (after ndim and the has-nulls flag).
const arrayElemOIDOffset = 8

// resolveRelabels finds, in the temporary database conn is connected to,
// the OIDs of the element types the tables' relabelled columns name, and
// gives each such table copied in binary a relabelArrays filter, after the
// masker's when the table is masked (the masker passes the columns it
// keeps through as they came, source OIDs included).
func resolveRelabels(ctx context.Context, conn *pgx.Conn, tables []*table) error {
	for _, t := range tables {
		if len(t.relabel) == 0 || t.text {
			continue
		}
		// Positions in the stream the target reads: a masker may leave
		// columns out.
		out := t.cols
		if t.targetCols != nil {
			out = t.targetCols
		}
		to := make(map[int][2]uint32, len(t.relabel))
		for _, r := range t.relabel {
			pos := slices.Index(out, t.cols[r.pos])
			if pos < 0 {
				continue
			}
			var oid uint32
			err := conn.QueryRow(ctx, `SELECT t.oid FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
				WHERE n.nspname = $1 AND t.typname = $2`, r.schema, r.typname).Scan(&oid)
			if err != nil {
				return fmt.Errorf("clone table %q: find type %s.%s in the clone: %w", t.String(), r.schema, r.typname, err)
			}
			to[pos] = [2]uint32{r.from, oid}
		}
		if len(to) == 0 {
			continue
		}
		if t.filter == nil {
			// The relay relabels the stream in place.
			t.relabelOIDs = to
		} else {
			t.filter = chainFilters(t.filter, relabelArrays(len(out), to))
		}
	}
	return nil
}

// chainFilters runs first's output through second, joined by a pipe. An
// error of first's is the one reported (second only sees its output end).
func chainFilters(first, second func(context.Context, io.Writer, io.Reader) (int64, error)) func(context.Context, io.Writer, io.Reader) (int64, error) {
	return func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
		pr, pw := io.Pipe()
		firstErr := make(chan error, 1)
		go func() {
			_, err := first(ctx, pw, src)
			pw.CloseWithError(err) // nil: second sees EOF
			firstErr <- err
		}()
		n, err := second(ctx, dst, pr)
		pr.CloseWithError(errTargetStopped) // unblock first if second stopped early
		if ferr := <-firstErr; ferr != nil && !errors.Is(ferr, errTargetStopped) && !errors.Is(ferr, io.ErrClosedPipe) {
			return n, ferr
		}
		return n, err
	}
}

// relabelArrays returns a filter for a binary COPY stream of ncols columns
// that rewrites, in each non-NULL array of the columns relabel names (by
// position), the element type OID from relabel[pos][0] to relabel[pos][1].
// Every other byte passes through unchanged; memory is one buffer. It is
// the arrayRelabeler fed from a reader, for a stream that already goes
// through a filter (a masked table); an unmasked table's stream is
// relabelled in place by the relay.
func relabelArrays(ncols int, relabel map[int][2]uint32) func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	return func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
		e := newArrayRelabeler(ncols, relabel)
		buf := make([]byte, 64<<10)
		for {
			if err := ctx.Err(); err != nil {
				return e.rows, err
			}
			n, err := src.Read(buf)
			if n > 0 {
				if err := e.edit(buf[:n]); err != nil {
					return e.rows, err
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					return e.rows, err
				}
			}
			if errors.Is(err, io.EOF) {
				return e.rows, e.end()
			}
			if err != nil {
				return e.rows, err
			}
		}
	}
}

// arrayRelabeler rewrites, in place, the element type OIDs of some array
// columns of a binary COPY stream (see relabelArrays), fed to edit in
// pieces cut anywhere. It parses the stream's framing (header, field
// counts, field lengths) and skips everything else in bulk, so it costs a
// few instructions per field whatever the values' sizes.
type arrayRelabeler struct {
	ncols int
	byPos []*[2]uint32 // by column position; nil: pass through
	st    relabelState
	acc   [19]byte // a fixed-size item collected across pieces
	have  int      // bytes of it in acc
	skip  int      // header extension bytes still to pass
	field int      // the current field's position
	size  int      // the current field's data size
	pos   int      // bytes of the current field's data seen
	rows  int64
}

type relabelState int

const (
	relabelHeader  relabelState = iota // 19 bytes: signature, flags, extension length
	relabelExt                         // the header extension
	relabelCount                       // a row's 16-bit field count
	relabelLen                         // a field's 32-bit length
	relabelData                        // a field's data
	relabelTrailer                     // after the -1 field count: nothing may follow
)

func newArrayRelabeler(ncols int, relabel map[int][2]uint32) *arrayRelabeler {
	byPos := make([]*[2]uint32, ncols)
	for pos, oids := range relabel {
		if pos >= 0 && pos < ncols {
			byPos[pos] = &oids
		}
	}
	return &arrayRelabeler{ncols: ncols, byPos: byPos}
}

func (e *arrayRelabeler) fail(format string, args ...any) error {
	return fmt.Errorf("relabel arrays in binary COPY: "+format, args...)
}

// take collects an n-byte item from the front of p, across calls: it
// returns the item once whole, and what is left of p.
func (e *arrayRelabeler) take(p []byte, n int) (item, rest []byte) {
	if e.have == 0 && len(p) >= n {
		return p[:n], p[n:]
	}
	k := copy(e.acc[e.have:n], p)
	e.have += k
	if e.have < n {
		return nil, nil
	}
	e.have = 0
	return e.acc[:n], p[k:]
}

// edit relabels p, the stream's next bytes, in place.
func (e *arrayRelabeler) edit(p []byte) error {
	for {
		e.settle()
		if len(p) == 0 {
			return nil
		}
		var b []byte
		switch e.st {
		case relabelHeader:
			if b, p = e.take(p, 19); b == nil {
				return nil
			}
			if !bytes.Equal(b[:11], binaryCopySignature) {
				return e.fail("not a binary COPY stream")
			}
			e.skip = int(binary.BigEndian.Uint32(b[15:19]))
			e.st = relabelExt
		case relabelExt:
			k := min(e.skip, len(p))
			e.skip -= k
			p = p[k:]
		case relabelCount:
			if b, p = e.take(p, 2); b == nil {
				return nil
			}
			count := int16(binary.BigEndian.Uint16(b))
			switch {
			case count == -1:
				e.st = relabelTrailer
			case int(count) != e.ncols:
				return e.fail("row %d: %d fields, want %d", e.rows+1, count, e.ncols)
			default:
				e.field = 0
				e.st = relabelLen
			}
		case relabelLen:
			if b, p = e.take(p, 4); b == nil {
				return nil
			}
			e.size, e.pos = int(int32(binary.BigEndian.Uint32(b))), 0
			if e.byPos[e.field] != nil && e.size > 0 && e.size < arrayElemOIDOffset+4 {
				return e.fail("row %d column %d: %d bytes is too short for an array", e.rows+1, e.field+1, e.size)
			}
			e.st = relabelData
		case relabelData:
			oids := e.byPos[e.field]
			if oids == nil || e.pos >= arrayElemOIDOffset+4 {
				k := min(e.size-e.pos, len(p))
				e.pos += k
				p = p[k:]
				continue
			}
			if e.pos < arrayElemOIDOffset {
				k := min(arrayElemOIDOffset-e.pos, len(p))
				e.pos += k
				p = p[k:]
				continue
			}
			// The OID, possibly cut between pieces: each byte is kept in
			// acc, to be checked once whole, and replaced as it passes.
			i := e.pos - arrayElemOIDOffset
			e.acc[i] = p[0]
			p[0] = byte(oids[1] >> (8 * (3 - i)))
			e.pos++
			p = p[1:]
			if got := binary.BigEndian.Uint32(e.acc[:4]); i == 3 && got != oids[0] {
				return e.fail("row %d column %d: element type OID %d, want %d", e.rows+1, e.field+1, got, oids[0])
			}
		case relabelTrailer:
			return e.fail("%d bytes after the end of the stream", len(p))
		}
	}
}

// settle moves past every item that is complete without taking a byte: an
// extension or a field's data that has ended (a NULL or empty field at
// once), a row whose last field has ended.
func (e *arrayRelabeler) settle() {
	for {
		switch {
		case e.st == relabelExt && e.skip == 0:
			e.st = relabelCount
		case e.st == relabelData && e.pos >= e.size:
			e.field++
			e.st = relabelLen
		case e.st == relabelLen && e.field == e.ncols:
			e.rows++
			e.st = relabelCount
		default:
			return
		}
	}
}

// end reports whether the stream ended where a binary COPY stream may.
func (e *arrayRelabeler) end() error {
	switch {
	case e.st == relabelTrailer:
		return nil
	case e.st == relabelHeader:
		return e.fail("not a binary COPY stream")
	}
	return e.fail("row %d: %w", e.rows+1, io.ErrUnexpectedEOF)
}
