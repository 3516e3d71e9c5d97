package masking

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

const testAlphabet36 = "0123456789abcdefghijklmnopqrstuvwxyz"

func numerals(t testing.TB, s string, radix int) []byte {
	t.Helper()
	out := make([]byte, len(s))
	for i := range len(s) {
		k := strings.IndexByte(testAlphabet36[:radix], s[i])
		if k < 0 {
			t.Fatalf("numeral %q not in radix %d", s[i], radix)
		}
		out[i] = byte(k)
	}
	return out
}

func fromNumerals(x []byte) string {
	var b strings.Builder
	for _, c := range x {
		b.WriteByte(testAlphabet36[c])
	}
	return b.String()
}

// TestFF1NISTVectors checks the FF1-AES sample vectors NIST published for
// SP 800-38G, on both the 64-bit and the math/big code paths.
func TestFF1NISTVectors(t *testing.T) {
	const k128 = "2B7E151628AED2A6ABF7158809CF4F3C"
	const k192 = k128 + "EF4359D8D580AA4F"
	const k256 = k192 + "7F036D6F04FC6A94"
	tests := []struct {
		name, key, tweak string
		radix            int
		pt, ct           string
	}{
		{"sample1", k128, "", 10, "0123456789", "2433477484"},
		{"sample2", k128, "39383736353433323130", 10, "0123456789", "6124200773"},
		{"sample3", k128, "3737373770717273373737", 36, "0123456789abcdefghi", "a9tv40mll9kdu509eum"},
		{"sample4", k192, "", 10, "0123456789", "2830668132"},
		{"sample5", k192, "39383736353433323130", 10, "0123456789", "2496655549"},
		{"sample6", k192, "3737373770717273373737", 36, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"},
		{"sample7", k256, "", 10, "0123456789", "6657667009"},
		{"sample8", k256, "39383736353433323130", 10, "0123456789", "1001623463"},
		{"sample9", k256, "3737373770717273373737", 36, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"},
	}
	for _, tc := range tests {
		for _, forceBig := range []bool{false, true} {
			name := tc.name
			if forceBig {
				name += "/big"
			}
			t.Run(name, func(t *testing.T) {
				key, _ := hex.DecodeString(tc.key)
				tweak, _ := hex.DecodeString(tc.tweak)
				block, err := aes.NewCipher(key)
				if err != nil {
					t.Fatal(err)
				}
				f, err := newFF1(block, tc.radix)
				if err != nil {
					t.Fatal(err)
				}
				f.forceBig = forceBig
				pt := numerals(t, tc.pt, tc.radix)
				ct := make([]byte, len(pt))
				if err := f.encrypt(ct, pt, tweak); err != nil {
					t.Fatal(err)
				}
				if got := fromNumerals(ct); got != tc.ct {
					t.Fatalf("encrypt = %s, want %s", got, tc.ct)
				}
				back := make([]byte, len(ct))
				if err := f.decrypt(back, ct, tweak); err != nil {
					t.Fatal(err)
				}
				if got := fromNumerals(back); got != tc.pt {
					t.Fatalf("decrypt = %s, want %s", got, tc.pt)
				}
			})
		}
	}
}

// TestFF1FastMatchesBig checks that the uint64 path computes exactly what
// the math/big path computes, over radixes, lengths and tweaks.
func TestFF1FastMatchesBig(t *testing.T) {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	r := rand.New(rand.NewPCG(1, 2))
	for _, radix := range []int{2, 10, 26, 36, 62, 255} {
		fast, _ := newFF1(block, radix)
		slow, _ := newFF1(block, radix)
		slow.forceBig = true
		for range 300 {
			n := 2 + r.IntN(30)
			x := make([]byte, n)
			for i := range x {
				x[i] = byte(r.IntN(radix))
			}
			tweak := make([]byte, r.IntN(20))
			for i := range tweak {
				tweak[i] = byte(r.Uint32())
			}
			a, b := make([]byte, n), make([]byte, n)
			if err := fast.encrypt(a, x, tweak); err != nil {
				t.Fatal(err)
			}
			if err := slow.encrypt(b, x, tweak); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("radix %d len %d: fast and big paths differ", radix, n)
			}
			back := make([]byte, n)
			if err := fast.decrypt(back, a, tweak); err != nil || !bytes.Equal(back, x) {
				t.Fatalf("radix %d len %d: round trip failed (%v)", radix, n, err)
			}
		}
	}
}

func TestFF1RejectsBadInput(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 16))
	f, _ := newFF1(block, 10)
	if err := f.encrypt(make([]byte, 1), []byte{1}, nil); err == nil {
		t.Error("length 1: want error")
	}
	if err := f.encrypt(make([]byte, 2), []byte{1, 10}, nil); err == nil {
		t.Error("numeral 10 in radix 10: want error")
	}
	if _, err := newFF1(block, 1); err == nil {
		t.Error("radix 1: want error")
	}
}

// TestFF1Collisions encrypts every 6-digit string and checks that no two
// give the same output.
func TestFF1Collisions(t *testing.T) {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{1}, 32))
	f, _ := newFF1(block, 10)
	seen := make([]bool, 1_000_000)
	x, y := make([]byte, 6), make([]byte, 6)
	for i := range 1_000_000 {
		str64(x, uint64(i), 10)
		if err := f.encrypt(y, x, nil); err != nil {
			t.Fatal(err)
		}
		k := num64(y, 10)
		if seen[k] {
			t.Fatalf("collision after %d values", i)
		}
		seen[k] = true
	}
}

func FuzzFF1RoundTrip(f *testing.F) {
	f.Add([]byte("0123456789"), []byte(""), uint8(10))
	f.Add([]byte("0123456789abcdefghi"), []byte("777pqr777"), uint8(36))
	f.Add(bytes.Repeat([]byte{200}, 40), []byte{1, 2, 3}, uint8(255))
	block, _ := aes.NewCipher(bytes.Repeat([]byte{9}, 32))
	f.Fuzz(func(t *testing.T, in, tweak []byte, r uint8) {
		radix := int(r)
		if radix < 2 || len(in) < 2 || len(in) > 200 {
			return
		}
		x := make([]byte, len(in))
		for i, c := range in {
			x[i] = byte(int(c) % radix)
		}
		ff, err := newFF1(block, radix)
		if err != nil {
			t.Fatal(err)
		}
		ct := make([]byte, len(x))
		if err := ff.encrypt(ct, x, tweak); err != nil {
			t.Fatal(err)
		}
		for _, c := range ct {
			if int(c) >= radix {
				t.Fatalf("numeral %d out of radix %d", c, radix)
			}
		}
		back := make([]byte, len(x))
		if err := ff.decrypt(back, ct, tweak); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, x) {
			t.Fatal("decrypt(encrypt(x)) != x")
		}
	})
}
