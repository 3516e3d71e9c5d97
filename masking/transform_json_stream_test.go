package masking

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// streamRuleSets are path rules the one-pass JSON rewrite must treat as
// appendTree does: the fixture's audit_log rules, overlapping and nested
// selections, indexes, wildcards, numbers made strings, values a transform
// rejects.
var streamRuleSets = [][]PathRule{
	{ // fixtures/masking.yaml, audit_log.payload
		{Path: "$.actor.id", Spec: Spec{Transform: "int", Domain: "user_id"}},
		{Path: "$..email", Spec: Spec{Transform: "email", Domain: "customer_email"}},
		{Path: "$..name", Spec: Spec{Transform: "full_name", Domain: "person_name"}},
		{Path: "$..holder", Spec: Spec{Transform: "full_name", Domain: "person_name"}},
		{Path: "$..street", Spec: Spec{Transform: "street_address"}},
		{Path: "$..city", Spec: Spec{Transform: "city"}},
		{Path: "$..ip", Spec: Spec{Transform: "ip", Domain: "ip", Options: Options{KeepPrefix: 8}}},
	},
	{ // a container selected after some of its members were
		{Path: "$..email", Spec: Spec{Transform: "email"}},
		{Path: "$.actor", Spec: Spec{Transform: "redact", Options: Options{KeepFirst: 1}}},
		{Path: "$.items[*].phone", Spec: Spec{Transform: "phone"}},
		{Path: "$.items[1]", Spec: Spec{Transform: "hash"}},
		{Path: "$..a.b", Spec: Spec{Transform: "city"}},
		{Path: "$.*", Spec: Spec{Transform: "constant", Options: Options{Value: "x"}}},
	},
	{ // numbers: kept numbers, numbers made strings, rejected values
		{Path: "$..id", Spec: Spec{Transform: "int"}},
		{Path: "$..n", Spec: Spec{Transform: "noise", Options: Options{Percent: 10}}},
		{Path: "$..ip", Spec: Spec{Transform: "ip"}},
		{Path: "$['odd key'][0]", Spec: Spec{Transform: "email"}},
		{Path: "$..b[*]", Spec: Spec{Transform: "hash", Options: Options{Length: 6}}},
	},
}

// jsonPair builds one rule set as a jsonTransform twice: streaming and
// through the tree (the reference).
func jsonPair(t testing.TB, kr *Keyring, paths []PathRule, scrub bool) (stream, tree *jsonTransform) {
	t.Helper()
	spec := Spec{Transform: "jsonb", Options: Options{Paths: paths, Scrub: scrub, ScrubDomains: ScrubDomains{Email: "customer_email", Name: "person_name"}}}
	jt := unwrap(mustTransform(t, kr, spec, Target{Type: "jsonb"})).(*jsonTransform)
	if !jt.stream {
		t.Fatalf("rules %v: want the streaming rewrite", paths)
	}
	ref := *jt
	ref.stream = false
	return jt, &ref
}

// checkSameJSON fails unless the two transforms agree on doc: same bytes,
// or both an error.
func checkSameJSON(t testing.TB, stream, tree *jsonTransform, doc []byte) {
	t.Helper()
	prefix := []byte("prefix:")
	want, werr := tree.Append(bytes.Clone(prefix), doc)
	got, gerr := stream.Append(bytes.Clone(prefix), doc)
	if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("document %q:\nstream %q (%v)\ntree   %q (%v)", doc, got, gerr, want, werr)
	}
}

// randomJSON writes a document of the keys paths select and of values the
// scrub finds, with escapes, odd spacing and nesting.
func randomJSON(r *rand.Rand, b *bytes.Buffer, depth int) {
	keys := []string{"email", "name", "ip", "id", "a", "b", "n", "actor", "items", "phone", "city", "street", "holder", "odd key", "x", `e\u006dail`, "ü"}
	strs := []string{"jane.roe@example.com", "Jane Roe", "10.1.2.3", "2001:db8::1", "+1 (415) 555-0123", "Paris", "12 Main St",
		"Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "success", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "",
		`tab\tand \"quote\" \u00e9 \ud83d\udd11 \/`, "not an ip", "Thanks,\\nJohn Smith", "值 🔑"}
	nums := []string{"0", "-1", "42", "1.5e300", "3.25", "-0.0", "123456789012345678901234567890", "1E-7"}
	sp := func() {
		if r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t ", "\r\n"}[r.IntN(4)])
		}
	}
	sp()
	k := r.IntN(10)
	if depth > 4 {
		k = 4 + r.IntN(6)
	}
	switch {
	case k < 2:
		b.WriteByte('{')
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			sp()
			b.WriteString(`"` + keys[r.IntN(len(keys))] + `"`)
			sp()
			b.WriteByte(':')
			randomJSON(r, b, depth+1)
		}
		sp()
		b.WriteByte('}')
	case k < 4:
		b.WriteByte('[')
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			randomJSON(r, b, depth+1)
		}
		sp()
		b.WriteByte(']')
	case k < 7:
		b.WriteString(`"` + strs[r.IntN(len(strs))] + `"`)
	case k < 9:
		b.WriteString(nums[r.IntN(len(nums))])
	default:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	}
	sp()
}

func TestJSONStreamMatchesTree(t *testing.T) {
	kr := testKeyring(t, testKey)
	docs := []string{
		`{"actor": {"id": 38, "ip": "2004:7b6:aef0:ca25::3d34", "name": "Abner Wade", "email": "wade.abner1979@yahoo.com"}, "changes": {"phone": {"new": "+1 060.555.4590", "old": "(817) 555-4243"}}, "request": {"id": "205173b1-f9e2-4101-b4a4-0ecc386cb73d", "ip": "2004:7b6:aef0:ca25::3d34", "user_agent": "okhttp/4.12.0"}}`,
		`{"actor": {"id": 42, "email": "john@x.com", "name": "John", "ip": "10.1.2.3"}, "items": [{"phone": "+1 415 555 0100"}, {"phone": null}], "secret key": {"a": 1}, "note": "call me at +44 20 7946 0018 or mail john@x.com", "n": 1.5e300, "ü": "值 \ud83d\udd11 \"q\""}`,
		`{"name": {"name": "Jane Roe", "email": ["a@b.co", {"email": "c@d.co"}]}, "email": 12, "ip": true, "id": "seven", "n": "x", "a": {"b": [1, "Jane Roe"]}}`,
		`{"a":{"a":{"b":{"b":["x","y"]}}},"odd key":["q@r.st","u@v.wx"],"b":[null,1,"2"]}`,
		`{"id": 1, "id": 2, "email": "dup@x.com", "email": "dup2@x.com"}`,
		`[{"email": "a@b.co"}, [{"ip": "1.2.3.4"}], "Jane Roe", 7]`, `"jane@x.com"`, `12`, `null`, `{}`, `[]`, ` { } `, "{\"e\\u006dail\": \"q@r.st\"}",
		`{"ip": "999.1.1.1", "n": -0, "id": 1e3, "id": 9223372036854775808}`,
		// Invalid documents: both must fail.
		``, ` `, `{`, `{"a"}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a":1}x`, `tru`, `"\x"`, "\"a\x01\"", `"\u12"`, `01`, `1.`, `-`, `{"a":1 "b":2}`, `[`, `{"a":[1}`, `nul`, `truex`,
		strings.Repeat("[", 1002) + strings.Repeat("]", 1002), strings.Repeat(`{"a":`, 999) + "1" + strings.Repeat("}", 999),
	}
	for _, rules := range streamRuleSets {
		for _, scrub := range []bool{true, false} {
			stream, tree := jsonPair(t, kr, rules, scrub)
			for _, d := range docs {
				checkSameJSON(t, stream, tree, []byte(d))
			}
			r := rand.New(rand.NewPCG(1, uint64(len(rules))))
			for range 3000 {
				var b bytes.Buffer
				randomJSON(r, &b, 0)
				checkSameJSON(t, stream, tree, b.Bytes())
				// Twice: the second time from the scrub's cache.
				checkSameJSON(t, stream, tree, b.Bytes())
			}
		}
	}
}

func FuzzJSONStream(f *testing.F) {
	for _, d := range []string{`{"actor": {"id": 1, "email": "a@b.co", "ip": "10.0.0.1"}, "x": ["Jane Roe", 1.5, true, null]}`, `[{"name": {"city": "Paris"}}]`, `"\ud83d\udd11"`, `{"a":{"b":[1,"x"]}}`} {
		f.Add([]byte(d))
	}
	kr := testKeyring(f, testKey)
	var pairs [][2]*jsonTransform
	for _, rules := range streamRuleSets {
		s, t := jsonPair(f, kr, rules, true)
		pairs = append(pairs, [2]*jsonTransform{s, t})
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, p := range pairs {
			checkSameJSON(t, p[0], p[1], doc)
		}
	})
}

// TestScrubCacheMatchesScrub checks that remembered outputs are the
// scrub's outputs, values seen once, twice and many times, short and
// long, from several goroutines.
func TestScrubCacheMatchesScrub(t *testing.T) {
	kr := testKeyring(t, testKey)
	s := unwrap(mustTransform(t, kr, Spec{Transform: "scrub"}, Target{})).(*scrubber)
	if s.cache == nil {
		t.Fatal("the scrub should have a cache")
	}
	vals := []string{"", "success", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "jane.roe@gmail.com",
		"call +1 (415) 555-0123", "Jane Roe", "Thanks,\nJane Roe", strings.Repeat("x", scrubCacheMaxLen) + " jane@x.com", "4111 1111 1111 1111"}
	for i := range 3000 {
		vals = append(vals, "user"+strconv.Itoa(i)+"@example.com")
	}
	want := make([]string, len(vals))
	found := make([]bool, len(vals))
	for i, v := range vals {
		fs := findPII([]byte(v), &s.on)
		want[i], found[i] = string(s.replace(nil, []byte(v), fs)), len(fs) > 0
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for round := range 5 {
				for i, v := range vals {
					if (i+g+round)%3 == 0 {
						continue
					}
					got, changed := s.scrub([]byte("p:"), []byte(v))
					if string(got) != "p:"+want[i] || changed != found[i] {
						t.Errorf("scrub(%q) = %q, %v; want %q", v, got, changed, want[i])
						return
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
