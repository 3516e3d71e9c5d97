package masking

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"math/big"
	"math/bits"
	"sync"
)

// ff1Rounds is the number of Feistel rounds FF1 prescribes.
const ff1Rounds = 10

// ff1MaxLen bounds the numeral strings FF1 takes here (NIST allows up to
// 2^32; masking never needs more than a few kilobytes).
const ff1MaxLen = 1 << 16

var (
	errFF1Length  = errors.New("ff1: numeral string shorter than 2 or longer than 65536")
	errFF1Numeral = errors.New("ff1: numeral out of range for the radix")
)

// ff1 is the FF1 format-preserving cipher of NIST SP 800-38G (Algorithms 7
// and 8) with AES (any key length) as CIPH, over numeral strings of radix
// 2..256 (one numeral per byte). It is safe for concurrent use.
//
// Inputs whose numbers fit in 64 bits (radix^ceil(n/2) < 2^64) take an
// allocation-free path on uint64 arithmetic; longer ones use math/big. Both
// compute the same function (tested against each other and against the NIST
// sample vectors).
type ff1 struct {
	block    cipher.Block
	radix    uint32
	pool     *sync.Pool // of *aesScratch; nil: allocate
	forceBig bool       // tests: take the math/big path even for short inputs
}

func newFF1(block cipher.Block, radix int) (*ff1, error) {
	if radix < 2 || radix > 256 {
		return nil, errors.New("ff1: radix must be 2..256")
	}
	return &ff1{block: block, radix: uint32(radix)}, nil
}

// encrypt writes FF1.Encrypt(K, tweak, x) into out (len(out) == len(x); out
// may be x).
func (f *ff1) encrypt(out, x, tweak []byte) error { return f.crypt(out, x, tweak, false) }

// decrypt writes FF1.Decrypt(K, tweak, x) into out.
func (f *ff1) decrypt(out, x, tweak []byte) error { return f.crypt(out, x, tweak, true) }

// pow64 returns r^e and whether it fits in a uint64.
func pow64(r uint32, e int) (uint64, bool) {
	p := uint64(1)
	for range e {
		hi, lo := bits.Mul64(p, uint64(r))
		if hi != 0 {
			return 0, false
		}
		p = lo
	}
	return p, true
}

func (f *ff1) crypt(out, x, tweak []byte, dec bool) error {
	n := len(x)
	if n < 2 || n > ff1MaxLen || len(out) != n {
		return errFF1Length
	}
	for _, c := range x {
		if uint32(c) >= f.radix {
			return errFF1Numeral
		}
	}
	u := n / 2
	v := n - u
	powU, _ := pow64(f.radix, u)
	powV, fast := pow64(f.radix, v)
	fast = fast && !f.forceBig

	// b = ceil(ceil(v*log2(radix))/8) = byte length of radix^v - 1.
	var b int
	var bigU, bigV *big.Int
	if fast {
		b = (bits.Len64(powV-1) + 7) / 8
	} else {
		r := big.NewInt(int64(f.radix))
		bigU = new(big.Int).Exp(r, big.NewInt(int64(u)), nil)
		bigV = new(big.Int).Exp(r, big.NewInt(int64(v)), nil)
		b = (new(big.Int).Sub(bigV, big.NewInt(1)).BitLen() + 7) / 8
	}
	d := 4*((b+3)/4) + 4
	t := len(tweak)
	pad := ((-t-b-1)%16 + 16) % 16
	qlen := t + pad + 1 + b

	sc := getScratch(f.pool)
	defer putScratch(f.pool, sc)
	var q []byte
	if qlen <= len(sc.q) {
		q = sc.q[:qlen]
	} else {
		q = make([]byte, qlen)
	}
	copy(q, tweak)
	clear(q[t : t+pad])

	// P, then the CBC-MAC state over P and the blocks of Q that do not
	// change from round to round (the tweak and padding).
	p := &sc.p
	p[0], p[1], p[2] = 1, 2, 1
	p[3], p[4], p[5] = byte(f.radix>>16), byte(f.radix>>8), byte(f.radix)
	p[6], p[7] = 10, byte(u)
	binary.BigEndian.PutUint32(p[8:], uint32(n))
	binary.BigEndian.PutUint32(p[12:], uint32(t))
	yc := &sc.yc
	f.block.Encrypt(yc[:], p[:])
	fixed := (t + pad) / 16 * 16
	for k := 0; k < fixed; k += 16 {
		xor16(yc, q[k:k+16])
		f.block.Encrypt(yc[:], yc[:])
	}

	if fast {
		numA := num64(x[:u], f.radix)
		numB := num64(x[u:], f.radix)
		for j := range ff1Rounds {
			i := j
			if dec {
				i = ff1Rounds - 1 - j
			}
			mod := powU
			if i%2 == 1 {
				mod = powV
			}
			in := numB
			if dec {
				in = numA
			}
			q[t+pad] = byte(i)
			putBE(q[qlen-b:], in)
			r := &sc.r
			*r = *yc
			for k := fixed; k < qlen; k += 16 {
				xor16(r, q[k:k+16])
				f.block.Encrypt(r[:], r[:])
			}
			// y = NUM(S), S = R[:d] with d = 8 or 12; only y mod radix^m matters.
			var y uint64
			if d == 8 {
				y = binary.BigEndian.Uint64(r[:8]) % mod
			} else {
				y = bits.Rem64(uint64(binary.BigEndian.Uint32(r[:4])), binary.BigEndian.Uint64(r[4:12]), mod)
			}
			if !dec {
				s, carry := bits.Add64(numA, y, 0)
				if carry != 0 || s >= mod {
					s -= mod
				}
				numA, numB = numB, s
			} else {
				var c uint64
				if numB >= y {
					c = numB - y
				} else {
					c = numB + (mod - y)
				}
				numB, numA = numA, c
			}
		}
		str64(out[:u], numA, f.radix)
		str64(out[u:], numB, f.radix)
		return nil
	}

	numA := numBig(x[:u], f.radix)
	numB := numBig(x[u:], f.radix)
	sb := make([]byte, (d+15)/16*16)
	y := new(big.Int)
	for j := range ff1Rounds {
		i := j
		if dec {
			i = ff1Rounds - 1 - j
		}
		mod := bigU
		if i%2 == 1 {
			mod = bigV
		}
		in := numB
		if dec {
			in = numA
		}
		q[t+pad] = byte(i)
		in.FillBytes(q[qlen-b:])
		r := *yc
		for k := fixed; k < qlen; k += 16 {
			xor16(&r, q[k:k+16])
			f.block.Encrypt(r[:], r[:])
		}
		copy(sb, r[:])
		for k := 1; 16*k < d; k++ {
			blk := r
			var ctr [16]byte
			binary.BigEndian.PutUint64(ctr[8:], uint64(k))
			xor16(&blk, ctr[:])
			f.block.Encrypt(sb[16*k:16*k+16], blk[:])
		}
		y.SetBytes(sb[:d])
		c := new(big.Int)
		if !dec {
			c.Add(numA, y)
			c.Mod(c, mod)
			numA, numB = numB, c
		} else {
			c.Sub(numB, y)
			c.Mod(c, mod) // Euclidean: non-negative
			numB, numA = numA, c
		}
	}
	strBig(out[:u], numA, f.radix)
	strBig(out[u:], numB, f.radix)
	return nil
}

func xor16(dst *[16]byte, src []byte) {
	_ = src[15]
	binary.LittleEndian.PutUint64(dst[:8], binary.LittleEndian.Uint64(dst[:8])^binary.LittleEndian.Uint64(src[:8]))
	binary.LittleEndian.PutUint64(dst[8:], binary.LittleEndian.Uint64(dst[8:])^binary.LittleEndian.Uint64(src[8:16]))
}

// putBE writes x big-endian into all of dst (len(dst) <= 8).
func putBE(dst []byte, x uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte(x)
		x >>= 8
	}
}

func num64(x []byte, radix uint32) uint64 {
	var n uint64
	for _, c := range x {
		n = n*uint64(radix) + uint64(c)
	}
	return n
}

func str64(dst []byte, n uint64, radix uint32) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte(n % uint64(radix))
		n /= uint64(radix)
	}
}

func numBig(x []byte, radix uint32) *big.Int {
	n := new(big.Int)
	r := big.NewInt(int64(radix))
	for _, c := range x {
		n.Mul(n, r)
		n.Add(n, big.NewInt(int64(c)))
	}
	return n
}

func strBig(dst []byte, n *big.Int, radix uint32) {
	n = new(big.Int).Set(n)
	r := big.NewInt(int64(radix))
	m := new(big.Int)
	for i := len(dst) - 1; i >= 0; i-- {
		n.QuoRem(n, r, m)
		dst[i] = byte(m.Int64())
	}
}
