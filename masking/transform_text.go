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

// Patterns of what the free-text scrub finds. The ones that begin with \b
// run anchored where a match can start (see findAt).
const (
	ibanPattern = `\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}\b`
	cardPattern = `\b[0-9](?:[ \-]?[0-9]){11,18}\b`
	ipv4Pattern = `\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b`
	// signOff matches a sign-off line ("Thanks,") and captures the line
	// after it, which is a name whatever its script.
	signOff = `(?im)^[ \t]*(?:thanks|thank you|many thanks|regards|best regards|kind regards|best wishes|best|cheers|sincerely|yours|br)[ \t]*[,.!]?[ \t]*\r?\n[ \t]*([^\n@0-9]{1,60}?)[ \t]*\r?$`
	// signOffFirst holds the first letters of signOff's words.
	signOffFirst = "tmrkbcsy"
)

// anchored returns pattern matched only at the start of the text.
func anchored(pattern string) *regexp.Regexp { return regexp.MustCompile(`\A(?:` + pattern + `)`) }

// What the free-text scrub finds. Compiled once, never changed.
var (
	reEmail = regexp.MustCompile(`[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*\.\p{L}{2,}`)
	// reEmailASCII is reEmail for text that is all ASCII, where \p{L} is
	// [A-Za-z] and \p{N} is [0-9]: the same matches, without looking up
	// Unicode's tables for every byte.
	reEmailASCII  = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)
	rePhone       = regexp.MustCompile(`(?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9](?:[ .\-/]?[0-9]){5,15}`)
	reIPv6        = regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}`)
	reIBANAt      = anchored(ibanPattern)
	reCardAt      = anchored(cardPattern)
	reIPv4At      = anchored(ipv4Pattern)
	reSignOffLine = anchored(signOff)
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
//
// The patterns are never run over the whole text: each runs only where a
// match can start or lie (see findInRuns, findAt, findSignOffs), which gives
// exactly the matches FindAllIndex over the whole text gives, at a fraction
// of the cost (backtracking from every position of a long text is what the
// scrub used to spend its time on).
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
		findEmails(s, func(a, b int) { add(a, b, findEmail) })
	}
	if enabled[findName] {
		findSignOffs(s, func(a, b int) { add(a, b, findName) })
		findNames(s, func(a, b int) { add(a, b, findName) })
	}
	if !hasDigit {
		slices.SortFunc(out, func(x, y finding) int { return x.start - y.start })
		return out
	}
	// Where IBANs, card numbers and IPv4 addresses can start, in one pass.
	var ibanBuf, digitBuf [32]int
	ibans, digits := ibanBuf[:0], digitBuf[:0]
	if enabled[findIBAN] || enabled[findCard] || enabled[findIP] {
		for i, c := range s {
			switch {
			case c >= '0' && c <= '9':
				if digitStart(s, i) {
					digits = append(digits, i)
				}
			case c|0x20 >= 'a' && c|0x20 <= 'z':
				if ibanStart(s, i) {
					ibans = append(ibans, i)
				}
			}
		}
	}
	if enabled[findIBAN] {
		findAt(reIBANAt, s, maxIBANMatch, ibans, nil, func(a, b int) {
			// The pattern may run into following words; shorten until valid.
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
		})
	}
	if enabled[findCard] {
		findAt(reCardAt, s, maxCardMatch, digits, cardRun, func(a, b int) {
			if d := countDigits(s[a:b]); d >= 13 && d <= 19 && luhnValid(s[a:b]) {
				add(a, b, findCard)
			}
		})
	}
	if enabled[findIP] {
		findAt(reIPv4At, s, maxIPv4Match, digits, ipv4Run, func(a, b int) {
			if _, err := netip.ParseAddr(string(s[a:b])); err == nil {
				add(a, b, findIP)
			}
		})
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
		findInRuns(rePhone, s, phoneRunes, 0, phoneDigitsEnough, func(a, b int) {
			if a > 0 && isWordByte(s[a-1]) || b < len(s) && isWordByte(s[b]) {
				return
			}
			d := countDigits(s[a:b])
			if d >= 9 || d >= 7 && s[a] == '+' {
				add(a, b, findPhone)
			}
		})
	}
	slices.SortFunc(out, func(x, y finding) int { return x.start - y.start })
	return out
}

// The longest match, in bytes, of the patterns findAt runs (all ASCII):
// reIBAN 2+2+30×2, reCard 1+18×2, reIPv4 3+3×4.
const (
	maxIBANMatch = 64
	maxCardMatch = 37
	maxIPv4Match = 15
)

// runeSet is a set of runes with a table for ASCII.
type runeSet struct {
	ascii [utf8.RuneSelf]bool
	other func(rune) bool // non-ASCII runes
}

func newRuneSet(in func(rune) bool) *runeSet {
	rs := &runeSet{other: in}
	for c := range rs.ascii {
		rs.ascii[c] = in(rune(c))
	}
	return rs
}

// The runes reEmail and rePhone matches are made of. Built once, never
// changed.
var (
	emailRunes = newRuneSet(func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '.' || r == '_' || r == '%' || r == '+' || r == '-' || r == '@'
	})
	phoneRunes = newRuneSet(func(r rune) bool {
		return r >= '0' && r <= '9' || r == '+' || r == '(' || r == ')' || r == ' ' || r == '.' || r == '-' || r == '/'
	})
)

// digitStart: reCard and reIPv4 start with \b[0-9].
func digitStart(s []byte, i int) bool {
	return s[i] >= '0' && s[i] <= '9' && (i == 0 || !isWordByte(s[i-1]))
}

// cardRun: a reCard match is made of digits, spaces and hyphens, 12 of
// them digits at least.
func cardRun(s []byte, i int) bool {
	n := 0
	for j := i; j < len(s) && n < 12; j++ {
		switch c := s[j]; {
		case c >= '0' && c <= '9':
			n++
		case c == ' ' || c == '-':
		default:
			return false
		}
	}
	return n >= 12
}

// ipv4Run: a reIPv4 match is made of digits and dots, three of them dots.
func ipv4Run(s []byte, i int) bool {
	n := 0
	for j := i; j < len(s) && n < 3; j++ {
		switch c := s[j]; {
		case c == '.':
			n++
		case c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return n >= 3
}

// ibanStart: reIBAN starts with \b[A-Za-z]{2}[0-9]{2}.
func ibanStart(s []byte, i int) bool {
	isLetter := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	return i+4 <= len(s) && isLetter(s[i]) && isLetter(s[i+1]) && s[i+2] >= '0' && s[i+2] <= '9' && s[i+3] >= '0' && s[i+3] <= '9' &&
		(i == 0 || !isWordByte(s[i-1]))
}

// findInRuns calls f with the matches re.FindAllIndex(s, -1) returns, for
// a pattern without anchors or word boundaries whose matches consist of
// runes in the set in. Such a match lies inside one maximal run of those
// runes, so matching each run on its own finds the same matches, in the
// same order. Only the runs for which enough(run, hits) is true are
// matched, hits being the number of bytes trigger (0: ASCII digits) in the
// run: the ones that hold no match f would keep can be left out.
func findInRuns(re *regexp.Regexp, s []byte, in *runeSet, trigger byte, enough func(run []byte, hits int) bool, f func(a, b int)) {
	start, hits := -1, 0
	for i := 0; i <= len(s); {
		var ok bool
		n := 1
		if i < len(s) {
			if c := s[i]; c < utf8.RuneSelf {
				ok = in.ascii[c]
				if ok && (trigger == 0 && c >= '0' && c <= '9' || trigger != 0 && c == trigger) {
					hits++
				}
			} else {
				var r rune
				r, n = utf8.DecodeRune(s[i:])
				ok = in.other(r)
			}
		}
		switch {
		case ok && start < 0:
			start = i
		case !ok && start >= 0:
			if enough(s[start:i], hits) {
				for _, m := range re.FindAllIndex(s[start:i], -1) {
					f(start+m[0], start+m[1])
				}
			}
			start, hits = -1, 0
		}
		i += n
	}
}

// findEmails calls f with the matches reEmail.FindAllIndex(s, -1)
// returns. As findInRuns would: a match holds an @ and lies inside one
// maximal run of emailRunes, so only the runs around each @ are matched;
// they are found from the @ outwards (UTF-8 decodes alike both ways), and
// the rest of the text is not looked at byte by byte.
func findEmails(s []byte, f func(a, b int)) {
	for from := 0; from < len(s); {
		k := bytes.IndexByte(s[from:], '@')
		if k < 0 {
			return
		}
		a, b := from+k, from+k+1
		ascii := true
		for a > 0 {
			r, n := rune(s[a-1]), 1
			if r >= utf8.RuneSelf {
				r, n = utf8.DecodeLastRune(s[:a])
				ascii = false
			}
			if !emailRunes.has(r) {
				break
			}
			a -= n
		}
		for b < len(s) {
			r, n := rune(s[b]), 1
			if r >= utf8.RuneSelf {
				r, n = utf8.DecodeRune(s[b:])
				ascii = false
			}
			if !emailRunes.has(r) {
				break
			}
			b += n
		}
		re := reEmail
		if ascii {
			re = reEmailASCII
		}
		for _, m := range re.FindAllIndex(s[a:b], -1) {
			f(a+m[0], a+m[1])
		}
		from = b
	}
}

// has reports whether r is in the set.
func (rs *runeSet) has(r rune) bool {
	if r < utf8.RuneSelf {
		return rs.ascii[r]
	}
	return rs.other(r)
}

// phoneDigitsEnough: findPII keeps a rePhone match with nine digits, or
// seven after a "+"; a run with fewer holds none.
func phoneDigitsEnough(run []byte, digits int) bool {
	return digits >= 9 || digits >= 7 && bytes.IndexByte(run, '+') >= 0
}

// findAt calls f with the matches FindAllIndex of pattern over s returns,
// for a pattern that begins with \b, whose matches start only at starts
// (increasing; \b checked) where possible (nil: everywhere) is true, and
// are at most maxLen bytes long. re is the pattern anchored; it runs at
// each such position on a window that holds the longest possible match and
// the byte after it (what the closing \b looks at). The opening \b holds
// there and holds at the window's start too, which is a word character.
func findAt(re *regexp.Regexp, s []byte, maxLen int, starts []int, possible func(s []byte, i int) bool, f func(a, b int)) {
	next := 0 // matches do not overlap
	for _, i := range starts {
		if i < next || possible != nil && !possible(s, i) {
			continue
		}
		if m := re.FindIndex(s[i:min(i+maxLen+1, len(s))]); m != nil {
			f(i, i+m[1])
			next = i + m[1]
		}
	}
}

// findSignOffs calls f with the name each signOff match captures, as
// FindAllSubmatchIndex over s would find them. A match starts at a line
// whose first non-blank character may begin one of the sign-off words, so
// the pattern runs anchored (reSignOffLine) at those lines only.
func findSignOffs(s []byte, f func(a, b int)) {
	if bytes.IndexByte(s, '\n') < 0 {
		return // the pattern spans two lines
	}
	pos := 0
	for ls := 0; ls < len(s); {
		next := bytes.IndexByte(s[ls:], '\n')
		if ls >= pos {
			i := ls
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			// Any non-ASCII byte too, for Unicode case folding ("ſ" is an
			// "s", "K" a "k").
			if i < len(s) && (strings.IndexByte(signOffFirst, s[i]|0x20) >= 0 || s[i] >= utf8.RuneSelf) && next >= 0 && signOffWordFits(s[i:ls+next]) {
				// A match ends where the next line does: matching that
				// window (whose end "$" takes as the line's) keeps the
				// regexp's work to the two lines.
				end := len(s)
				if next >= 0 {
					if k := bytes.IndexByte(s[ls+next+1:], '\n'); k >= 0 {
						end = ls + next + 1 + k
					}
				}
				if m := reSignOffLine.FindSubmatchIndex(s[ls:end]); m != nil {
					if m[3] > m[2] {
						f(ls+m[2], ls+m[3])
					}
					pos = ls + m[1]
				}
			}
		}
		if next < 0 {
			break
		}
		ls += next + 1
	}
}

// signOffMaxWord is the longest sign-off word of signOff in bytes, with
// every letter as its longest case-folded form (3 bytes: "K" for k).
const signOffMaxWord = 3 * len("best regards")

// signOffWordFits reports whether line (after its leading blanks, before
// its newline) is short enough to be a signOff first line: a sign-off
// word, then blanks, one of ",.!", blanks and a carriage return.
func signOffWordFits(line []byte) bool {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	line = bytes.TrimRight(line, " \t")
	if n := len(line); n > 0 && (line[n-1] == ',' || line[n-1] == '.' || line[n-1] == '!') {
		line = bytes.TrimRight(line[:n-1], " \t")
	}
	return len(line) <= signOffMaxWord
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
	// cache remembers the outputs of repeated short values (nil: none).
	cache *scrubCache
}

// scrubDefaults are the transforms of the default scrub domains.
var scrubDefaults = [numFindKinds]string{"email", "iban", "card", "ip", "phone", "full_name"}

func (b *builder) newScrubber(sd ScrubDomains) (*scrubber, error) {
	if b.depth > 2 {
		return nil, fmt.Errorf("scrub domains nest too deep")
	}
	names := [numFindKinds]string{sd.Email, sd.IBAN, sd.Card, sd.IP, sd.Phone, sd.Name}
	s := &scrubber{cache: newScrubCache()}
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
	out, _ := s.scrub(dst, src)
	return out, nil
}

// replace appends src with the findings fs replaced.
func (s *scrubber) replace(dst, src []byte, fs []finding) []byte {
	if len(fs) == 0 {
		return append(dst, src...)
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
	return append(dst, src[prev:]...)
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
	var wordBuf [64]word
	words := wordBuf[:0]
	// A name starts with an upper-case letter: none, no name.
	upper := false
	for _, c := range s {
		if c >= 'A' && c <= 'Z' || c >= utf8.RuneSelf {
			upper = true
			break
		}
	}
	if !upper {
		return
	}
	letter := func(i int) (bool, int) {
		if c := s[i]; c < utf8.RuneSelf {
			c |= 0x20
			return c >= 'a' && c <= 'z', 1
		}
		r, n := utf8.DecodeRune(s[i:])
		return unicode.IsLetter(r), n
	}
	for i := 0; i < len(s); {
		ok, n := letter(i)
		if !ok {
			i += n
			continue
		}
		a := i
		for i < len(s) {
			ok, n := letter(i)
			if !ok && s[i] != '\'' && s[i] != '-' {
				break
			}
			i += n
		}
		words = append(words, word{a, i})
	}
	d := nameSets()
	var lowBuf [64]byte
	low := lowBuf[:0]
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
