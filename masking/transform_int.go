package masking

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

var (
	errNotInteger = errors.New("value is not an integer")
	errNotUUID    = errors.New("value is not a UUID")
)

// intTransform permutes integers. With a declared range [min,max] it is a
// permutation of that range; otherwise of [1, typeMax] and [typeMin, -1]
// separately (0 stays 0), so the sign — and CHECK (id > 0) — survives.
type intTransform struct {
	declared bool
	lo, hi   int64
	perm     rangePerm // declared range, offset by lo
	pos, neg rangePerm // default: [1, hi] and [lo, -1]
}

// intRange returns the value range of an integer type.
func intRange(t Target) (lo, hi int64) {
	switch t.typ() {
	case "int2":
		return math.MinInt16, math.MaxInt16
	case "int4":
		return math.MinInt32, math.MaxInt32
	case "numeric":
		if t.Precision > 0 && t.Precision <= 18 && t.Scale == 0 {
			p := int64(1)
			for range t.Precision {
				p *= 10
			}
			return -(p - 1), p - 1
		}
	}
	return math.MinInt64, math.MaxInt64
}

func newIntTransform(dk *domainKey, o Options, t Target) (*intTransform, error) {
	block := dk.cipher()
	if (o.Min == nil) != (o.Max == nil) {
		return nil, errors.New("give both min and max, or neither")
	}
	if o.Min != nil {
		lo, hi := *o.Min, *o.Max
		if lo > hi {
			return nil, fmt.Errorf("min %d is greater than max %d", lo, hi)
		}
		tlo, thi := intRange(t)
		if lo < tlo || hi > thi {
			return nil, fmt.Errorf("range [%d,%d] does not fit type %s", lo, hi, t.typ())
		}
		n := uint64(hi) - uint64(lo) + 1 // 0 means 2^64
		return &intTransform{declared: true, lo: lo, hi: hi, perm: newRangePerm(block, n, 'R', dk.scratchPool())}, nil
	}
	lo, hi := intRange(t)
	return &intTransform{
		lo: lo, hi: hi,
		pos: newRangePerm(block, uint64(hi), 'P', dk.scratchPool()),
		neg: newRangePerm(block, uint64(-(lo+1))+1, 'N', dk.scratchPool()),
	}, nil
}

func (*intTransform) Bijective() bool { return true }

func (it *intTransform) Append(dst, src []byte) ([]byte, error) {
	x, ok := parseInt64(src)
	if !ok {
		return dst, errNotInteger
	}
	y, err := it.apply(x)
	if err != nil {
		return dst, err
	}
	return strconv.AppendInt(dst, y, 10), nil
}

func (it *intTransform) apply(x int64) (int64, error) {
	if x < it.lo || x > it.hi {
		return 0, fmt.Errorf("value outside the range [%d,%d] of the domain", it.lo, it.hi)
	}
	switch {
	case it.declared:
		return int64(uint64(it.lo) + it.perm.encrypt(uint64(x)-uint64(it.lo))), nil
	case x > 0:
		return int64(it.pos.encrypt(uint64(x-1)) + 1), nil
	case x < 0:
		return -1 - int64(it.neg.encrypt(uint64(-1-x))), nil
	}
	return 0, nil
}

// invert is apply's inverse (tests, and whoever holds the key).
func (it *intTransform) invert(y int64) int64 {
	switch {
	case it.declared:
		return int64(uint64(it.lo) + it.perm.decrypt(uint64(y)-uint64(it.lo)))
	case y > 0:
		return int64(it.pos.decrypt(uint64(y-1)) + 1)
	case y < 0:
		return -1 - int64(it.neg.decrypt(uint64(-1-y)))
	}
	return 0
}

// parseInt64 parses an optionally signed decimal integer without
// allocating (and without an error that would quote the input).
func parseInt64(s []byte) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return int64(-u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// uuidTransform permutes the 122 bits of a UUID that are neither the version
// nibble nor the two variant bits, which it keeps: a UUIDv4 stays a valid
// UUIDv4.
type uuidTransform struct{ perm bitPerm }

func newUUIDTransform(dk *domainKey) *uuidTransform {
	return &uuidTransform{perm: newBitPerm(dk.cipher(), 122, 'U', dk.scratchPool())}
}

func (*uuidTransform) Bijective() bool { return true }

func (ut *uuidTransform) Append(dst, src []byte) ([]byte, error) {
	var u [16]byte
	if !parseUUID(&u, src) {
		return dst, errNotUUID
	}
	ut.permute(&u, false)
	return appendUUID(dst, &u), nil
}

func (ut *uuidTransform) permute(u *[16]byte, inverse bool) {
	hi := beUint64(u[:8])
	lo := beUint64(u[8:])
	fixedHi := hi & 0x000000000000f000 // version nibble
	fixedLo := lo & 0xc000000000000000 // variant bits
	// 60 free bits of hi, 62 of lo → x = hi60 << 62 | lo62 (122 bits).
	hi60 := (hi>>16)<<12 | hi&0xfff
	lo62 := lo & (1<<62 - 1)
	x := u128{hi: hi60 >> 2, lo: hi60<<62 | lo62}
	if inverse {
		x = ut.perm.decrypt(x)
	} else {
		x = ut.perm.encrypt(x)
	}
	hi60 = x.hi<<2 | x.lo>>62
	lo62 = x.lo & (1<<62 - 1)
	hi = (hi60>>12)<<16 | fixedHi | hi60&0xfff
	lo = fixedLo | lo62
	putBE(u[:8], hi)
	putBE(u[8:], lo)
}

func beUint64(b []byte) uint64 {
	var x uint64
	for _, c := range b[:8] {
		x = x<<8 | uint64(c)
	}
	return x
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseUUID accepts the forms PostgreSQL accepts: 32 hex digits, optionally
// in braces, with hyphens after any group of four.
func parseUUID(u *[16]byte, s []byte) bool {
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		s = s[1 : len(s)-1]
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			if n == 0 || n%4 != 0 || i == len(s)-1 || s[i+1] == '-' {
				return false
			}
			continue
		}
		h, ok := unhex(s[i])
		if !ok || n >= 32 {
			return false
		}
		if n%2 == 0 {
			u[n/2] = h << 4
		} else {
			u[n/2] |= h
		}
		n++
	}
	return n == 32
}

const hexDigits = "0123456789abcdef"

func appendUUID(dst []byte, u *[16]byte) []byte {
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}
