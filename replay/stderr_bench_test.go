package replay

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// repeatReader streams a log made of n copies of a real log, each copy's
// pids shifted so that sessions differ, without holding more than one copy.
type repeatReader struct {
	copies [][]byte // the log with pid markers replaced, by copy parity
	n, i   int
	cur    *bytes.Reader
}

// newRepeatReader repeats the golden stderr log src n times.
func newRepeatReader(src []byte, n int) *repeatReader {
	// Shift pids by rewriting "[6" (all pids in the golden log start with 6)
	// to other digits per copy; the lines stay real server lines.
	var copies [][]byte
	for d := 1; d <= 9; d++ {
		copies = append(copies, bytes.ReplaceAll(src, []byte(" [6"), []byte(" ["+strconv.Itoa(d))))
	}
	return &repeatReader{copies: copies, n: n}
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for {
		if r.cur != nil {
			n, err := r.cur.Read(p)
			if n > 0 || err != io.EOF {
				return n, nil
			}
		}
		if r.i == r.n {
			return 0, io.EOF
		}
		r.cur = bytes.NewReader(r.copies[r.i%len(r.copies)])
		r.i++
	}
}

func benchLog(b testing.TB) []byte {
	src, err := os.ReadFile("testdata/logs/stderr-debian-stmt.log")
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkStderrReader reads a large log built from a real one (about
// 10 MB per iteration) and reports MB/s.
func BenchmarkStderrReader(b *testing.B) {
	src := benchLog(b)
	copies := (10 << 20) / len(src)
	b.SetBytes(int64(copies * len(src)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(context.Background(), "bench.log", newRepeatReader(src, copies), ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for r.Next() {
			n++
		}
		if r.Err() != nil || n == 0 {
			b.Fatal(r.Err(), n)
		}
	}
}

// TestReaderMemoryBounded reads a 60 MB log made from a real one and checks
// that the heap after it is no larger than after the first few MB.
func TestReaderMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 60 MB")
	}
	src := benchLog(t)
	copies := (60 << 20) / len(src)
	r, err := NewReader(context.Background(), "big.log", newRepeatReader(src, copies), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	var early, late uint64
	n := 0
	for r.Next() {
		n++
		if n == 20000 {
			early = heap()
		}
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	late = heap()
	t.Logf("%d events from %d MB; heap in use %d KB after 20000 events, %d KB at the end", n, copies*len(src)>>20, early>>10, late>>10)
	if late > early+4<<20 {
		t.Errorf("heap grew from %d KB to %d KB while reading", early>>10, late>>10)
	}
}
