package masking

import (
	"crypto/cipher"
	"encoding/binary"
	"math/bits"
	"sync"
)

// feistelRounds is the number of rounds of the binary Feistel permutations
// (as many as FF1 uses).
const feistelRounds = 10

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

// bitPerm is a keyed permutation of the w-bit integers, 0 <= w <= 128: FF1's
// alternating Feistel structure over radix 2 (halves of floor(w/2) and
// ceil(w/2) bits) with one AES block per round as the round function.
// tag separates permutations that share a domain key. Safe for concurrent
// use.
type bitPerm struct {
	block cipher.Block
	pool  *sync.Pool // of *aesScratch; nil: allocate
	w     uint
	u, v  uint // bits of the left and right halves; u + v == w, u <= v <= 64
	tag   byte
}

func newBitPerm(block cipher.Block, w uint, tag byte, pool *sync.Pool) bitPerm {
	return bitPerm{block: block, pool: pool, w: w, u: w / 2, v: w - w/2, tag: tag}
}

func mask64(m uint) uint64 {
	if m >= 64 {
		return ^uint64(0)
	}
	return 1<<m - 1
}

// round is the round function: m pseudo-random bits of AES(tag, i, w, x).
func (p *bitPerm) round(blk *[16]byte, i int, x uint64, m uint) uint64 {
	*blk = [16]byte{0: p.tag, 1: byte(i), 2: byte(p.w)}
	binary.BigEndian.PutUint64(blk[8:], x)
	p.block.Encrypt(blk[:], blk[:])
	return binary.BigEndian.Uint64(blk[:8]) & mask64(m)
}

func (p *bitPerm) split(x u128) (a, b uint64) {
	b = x.lo & mask64(p.v)
	var s uint64 // x >> v, low 64 bits
	switch {
	case p.v == 64:
		s = x.hi
	case p.v == 0:
		s = x.lo
	default:
		s = x.lo>>p.v | x.hi<<(64-p.v)
	}
	return s & mask64(p.u), b
}

func (p *bitPerm) join(a, b uint64) u128 {
	switch {
	case p.v == 64:
		return u128{hi: a, lo: b}
	case p.v == 0:
		return u128{lo: a}
	default:
		return u128{hi: a >> (64 - p.v), lo: b | a<<p.v}
	}
}

// encrypt permutes x (which must be below 2^w).
func (p *bitPerm) encrypt(x u128) u128 {
	sc := getScratch(p.pool)
	defer putScratch(p.pool, sc)
	a, b := p.split(x)
	for i := range feistelRounds {
		m := p.u
		if i%2 == 1 {
			m = p.v
		}
		c := (a + p.round(&sc.r, i, b, m)) & mask64(m)
		a, b = b, c
	}
	return p.join(a, b)
}

// decrypt inverts encrypt.
func (p *bitPerm) decrypt(x u128) u128 {
	sc := getScratch(p.pool)
	defer putScratch(p.pool, sc)
	a, b := p.split(x)
	for i := feistelRounds - 1; i >= 0; i-- {
		m := p.u
		if i%2 == 1 {
			m = p.v
		}
		c := (b - p.round(&sc.r, i, a, m)) & mask64(m)
		b, a = a, c
	}
	return p.join(a, b)
}

// rangePerm is a keyed permutation of [0, n) (n == 0 means 2^64): a bitPerm
// over the smallest power of two that holds n, cycle-walked back into range.
// The walk terminates because x's cycle under the permutation contains x;
// on average it takes fewer than two steps.
type rangePerm struct {
	bp bitPerm
	n  uint64
}

func newRangePerm(block cipher.Block, n uint64, tag byte, pool *sync.Pool) rangePerm {
	w := uint(64)
	if n != 0 {
		w = uint(bits.Len64(n - 1))
	}
	return rangePerm{bp: newBitPerm(block, w, tag, pool), n: n}
}

func (r *rangePerm) encrypt(x uint64) uint64 {
	if r.n == 1 {
		return x
	}
	for {
		x = r.bp.encrypt(u128{lo: x}).lo
		if r.n == 0 || x < r.n {
			return x
		}
	}
}

func (r *rangePerm) decrypt(x uint64) uint64 {
	if r.n == 1 {
		return x
	}
	for {
		x = r.bp.decrypt(u128{lo: x}).lo
		if r.n == 0 || x < r.n {
			return x
		}
	}
}
