package masking

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// testBinaryCodecs checks every binary codec against the server: the text
// it makes of PostgreSQL's binary form is PostgreSQL's text form, and the
// binary form it makes of that text is PostgreSQL's binary form.
func testBinaryCodecs(t *testing.T, ctx context.Context, env *dbEnv) {
	conn := env.conn(t, ctx, env.src)
	cases := map[string][]string{
		"int2":    {"-32768", "0", "32767", "-1"},
		"int4":    {"-2147483648", "2147483647", "42"},
		"int8":    {"-9223372036854775808", "9223372036854775807", "0", "123456789012"},
		"uuid":    {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{A0EEBC999C0B4EF8BB6D6BB9BD380A11}", "00000000-0000-0000-0000-000000000000"},
		"date":    {"2000-01-01", "1999-12-31", "2024-02-29", "1900-03-01", "0001-01-01", "0001-12-31 BC", "4714-11-24 BC", "5874897-12-31", "infinity", "-infinity", "1970-01-01"},
		"text":    {"", "héllo\\ wörld\t😀", "\\N"},
		"varchar": {"abc"},
		"bpchar":  {"ab   "},
		"name":    {"pg_class"},
		"json":    {`{"b": 1,  "a":[1,2]}`},
		"jsonb":   {`{"a": [1, 2.50, "x\ty"], "b": null}`, `[]`, `"\u00e9"`, `12.5e3`},
		"inet": {"1.2.3.4", "1.2.3.4/24", "10.0.0.0/8", "0.0.0.0/0", "255.255.255.255", "::", "::1", "::2", "::ffff:1.2.3.4",
			"::1.2.3.4", "1::", "1:0:0:2::3", "1:0:0:0:0:0:0:1", "2001:db8::1/64", "fe80::/10", "::ffff:0:1", "0:0:0:0:0:1:0:0",
			"::ffff:1.2.3.4/120", "2001:db8:0:0:1:0:0:1", "1:2:3:4:5:6:7:8", "::ffff", "::1:0:0",
			"1:0:2:3:4:5:6:7", "0:1:2:3:4:5:6:7", "1:2:3:4:5:6:7:0"},
		"cidr": {"10.0.0.0/8", "1.2.3.4/32", "::/0", "2001:db8::/32", "::ffff:1.2.3.0/120"},
	}
	for typ, values := range cases {
		codec, ok := binaryCodecFor(typ)
		if !ok {
			t.Errorf("%s: no binary codec", typ)
			continue
		}
		for _, v := range values {
			sql := fmt.Sprintf("SELECT $1::text::%s", typ)
			text := conn.PgConn().ExecParams(ctx, sql, [][]byte{[]byte(v)}, nil, []int16{0}, []int16{0}).Read()
			bin := conn.PgConn().ExecParams(ctx, sql, [][]byte{[]byte(v)}, nil, []int16{0}, []int16{1}).Read()
			if text.Err != nil || bin.Err != nil {
				t.Fatalf("%s %q: %v %v", typ, v, text.Err, bin.Err)
			}
			wantText, wantBin := text.Rows[0][0], bin.Rows[0][0]
			got, err := codec.toText(nil, wantBin)
			if err != nil || !bytes.Equal(got, wantText) {
				t.Errorf("%s %q: text of binary %x = %q, %v; PostgreSQL prints %q", typ, v, wantBin, got, err, wantText)
			}
			back, err := codec.fromText(nil, wantText)
			if err != nil || !bytes.Equal(back, wantBin) {
				t.Errorf("%s %q: binary of %q = %x, %v; PostgreSQL sends %x", typ, v, wantText, back, err, wantBin)
			}
		}
	}
}

// testBinaryMatchesText masks every fixture table the binary filter can
// take both ways, FilterCopyText on a text COPY and FilterCopyBinary on a
// binary COPY, loads both results and checks that they hold the same rows.
func testBinaryMatchesText(t *testing.T, ctx context.Context, env *dbEnv) {
	for _, e := range []*dbEnv{env, {c: env.c, src: env.unusual}} {
		plan, cat := fixturePlan(t, ctx, e, testKey)
		conn := e.conn(t, ctx, e.src)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA bin_vs_text"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Exec(context.Background(), "DROP SCHEMA bin_vs_text CASCADE") })
		other := e.conn(t, ctx, e.src)
		binaryTables := 0
		for _, tbl := range cat.Tables {
			tm := plan.Table(tbl.QualifiedName())
			if tbl.Parent != "" || tm == nil {
				continue
			}
			cols := tm.Columns()
			if !tm.CanFilterBinary(cols) {
				continue
			}
			binaryTables++
			var sums [2]string
			for i, bin := range []bool{false, true} {
				into := pgx.Identifier{"bin_vs_text", fmt.Sprintf("%s_%d", tbl.Name, i)}
				if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS)", into.Sanitize(),
					pgx.Identifier{tbl.Schema, tbl.Name}.Sanitize())); err != nil {
					t.Fatal(err)
				}
				n, err := copyTable(ctx, conn, other, pgx.Identifier{tbl.Schema, tbl.Name}, into, cols, tm, bin)
				if err != nil {
					t.Fatalf("%s (binary %v): %v", tbl.QualifiedName(), bin, err)
				}
				if n == 0 && e.src != env.unusual {
					t.Errorf("%s: no rows copied", tbl.QualifiedName())
				}
				if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM %s t",
					into.Sanitize())).Scan(&sums[i]); err != nil {
					t.Fatal(err)
				}
			}
			if sums[0] != sums[1] {
				t.Errorf("%s: masked through text COPY %s, through binary COPY %s", tbl.QualifiedName(), sums[0], sums[1])
			}
		}
		// users (ints, dates, inet, text), payments (uuid) and audit_log
		// (jsonb) must take the binary path, or this test checks little.
		for _, name := range []string{"public.users", "public.payments", "public.audit_log", "public.support_tickets"} {
			if tm := plan.Table(name); tm == nil || !tm.CanFilterBinary(tm.Columns()) {
				t.Errorf("%s: not masked in binary COPY", name)
			}
		}
		if binaryTables < 4 {
			t.Errorf("only %d tables masked in binary COPY", binaryTables)
		}
	}
}

func TestFilterCopyBinaryErrors(t *testing.T) {
	tm := testPlan(t, "version: 1\nunlisted: keep\ntables:\n  users:\n    email: email\n").Table("users")
	cols := []string{"id", "email"}
	id := binary.BigEndian.AppendUint64(nil, 7)
	header := append(append([]byte(nil), copySignature...), make([]byte, 8)...)
	row := func(fields ...[]byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(fields)))
		for _, f := range fields {
			if f == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
		return b
	}
	trailer := []byte{0xff, 0xff}
	tests := []struct {
		name, stream, want string
	}{
		{"not binary", "1\tx\n", "not a binary COPY stream"},
		{"truncated header", string(copySignature) + "\x00\x00", "read header"},
		{"field count", string(header) + string(row([]byte("x"))), "1 fields, want"},
		{"no trailer", string(header), "row 1: read"},
		{"cut in a field", string(header) + string(row(id, []byte("a@b.c"))[:12]), "row 1: read"},
		{"transform", string(header) + string(row(id, []byte("not-an-email-secret"))) + string(trailer), "row 1 column email: email: value is not an e-mail address"},
		{"ok empty", string(header) + string(trailer), ""},
		{"ok", string(header) + string(row(id, []byte("a@b.c"))) + string(row(id, nil)) + string(trailer), ""},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		_, err := FilterCopyBinary(context.Background(), &out, strings.NewReader(tt.stream), tm, cols)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%s: error leaks the value: %v", tt.name, err)
		}
	}
}

func FuzzBinaryCodecs(f *testing.F) {
	f.Add(int32(0), []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(64))
	f.Add(int32(-2451545), []byte{10, 0, 0, 1}, uint8(8))
	f.Add(int32(2145031948), make([]byte, 16), uint8(128))
	date, _ := binaryCodecFor("date")
	inet, _ := binaryCodecFor("inet")
	cidr, _ := binaryCodecFor("cidr")
	f.Fuzz(func(t *testing.T, days int32, addr []byte, bits uint8) {
		// Every date PostgreSQL can store survives binary → text → binary.
		if days >= -2451545 && days <= 2145031948 || days == dateNoBegin || days == dateNoEnd {
			v := binary.BigEndian.AppendUint32(nil, uint32(days))
			s, err := date.toText(nil, v)
			if err != nil {
				t.Fatalf("date %d: %v", days, err)
			}
			back, err := date.fromText(nil, s)
			if err != nil || !bytes.Equal(back, v) {
				t.Fatalf("date %d → %q → %x, %v", days, s, back, err)
			}
		}
		// So does every address, with any prefix length.
		var family byte
		switch len(addr) {
		case 4:
			family = pgsqlAFInet
		case 16:
			family = pgsqlAFInet6
		default:
			return
		}
		bits %= uint8(len(addr)*8 + 1)
		for i, c := range []binaryCodec{inet, cidr} {
			v := append([]byte{family, bits, byte(i), byte(len(addr))}, addr...)
			s, err := c.toText(nil, v)
			if err != nil {
				t.Fatalf("%x: %v", v, err)
			}
			back, err := c.fromText(nil, s)
			if err != nil || !bytes.Equal(back, v) {
				t.Fatalf("%x → %q → %x, %v", v, s, back, err)
			}
		}
	})
}

// TestFilterCopyBinaryRows checks the output stream: header, kept fields as
// they came, the masked field transformed, NULL kept NULL, trailer.
func TestFilterCopyBinaryRows(t *testing.T) {
	p := testPlan(t, "version: 1\nunlisted: keep\ntables:\n  users:\n    email: email\n")
	tm := p.Table("users")
	var in bytes.Buffer
	in.Write(copySignature)
	in.Write([]byte{0, 0, 0, 0, 0, 0, 0, 3, 'x', 'y', 'z'}) // a header extension to skip
	for _, email := range []string{"ann@example.org", ""} {
		in.Write([]byte{0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42})
		if email == "" {
			in.Write([]byte{0xff, 0xff, 0xff, 0xff})
		} else {
			in.Write(binary.BigEndian.AppendUint32(nil, uint32(len(email))))
			in.WriteString(email)
		}
	}
	in.Write([]byte{0xff, 0xff})
	var out bytes.Buffer
	n, err := FilterCopyBinary(context.Background(), &out, &in, tm, []string{"id", "email"})
	if err != nil || n != 2 {
		t.Fatalf("FilterCopyBinary: %d rows, %v", n, err)
	}
	want, err := p.Table("users").cols["email"].t.Append(nil, []byte("ann@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	var exp bytes.Buffer
	exp.Write(copySignature)
	exp.Write(make([]byte, 8))
	exp.Write([]byte{0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42})
	exp.Write(binary.BigEndian.AppendUint32(nil, uint32(len(want))))
	exp.Write(want)
	exp.Write([]byte{0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if !bytes.Equal(out.Bytes(), exp.Bytes()) {
		t.Errorf("output\n%x\nwant\n%x", out.Bytes(), exp.Bytes())
	}
	if bytes.Contains(out.Bytes(), []byte("ann@")) {
		t.Error("the original address reached the output")
	}
}
