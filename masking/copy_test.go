package masking

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

func TestCopyTextCodecRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "tab\there", "nl\nand\rcr", `back\slash`, "\b\f\v", "ünïcødé 😀", `\N`, "\\\\N"} {
		enc := encodeCopy(nil, []byte(v))
		if bytes.ContainsAny(enc, "\t\n\r") {
			t.Errorf("%q: encoded form has a raw separator", v)
		}
		if got := string(decodeCopy(nil, enc)); got != v {
			t.Errorf("round trip %q → %q → %q", v, enc, got)
		}
	}
	// What PostgreSQL may send besides: octal and hex escapes, lone
	// backslash-letter.
	for in, want := range map[string]string{`\101\x42\x4g\7`: "AB\x04g\a", `\q`: "q", `a\`: `a\`} {
		if got := string(decodeCopy(nil, []byte(in))); got != want {
			t.Errorf("decode %q = %q, want %q", in, got, want)
		}
	}
}

func FuzzCopyTextCodec(f *testing.F) {
	f.Add([]byte("a\tb\\n\x00\xff"))
	f.Fuzz(func(t *testing.T, v []byte) {
		if got := decodeCopy(nil, encodeCopy(nil, v)); !bytes.Equal(got, v) {
			t.Fatalf("round trip failed")
		}
	})
}

func testPlan(t testing.TB, rules string) *Plan {
	t.Helper()
	r, err := ParseRules("masking.yaml", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(r, testCatalog(), testKeyring(t, testKey))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilterCopyText(t *testing.T) {
	p := testPlan(t, `version: 1
unlisted: keep
tables:
  users:
    email: email
    full_name: {mask: full_name}
    phone: null
    nickname: {mask: template, template: "{{full_name | first | lower}}"}
    account_id: keep
  orders:
    notes: default
`)
	tm := p.Table("users")
	cols := tm.Columns()
	if strings.Join(cols, ",") != "id,account_id,email,full_name,phone,nickname" {
		t.Fatalf("Columns() = %v (generated columns must be left out)", cols)
	}
	in := "1\t7\tjo@x.com\tJo\\tTab\t+1 555\t\\N\n" +
		"2\t7\t\\N\tAnn\t\\N\tx\n" +
		"3\t7\ta\\\\b@c.de\tZoë\\nNew\t\t\n"
	var out bytes.Buffer
	n, err := FilterCopyText(context.Background(), &out, strings.NewReader(in), tm, cols)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("rows = %d", n)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 6 {
			t.Fatalf("line %d: %d fields", i, len(f))
		}
		if f[0] != []string{"1", "2", "3"}[i] || f[1] != "7" {
			t.Errorf("line %d: kept columns changed: %q", i, l)
		}
		if f[4] != `\N` {
			t.Errorf("line %d: phone should be NULL: %q", i, f[4])
		}
		full := string(decodeCopy(nil, []byte(f[3])))
		if i == 0 && f[5] != `\N` {
			t.Errorf("NULL stays NULL, templates included: %q", f[5])
		}
		if nick := f[5]; i > 0 && nick != strings.ToLower(strings.Fields(full)[0]) {
			t.Errorf("line %d: template over the masked full name: %q vs %q", i, nick, full)
		}
	}
	if strings.Contains(out.String(), "jo@x.com") || strings.Contains(out.String(), "Jo\\tTab") {
		t.Errorf("original values survived:\n%s", out.String())
	}
	if f := strings.Split(lines[1], "\t"); f[2] != `\N` {
		t.Errorf("NULL e-mail should stay NULL: %q", f[2])
	}

	// The columns whose values change: masked, nulled, defaulted; the
	// generated ones (computed by the target) not among them.
	for _, tt := range []struct{ table, want string }{
		{"users", "email,full_name,phone,nickname"},
		{"orders", "notes"},
		{"public.no_such_table", ""},
	} {
		if got := strings.Join(p.ChangedColumns(tt.table), ","); got != tt.want {
			t.Errorf("ChangedColumns(%q) = %q, want %q", tt.table, got, tt.want)
		}
	}

	// default columns are dropped from the output.
	om := p.Table("orders")
	if got := om.TargetColumns([]string{"id", "notes", "user_id"}); strings.Join(got, ",") != "id,user_id" {
		t.Errorf("TargetColumns = %v", got)
	}
	out.Reset()
	if _, err := FilterCopyText(context.Background(), &out, strings.NewReader("1\tsecret\t5\n"), om, []string{"id", "notes", "user_id"}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "1\t5\n" {
		t.Errorf("default column not dropped: %q", out.String())
	}
}

func TestFilterCopyTextErrors(t *testing.T) {
	p := testPlan(t, "version: 1\nunlisted: keep\ntables:\n  users:\n    email: email\n")
	tm := p.Table("users")
	cols := []string{"id", "email"}
	for _, tc := range []struct{ in, cols, want string }{
		{"1\tnot-an-email-secret\n", "", "mask table public.users row 1 column email: email: value is not an e-mail address"},
		{"1\ta@b.c\textra\n", "", "row 1: more than 2 fields"},
		{"1\n", "", "row 1: 1 fields, want 2"},
		{"1\ta@b.c\n", "id,email,shoe_size", `column "shoe_size" is not in the masking plan`},
	} {
		c := cols
		if tc.cols != "" {
			c = strings.Split(tc.cols, ",")
		}
		_, err := FilterCopyText(context.Background(), &bytes.Buffer{}, strings.NewReader(tc.in), tm, c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the value: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FilterCopyText(ctx, &bytes.Buffer{}, strings.NewReader("1\ta@b.c\n"), tm, cols); err == nil {
		t.Error("cancelled context: want error")
	}
	if _, err := FilterCopyText(context.Background(), &bytes.Buffer{}, strings.NewReader(""), nil, cols); err == nil {
		t.Error("nil masker: want error")
	}
}

func TestFilterCopyTextLongRow(t *testing.T) {
	p := testPlan(t, "version: 1\nunlisted: keep\ntables:\n  orders:\n    notes: scrub\n")
	long := strings.Repeat("lorem ipsum ", 20000) + "mail jo@x.com"
	var out bytes.Buffer
	if _, err := FilterCopyText(context.Background(), &out, strings.NewReader("1\t"+long+"\n2\tshort"), p.Table("orders"), []string{"id", "notes"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "jo@x.com") || !strings.HasSuffix(out.String(), "2\tshort\n") {
		t.Errorf("long row not masked or last row (no newline) lost")
	}
}

// TestFilterCopyTextConcurrent: one TableMasker used by parallel copies (as
// the copier's workers do) gives every copy the same output.
func TestFilterCopyTextConcurrent(t *testing.T) {
	p := testPlan(t, "version: 1\nunlisted: keep\ntables:\n  users:\n    id: {mask: int}\n    email: email\n    full_name: full_name\n    phone: phone\n")
	tm := p.Table("users")
	cols := []string{"id", "email", "full_name", "phone"}
	var in strings.Builder
	for i := range 2000 {
		in.WriteString(strings.Join([]string{itoa(i + 1), "u" + itoa(i) + "@x.com", "Jo Roe " + itoa(i), "+1 555 " + itoa(1000+i)}, "\t") + "\n")
	}
	outs := make([]string, 4)
	errs := make(chan error, len(outs))
	for g := range outs {
		go func() {
			var b bytes.Buffer
			_, err := FilterCopyText(context.Background(), &b, strings.NewReader(in.String()), tm, cols)
			outs[g] = b.String()
			errs <- err
		}()
	}
	for range outs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for g := 1; g < len(outs); g++ {
		if outs[g] != outs[0] {
			t.Fatal("parallel copies differ")
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
