package replay

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math/bits"
)

// RowHasher computes the two hashes of a statement's result rows while the
// rows stream: nothing of a row is kept once Add returns, so memory is
// bounded by one row however large the result.
//
// Every row is first encoded unambiguously — the index of the result it
// belongs to (a multi-statement query string has several), the number of
// values, then each value as a 4-byte big-endian length and its bytes, with
// NULL as the length 0xFFFFFFFF and no bytes (so NULL and the empty string
// differ) — and digested with SHA-256 into a per-row digest.
//
//   - The ordered hash is SHA-256 over the sequence of per-row digests: it
//     changes when rows are permuted, added, removed or changed.
//   - The multiset hash is the sum, modulo 2^128, of the first 128 bits of
//     every per-row digest: addition is commutative, so permuting rows keeps
//     it, while a duplicated row adds its digest a second time and changes it
//     (an XOR combination would cancel duplicates out).
//
// Both are reported as 32 lowercase hex digits (128 bits). Values are hashed
// as the raw text-format bytes the server sent, never decoded.
//
// The zero value is not ready; use NewRowHasher. A RowHasher is not safe for
// concurrent use; Reset makes it reusable.
type RowHasher struct {
	row     hash.Hash
	ordered hash.Hash
	hi, lo  uint64
	rows    int64
	scratch [sha256.Size]byte
	hdr     [8]byte
}

// NewRowHasher returns a RowHasher with no rows added.
func NewRowHasher() *RowHasher {
	return &RowHasher{row: sha256.New(), ordered: sha256.New()}
}

// Reset forgets every row added, as if the RowHasher were new.
func (h *RowHasher) Reset() {
	h.ordered.Reset()
	h.hi, h.lo, h.rows = 0, 0, 0
}

// Add hashes one row of result number result (0 for a single statement).
// values are the row's text-format values as pgconn returns them; a nil
// element is SQL NULL.
func (h *RowHasher) Add(result int, values [][]byte) {
	h.row.Reset()
	binary.BigEndian.PutUint32(h.hdr[0:4], uint32(result))
	binary.BigEndian.PutUint32(h.hdr[4:8], uint32(len(values)))
	h.row.Write(h.hdr[:8])
	for _, v := range values {
		if v == nil {
			binary.BigEndian.PutUint32(h.hdr[0:4], 0xFFFFFFFF)
			h.row.Write(h.hdr[:4])
			continue
		}
		binary.BigEndian.PutUint32(h.hdr[0:4], uint32(len(v)))
		h.row.Write(h.hdr[:4])
		h.row.Write(v)
	}
	d := h.row.Sum(h.scratch[:0])
	h.ordered.Write(d)
	var carry uint64
	h.lo, carry = bits.Add64(h.lo, binary.BigEndian.Uint64(d[8:16]), 0)
	h.hi, _ = bits.Add64(h.hi, binary.BigEndian.Uint64(d[0:8]), carry)
	h.rows++
}

// Rows is the number of rows added since the last Reset.
func (h *RowHasher) Rows() int64 { return h.rows }

// Ordered returns the order-aware hash of the rows added so far.
func (h *RowHasher) Ordered() string {
	var buf [sha256.Size]byte
	sum := h.ordered.Sum(buf[:0])
	return hex.EncodeToString(sum[:16])
}

// Multiset returns the order-independent hash of the rows added so far.
func (h *RowHasher) Multiset() string {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[0:8], h.hi)
	binary.BigEndian.PutUint64(buf[8:16], h.lo)
	return hex.EncodeToString(buf[:])
}
