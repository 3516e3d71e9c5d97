package masking

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The patterns as findPIIReference runs them: over the whole text.
var (
	reIBAN    = regexp.MustCompile(ibanPattern)
	reCard    = regexp.MustCompile(cardPattern)
	reIPv4    = regexp.MustCompile(ipv4Pattern)
	reSignOff = regexp.MustCompile(signOff)
)

// findPIIReference is findPII as it was before the prefilters: every
// pattern over the whole text. findPII must find exactly what it finds.
func findPIIReference(s []byte, enabled *[numFindKinds]bool) []finding {
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

// piiCorpus is text built to make the patterns' edges meet: values at the
// start and end, glued to words, digits and underscores, split across
// lines, in odd scripts, and near-misses of every kind.
func piiCorpus() []string {
	pieces := []string{
		"jane.roe@gmail.com", "JOHN+tag@Example.CO.uk", "ünïcødé@exämple.de", "a@b.c", "x@y.zz", "@", "foo@", "@bar.com", "a@@b.com",
		"+1 (415) 555-0123", "020 7946 0018", "+44 20 7946 0958", "555-0123", "(030) 1234567", "12345678901234567890", "+49/30/1234567",
		"4111 1111 1111 1111", "4111-1111-1111-1111", "5500000000000004", "4111111111111112", "378282246310005",
		"GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "DE89 3704 0044 0532 0130 00 and more", "FR14 2004 1010 0505 0001 3M02 606",
		"192.168.1.20", "10.20.30.400", "1.2.3.4.5", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "12:30:45",
		"Thanks,\nJane Roe", "Kind regards,\n  Zoë Ångström\n", "many thanks\nX Y", "KIND REGARDS\nab", "Thank you\nT", "thanks!\r\n  Mary Major  \r\n", "Best regards\nJohn", "BEST\nsmith", "Cheers.\n\nNobody", "ſincerely,\nKarl Marx",
		"Yours\nJ. R. R. Tolkien the Third of Many Names That Go On And On For Ever", "br\nX", "Regards,\n42 Main St",
		"John Smith", "Mary Jane Watson", "O'Brien", "Jean-Luc Picard", "Émile Zola", "José García",
		"order #12345", "id_4111111111111111", "x4111111111111111y", "ab12cd34", "AB12 3456 7890 1234 5678 9", "v1.2.3.4",
		"\t", "\n", " ", "  ", ",", ".", "-", "/", "(", ")", "_", "😀", "\u200f", "ß", "K", "\xff", "\xc3", "日本語",
		// Runs of phone characters around the seven and nine digits a phone needs.
		"+1 234 5678", "+12 345 67", "+1234567", "123 4567 8", "123-456-789", "12.345.67", "x+1234567y", "(12) 345-67", "+(1) 23-456-78",
		"205173b1-f9e2-4101-b4a4-0ecc386cb73d", "2024-01-02", "+ 1 2 3 4 5 6 7",
		// Around an @, where findEmails looks for its run in both directions:
		// broken and valid UTF-8, several @ in one run, @ at either end.
		"\xc3\xc3\xa9@x.de", "é\xe2\x82@b.cd", "\xe2\x82\xc3\xa9@b.cd", "@a.bc@d.ef", "a@b.cd\xe2\x82\xac", "x@ü.de", "ü@x.dé", "a@b.cd@", "@",
	}
	words := []string{"hello", "the", "call", "me", "at", "or", "Hi", "please", "email", "card", "number", "IBAN", "from", "ip"}
	r := rand.New(rand.NewPCG(1, 2))
	var out []string
	out = append(out, pieces...)
	for range 3000 {
		var b strings.Builder
		for range 1 + r.IntN(12) {
			switch r.IntN(5) {
			case 0, 1:
				b.WriteString(pieces[r.IntN(len(pieces))])
			case 2:
				b.WriteString(words[r.IntN(len(words))])
			case 3:
				b.WriteString(fmt.Sprint(r.IntN(1_000_000_000)))
			}
			b.WriteString([]string{" ", "", "\n", ", ", ".", "-", "_", "\t", "@", ":", " \r\n"}[r.IntN(11)])
		}
		out = append(out, b.String())
	}
	// Random bytes over an alphabet of pattern edges.
	const alpha = "0123456789 .-+()/@:_aAbBtTsSkK\n\r\txyzéſ"
	for range 3000 {
		n := r.IntN(60)
		b := make([]byte, 0, n)
		for range n {
			b = append(b, alpha[r.IntN(len(alpha))])
		}
		out = append(out, string(b))
	}
	return out
}

func TestSignOffFirstLetters(t *testing.T) {
	words := signOff[strings.Index(signOff, "(?:")+3:]
	words = words[:strings.IndexByte(words, ')')]
	for _, w := range strings.Split(words, "|") {
		if strings.IndexByte(signOffFirst, w[0]) < 0 {
			t.Errorf("sign-off word %q starts with a letter signOffFirst (%q) lacks", w, signOffFirst)
		}
	}
}

func TestFindPIIMatchesReference(t *testing.T) {
	var all, none [numFindKinds]bool
	for k := range all {
		all[k] = true
	}
	sets := [][numFindKinds]bool{all, none}
	for k := range numFindKinds {
		one := none
		one[k] = true
		sets = append(sets, one)
		allBut := all
		allBut[k] = false
		sets = append(sets, allBut)
	}
	for _, s := range piiCorpus() {
		for _, on := range sets {
			if got, want := findPII([]byte(s), &on), findPIIReference([]byte(s), &on); !slices.Equal(got, want) {
				t.Fatalf("findPII(%q, %v) = %v, reference %v", s, on, got, want)
			}
		}
	}
}

func FuzzFindPIIMatchesReference(f *testing.F) {
	for _, s := range piiCorpus()[:200] {
		f.Add(s)
	}
	var all [numFindKinds]bool
	for k := range all {
		all[k] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := findPII([]byte(s), &all), findPIIReference([]byte(s), &all); !slices.Equal(got, want) {
			t.Fatalf("findPII(%q) = %v, reference %v", s, got, want)
		}
	})
}

// BenchmarkAuditPayload masks an audit_log payload of the fixture with the
// fixture rules' jsonb transform (deep paths and the scrub).
// Run: go test -run '^$' -bench AuditPayload -benchmem -cpu 1 ./masking/
func BenchmarkAuditPayload(b *testing.B) {
	kr := testKeyring(b, testKey)
	tr := mustTransform(b, kr, Spec{Transform: "jsonb", Options: Options{Scrub: true, Paths: []PathRule{
		{Path: "$.actor.id", Spec: Spec{Transform: "int", Domain: "user_id"}},
		{Path: "$..email", Spec: Spec{Transform: "email", Domain: "customer_email"}},
		{Path: "$..name", Spec: Spec{Transform: "full_name", Domain: "person_name"}},
		{Path: "$..holder", Spec: Spec{Transform: "full_name", Domain: "person_name"}},
		{Path: "$..street", Spec: Spec{Transform: "street_address"}},
		{Path: "$..city", Spec: Spec{Transform: "city"}},
		{Path: "$..ip", Spec: Spec{Transform: "ip", Options: Options{KeepPrefix: 8}}},
	}}}, Target{Type: "jsonb"})
	payloads := [][]byte{
		[]byte(`{"actor": {"id": 4711, "ip": "203.0.113.57", "name": "Jane Roe", "email": "jane.roe@example-mail.com"}, "changes": {"geo": {"city": "Springfield", "country": "US"}, "result": "success"}, "request": {"id": "6ba7b810-9dad-41d1-80b4-00c04fd430c8", "ip": "203.0.113.57", "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}}`),
		[]byte(`{"actor": {"id": 815, "ip": "2001:db8::17", "name": "John Smith", "email": "john.smith@corp.example.org"}, "changes": {"phone": {"new": "+1 (415) 555-0123", "old": "+44 20 7946 0958"}, "address": {"new": {"city": "Berlin", "street": "12 Main Street", "postal_code": "10115"}, "old": {"city": "Paris", "street": "3 Rue de Rivoli", "postal_code": "75001"}}}, "request": {"id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "ip": "2001:db8::17", "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"}}`),
		[]byte(`{"actor": {"system": "billing-worker"}, "changes": {"card": {"last4": "1111", "holder": "Mary Major", "number": "4111 1111 1111 1111"}}, "request": {"id": "9f0c2d6e-5b1a-4c3e-8f7d-2a6b4c8e0f13", "ip": "10.1.2.3", "user_agent": "curl/8.5.0"}}`),
	}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var err error
		if dst, err = tr.Append(dst[:0], payloads[i%len(payloads)]); err != nil {
			b.Fatal(err)
		}
	}
}
