package masking

import (
	"errors"
)

var (
	errNotCard = errors.New("value is not a card number (12 to 19 digits)")
	errNotIBAN = errors.New("value is not an IBAN (country, check digits, 11 to 30 letters or digits)")
)

// cardTransform writes a Luhn-valid card number of the same length and
// grouping: the first keep_first digits (and with keep_last4 the last four)
// are kept, the others encrypted by FF1, and one digit is set so that the
// Luhn check holds.
type cardTransform struct {
	fpe       *fpeTransform
	keepFirst int
	keepLast4 bool
}

func newCardTransform(dk *domainKey, o Options) (*cardTransform, error) {
	f, err := newFPETransform(dk, "0123456789")
	if err != nil {
		return nil, err
	}
	if o.KeepFirst < 0 || o.KeepFirst > 8 {
		return nil, errors.New("keep_first must be 0..8")
	}
	return &cardTransform{fpe: f, keepFirst: o.KeepFirst, keepLast4: o.KeepLast4}, nil
}

func (*cardTransform) Bijective() bool { return false }

func (c *cardTransform) Append(dst, src []byte) ([]byte, error) {
	var d [19]byte
	n := 0
	for _, ch := range src {
		switch {
		case ch >= '0' && ch <= '9':
			if n == len(d) {
				return dst, errNotCard
			}
			d[n] = ch - '0'
			n++
		case ch == ' ' || ch == '-':
		default:
			return dst, errNotCard
		}
	}
	if n < 12 {
		return dst, errNotCard
	}
	check := n - 1 // the digit recomputed for Luhn
	end := n - 1   // encrypted: [keepFirst, end)
	if c.keepLast4 {
		check, end = n-5, n-5
	}
	if end < c.keepFirst {
		return dst, errors.New("card number too short to keep keep_first and the last four digits")
	}
	if err := crypt(c.fpe.custom, c.fpe.custom1, d[c.keepFirst:end], tweakCustom); err != nil {
		return dst, err
	}
	d[check] = 0
	d[check] = luhnFix(d[:n], check)
	j := 0
	for _, ch := range src {
		if ch >= '0' && ch <= '9' {
			dst = append(dst, '0'+d[j])
			j++
		} else {
			dst = append(dst, ch)
		}
	}
	return dst, nil
}

// luhnFix returns the digit for position p (currently 0) that makes d pass
// the Luhn check.
func luhnFix(d []byte, p int) byte {
	sum := 0
	n := len(d)
	for i, x := range d {
		v := int(x)
		if (n-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	doubled := (n-1-p)%2 == 1
	for c := range 10 {
		v := c
		if doubled {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		if (sum+v)%10 == 0 {
			return byte(c)
		}
	}
	return 0 // unreachable: v runs over all residues
}

// luhnValid reports whether the digits of s (spaces and dashes ignored) pass
// the Luhn check.
func luhnValid(s []byte) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c == ' ' || c == '-' {
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
		v := int(c - '0')
		if n%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		n++
	}
	return n > 0 && sum%10 == 0
}

// ibanTransform keeps the country, encrypts the BBAN by the class-preserving
// FPE (digits stay digits, letters letters) and recomputes the mod-97 check
// digits; spaces stay where they were, letters come out upper case.
type ibanTransform struct{ fpe *fpeTransform }

func newIBANTransform(dk *domainKey) (*ibanTransform, error) {
	f, err := newFPETransform(dk, "")
	return &ibanTransform{fpe: f}, err
}

func (*ibanTransform) Bijective() bool { return false }

func (t *ibanTransform) Append(dst, src []byte) ([]byte, error) {
	var buf [34]byte
	iban, ok := compactIBAN(buf[:0], src)
	if !ok {
		return dst, errNotIBAN
	}
	if err := t.fpe.encryptInPlace(iban, 4); err != nil {
		return dst, err
	}
	r := ibanMod97(iban[4:], iban[:2])
	ck := 98 - r
	iban[2], iban[3] = byte('0'+ck/10), byte('0'+ck%10)
	j := 0
	for _, ch := range src {
		if ch == ' ' {
			dst = append(dst, ' ')
			continue
		}
		dst = append(dst, iban[j])
		j++
	}
	return dst, nil
}

// compactIBAN appends s without spaces, upper-cased, if it has the shape of
// an IBAN (it does not check the check digits).
func compactIBAN(dst, s []byte) ([]byte, bool) {
	for _, c := range s {
		switch {
		case c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return dst, false
		}
		if len(dst) == 34 {
			return dst, false
		}
		dst = append(dst, c)
	}
	if len(dst) < 15 || !isUpper(dst[0]) || !isUpper(dst[1]) || !isDigit(dst[2]) || !isDigit(dst[3]) {
		return dst, false
	}
	return dst, true
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ibanMod97 returns (BBAN || country || "00") mod 97 with letters as 10..35.
func ibanMod97(bban, country []byte) int {
	r := 0
	add := func(c byte) {
		if c >= 'A' && c <= 'Z' {
			v := int(c-'A') + 10
			r = (r*100 + v) % 97
		} else {
			r = (r*10 + int(c-'0')) % 97
		}
	}
	for _, c := range bban {
		add(c)
	}
	add(country[0])
	add(country[1])
	add('0')
	add('0')
	return r
}

// ibanValid reports whether compact (upper case, no spaces) has valid
// check digits.
func ibanValid(compact []byte) bool {
	if len(compact) < 15 {
		return false
	}
	ck := int(compact[2]-'0')*10 + int(compact[3]-'0')
	return 98-ibanMod97(compact[4:], compact[:2]) == ck
}
