// Package pgbin finds the PostgreSQL server and client programs on this
// machine (initdb, postgres, pg_dump, pg_restore, psql) and tells their major
// version.
//
// It is for locating binaries only: it never starts a server (that is
// clone/local) and never connects to one.
package pgbin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Dir is a directory holding one PostgreSQL installation's programs.
type Dir struct {
	// Path is the directory, for example /usr/lib/postgresql/15/bin.
	Path string
	// Major is the major version of the programs in it (15 for 15.18).
	Major int
	// Version is the full version string, for example "15.18".
	Version string
}

// Program returns the full path of the named program in d.
func (d Dir) Program(name string) string { return filepath.Join(d.Path, name) }

// ErrNotFound is returned when no PostgreSQL installation can be found.
var ErrNotFound = errors.New("no PostgreSQL binaries found: install them " +
	"(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) " +
	"or point --pg-bindir at the directory holding initdb and pg_dump")

// Find locates a PostgreSQL installation. An override (from --pg-bindir or
// DBTWIN_PG_BINDIR) wins; otherwise the candidates are, in this order of
// preference once sorted by major version (newest first): the directory named
// by `pg_config --bindir`, the directory of initdb or pg_dump found on PATH,
// and every /usr/lib/postgresql/*/bin and /usr/local/pgsql/bin.
//
// When need is non-empty, a candidate qualifies only if it holds every named
// program (for example "initdb", "postgres" for a server; "pg_dump" for a
// client).
func Find(ctx context.Context, override string, need ...string) (Dir, error) {
	if override != "" {
		d, err := Inspect(ctx, override)
		if err != nil {
			return Dir{}, fmt.Errorf("use PostgreSQL binaries from %s: %w (point --pg-bindir at the directory holding initdb and pg_dump)", override, err)
		}
		if missing := d.missing(need); missing != "" {
			return Dir{}, fmt.Errorf("use PostgreSQL binaries from %s: %s is missing there", override, missing)
		}
		return d, nil
	}
	var cands []string
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	for _, prog := range []string{"initdb", "pg_dump", "postgres"} {
		if p, err := exec.LookPath(prog); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			cands = append(cands, filepath.Dir(p))
		}
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	cands = append(cands, globbed...)
	cands = append(cands, "/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin")

	seen := map[string]bool{}
	var found []Dir
	for _, c := range cands {
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		d, err := Inspect(ctx, c)
		if err != nil || d.missing(need) != "" {
			continue
		}
		found = append(found, d)
	}
	if len(found) == 0 {
		if len(need) > 0 {
			return Dir{}, fmt.Errorf("find %s: %w", strings.Join(need, ", "), ErrNotFound)
		}
		return Dir{}, ErrNotFound
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].Major > found[j].Major })
	return found[0], nil
}

func (d Dir) missing(need []string) string {
	for _, n := range need {
		if fi, err := os.Stat(d.Program(n)); err != nil || fi.IsDir() {
			return n
		}
	}
	return ""
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// Inspect reports the version of the PostgreSQL programs in dir. It asks
// whichever of pg_dump, postgres, initdb or psql is there for --version.
func Inspect(ctx context.Context, dir string) (Dir, error) {
	for _, prog := range []string{"pg_dump", "postgres", "initdb", "psql"} {
		p := filepath.Join(dir, prog)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, p, "--version").Output()
		if err != nil {
			continue
		}
		major, version, err := ParseVersion(string(out))
		if err != nil {
			return Dir{}, fmt.Errorf("read version of %s: %w", p, err)
		}
		return Dir{Path: dir, Major: major, Version: version}, nil
	}
	return Dir{}, fmt.Errorf("no PostgreSQL program (pg_dump, postgres, initdb, psql) in %s", dir)
}

// ParseVersion reads the output of `pg_dump --version` (or any PostgreSQL
// program's) and returns the major version and the full version string.
func ParseVersion(s string) (major int, version string, err error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, "", fmt.Errorf("unrecognised version output %q", strings.TrimSpace(s))
	}
	major, _ = strconv.Atoi(m[1])
	version = m[1]
	if m[2] != "" {
		version += "." + m[2]
	}
	return major, version, nil
}

// MajorFromServerVersionNum turns server_version_num (150018) into a major
// version (15). Versions before 10 (90624) come out as 9.
func MajorFromServerVersionNum(n int) int { return n / 10000 }

// InstallHint says which package brings client programs of the given major
// version, for error messages.
func InstallHint(major int) string {
	return fmt.Sprintf("install PostgreSQL %d (or newer) client programs, e.g. "+
		"`apt-get install postgresql-client-%d` from apt.postgresql.org, "+
		"and point --pg-bindir at their directory", major, major)
}

// ServerMajor returns the major version of the server a connection is
// talking to, from the server_version it reported at startup (no round
// trip): "15.18 (Debian 15.18-0+deb12u1)" gives 15, "9.6.24" gives 9.
func ServerMajor(serverVersion string) (int, error) {
	v := strings.TrimSpace(serverVersion)
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end == 0 || v == "" {
		return 0, fmt.Errorf("unrecognised server_version %q", serverVersion)
	}
	if end < 0 {
		end = len(v)
	}
	return strconv.Atoi(v[:end])
}
