package clone

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// copyStream builds a binary COPY stream of rows, each a list of fields
// (nil: NULL).
func copyStream(rows ...[][]byte) []byte {
	b := append([]byte(nil), binaryCopySignature...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 4) // a header extension to pass through
	b = append(b, "ext!"...)
	for _, row := range rows {
		b = binary.BigEndian.AppendUint16(b, uint16(len(row)))
		for _, f := range row {
			if f == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

// enumArray is the binary form of a one-dimensional array of labels whose
// element type has OID elem.
func enumArray(elem uint32, labels ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1) // ndim
	b = binary.BigEndian.AppendUint32(b, 0)    // no NULLs
	b = binary.BigEndian.AppendUint32(b, elem)
	b = binary.BigEndian.AppendUint32(b, uint32(len(labels)))
	b = binary.BigEndian.AppendUint32(b, 1) // lower bound
	for _, l := range labels {
		b = binary.BigEndian.AppendUint32(b, uint32(len(l)))
		b = append(b, l...)
	}
	return b
}

func emptyArray(elem uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	return binary.BigEndian.AppendUint32(b, elem)
}

func TestRelabelArrays(t *testing.T) {
	id := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	big := strings.Repeat("happy", 30000) // a label list longer than the reader's buffer
	in := copyStream(
		[][]byte{id(1), enumArray(16400, "ok", "sad"), id(16400)},
		[][]byte{id(2), nil, nil},
		[][]byte{id(3), emptyArray(16400), []byte{}},
		[][]byte{id(4), enumArray(16400, big), id(7)},
	)
	want := copyStream(
		[][]byte{id(1), enumArray(70001, "ok", "sad"), id(16400)}, // the third column is not relabelled
		[][]byte{id(2), nil, nil},
		[][]byte{id(3), emptyArray(70001), []byte{}},
		[][]byte{id(4), enumArray(70001, big), id(7)},
	)
	var out bytes.Buffer
	n, err := relabelArrays(3, map[int][2]uint32{1: {16400, 70001}})(context.Background(), &out, bytes.NewReader(in))
	if err != nil || n != 4 {
		t.Fatalf("relabelArrays: %d rows, %v", n, err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from the expected stream (%d bytes, want %d)", out.Len(), len(want))
	}

	for _, tt := range []struct {
		name string
		in   []byte
		want string
	}{
		{"not binary", []byte("1\t{ok}\n"), "not a binary COPY stream"},
		{"other element type", copyStream([][]byte{id(1), enumArray(23, "x"), nil}), "element type OID 23, want 16400"},
		{"too short", copyStream([][]byte{id(1), []byte{0, 0, 0, 1}, nil}), "too short for an array"},
		{"field count", copyStream([][]byte{id(1)}), "1 fields, want 3"},
		{"cut", in[:len(in)-40], "unexpected EOF"},
	} {
		_, err := relabelArrays(3, map[int][2]uint32{1: {16400, 70001}})(context.Background(), &bytes.Buffer{}, bytes.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestChainFilters(t *testing.T) {
	id := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	in := copyStream([][]byte{id(1), enumArray(16400, "ok")})
	want := copyStream([][]byte{id(1), enumArray(70001, "ok")})
	pass := func(_ context.Context, dst io.Writer, src io.Reader) (int64, error) {
		n, err := io.Copy(dst, src)
		return n, err
	}
	relabel := relabelArrays(2, map[int][2]uint32{1: {16400, 70001}})
	var out bytes.Buffer
	if _, err := chainFilters(pass, relabel)(context.Background(), &out, bytes.NewReader(in)); err != nil || !bytes.Equal(out.Bytes(), want) {
		t.Errorf("pass then relabel: %v, output equal %v", err, bytes.Equal(out.Bytes(), want))
	}
	// The first filter's failure is the one reported.
	refuse := func(_ context.Context, dst io.Writer, _ io.Reader) (int64, error) {
		dst.Write(in[:15])
		return 0, errors.New("transform refused a value")
	}
	if _, err := chainFilters(refuse, relabel)(context.Background(), io.Discard, bytes.NewReader(in)); err == nil || err.Error() != "transform refused a value" {
		t.Errorf("failing first filter: error %v", err)
	}
	// A failure of the second stops the first, and is reported.
	if _, err := chainFilters(pass, relabelArrays(3, nil))(context.Background(), io.Discard, bytes.NewReader(in)); err == nil || !strings.Contains(err.Error(), "2 fields, want 3") {
		t.Errorf("failing second filter: error %v", err)
	}
}

// relabelSample is a stream with every kind of field the relabeler meets,
// and what it must become.
func relabelSample() (in, want []byte) {
	id := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	in = copyStream(
		[][]byte{id(1), enumArray(16400, "ok", "sad"), id(16400)},
		[][]byte{id(2), nil, nil},
		[][]byte{id(3), emptyArray(16400), []byte{}},
		[][]byte{id(4), enumArray(16400, strings.Repeat("long", 5000)), id(7)},
	)
	want = copyStream(
		[][]byte{id(1), enumArray(70001, "ok", "sad"), id(16400)},
		[][]byte{id(2), nil, nil},
		[][]byte{id(3), emptyArray(70001), []byte{}},
		[][]byte{id(4), enumArray(70001, strings.Repeat("long", 5000)), id(7)},
	)
	return in, want
}

// TestArrayRelabelerPieces feeds the relabeler the stream cut into pieces
// of every small size, as the relay does with whatever a socket read
// returns: an OID or a length cut between two pieces is still rewritten.
func TestArrayRelabelerPieces(t *testing.T) {
	in, want := relabelSample()
	for _, size := range []int{1, 2, 3, 4, 5, 7, 11, 13, 19, 20, 21, 64, 4096, len(in)} {
		got := slices.Clone(in)
		e := newArrayRelabeler(3, map[int][2]uint32{1: {16400, 70001}})
		for p := got; len(p) > 0; {
			k := min(size, len(p))
			if err := e.edit(p[:k]); err != nil {
				t.Fatalf("pieces of %d: %v", size, err)
			}
			p = p[k:]
		}
		if err := e.end(); err != nil || e.rows != 4 {
			t.Errorf("pieces of %d: end %v, %d rows", size, err, e.rows)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("pieces of %d: output differs from the expected stream", size)
		}
	}
}

// FuzzArrayRelabeler: whatever the stream and wherever it is cut, the
// relabeler does to the pieces what it does to the whole, error included,
// and never panics.
func FuzzArrayRelabeler(f *testing.F) {
	in, _ := relabelSample()
	f.Add(in, []byte{3, 1, 4, 1, 5, 9, 2, 6})
	f.Add(in[:50], []byte{0})
	f.Add(copyStream([][]byte{{1}, emptyArray(16400)}), []byte{7})
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		relabel := map[int][2]uint32{1: {16400, 70001}}
		run := func(b []byte, size func() int) error {
			e := newArrayRelabeler(3, relabel)
			for len(b) > 0 {
				k := min(size(), len(b))
				if err := e.edit(b[:k]); err != nil {
					return err
				}
				b = b[k:]
			}
			return e.end()
		}
		whole := slices.Clone(in)
		wholeErr := run(whole, func() int { return len(whole) })
		pieces := slices.Clone(in)
		i := 0
		piecesErr := run(pieces, func() int {
			if len(cuts) == 0 {
				return 1
			}
			i++
			return int(cuts[i%len(cuts)])%32 + 1
		})
		if fmt.Sprint(wholeErr) != fmt.Sprint(piecesErr) {
			t.Fatalf("whole: %v; in pieces: %v", wholeErr, piecesErr)
		}
		if wholeErr == nil && !bytes.Equal(whole, pieces) {
			t.Fatal("the pieces came out other than the whole")
		}
	})
}
