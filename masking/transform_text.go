package masking

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	gofakeitdata "github.com/brianvoe/gofakeit/v7/data"
)

// What the free-text scrub finds. Compiled once, never changed.
var (
	reEmail = regexp.MustCompile(`[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*\.\p{L}{2,}`)
	reIBAN  = regexp.MustCompile(`\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}\b`)
	reCard  = regexp.MustCompile(`\b[0-9](?:[ \-]?[0-9]){11,18}\b`)
	reIPv4  = regexp.MustCompile(`\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b`)
	reIPv6  = regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}`)
	// The line after a sign-off ("Thanks,\nJane Roe") is a name, whatever
	// its script.
	reSignOff = regexp.MustCompile(`(?im)^[ \t]*(?:thanks|thank you|many thanks|regards|best regards|kind regards|best wishes|best|cheers|sincerely|yours|br)[ \t]*[,.!]?[ \t]*\r?\n[ \t]*([^\n@0-9]{1,60}?)[ \t]*\r?$`)
	rePhone   = regexp.MustCompile(`(?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9](?:[ .\-/]?[0-9]){5,15}`)
)

// Kinds of findings in free text, in the order they win overlaps.
const (
	findEmail = iota
	findIBAN
	findCard
	findIP
	findPhone
	findName
	numFindKinds
)

var findKindNames = [numFindKinds]string{"email", "iban", "card", "ip", "phone", "name"}

// finding is a span of text that holds one value of a kind.
type finding struct {
	start, end int
	kind       int
}

// findPII returns the non-overlapping findings in s, sorted by position.
// Card numbers must pass Luhn, IBANs mod 97, IPs must parse, phones need
// nine digits (seven after a "+").
func findPII(s []byte, enabled *[numFindKinds]bool) []finding {
	var out []finding
	hasAt := bytes.IndexByte(s, '@') >= 0
	hasDigit := bytes.IndexAny(s, "0123456789") >= 0
	overlaps := func(a, b int) bool {
		for _, f := range out {
			if a < f.end && f.start < b {
				return true
			}
		}
		return false
	}
	add := func(a, b, kind int) {
		if !overlaps(a, b) {
			out = append(out, finding{a, b, kind})
		}
	}
	if enabled[findEmail] && hasAt {
		for _, m := range reEmail.FindAllIndex(s, -1) {
			add(m[0], m[1], findEmail)
		}
	}
	if enabled[findName] {
		for _, m := range reSignOff.FindAllSubmatchIndex(s, -1) {
			if m[3] > m[2] {
				add(m[2], m[3], findName)
			}
		}
		findNames(s, func(a, b int) { add(a, b, findName) })
	}
	if !hasDigit {
		slices.SortFunc(out, func(x, y finding) int { return x.start - y.start })
		return out
	}
	if enabled[findIBAN] {
		for _, m := range reIBAN.FindAllIndex(s, -1) {
			// The pattern may run into following words; shorten until valid.
			a, b := m[0], m[1]
			for b-a >= 15 {
				var buf [34]byte
				if c, ok := compactIBAN(buf[:0], s[a:b]); ok && ibanValid(c) {
					add(a, b, findIBAN)
					break
				}
				k := bytes.LastIndexByte(s[a:b], ' ')
				if k <= 0 {
					b--
				} else {
					b = a + k
				}
			}
		}
	}
	if enabled[findCard] {
		for _, m := range reCard.FindAllIndex(s, -1) {
			if d := countDigits(s[m[0]:m[1]]); d >= 13 && d <= 19 && luhnValid(s[m[0]:m[1]]) {
				add(m[0], m[1], findCard)
			}
		}
	}
	if enabled[findIP] {
		for _, m := range reIPv4.FindAllIndex(s, -1) {
			if _, err := netip.ParseAddr(string(s[m[0]:m[1]])); err == nil {
				add(m[0], m[1], findIP)
			}
		}
		if bytes.Count(s, []byte{':'}) >= 2 {
			for _, m := range reIPv6.FindAllIndex(s, -1) {
				if m[1]-m[0] < 3 || countHexDigits(s[m[0]:m[1]]) == 0 {
					continue
				}
				if a, err := netip.ParseAddr(string(s[m[0]:m[1]])); err == nil && a.Is6() {
					add(m[0], m[1], findIP)
				}
			}
		}
	}
	if enabled[findPhone] {
		for _, m := range rePhone.FindAllIndex(s, -1) {
			a, b := m[0], m[1]
			if a > 0 && isWordByte(s[a-1]) || b < len(s) && isWordByte(s[b]) {
				continue
			}
			d := countDigits(s[a:b])
			if d >= 9 || d >= 7 && s[a] == '+' {
				add(a, b, findPhone)
			}
		}
	}
	slices.SortFunc(out, func(x, y finding) int { return x.start - y.start })
	return out
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func countDigits(s []byte) int {
	n := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			n++
		}
	}
	return n
}

func countHexDigits(s []byte) int {
	n := 0
	for _, c := range s {
		if _, ok := unhex(c); ok {
			n++
		}
	}
	return n
}

// scrubber replaces the e-mails, phones, card numbers, IBANs, IP addresses
// and person names it finds in free text with their domains' transforms, so
// an address inside a ticket body becomes the same fake as in users.email. A
// finding its transform cannot take is replaced by asterisks.
//
// Names are found by dictionary (a capitalised first name, then a
// capitalised word, then up to two more names the dictionaries know) and by
// position (the line after a sign-off such as "Thanks,"): heuristics that
// catch signatures and people with common first names, not every name.
type scrubber struct {
	t [numFindKinds]Transform
	// on says which detectors run.
	on [numFindKinds]bool
}

// scrubDefaults are the transforms of the default scrub domains.
var scrubDefaults = [numFindKinds]string{"email", "iban", "card", "ip", "phone", "full_name"}

func (b *builder) newScrubber(sd ScrubDomains) (*scrubber, error) {
	if b.depth > 2 {
		return nil, fmt.Errorf("scrub domains nest too deep")
	}
	names := [numFindKinds]string{sd.Email, sd.IBAN, sd.Card, sd.IP, sd.Phone, sd.Name}
	s := &scrubber{}
	for k, name := range names {
		if name == "off" {
			continue
		}
		if name == "" {
			name = findKindNames[k]
		}
		spec := Spec{Transform: scrubDefaults[k], Domain: name}
		if b.domains != nil {
			if ds, ok := b.domains(name); ok {
				spec = ds
			}
		}
		if spec.Transform == "scrub" || spec.Transform == "jsonb" || spec.Transform == "template" {
			return nil, fmt.Errorf("scrub %s domain %q uses transform %q, which cannot mask a single value", findKindNames[k], name, spec.Transform)
		}
		b.depth++
		t, err := b.build(spec, Target{Type: "text", Column: "scrub " + findKindNames[k]})
		b.depth--
		if err != nil {
			return nil, fmt.Errorf("scrub %s domain %q: %w", findKindNames[k], name, err)
		}
		s.t[k], s.on[k] = t, true
	}
	return s, nil
}

func (*scrubber) Bijective() bool { return false }

func (s *scrubber) Append(dst, src []byte) ([]byte, error) {
	fs := findPII(src, &s.on)
	if len(fs) == 0 {
		return append(dst, src...), nil
	}
	prev := 0
	for _, f := range fs {
		dst = append(dst, src[prev:f.start]...)
		n := len(dst)
		out, err := s.t[f.kind].Append(dst, src[f.start:f.end])
		if err != nil {
			out = dst[:n]
			for range utf8.RuneCount(src[f.start:f.end]) {
				out = append(out, '*')
			}
		}
		dst = out
		prev = f.end
	}
	return append(dst, src[prev:]...), nil
}

// nameDict is the set of first and last names the scrub and the scanner
// recognise (lower case): the fake dictionaries plus gofakeit's person
// lists. Built once, then read-only.
type nameDict struct{ first, last map[string]bool }

var nameSets = sync.OnceValue(func() *nameDict {
	d := &nameDict{first: map[string]bool{}, last: map[string]bool{}}
	for _, n := range firstNames {
		d.first[strings.ToLower(n)] = true
	}
	for _, n := range lastNames {
		d.last[strings.ToLower(n)] = true
	}
	for _, n := range gofakeitdata.Person["first"] {
		d.first[strings.ToLower(n)] = true
	}
	for _, n := range gofakeitdata.Person["last"] {
		d.last[strings.ToLower(n)] = true
	}
	return d
})

func isCapitalized(w []byte) bool {
	r, _ := utf8.DecodeRune(w)
	return unicode.IsUpper(r) && len(w) > 1
}

// findNames calls add for each name found in s.
func findNames(s []byte, add func(a, b int)) {
	type word struct{ a, b int }
	var words []word
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRune(s[i:])
		if !unicode.IsLetter(r) {
			i += n
			continue
		}
		a := i
		for i < len(s) {
			r, n := utf8.DecodeRune(s[i:])
			if !unicode.IsLetter(r) && !(r == '\'' || r == '-') {
				break
			}
			i += n
		}
		words = append(words, word{a, i})
	}
	d := nameSets()
	var low []byte
	in := func(w word, set map[string]bool) bool {
		r, _ := utf8.DecodeRune(s[w.a:])
		if !unicode.IsUpper(r) || w.b-w.a < 2 {
			return false
		}
		low = low[:0]
		for _, c := range string(s[w.a:w.b]) {
			low = utf8.AppendRune(low, unicode.ToLower(c))
		}
		return set[string(low)]
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		// Not inside an e-mail address or a word joined by other symbols.
		if w.a > 0 && (s[w.a-1] == '.' || s[w.a-1] == '@') || w.b < len(s) && (s[w.b] == '@' || s[w.b] == '.' && w.b+1 < len(s) && isWordByte(s[w.b+1])) {
			continue
		}
		if !in(w, d.first) {
			continue
		}
		// Surnames are open-ended: the first capitalised word after a first
		// name is taken; more words only when the dictionaries know them.
		j := i
		for j+1 < len(words) && j-i < 3 && words[j+1].a == words[j].b+1 && s[words[j].b] == ' ' &&
			(in(words[j+1], d.last) || in(words[j+1], d.first) || j == i && isCapitalized(s[words[j+1].a:words[j+1].b])) {
			j++
		}
		add(w.a, words[j].b)
		i = j
	}
}
