package clone

import (
	"bufio"
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
// elements. array_recv refuses an array whose element OID names a type of
// the target database other than the column's element type, and a
// user-defined type (an enum, a domain, an extension type) has one OID on
// the source and another on the target, which may well be some other
// type's there. Rather than copy
// such a table in text, which costs both servers the text output and input
// of every column, the copier streams it in binary and rewrites that one
// OID in the header of each array (relabelArrays).

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
		relabel := relabelArrays(len(out), to)
		if t.filter == nil {
			t.filter = relabel
		} else {
			t.filter = chainFilters(t.filter, relabel)
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
// Every other byte passes through unchanged; memory is two buffers.
func relabelArrays(ncols int, relabel map[int][2]uint32) func(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	// By position, for the per-field lookup (nil: pass through).
	byPos := make([]*[2]uint32, ncols)
	for pos, oids := range relabel {
		if pos >= 0 && pos < ncols {
			byPos[pos] = &oids
		}
	}
	return func(ctx context.Context, dst io.Writer, src io.Reader) (rows int64, err error) {
		r := bufio.NewReaderSize(src, 64<<10)
		w := bufio.NewWriterSize(dst, 64<<10)
		fail := func(format string, args ...any) error {
			return fmt.Errorf("relabel arrays in binary COPY: "+format, args...)
		}
		hdr, err := r.Peek(19)
		if err != nil || !bytes.Equal(hdr[:11], binaryCopySignature) {
			return 0, fail("not a binary COPY stream")
		}
		ext := int(binary.BigEndian.Uint32(hdr[15:19]))
		if err := copyN(w, r, 19+ext); err != nil {
			return 0, fail("header: %w", err)
		}
		for {
			if rows&1023 == 0 && ctx.Err() != nil {
				return rows, ctx.Err()
			}
			b, err := r.Peek(2)
			if err != nil {
				return rows, fail("row %d: %w", rows+1, unexpected(err))
			}
			count := int16(binary.BigEndian.Uint16(b))
			if err := copyN(w, r, 2); err != nil {
				return rows, fail("row %d: %w", rows+1, err)
			}
			if count == -1 {
				break
			}
			if int(count) != ncols {
				return rows, fail("row %d: %d fields, want %d", rows+1, count, ncols)
			}
			for i := 0; i < ncols; i++ {
				b, err := r.Peek(4)
				if err != nil {
					return rows, fail("row %d: %w", rows+1, unexpected(err))
				}
				size := int(int32(binary.BigEndian.Uint32(b)))
				if err := copyN(w, r, 4); err != nil {
					return rows, fail("row %d: %w", rows+1, err)
				}
				if size <= 0 {
					continue
				}
				if oids := byPos[i]; oids != nil {
					if size < arrayElemOIDOffset+4 {
						return rows, fail("row %d column %d: %d bytes is too short for an array", rows+1, i+1, size)
					}
					head, err := r.Peek(arrayElemOIDOffset + 4)
					if err != nil {
						return rows, fail("row %d: %w", rows+1, unexpected(err))
					}
					if got := binary.BigEndian.Uint32(head[arrayElemOIDOffset:]); got != oids[0] {
						return rows, fail("row %d column %d: element type OID %d, want %d", rows+1, i+1, got, oids[0])
					}
					var to [4]byte
					binary.BigEndian.PutUint32(to[:], oids[1])
					w.Write(head[:arrayElemOIDOffset])
					w.Write(to[:])
					r.Discard(arrayElemOIDOffset + 4)
					size -= arrayElemOIDOffset + 4
				}
				if err := copyN(w, r, size); err != nil {
					return rows, fail("row %d: %w", rows+1, err)
				}
			}
			rows++
		}
		return rows, w.Flush()
	}
}

// copyN moves n bytes from r to w through r's buffer.
func copyN(w *bufio.Writer, r *bufio.Reader, n int) error {
	for n > 0 {
		b, err := r.Peek(min(n, r.Size()))
		if len(b) == 0 {
			return unexpected(err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		r.Discard(len(b))
		n -= len(b)
	}
	return nil
}

// unexpected turns the end of the stream in the middle of a row into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
