package masking

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func testKeyring(t testing.TB, key string) *Keyring {
	t.Helper()
	kr, err := NewKeyring([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

const (
	testKey  = "test-key-0123456789abcdef"
	otherKey = "another-key-9876543210fedcba"
)

func mustTransform(t testing.TB, kr *Keyring, spec Spec, target Target) Transform {
	t.Helper()
	tr, err := NewTransform(kr, spec, target)
	if err != nil {
		t.Fatalf("NewTransform(%s): %v", spec.Transform, err)
	}
	return tr
}

func apply(t testing.TB, tr Transform, in string) string {
	t.Helper()
	out, err := tr.Append(nil, []byte(in))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return string(out)
}

// TestTransformsDeterministic checks, for every transform and a handful of
// inputs: same key+domain+value → same output; a different key and a
// different domain change (most) outputs; the output passes the
// transform's format check.
func TestTransformsDeterministic(t *testing.T) {
	tru := true
	tests := []struct {
		spec   Spec
		target Target
		inputs []string
		check  func(in, out string) error
	}{
		{Spec{Transform: "int"}, Target{Type: "int8"}, []string{"1", "42", "9223372036854775807", "-5", "123456789"}, checkInt("int8")},
		{Spec{Transform: "int"}, Target{Type: "int4"}, []string{"1", "2", "2147483647", "-2147483648"}, checkInt("int4")},
		{Spec{Transform: "int"}, Target{Type: "int2"}, []string{"1", "7", "32767", "-1"}, checkInt("int2")},
		{Spec{Transform: "int", Options: Options{Min: ptr(int64(1000)), Max: ptr(int64(9999))}}, Target{Type: "int4"}, []string{"1000", "5000", "9999"}, checkIntRange(1000, 9999)},
		{Spec{Transform: "uuid"}, Target{Type: "uuid"}, []string{"6ba7b810-9dad-41d1-80b4-00c04fd430c8", "00000000-0000-4000-8000-000000000000", "{6BA7B8109DAD41D180B400C04FD430C8}"}, checkUUID},
		{Spec{Transform: "fpe"}, Target{}, []string{"AB-1234-cd", "SKU0001", "x", "12", "Ünïcode-42"}, checkSameShape},
		{Spec{Transform: "fpe", Options: Options{Alphabet: "0123456789abcdef"}}, Target{}, []string{"deadbeef", "0a1b-2c3d", "f"}, checkHexShape},
		{Spec{Transform: "national_id"}, Target{}, []string{"123-45-6789", "AB123456C", "850101-1234"}, checkSameShape},
		{Spec{Transform: "postcode"}, Target{}, []string{"SW1A 1AA", "10115", "1012 AB", "150-0001"}, checkSameShape},
		{Spec{Transform: "phone"}, Target{}, []string{"+1 (415) 555-0123", "020 7946 0018", "+4915112345678", "06-12345678", "5"}, checkPhone},
		{Spec{Transform: "phone", Options: Options{KeepCountryCode: &tru}}, Target{}, []string{"+44 20 7946 0018"}, checkPhone},
		{Spec{Transform: "email"}, Target{}, []string{"john.doe@gmail.com", "A.B+tag@Example.CO.UK", "ünï@例え.jp"}, checkEmail},
		{Spec{Transform: "email"}, Target{Unique: true}, []string{"john.doe@gmail.com", "Mary_99@corp.example", "x@y.z"}, checkEmail},
		{Spec{Transform: "email", Options: Options{KeepDomain: true}}, Target{}, []string{"john.doe@gmail.com"}, checkEmailDomain("gmail.com")},
		{Spec{Transform: "first_name"}, Target{}, []string{"John", "Émilie", "李"}, checkNonEmpty},
		{Spec{Transform: "last_name"}, Target{}, []string{"Smith", "O'Brien"}, checkNonEmpty},
		{Spec{Transform: "full_name"}, Target{}, []string{"John Smith", "  MARY   JANE  ", "Ana María López"}, checkFullName},
		{Spec{Transform: "street_address"}, Target{}, []string{"221B Baker Street", "Unter den Linden 77"}, checkNonEmpty},
		{Spec{Transform: "city"}, Target{}, []string{"London", "München"}, checkNonEmpty},
		{Spec{Transform: "card"}, Target{}, []string{"4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "4012888888881881"}, checkCard(false)},
		{Spec{Transform: "card", Options: Options{KeepLast4: true, KeepFirst: 1}}, Target{}, []string{"4111 1111 1111 1111", "5555555555554444"}, checkCard(true)},
		{Spec{Transform: "iban"}, Target{}, []string{"GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300"}, checkIBAN},
		{Spec{Transform: "ip"}, Target{Type: "inet"}, []string{"192.168.1.20", "10.0.0.1/8", "2001:db8::1", "2001:db8::/32"}, checkIP(0, 0)},
		{Spec{Transform: "ip", Options: Options{KeepPrefix: 16, KeepPrefix6: 48}}, Target{Type: "inet"}, []string{"192.168.1.20", "2001:db8:abcd:12::1"}, checkIP(16, 48)},
		{Spec{Transform: "date_shift"}, Target{Type: "date"}, []string{"1984-03-07", "2000-02-29", "0001-12-31"}, checkShift(30)},
		{Spec{Transform: "date_shift", Options: Options{WindowDays: 5}}, Target{Type: "timestamptz"}, []string{"2024-01-02 03:04:05.123456+00", "2024-12-31 23:59:59-07:30"}, checkShift(5)},
		{Spec{Transform: "noise", Options: Options{Percent: 5}}, Target{Type: "numeric", Precision: 12, Scale: 2}, []string{"123.45", "0.10", "99999.99", "-10.00"}, checkNoise(5)},
		{Spec{Transform: "noise"}, Target{Type: "int4"}, []string{"1000", "-77"}, checkNoise(10)},
		{Spec{Transform: "hash", Options: Options{Length: 16}}, Target{}, []string{"secret-token", "x"}, checkHex(16)},
	}
	kr := testKeyring(t, testKey)
	kr2 := testKeyring(t, otherKey)
	for _, tc := range tests {
		name := tc.spec.Transform + "/" + tc.target.typ()
		t.Run(name, func(t *testing.T) {
			tr := mustTransform(t, kr, tc.spec, tc.target)
			again := mustTransform(t, kr, tc.spec, tc.target)
			otherKeyT := mustTransform(t, kr2, tc.spec, tc.target)
			d := tc.spec
			d.Domain = "some_other_domain"
			otherDomainT := mustTransform(t, kr, d, tc.target)
			diffKey, diffDomain := 0, 0
			for _, in := range tc.inputs {
				out := apply(t, tr, in)
				if got := apply(t, again, in); got != out {
					t.Errorf("not deterministic: two transforms with the same key differ")
				}
				if got := apply(t, tr, in); got != out {
					t.Errorf("not deterministic: second call differs")
				}
				if err := tc.check(in, out); err != nil {
					t.Errorf("check(%q → %q): %v", in, out, err)
				}
				if apply(t, otherKeyT, in) != out {
					diffKey++
				}
				if apply(t, otherDomainT, in) != out {
					diffDomain++
				}
			}
			// Tiny output spaces (a one-character class) may coincide; most must differ.
			if diffKey*2 < len(tc.inputs) {
				t.Errorf("a different key changed only %d of %d outputs", diffKey, len(tc.inputs))
			}
			if diffDomain*2 < len(tc.inputs) {
				t.Errorf("a different domain changed only %d of %d outputs", diffDomain, len(tc.inputs))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func checkInt(typ string) func(in, out string) error {
	return func(in, out string) error {
		lo, hi := intRange(Target{Type: typ})
		x, err := strconv.ParseInt(out, 10, 64)
		if err != nil || x < lo || x > hi {
			return fmt.Errorf("not an %s", typ)
		}
		y, _ := strconv.ParseInt(in, 10, 64)
		if (x > 0) != (y > 0) || (x < 0) != (y < 0) {
			return fmt.Errorf("sign changed")
		}
		return nil
	}
}

func checkIntRange(lo, hi int64) func(in, out string) error {
	return func(_, out string) error {
		x, err := strconv.ParseInt(out, 10, 64)
		if err != nil || x < lo || x > hi {
			return fmt.Errorf("outside [%d,%d]", lo, hi)
		}
		return nil
	}
}

var reCanonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func checkUUID(in, out string) error {
	if !reCanonicalUUID.MatchString(out) {
		return fmt.Errorf("not a canonical UUID")
	}
	var a, b [16]byte
	parseUUID(&a, []byte(in))
	parseUUID(&b, []byte(out))
	if a[6]>>4 != b[6]>>4 || a[8]>>6 != b[8]>>6 {
		return fmt.Errorf("version or variant changed")
	}
	return nil
}

// shape maps digits to 9, letters to a/A and keeps the rest.
func shape(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return '9'
		case r >= 'a' && r <= 'z':
			return 'a'
		case r >= 'A' && r <= 'Z':
			return 'A'
		}
		return r
	}, s)
}

func checkSameShape(in, out string) error {
	if shape(in) != shape(out) {
		return fmt.Errorf("shape changed")
	}
	return nil
}

func checkHexShape(in, out string) error {
	hexShape := func(s string) string {
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune("0123456789abcdef", r) {
				return 'h'
			}
			return r
		}, s)
	}
	if hexShape(in) != hexShape(out) {
		return fmt.Errorf("shape changed")
	}
	return nil
}

func checkPhone(in, out string) error {
	if err := checkSameShape(in, out); err != nil {
		return err
	}
	if strings.HasPrefix(in, "+") {
		if e := countryCodeEnd([]byte(in)); e > 0 && in[:e] != out[:e] {
			return fmt.Errorf("country code changed")
		}
	}
	return nil
}

var reLooseEmail = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)

func checkEmail(in, out string) error {
	if !reLooseEmail.MatchString(out) {
		return fmt.Errorf("not an e-mail address")
	}
	if strings.EqualFold(in, out) {
		return fmt.Errorf("unchanged")
	}
	return nil
}

func checkEmailDomain(domain string) func(in, out string) error {
	return func(in, out string) error {
		if err := checkEmail(in, out); err != nil {
			return err
		}
		if !strings.HasSuffix(out, "@"+domain) {
			return fmt.Errorf("domain not kept")
		}
		return nil
	}
}

func checkNonEmpty(in, out string) error {
	if out == "" || out == in {
		return fmt.Errorf("empty or unchanged")
	}
	return nil
}

func checkFullName(in, out string) error {
	if len(strings.Fields(out)) != 2 {
		return fmt.Errorf("not two words")
	}
	if strings.ToUpper(in) == in && strings.ToUpper(out) != out {
		return fmt.Errorf("upper case not kept")
	}
	return nil
}

func checkCard(keepLast4 bool) func(in, out string) error {
	return func(in, out string) error {
		if err := checkSameShape(in, out); err != nil {
			return err
		}
		if !luhnValid([]byte(out)) {
			return fmt.Errorf("not Luhn-valid")
		}
		if keepLast4 && in[len(in)-4:] != out[len(out)-4:] {
			return fmt.Errorf("last four not kept")
		}
		return nil
	}
}

func checkIBAN(in, out string) error {
	if len(in) != len(out) || in[:2] != out[:2] {
		return fmt.Errorf("length or country changed")
	}
	var buf [34]byte
	c, ok := compactIBAN(buf[:0], []byte(out))
	if !ok || !ibanValid(c) {
		return fmt.Errorf("not a valid IBAN")
	}
	return nil
}

func checkIP(keep4, keep6 int) func(in, out string) error {
	return func(in, out string) error {
		ia, im, _ := strings.Cut(in, "/")
		oa, om, _ := strings.Cut(out, "/")
		if im != om {
			return fmt.Errorf("netmask changed")
		}
		a, err1 := netip.ParseAddr(ia)
		b, err2 := netip.ParseAddr(oa)
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() {
			return fmt.Errorf("not an address of the same family")
		}
		keep := keep4
		if a.Is6() {
			keep = keep6
		}
		pa, _ := a.Prefix(keep)
		pb, _ := b.Prefix(keep)
		if pa != pb {
			return fmt.Errorf("prefix /%d not kept", keep)
		}
		return nil
	}
}

func checkShift(window int) func(in, out string) error {
	return func(in, out string) error {
		a, err1 := time.Parse("2006-01-02", in[:10])
		b, err2 := time.Parse("2006-01-02", out[:10])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("not a date")
		}
		days := int(b.Sub(a).Hours() / 24)
		if days == 0 || days > window || days < -window {
			return fmt.Errorf("shifted %d days, window %d", days, window)
		}
		if in[10:] != out[10:] {
			return fmt.Errorf("time of day or zone changed")
		}
		return nil
	}
}

func checkNoise(pct float64) func(in, out string) error {
	return func(in, out string) error {
		x, _ := strconv.ParseFloat(in, 64)
		y, err := strconv.ParseFloat(out, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		if strings.Contains(in, ".") != strings.Contains(out, ".") || strings.Contains(in, ".") && len(in)-strings.IndexByte(in, '.') != len(out)-strings.IndexByte(out, '.') {
			return fmt.Errorf("scale changed")
		}
		if d := y - x; d > x*pct/100+0.01 && d > -x*pct/100+0.01 {
			return fmt.Errorf("moved more than %v%%", pct)
		}
		return nil
	}
}

func checkHex(n int) func(in, out string) error {
	return func(_, out string) error {
		if len(out) != n || strings.Trim(out, "0123456789abcdef") != "" {
			return fmt.Errorf("not %d hex digits", n)
		}
		return nil
	}
}

// TestIntBijection1M: a million integer keys, zero collisions, and the
// inverse recovers each one.
func TestIntBijection1M(t *testing.T) {
	kr := testKeyring(t, testKey)
	for _, typ := range []string{"int4", "int8"} {
		tr := mustTransform(t, kr, Spec{Transform: "int", Domain: "user_id"}, Target{Type: typ}).(*intTransform)
		seen := make(map[int64]struct{}, 1_000_000)
		for x := int64(1); x <= 1_000_000; x++ {
			y, err := tr.apply(x)
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := seen[y]; dup {
				t.Fatalf("%s: collision after %d keys", typ, x)
			}
			seen[y] = struct{}{}
			if x%10007 == 0 && tr.invert(y) != x {
				t.Fatalf("%s: inverse failed", typ)
			}
		}
	}
}

func TestIntDeclaredRangeIsPermutation(t *testing.T) {
	kr := testKeyring(t, testKey)
	tr := mustTransform(t, kr, Spec{Transform: "int", Options: Options{Min: ptr(int64(-50)), Max: ptr(int64(949))}}, Target{Type: "int4"})
	seen := map[string]bool{}
	for x := -50; x <= 949; x++ {
		out := apply(t, tr, strconv.Itoa(x))
		if seen[out] {
			t.Fatal("collision")
		}
		seen[out] = true
	}
	if _, err := tr.Append(nil, []byte("950")); err == nil {
		t.Error("value outside the declared range: want error")
	}
}

func TestUUIDCollisions(t *testing.T) {
	kr := testKeyring(t, testKey)
	tr := mustTransform(t, kr, Spec{Transform: "uuid"}, Target{Type: "uuid"}).(*uuidTransform)
	seen := make(map[[16]byte]struct{}, 200_000)
	for i := range 200_000 {
		var u [16]byte
		putBE(u[8:], uint64(i))
		u[6] = 0x40
		u[8] |= 0x80
		orig := u
		tr.permute(&u, false)
		if _, dup := seen[u]; dup {
			t.Fatal("collision")
		}
		seen[u] = struct{}{}
		back := u
		tr.permute(&back, true)
		if back != orig {
			t.Fatal("inverse failed")
		}
	}
}

// TestFPEStringCollisions: 8-character alphanumeric codes that differ only
// a little all stay distinct.
func TestFPEStringCollisions(t *testing.T) {
	kr := testKeyring(t, testKey)
	for _, spec := range []Spec{{Transform: "fpe"}, {Transform: "phone"}, {Transform: "email", Options: Options{Unique: true}}} {
		tr := mustTransform(t, kr, spec, Target{})
		seen := make(map[string]struct{}, 200_000)
		for i := range 200_000 {
			var in string
			switch spec.Transform {
			case "fpe":
				in = fmt.Sprintf("AB%06d", i)
			case "phone":
				in = fmt.Sprintf("+1 (415) %07d", i)
			default:
				in = fmt.Sprintf("user%d@corp%d.com", i%1000, i/1000)
			}
			out := apply(t, tr, in)
			if _, dup := seen[out]; dup {
				t.Fatalf("%s: collision", spec.Transform)
			}
			seen[out] = struct{}{}
		}
	}
}

func TestFPEKeepsCaseAndCommutesWithLower(t *testing.T) {
	kr := testKeyring(t, testKey)
	tr := mustTransform(t, kr, Spec{Transform: "email", Options: Options{Unique: true}}, Target{})
	for _, in := range []string{"John.Doe@Example.com", "MiXeD.CaSe99@Corp.IO"} {
		a := apply(t, tr, strings.ToLower(in))
		b := strings.ToLower(apply(t, tr, in))
		if a != b {
			t.Errorf("lower(mask(x)) != mask(lower(x))")
		}
	}
}

func TestLengthLimitNamesConstraint(t *testing.T) {
	kr := testKeyring(t, testKey)
	tr := mustTransform(t, kr, Spec{Transform: "email", Options: Options{Unique: true}}, Target{Type: "varchar", MaxLen: 12, Column: "public.users.email"})
	_, err := tr.Append(nil, []byte("ab@cd.com"))
	if err == nil || !strings.Contains(err.Error(), "varchar(12)") || !strings.Contains(err.Error(), "public.users.email") {
		t.Fatalf("want an error naming varchar(12) and the column, got %v", err)
	}
	if strings.Contains(err.Error(), "ab@cd.com") {
		t.Fatal("error contains the value")
	}
}

func TestUniqueColumnRejectsCollidingTransform(t *testing.T) {
	kr := testKeyring(t, testKey)
	for _, name := range []string{"full_name", "hash", "card", "redact", "date_shift"} {
		typ := "text"
		if name == "date_shift" {
			typ = "date"
		}
		_, err := NewTransform(kr, Spec{Transform: name}, Target{Type: typ, Unique: true})
		if err == nil || !strings.Contains(err.Error(), "can collide") {
			t.Errorf("%s on a unique column: want a collision error, got %v", name, err)
		}
	}
	for _, name := range []string{"int", "uuid", "fpe", "phone", "email", "ip"} {
		typ := map[string]string{"int": "int8", "uuid": "uuid", "ip": "inet"}[name]
		if _, err := NewTransform(kr, Spec{Transform: name}, Target{Type: typ, Unique: true}); err != nil {
			t.Errorf("%s on a unique column: %v", name, err)
		}
	}
}

func TestTransformErrorsDoNotLeak(t *testing.T) {
	kr := testKeyring(t, testKey)
	tests := []struct {
		spec   Spec
		target Target
		in     string
	}{
		{Spec{Transform: "int"}, Target{Type: "int4"}, "12secret34"},
		{Spec{Transform: "uuid"}, Target{Type: "uuid"}, "secret-not-a-uuid"},
		{Spec{Transform: "email"}, Target{}, "secret-without-at"},
		{Spec{Transform: "card"}, Target{}, "secret 1234"},
		{Spec{Transform: "iban"}, Target{}, "secretiban"},
		{Spec{Transform: "ip"}, Target{Type: "inet"}, "secret.ip"},
		{Spec{Transform: "date_shift"}, Target{Type: "date"}, "secret-date"},
		{Spec{Transform: "noise"}, Target{Type: "numeric"}, "12secret"},
		{Spec{Transform: "jsonb", Options: Options{Scrub: true}}, Target{Type: "jsonb"}, `{"secret": `},
	}
	for _, tc := range tests {
		_, err := mustTransform(t, kr, tc.spec, tc.target).Append(nil, []byte(tc.in))
		if err == nil {
			t.Errorf("%s(%q): want an error", tc.spec.Transform, tc.in)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error %q contains the value", tc.spec.Transform, err)
		}
	}
}

func TestUnknownTransformAndWrongType(t *testing.T) {
	kr := testKeyring(t, testKey)
	if _, err := NewTransform(kr, Spec{Transform: "emial"}, Target{}); err == nil || !strings.Contains(err.Error(), `unknown transform "emial"`) {
		t.Errorf("unknown transform: got %v", err)
	}
	if _, err := NewTransform(kr, Spec{Transform: "email"}, Target{Type: "int8"}); err == nil || !strings.Contains(err.Error(), "does not apply to type int8") {
		t.Errorf("wrong type: got %v", err)
	}
}

func TestRedactRegexConstantTemplate(t *testing.T) {
	kr := testKeyring(t, testKey)
	red := mustTransform(t, kr, Spec{Transform: "redact", Options: Options{KeepFirst: 2, KeepLast: 1}}, Target{})
	if got := apply(t, red, "Straße"); got != "St***e" {
		t.Errorf("redact = %q", got)
	}
	if got := apply(t, red, "abc"); got != "***" {
		t.Errorf("redact of a short value = %q, want everything hidden", got)
	}
	re := mustTransform(t, kr, Spec{Transform: "regex", Options: Options{Pattern: `(\d{3})\d+`, Replace: "${1}XXXX"}}, Target{})
	if got := apply(t, re, "id 1234567"); got != "id 123XXXX" {
		t.Errorf("regex = %q", got)
	}
	c := mustTransform(t, kr, Spec{Transform: "constant", Options: Options{Value: "redacted"}}, Target{})
	if got := apply(t, c, "anything"); got != "redacted" {
		t.Errorf("constant = %q", got)
	}
	tm := mustTransform(t, kr, Spec{Transform: "template", Options: Options{Template: "{{full_name | slug}}.{{id}}@example.com"}}, Target{})
	if _, err := tm.Append(nil, []byte("x")); err == nil {
		t.Error("template without a row: want error")
	}
	row := fakeRow{out: [][]byte{[]byte("Ana María López"), []byte("42")}}
	out, err := appendRow(tm, nil, nil, row)
	if err != nil || string(out) != "ana.mar.a.l.pez.42@example.com" {
		t.Errorf("template = %q, %v", out, err)
	}
	if _, err := NewTransform(kr, Spec{Transform: "template", Options: Options{Template: "{{x | nope}}"}}, Target{}); err == nil {
		t.Error("unknown template function: want error")
	}
}

type fakeRow struct{ orig, out [][]byte }

func (r fakeRow) original(i int) ([]byte, bool) { return r.orig[i], r.orig[i] != nil }
func (r fakeRow) masked(i int) ([]byte, bool)   { return r.out[i], r.out[i] != nil }

func TestDateShiftBy(t *testing.T) {
	kr := testKeyring(t, testKey)
	tr := mustTransform(t, kr, Spec{Transform: "date_shift", Options: Options{By: "user_id"}}, Target{Type: "timestamptz"})
	row := fakeRow{orig: [][]byte{[]byte("7")}}
	a, _ := appendRow(tr, nil, []byte("2024-01-01 10:00:00+00"), row)
	b, _ := appendRow(tr, nil, []byte("2024-03-01 10:00:00+00"), row)
	da, _ := time.Parse("2006-01-02", string(a[:10]))
	db, _ := time.Parse("2006-01-02", string(b[:10]))
	if db.Sub(da) != 60*24*time.Hour {
		t.Errorf("shift by user_id: the interval changed (%s → %s)", a, b)
	}
}

func TestJSONPaths(t *testing.T) {
	kr := testKeyring(t, testKey)
	spec := Spec{Transform: "jsonb", Options: Options{
		Paths: []PathRule{
			{Path: "$.actor.email", Spec: Spec{Transform: "email", Domain: "customer_email"}},
			{Path: "$.items[*].phone", Spec: Spec{Transform: "phone"}},
			{Path: "$..ip", Spec: Spec{Transform: "ip"}},
			{Path: "$.actor.id", Spec: Spec{Transform: "int", Domain: "user_id"}},
			{Path: "$['secret key']", Null: true},
		},
		Scrub:        true,
		ScrubDomains: ScrubDomains{Email: "customer_email"},
	}}
	tr := mustTransform(t, kr, spec, Target{Type: "jsonb"})
	email := mustTransform(t, kr, Spec{Transform: "email", Domain: "customer_email"}, Target{})
	in := `{"actor": {"id": 42, "email": "john@x.com", "name": "John", "ip": "10.1.2.3"},
	        "items": [{"phone": "+1 415 555 0100"}, {"phone": null}], "secret key": {"a": 1},
	        "note": "call me at +44 20 7946 0018 or mail john@x.com", "n": 1.5e300, "ü": "值 \ud83d\udd11 \"q\""}`
	out := apply(t, tr, in)
	wantEmail := apply(t, email, "john@x.com")
	for _, leak := range []string{"john@x.com", "555 0100", "10.1.2.3", "7946 0018"} {
		if strings.Contains(out, leak) {
			t.Errorf("output still contains %q: %s", leak, out)
		}
	}
	if strings.Count(out, wantEmail) != 2 {
		t.Errorf("the e-mail at the path and inside the note should both become %q: %s", wantEmail, out)
	}
	if strings.Contains(out, "John") {
		t.Errorf("the name John should be scrubbed: %s", out)
	}
	for _, keep := range []string{`"secret key": null`, `"n": 1.5e300`, `"ü": "值 🔑 \"q\""`, `"phone": null`} {
		if !strings.Contains(out, keep) {
			t.Errorf("output lacks %s: %s", keep, out)
		}
	}
	if !regexp.MustCompile(`"id": \d+`).MatchString(out) || strings.Contains(out, `"id": 42`) {
		t.Errorf("actor.id should be a different number: %s", out)
	}
	for _, bad := range []string{"$", "actor", "$.a[", "$..", "$.a[x]"} {
		s := spec
		s.Options.Paths = []PathRule{{Path: bad, Spec: Spec{Transform: "email"}}}
		if _, err := NewTransform(kr, s, Target{Type: "jsonb"}); err == nil {
			t.Errorf("path %q: want error", bad)
		}
	}
}

func TestScrubFindsAndReplacesConsistently(t *testing.T) {
	kr := testKeyring(t, testKey)
	tr := mustTransform(t, kr, Spec{Transform: "scrub"}, Target{})
	email := mustTransform(t, kr, Spec{Transform: "email"}, Target{})
	phone := mustTransform(t, kr, Spec{Transform: "phone"}, Target{})
	in := "Hi,\n\nI can't log in with jane.roe@gmail.com since yesterday. Please call me back on +1 (415) 555-0123.\n" +
		"My card 4111 1111 1111 1111 was charged twice for order #12345 on 2024-01-02. " +
		"Please use my new IBAN GB82 WEST 1234 5698 7654 32 for the next direct debit. Login from 192.168.10.20.\nThanks,\nJane Roe"
	signed := "Hello,\nit broke.\n\nKind regards,\n  Zoë Ångström\n+33 7 25 88 49 32"
	out := apply(t, tr, in)
	for _, leak := range []string{"jane.roe@gmail.com", "555-0123", "4111 1111 1111 1111", "WEST 1234 5698", "192.168.10.20"} {
		if strings.Contains(out, leak) {
			t.Errorf("still contains %q:\n%s", leak, out)
		}
	}
	name := mustTransform(t, kr, Spec{Transform: "full_name", Domain: "name"}, Target{})
	if got := apply(t, tr, signed); strings.Contains(got, "Zoë") || !strings.Contains(got, "Kind regards,\n  "+apply(t, name, "Zoë Ångström")+"\n") {
		t.Errorf("a sign-off's name line should be replaced:\n%s", got)
	}
	if !strings.HasSuffix(out, "\nThanks,\n"+apply(t, name, "Jane Roe")) {
		t.Errorf("the signature should become the name domain's fake:\n%s", out)
	}
	for _, keep := range []string{"order #12345", "2024-01-02", "Hi,\n\nI can't log in with ", "\nThanks"} {
		if !strings.Contains(out, keep) {
			t.Errorf("lost %q:\n%s", keep, out)
		}
	}
	if !strings.Contains(out, apply(t, email, "jane.roe@gmail.com")) || !strings.Contains(out, apply(t, phone, "+1 (415) 555-0123")) {
		t.Errorf("findings not replaced by their domains' transforms:\n%s", out)
	}
}

func TestKeyringNeverPrintsKey(t *testing.T) {
	kr := testKeyring(t, testKey)
	for _, s := range []string{fmt.Sprint(kr), fmt.Sprintf("%v %+v %#v %s %q", kr, kr, kr, kr, kr)} {
		if strings.Contains(s, testKey) || strings.Contains(s, "0123456789abcdef") {
			t.Fatalf("keyring printed its key: %s", s)
		}
	}
	if _, err := NewKeyring([]byte("short")); err == nil {
		t.Fatal("short key: want error")
	}
	if testKeyring(t, testKey).Fingerprint() == testKeyring(t, otherKey).Fingerprint() {
		t.Fatal("fingerprints of different keys are equal")
	}
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{"john@x.com", "a@b", "@", "x@", "@y", "ü@例え.jp", "a@b@c.d", strings.Repeat("a", 300) + "@b.c"} {
		f.Add(s)
	}
	kr := testKeyring(f, testKey)
	plain := mustTransform(f, kr, Spec{Transform: "email"}, Target{})
	uniq := mustTransform(f, kr, Spec{Transform: "email"}, Target{Unique: true})
	f.Fuzz(func(t *testing.T, in string) {
		for _, tr := range []Transform{plain, uniq} {
			out, err := tr.Append(nil, []byte(in))
			if err != nil {
				continue
			}
			if !utf8.Valid(out) && utf8.ValidString(in) {
				t.Fatal("invalid UTF-8 out of valid input")
			}
			if bytes.Count(out, []byte("@")) < 1 {
				t.Fatal("output has no @")
			}
			again, _ := tr.Append(nil, []byte(in))
			if !bytes.Equal(out, again) {
				t.Fatal("not deterministic")
			}
		}
	})
}

func FuzzTextScrub(f *testing.F) {
	f.Add("mail me: a.b@c.de or call +1 (415) 555-0123", "a.b@c.de")
	f.Add("card 4111-1111-1111-1111 thanks", "x@y.zz")
	f.Add("\x00\xff@@..", "q@w.er")
	kr := testKeyring(f, testKey)
	tr := mustTransform(f, kr, Spec{Transform: "scrub"}, Target{})
	f.Fuzz(func(t *testing.T, text, email string) {
		if !reEmail.MatchString(email) || reEmail.FindString(email) != email {
			email = "fuzz.person@example.org"
		}
		in := text + " " + email + " " + text
		out, err := tr.Append(nil, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		// Every e-mail the detector finds in the input must be gone.
		for _, m := range reEmail.FindAllString(in, -1) {
			if strings.Contains(string(out), m) && apply(t, mustTransform(t, kr, Spec{Transform: "email"}, Target{}), m) != m {
				t.Fatalf("e-mail survived the scrub")
			}
		}
	})
}

// TestDictionaryNeverReturnsItsInput masks every dictionary value, as a real
// name or city often is one, under several keys: none may come out as
// itself (in any case), which the leak audit would rightly report.
func TestDictionaryNeverReturnsItsInput(t *testing.T) {
	full := make([]string, 0, len(firstNames)*3)
	for i, f := range firstNames {
		for _, l := range []string{lastNames[i%len(lastNames)], lastNames[(i*7)%len(lastNames)], lastNames[(i*13)%len(lastNames)]} {
			full = append(full, f+" "+l)
		}
	}
	var streets []string
	for n := 1; n <= 1999; n += 97 {
		for _, s := range streetNames {
			streets = append(streets, fmt.Sprintf("%d %s %s", n, s, streetSuffixes[n%len(streetSuffixes)]))
		}
	}
	inputs := map[string][]string{
		"first_name": firstNames[:], "last_name": lastNames[:], "city": cities[:],
		"full_name": full, "street_address": streets,
	}
	fixedBefore := 0
	for k := range 8 {
		kr := testKeyring(t, fmt.Sprintf("dictionary-key-%d-0123456789", k))
		for kind, ins := range inputs {
			tr := mustTransform(t, kr, Spec{Transform: kind}, Target{})
			d := tr.(*dictTransform)
			for _, in := range ins {
				for _, v := range []string{in, strings.ToUpper(in)} {
					if out := apply(t, tr, v); strings.EqualFold(out, v) {
						t.Errorf("%s %q under key %d: masked into itself", kind, v, k)
					}
				}
				// What the pick alone gives: how often the rule is needed.
				var h [32]byte
				d.dk.sumCanonical(&h, 'n', []byte(in), func(dst, s []byte) []byte { c, _ := canonicalText(dst, s); return c })
				if d.same(d.appendPick(nil, &h, 0), []byte(in)) {
					fixedBefore++
				}
			}
		}
	}
	// 8 keys × (38 cities, 120 first names, …): the plain pick returns its
	// input dozens of times; if it never did, this test would prove nothing.
	if fixedBefore == 0 {
		t.Fatal("no dictionary value picks itself under any key: the test exercises nothing")
	}
	t.Logf("%d inputs would have been masked into themselves", fixedBefore)
}
