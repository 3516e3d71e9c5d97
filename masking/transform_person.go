package masking

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"unicode"
	"unicode/utf8"
)

var errNotEmail = errors.New("value is not an e-mail address (no local part, @ and domain)")

// emailTransform masks e-mail addresses.
//
// Unique (bijective) form: the local part is encrypted by the
// class-preserving FPE, and the domain too, under the reserved ".example"
// top-level domain (RFC 2606) unless keep_domain; distinct addresses give
// distinct outputs, and lower(mask(x)) == mask(lower(x)).
//
// Otherwise: "first.last<nn>@" with names from the dictionaries picked by the
// keyed hash of the lower-cased address, at example.com/net/org (or the
// original domain, lower-cased, with keep_domain).
type emailTransform struct {
	dk         *domainKey
	fpe        *fpeTransform
	unique     bool
	keepDomain bool
}

func newEmailTransform(dk *domainKey, o Options, unique bool) (*emailTransform, error) {
	f, err := newFPETransform(dk, "")
	if err != nil {
		return nil, err
	}
	return &emailTransform{dk: dk, fpe: f, unique: unique, keepDomain: o.KeepDomain}, nil
}

func (e *emailTransform) Bijective() bool { return e.unique }

func (e *emailTransform) Append(dst, src []byte) ([]byte, error) {
	at := bytes.LastIndexByte(src, '@')
	if at <= 0 || at == len(src)-1 {
		return dst, errNotEmail
	}
	local, domain := src[:at], src[at+1:]
	if e.unique {
		start := len(dst)
		if e.keepDomain {
			dst = append(dst, local...)
			if err := e.fpe.encryptInPlace(dst[start:], 0); err != nil {
				return dst[:start], err
			}
			dst = append(dst, '@')
			return append(dst, domain...), nil
		}
		// One pass over local@domain: the skeleton, '@' included, is kept,
		// so the whole address is encrypted bijectively.
		dst = append(dst, src...)
		if err := e.fpe.encryptInPlace(dst[start:], 0); err != nil {
			return dst[:start], err
		}
		return append(dst, ".example"...), nil
	}
	var h [32]byte
	e.dk.sumCanonical(&h, 'e', src, appendLowerASCII)
	dst = appendLowerASCII(dst, []byte(firstNames[pick(h[0:], len(firstNames))]))
	dst = append(dst, '.')
	dst = appendLowerASCII(dst, []byte(lastNames[pick(h[8:], len(lastNames))]))
	dst = strconv.AppendUint(dst, uint64(h[16])%100, 10)
	dst = append(dst, '@')
	if e.keepDomain {
		return appendLowerASCII(dst, domain), nil
	}
	return append(dst, fakeEmailDomains[pick(h[24:], len(fakeEmailDomains))]...), nil
}

// pick maps 8 hash bytes to 0..n-1 (the bias is below 2^-50).
func pick(h []byte, n int) int { return int(binary.BigEndian.Uint64(h[:8]) % uint64(n)) }

func appendLowerASCII(dst, s []byte) []byte {
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// dictTransform picks names, street addresses and cities from the embedded
// dictionaries by the keyed hash of the canonical value (spaces trimmed and
// collapsed, case folded). An all-upper-case input gives an upper-case
// output.
//
// A value is never masked into itself: a real city or first name is often
// in the dictionary, and would otherwise come out unchanged once in the
// dictionary's size (a 38-city dictionary: a clone that kept "Fairview" in
// one row of 38 that had it, which the leak audit rightly reports). The
// pick that would give the input back moves to the next entry (the next
// street number), which is as deterministic as the first.
type dictTransform struct {
	dk   *domainKey
	kind string
}

func (*dictTransform) Bijective() bool { return false }

func (d *dictTransform) Append(dst, src []byte) ([]byte, error) {
	var h [32]byte
	d.dk.sumCanonical(&h, 'n', src, func(dst, s []byte) []byte { c, _ := canonicalText(dst, s); return c })
	upper := allUpper(src)
	start := len(dst)
	dst = d.appendPick(dst, &h, 0)
	if d.same(dst[start:], src) {
		dst = d.appendPick(dst[:start], &h, 1)
	}
	if upper {
		for i := start; i < len(dst); i++ {
			if c := dst[i]; c >= 'a' && c <= 'z' {
				dst[i] = c - ('a' - 'A')
			}
		}
	}
	return dst, nil
}

// appendPick appends the dictionary value h picks, with the last of its
// parts moved on by step entries (street numbers by step).
func (d *dictTransform) appendPick(dst []byte, h *[32]byte, step int) []byte {
	at := func(h []byte, n int) int { return (pick(h, n) + step) % n }
	switch d.kind {
	case "first_name":
		dst = append(dst, firstNames[at(h[0:], len(firstNames))]...)
	case "last_name":
		dst = append(dst, lastNames[at(h[8:], len(lastNames))]...)
	case "full_name":
		dst = append(dst, firstNames[pick(h[0:], len(firstNames))]...)
		dst = append(dst, ' ')
		dst = append(dst, lastNames[at(h[8:], len(lastNames))]...)
	case "street_address":
		dst = strconv.AppendUint(dst, 1+(binary.BigEndian.Uint64(h[0:8])+uint64(step))%1999, 10)
		dst = append(dst, ' ')
		dst = append(dst, streetNames[pick(h[8:], len(streetNames))]...)
		dst = append(dst, ' ')
		dst = append(dst, streetSuffixes[pick(h[16:], len(streetSuffixes))]...)
	case "city":
		dst = append(dst, cities[at(h[0:], len(cities))]...)
	}
	return dst
}

// same reports whether the picked value out is src, compared as the hash
// compares them (canonicalText). Dictionary values are short ASCII: the
// comparison stays on the stack. Almost every input differs from its pick
// in the first letter, which is compared first (this runs for every value).
func (d *dictTransform) same(out, src []byte) bool {
	i := 0
	for i < len(src) && (src[i] == ' ' || src[i] >= '\t' && src[i] <= '\r') {
		i++
	}
	if len(out) > 0 && i < len(src) && src[i] < utf8.RuneSelf && lowerASCII(src[i]) != lowerASCII(out[0]) {
		return false
	}
	var a, b [64]byte
	x, _ := canonicalText(a[:0], out)
	y, _ := canonicalText(b[:0], src)
	return bytes.Equal(x, y)
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// allUpper reports whether s has letters and all of them are upper case.
func allUpper(s []byte) bool {
	hasUpper := false
	for len(s) > 0 {
		if c := s[0]; c < utf8.RuneSelf {
			s = s[1:]
			if c >= 'a' && c <= 'z' {
				return false
			}
			hasUpper = hasUpper || c >= 'A' && c <= 'Z'
			continue
		}
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if unicode.IsLower(r) {
			return false
		}
		hasUpper = hasUpper || unicode.IsUpper(r)
	}
	return hasUpper
}

// canonicalText lower-cases s, trims and collapses white space, and reports
// whether s had letters and all of them upper case.
func canonicalText(dst, s []byte) ([]byte, bool) {
	hasUpper, hasLower := false, false
	space := false
	for len(s) > 0 {
		if c := s[0]; c < utf8.RuneSelf {
			// ASCII, as the general case below treats it, faster.
			s = s[1:]
			if c == ' ' || c >= '\t' && c <= '\r' {
				space = len(dst) > 0
				continue
			}
			if space {
				dst = append(dst, ' ')
				space = false
			}
			switch {
			case c >= 'A' && c <= 'Z':
				hasUpper = true
				c += 'a' - 'A'
			case c >= 'a' && c <= 'z':
				hasLower = true
			}
			dst = append(dst, c)
			continue
		}
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if unicode.IsSpace(r) {
			space = len(dst) > 0
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		if unicode.IsUpper(r) {
			hasUpper = true
		} else if unicode.IsLower(r) {
			hasLower = true
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst, hasUpper && !hasLower
}
