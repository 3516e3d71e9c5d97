package masking

import (
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"regexp"
	"unicode/utf8"
)

// Class tweaks of the class-preserving FPE.
var (
	tweakDigits  = []byte("d")
	tweakLetters = []byte("l")
	tweakCustom  = []byte("c")
)

// fpeTransform encrypts strings with FF1 while keeping their format. By
// default digits are encrypted among themselves (radix 10) and ASCII letters
// among themselves case-folded (radix 26) with each position's case kept;
// every other character stays in place. So lower(mask(x)) == mask(lower(x)),
// and the transform is a bijection: the skeleton (positions of classes,
// cases and other characters) is kept and each class is permuted by FF1.
// With an alphabet, only its characters are encrypted, as one radix.
type fpeTransform struct {
	digits, letters *ff1
	digit1, letter1 []byte // permutations for classes of a single character

	custom   *ff1
	custom1  []byte
	alphabet string
	index    [256]int16 // alphabet position + 1; 0: not in the alphabet
}

func newFPETransform(dk *domainKey, alphabet string) (*fpeTransform, error) {
	block := dk.cipher()
	f := &fpeTransform{}
	if alphabet == "" {
		f.digits, _ = newFF1(block, 10)
		f.letters, _ = newFF1(block, 26)
		f.digits.pool, f.letters.pool = dk.scratchPool(), dk.scratchPool()
		f.digit1 = smallPerm(block, 10, 'd')
		f.letter1 = smallPerm(block, 26, 'l')
		return f, nil
	}
	if len(alphabet) < 2 || len(alphabet) > 256 {
		return nil, errors.New("alphabet needs 2 to 256 characters")
	}
	for i := range len(alphabet) {
		c := alphabet[i]
		if c >= utf8.RuneSelf {
			return nil, errors.New("alphabet must be ASCII")
		}
		if f.index[c] != 0 {
			return nil, errors.New("alphabet repeats a character")
		}
		f.index[c] = int16(i + 1)
	}
	f.alphabet = alphabet
	f.custom, _ = newFF1(block, len(alphabet))
	f.custom.pool = dk.scratchPool()
	f.custom1 = smallPerm(block, len(alphabet), 'c')
	return f, nil
}

// smallPerm is a keyed permutation of 0..n-1 as a table, for classes with a
// single character (FF1 needs two).
func smallPerm(block cipher.Block, n int, tag byte) []byte {
	p := newRangePerm(block, uint64(n), tag, nil)
	t := make([]byte, n)
	for i := range n {
		t[i] = byte(p.encrypt(uint64(i)))
	}
	return t
}

func (*fpeTransform) Bijective() bool { return true }

func (f *fpeTransform) Append(dst, src []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, src...)
	return dst, f.encryptInPlace(dst[start:], 0)
}

// encryptInPlace encrypts the characters of s at or after position from.
func (f *fpeTransform) encryptInPlace(s []byte, from int) error {
	var buf [128]byte
	scratch := buf[:0]
	if len(s) > len(buf) {
		scratch = make([]byte, 0, len(s))
	}
	if f.custom != nil {
		num := scratch
		for _, c := range s[from:] {
			if k := f.index[c]; k != 0 {
				num = append(num, byte(k-1))
			}
		}
		if err := crypt(f.custom, f.custom1, num, tweakCustom); err != nil {
			return err
		}
		j := 0
		for i := from; i < len(s); i++ {
			if f.index[s[i]] != 0 {
				s[i] = f.alphabet[num[j]]
				j++
			}
		}
		return nil
	}
	num := scratch
	for _, c := range s[from:] {
		if c >= '0' && c <= '9' {
			num = append(num, c-'0')
		}
	}
	if err := crypt(f.digits, f.digit1, num, tweakDigits); err != nil {
		return err
	}
	j := 0
	for i := from; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			s[i] = '0' + num[j]
			j++
		}
	}
	num = scratch[:0]
	for _, c := range s[from:] {
		switch {
		case c >= 'a' && c <= 'z':
			num = append(num, c-'a')
		case c >= 'A' && c <= 'Z':
			num = append(num, c-'A')
		}
	}
	if err := crypt(f.letters, f.letter1, num, tweakLetters); err != nil {
		return err
	}
	j = 0
	for i := from; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z':
			s[i] = 'a' + num[j]
			j++
		case c >= 'A' && c <= 'Z':
			s[i] = 'A' + num[j]
			j++
		}
	}
	return nil
}

// crypt encrypts numerals in place: FF1 for two or more, the table for one.
func crypt(f *ff1, one, num, tweak []byte) error {
	switch len(num) {
	case 0:
		return nil
	case 1:
		num[0] = one[num[0]]
		return nil
	}
	return f.encrypt(num, num, tweak)
}

// phoneTransform encrypts the digits of a phone number with FF1 and keeps
// everything else: spaces, brackets, dashes, a leading "+" and (by default)
// the country code right after it.
type phoneTransform struct {
	fpe         *fpeTransform
	keepCountry bool
}

func newPhoneTransform(dk *domainKey, o Options) (*phoneTransform, error) {
	f, err := newFPETransform(dk, "0123456789")
	if err != nil {
		return nil, err
	}
	keep := o.KeepCountryCode == nil || *o.KeepCountryCode
	return &phoneTransform{fpe: f, keepCountry: keep}, nil
}

func (*phoneTransform) Bijective() bool { return true }

func (p *phoneTransform) Append(dst, src []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, src...)
	s := dst[start:]
	from := 0
	if p.keepCountry {
		from = countryCodeEnd(s)
	}
	return dst, p.fpe.encryptInPlace(s, from)
}

// countryCodeEnd returns the end of a "+NN" prefix (up to three digits
// followed by a non-digit), or 0.
func countryCodeEnd(s []byte) int {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) || s[i] != '+' {
		return 0
	}
	j := i + 1
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if n := j - i - 1; n == 0 || n > 3 || j == len(s) {
		return 0
	}
	return j
}

// redactTransform keeps the first and last characters and replaces the rest.
type redactTransform struct {
	first, last int
	mask        []byte
}

func newRedact(o Options) (*redactTransform, error) {
	m := o.MaskChar
	if m == "" {
		m = "*"
	}
	if utf8.RuneCountInString(m) != 1 {
		return nil, errors.New("mask_char must be one character")
	}
	if o.KeepFirst < 0 || o.KeepLast < 0 {
		return nil, errors.New("keep_first and keep_last cannot be negative")
	}
	return &redactTransform{first: o.KeepFirst, last: o.KeepLast, mask: []byte(m)}, nil
}

func (*redactTransform) Bijective() bool { return false }

func (r *redactTransform) Append(dst, src []byte) ([]byte, error) {
	n := utf8.RuneCount(src)
	first, last := r.first, r.last
	if n <= first+last { // nothing left to hide: hide everything
		first, last = 0, 0
	}
	i := 0
	for len(src) > 0 {
		_, size := utf8.DecodeRune(src)
		if i < first || i >= n-last {
			dst = append(dst, src[:size]...)
		} else {
			dst = append(dst, r.mask...)
		}
		src = src[size:]
		i++
	}
	return dst, nil
}

// regexTransform replaces what a regular expression matches.
type regexTransform struct {
	re   *regexp.Regexp
	repl []byte
}

func newRegexTransform(o Options) (*regexTransform, error) {
	if o.Pattern == "" {
		return nil, errors.New("pattern is required")
	}
	re, err := regexp.Compile(o.Pattern)
	if err != nil {
		return nil, err
	}
	return &regexTransform{re: re, repl: []byte(o.Replace)}, nil
}

func (*regexTransform) Bijective() bool { return false }

func (r *regexTransform) Append(dst, src []byte) ([]byte, error) {
	return append(dst, r.re.ReplaceAll(src, r.repl)...), nil
}

// hashTransform writes hex digits of the keyed hash.
type hashTransform struct {
	dk     *domainKey
	length int
}

func newHashTransform(dk *domainKey, o Options) (*hashTransform, error) {
	if o.Length < 0 || o.Length > 64 {
		return nil, errors.New("length must be 1..64")
	}
	return &hashTransform{dk: dk, length: o.Length}, nil
}

func (*hashTransform) Bijective() bool { return false }

func (h *hashTransform) Append(dst, src []byte) ([]byte, error) {
	var sum [32]byte
	h.dk.sum(&sum, 'h', src)
	n := h.length
	if n == 0 {
		n = min(max(utf8.RuneCount(src), 1), 64)
	}
	var hx [64]byte
	hex.Encode(hx[:], sum[:])
	return append(dst, hx[:n]...), nil
}
