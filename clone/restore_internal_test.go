package clone

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlainFilter(t *testing.T) {
	in, err := os.ReadFile("testdata/plainfilter/input.sql")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/plainfilter/want.sql")
	if err != nil {
		t.Fatal(err)
	}
	f := newPlainFilter(bytes.NewReader(in))
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gotPath := filepath.Join(t.TempDir(), "got.sql")
		os.WriteFile(gotPath, got, 0o644)
		t.Errorf("filtered output differs from testdata/plainfilter/want.sql; got is in %s:\n%s", gotPath, got)
	}
	if f.dumpVersion != "15.18" {
		t.Errorf("dump version %q, want 15.18", f.dumpVersion)
	}
	if f.failure() != nil {
		t.Errorf("failure: %v", f.failure())
	}
}

func TestPlainFilterConnect(t *testing.T) {
	for _, in := range []string{
		"CREATE DATABASE x;\n\\connect x\nSELECT 1;\n",
		"CREATE DATABASE x;\n\\c x\n",
		"SELECT 1;\n\\connect -reuse-previous=on \"dbname='x'\"\n",
	} {
		f := newPlainFilter(strings.NewReader(in))
		out, err := io.ReadAll(f)
		if err == nil || f.failure() == nil || !strings.Contains(err.Error(), "line 2 switches databases") {
			t.Errorf("filter(%q): err %v, failure %v", in, err, f.failure())
		}
		if strings.Contains(string(out), `\c`) {
			t.Errorf("filter(%q) passed the \\connect on: %q", in, out)
		}
	}
}

// FuzzPlainFilter: whatever the input, the filter keeps the number of lines
// (psql's error line numbers must match the file) and changes a line only
// by emptying it.
func FuzzPlainFilter(f *testing.F) {
	seed, _ := os.ReadFile("testdata/plainfilter/input.sql")
	f.Add(seed)
	f.Add([]byte("COPY t FROM stdin;\nGRANT x;\n\\.\nGRANT y;\n"))
	f.Add([]byte("ALTER TABLE t OWNER TO a;\r\nno newline at end"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fl := newPlainFilter(bytes.NewReader(in))
		out, err := io.ReadAll(fl)
		if err != nil {
			if fl.failure() == nil {
				t.Fatalf("error %v without a failure", err)
			}
			return
		}
		inLines := bytes.SplitAfter(in, []byte("\n"))
		outLines := bytes.SplitAfter(out, []byte("\n"))
		if len(inLines) != len(outLines) {
			t.Fatalf("%d lines in, %d out", len(inLines), len(outLines))
		}
		for i := range inLines {
			if !bytes.Equal(inLines[i], outLines[i]) && string(outLines[i]) != "\n" {
				t.Fatalf("line %d changed from %q to %q", i+1, inLines[i], outLines[i])
			}
		}
	})
}

func TestDetectFormat(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tarHeader := make([]byte, 512)
	copy(tarHeader, "toc.dat")
	copy(tarHeader[257:], "ustar\x0000")
	dumpDir := filepath.Join(dir, "d")
	os.Mkdir(dumpDir, 0o755)
	write("d/toc.dat", []byte("PGDMP"))
	notDump := filepath.Join(dir, "nd")
	os.Mkdir(notDump, 0o755)

	tests := []struct {
		path    string
		want    DumpFormat
		wantErr string
	}{
		{write("a.dump", []byte("PGDMP\x01\x0e\x00rest")), FormatCustom, ""},
		{write("a.tar", tarHeader), FormatTar, ""},
		{write("a.sql", []byte("--\n-- PostgreSQL database dump\n")), FormatPlain, ""},
		{write("a.sql.gz", []byte{0x1f, 0x8b, 8, 0}), FormatPlain, ""},
		{dumpDir, FormatDirectory, ""},
		{notDump, "", "no toc.dat"},
		{write("empty", nil), "", "empty"},
		{filepath.Join(dir, "missing"), "", "does not exist"},
	}
	for _, tt := range tests {
		got, err := DetectFormat(tt.path)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("DetectFormat(%s): err %v, want one naming the path and %q", tt.path, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DetectFormat(%s) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
}

// archiveHeader builds the header pg_dump writes (archive version 1.vmin).
func archiveHeader(vmin byte, version string) []byte {
	var b bytes.Buffer
	b.WriteString("PGDMP")
	b.Write([]byte{1, vmin, 0, 4, 8, 1}) // version, intSize 4, offSize 8, custom
	writeInt := func(v int) {
		b.WriteByte(0)
		b.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	}
	writeStr := func(s string) { writeInt(len(s)); b.WriteString(s) }
	if vmin >= 15 {
		b.WriteByte(0)
	} else {
		writeInt(-1 & 0x7fffffff)
	}
	for _, v := range []int{1, 2, 3, 4, 5, 124, 0} {
		writeInt(v)
	}
	writeStr("app")
	writeStr("17.2")
	writeStr(version)
	b.WriteString("rest of the archive")
	return b.Bytes()
}

func TestReadArchiveHeader(t *testing.T) {
	for _, tt := range []struct {
		vmin    byte
		version string
	}{{14, "15.18 (Debian 15.18-0+deb12u1)"}, {15, "17.2"}, {16, "18.0"}} {
		got, err := readArchiveHeader(bufio.NewReader(bytes.NewReader(archiveHeader(tt.vmin, tt.version))))
		if err != nil || got != tt.version {
			t.Errorf("archive 1.%d: readArchiveHeader = %q, %v; want %q", tt.vmin, got, err, tt.version)
		}
	}
	full := archiveHeader(14, "15.18")
	for _, bad := range [][]byte{nil, []byte("PGDMP"), []byte("NOTPG\x01\x0e\x00\x04\x08\x01"), full[:40]} {
		if v, err := readArchiveHeader(bufio.NewReader(bytes.NewReader(bad))); err == nil {
			t.Errorf("readArchiveHeader(%q) = %q, want an error", bad, v)
		}
	}
}

func FuzzReadArchiveHeader(f *testing.F) {
	f.Add(archiveHeader(14, "15.18"))
	f.Add(archiveHeader(15, "17.2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = readArchiveHeader(bufio.NewReader(bytes.NewReader(b)))
	})
}
