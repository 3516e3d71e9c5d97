package pgbin

import (
	"context"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in        string
		major     int
		version   string
		wantError bool
	}{
		{"pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15, "15.18", false},
		{"postgres (PostgreSQL) 17.2\n", 17, "17.2", false},
		{"initdb (PostgreSQL) 18beta1\n", 18, "18", false},
		{"pg_dump (PostgreSQL) 9.6.24\n", 9, "9.6", false},
		{"something else", 0, "", true},
	}
	for _, tt := range tests {
		major, version, err := ParseVersion(tt.in)
		if (err != nil) != tt.wantError {
			t.Errorf("ParseVersion(%q) error = %v, want error %v", tt.in, err, tt.wantError)
			continue
		}
		if major != tt.major || version != tt.version {
			t.Errorf("ParseVersion(%q) = %d, %q; want %d, %q", tt.in, major, version, tt.major, tt.version)
		}
	}
}

func TestFindOnThisMachine(t *testing.T) {
	d, err := Find(context.Background(), "", "initdb", "postgres", "pg_dump")
	if err != nil {
		t.Fatalf("Find: %v (the tests need PostgreSQL server binaries; see README.md)", err)
	}
	if d.Major < 13 {
		t.Fatalf("Find picked %s with major %d; dbtwin needs 13 or newer", d.Path, d.Major)
	}
}

func TestFindOverrideMissingProgram(t *testing.T) {
	_, err := Find(context.Background(), t.TempDir(), "initdb")
	if err == nil {
		t.Fatal("Find with an empty override directory succeeded; want an error")
	}
}

func TestServerMajor(t *testing.T) {
	for in, want := range map[string]int{"15.18 (Debian 15.18-0+deb12u1)": 15, "17.2": 17, "9.6.24": 9, "18beta1": 18} {
		if got, err := ServerMajor(in); err != nil || got != want {
			t.Errorf("ServerMajor(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ServerMajor("devel"); err == nil {
		t.Error(`ServerMajor("devel") succeeded`)
	}
}
