package masking

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The fast paths below must give exactly what the general code gave before
// them: these are that code, kept as the reference.

func canonicalTextRef(dst, s []byte) ([]byte, bool) {
	hasUpper, hasLower := false, false
	space := false
	for len(s) > 0 {
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

func allUpperRef(s []byte) bool {
	hasUpper := false
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if unicode.IsLower(r) {
			return false
		}
		hasUpper = hasUpper || unicode.IsUpper(r)
	}
	return hasUpper
}

func appendJSONStringRef(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func checkFastPaths(t *testing.T, s []byte) {
	t.Helper()
	got, gu := canonicalText([]byte("p"), s)
	want, wu := canonicalTextRef([]byte("p"), s)
	if !bytes.Equal(got, want) || gu != wu {
		t.Fatalf("canonicalText(%q) = %q, %v; want %q, %v", s, got, gu, want, wu)
	}
	got, _ = canonicalText(nil, s)
	want, _ = canonicalTextRef(nil, s)
	if !bytes.Equal(got, want) {
		t.Fatalf("canonicalText(nil, %q) = %q; want %q", s, got, want)
	}
	if allUpper(s) != allUpperRef(s) {
		t.Fatalf("allUpper(%q) = %v", s, allUpper(s))
	}
	if got, want := appendJSONString([]byte("p"), s), appendJSONStringRef([]byte("p"), string(s)); !bytes.Equal(got, want) {
		t.Fatalf("appendJSONString(%q) = %q; want %q", s, got, want)
	}
}

func TestFastPathsMatchReference(t *testing.T) {
	alphabet := []string{"a", "Z", "m", "Q", " ", "\t", "\n", "\v", "\f", "\r", "\x1c", "\x85", "\u0085", "\u00a0", "\u2028", "\u3000",
		"é", "É", "ß", "ẞ", "ǅ", "İ", "K", "ſ", "Σ", "σ", "ς", "1", "-", "'", "\"", "\\", "\x00", "\x7f", "\xff", "\xc3", "值", "🔑", "ⅷ", "Ⅷ"}
	for _, s := range []string{"", " ", "  Jane   ROE ", "JANE ROE", "jane", "ÉLISE", "\u00a0Zoë\u2003Ångström\n", "\xff\xfe", "123 MAIN ST."} {
		checkFastPaths(t, []byte(s))
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		var b []byte
		for range r.IntN(12) {
			b = append(b, alphabet[r.IntN(len(alphabet))]...)
		}
		checkFastPaths(t, b)
	}
}

func FuzzFastPaths(f *testing.F) {
	f.Add([]byte("  Jane\u00a0ROE\t"))
	f.Add([]byte("\xffK\x85"))
	f.Fuzz(func(t *testing.T, s []byte) { checkFastPaths(t, s) })
}

// TestFilterCopyTextMatchesReference checks the row writer (kept columns
// written in runs, masked ones escaped straight into the buffer) against
// the plain per-field rule, on rows mixing every action and escapes.
func TestFilterCopyTextMatchesReference(t *testing.T) {
	p := testPlan(t, `version: 1
unlisted: keep
tables:
  users:
    email: email
    full_name: full_name
    phone: null
    nickname: scrub
  orders:
    notes: default
    user_id: {mask: int}
`)
	r := rand.New(rand.NewPCG(5, 6))
	vals := []string{`\N`, "", "x", `a\tb`, `\\`, `Jane Roe\nThanks,\nJane Roe`, "jane@x.com", `\x41\101`, "值 🔑", "123", `tab\there`}
	for _, table := range []string{"users", "orders"} {
		tm := p.Table(table)
		cols := tm.Columns()
		var in, want bytes.Buffer
		for range 2000 {
			var outFields []string
			for i, c := range cols {
				v := vals[r.IntN(len(vals))]
				cp := tm.cols[c]
				if cp.action == Mask && v != `\N` {
					if strings.HasSuffix(c, "id") {
						v = strconv.Itoa(r.IntN(1000))
					}
					if _, err := cp.t.Append(nil, decodeCopy(nil, []byte(v))); err != nil {
						v = `\N` // a value the transform rejects fails the copy
					}
				}
				if i > 0 {
					in.WriteByte('\t')
				}
				in.WriteString(v)
				switch {
				case cp.action == Default:
				case cp.action == Keep:
					outFields = append(outFields, v)
				case cp.action == Null || v == `\N`:
					outFields = append(outFields, `\N`)
				default:
					o, err := cp.t.Append(nil, decodeCopy(nil, []byte(v)))
					if err != nil {
						t.Fatalf("%s.%s %q: %v", table, c, v, err)
					}
					outFields = append(outFields, string(encodeCopy(nil, o)))
				}
			}
			in.WriteByte('\n')
			want.WriteString(strings.Join(outFields, "\t") + "\n")
		}
		var got bytes.Buffer
		if _, err := FilterCopyText(context.Background(), &got, bytes.NewReader(in.Bytes()), tm, cols); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("%s: output differs from the per-field reference", table)
		}
	}
}

// decodeCopyRef is decodeCopy as it was: byte by byte.
func decodeCopyRef(dst, s []byte) []byte {
	if bytes.IndexByte(s, '\\') < 0 {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i == len(s)-1 {
			dst = append(dst, c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(s) {
				h, ok := unhex(s[i+1])
				if !ok {
					break
				}
				v = v<<4 | int(h)
				i++
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; n++ {
				i++
				v = v<<3 | int(s[i]-'0')
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func checkDecodeCopy(t *testing.T, s []byte) {
	t.Helper()
	if got, want := decodeCopy([]byte("p"), s), decodeCopyRef([]byte("p"), s); !bytes.Equal(got, want) {
		t.Fatalf("decodeCopy(%q) = %q; want %q", s, got, want)
	}
}

func TestDecodeCopyMatchesReference(t *testing.T) {
	const alpha = `\\\\bfnrtvx0178aAfF9 N.`
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range []string{"", `\`, `\\`, `a\`, `\x`, `\x4`, `\x4g`, `\xfff`, `\1`, `\18`, `\1234`, `\777`, `\N`, `\\N`, "ünï\\tcødé"} {
		checkDecodeCopy(t, []byte(s))
	}
	for range 100000 {
		b := make([]byte, r.IntN(16))
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		checkDecodeCopy(t, b)
	}
}

func FuzzDecodeCopy(f *testing.F) {
	f.Add([]byte(`a\tb\x41\101\`))
	f.Fuzz(func(t *testing.T, s []byte) { checkDecodeCopy(t, s) })
}

// TestSameTransform: a row's remembered output is reused only for a
// transform with the same type, key and parameters.
func TestSameTransform(t *testing.T) {
	kr, other := testKeyring(t, testKey), testKeyring(t, otherKey)
	ip := func(kr *Keyring, domain string, keep int, typ string) Transform {
		return mustTransform(t, kr, Spec{Transform: "ip", Domain: domain, Options: Options{KeepPrefix: keep}}, Target{Type: typ})
	}
	a := ip(kr, "ip", 8, "inet")
	for _, c := range []struct {
		b    Transform
		same bool
	}{
		{ip(kr, "ip", 8, "text"), true},
		{ip(kr, "ip", 16, "inet"), false},
		{ip(kr, "other", 8, "inet"), false},
		{ip(other, "ip", 8, "inet"), false},
		{ip(kr, "ip", 8, "cidr"), false},
		{mustTransform(t, kr, Spec{Transform: "int", Domain: "ip"}, Target{Type: "int8"}), false},
	} {
		if got := sameTransform(a, c.b); got != c.same {
			t.Errorf("sameTransform(%+v, %+v) = %v", a, c.b, got)
		}
		in := []byte("10.1.2.3")
		want, _ := a.Append(nil, in)
		var m rowMemo
		m.add(a, in, want)
		if out, ok := m.lookup(c.b, in); ok != c.same || ok && string(out) != string(want) {
			t.Errorf("lookup: %q, %v", out, ok)
		}
	}
	i4 := mustTransform(t, kr, Spec{Transform: "int", Domain: "user_id"}, Target{Type: "int4"})
	i8 := mustTransform(t, kr, Spec{Transform: "int", Domain: "user_id"}, Target{Type: "int8"})
	if sameTransform(i4, i8) || !sameTransform(i8, mustTransform(t, kr, Spec{Transform: "int", Domain: "user_id"}, Target{Type: "int8"})) {
		t.Error("int transforms: the range is part of the transform")
	}
}
