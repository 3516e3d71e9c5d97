package masking

import (
	"crypto/aes"
	"math/rand/v2"
	"testing"
)

func TestBitPermRoundTrip(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 32))
	r := rand.New(rand.NewPCG(3, 4))
	for _, w := range []uint{0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 100, 122, 127, 128} {
		p := newBitPerm(block, w, 1, nil)
		for range 200 {
			x := u128{hi: r.Uint64(), lo: r.Uint64()}
			// keep x below 2^w
			switch {
			case w <= 64:
				x.hi = 0
				x.lo &= mask64(w)
			default:
				x.hi &= mask64(w - 64)
			}
			y := p.encrypt(x)
			if w <= 64 && (y.hi != 0 || y.lo&^mask64(w) != 0) || w > 64 && y.hi&^mask64(w-64) != 0 {
				t.Fatalf("w=%d: output out of range", w)
			}
			if back := p.decrypt(y); back != x {
				t.Fatalf("w=%d: decrypt(encrypt(x)) != x", w)
			}
		}
	}
}

func TestRangePermIsPermutation(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 32))
	for _, n := range []uint64{1, 2, 3, 10, 1000, 4097} {
		p := newRangePerm(block, n, 2, nil)
		seen := make([]bool, n)
		for x := range n {
			y := p.encrypt(x)
			if y >= n {
				t.Fatalf("n=%d: %d out of range", n, y)
			}
			if seen[y] {
				t.Fatalf("n=%d: collision", n)
			}
			seen[y] = true
			if p.decrypt(y) != x {
				t.Fatalf("n=%d: inverse failed", n)
			}
		}
	}
}
