package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Immutable file-name patterns of the supported tools.
var (
	reGolangMigrate = regexp.MustCompile(`^([0-9]+)_(.*)\.(up|down)\.sql$`)
	reNumbered      = regexp.MustCompile(`^([0-9]+)(?:[_-](.*))?\.sql$`)
	reFlyway        = regexp.MustCompile(`^([VU])([0-9][0-9._]*?)__(.+)\.sql$`)
	reFlywayRepeat  = regexp.MustCompile(`^R__(.+)\.sql$`)
	reGooseGo       = regexp.MustCompile(`^[0-9]+_.*\.go$`)
)

// Discover reads the migration directory dir. format may be FormatAuto to
// detect it: a directory with an atlas.sum is Atlas; N_x.up.sql files are
// golang-migrate; V1__x.sql / R__x.sql files are Flyway; files with
// "-- +goose Up" are goose; files with "-- migrate:up" are dbmate; any other
// .sql files are plain. Signs of two tools at once are an error that names
// a file of each: pass the format explicitly then.
//
// Migration.File is dir joined with the file name, so errors and lint
// findings cite paths the user recognises.
func Discover(dir string, format Format) (*Set, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("discover migrations in %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("discover migrations in %s: not a directory", dir)
	}
	return DiscoverFS(os.DirFS(dir), filepath.ToSlash(dir), format)
}

// DiscoverFS is Discover on a file system (an embedded directory, say);
// name is the directory's display name, joined to file names in
// Migration.File and in errors.
func DiscoverFS(fsys fs.FS, name string, format Format) (*Set, error) {
	d := &discovery{fsys: fsys, dir: name}
	set, err := d.run(format)
	if err != nil {
		return nil, fmt.Errorf("discover migrations in %s: %w", name, err)
	}
	return set, nil
}

type discovery struct {
	fsys fs.FS
	dir  string
}

// display is the path of a file as messages show it.
func (d *discovery) display(name string) string {
	if d.dir == "" || d.dir == "." {
		return name
	}
	return path.Join(d.dir, name)
}

func (d *discovery) read(name string) (string, error) {
	b, err := fs.ReadFile(d.fsys, name)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", d.display(name), err)
	}
	return string(b), nil
}

// sqlFiles lists the .sql files at the top of the directory, sorted.
func (d *discovery) sqlFiles() ([]string, error) {
	entries, err := fs.ReadDir(d.fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".sql") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (d *discovery) run(format Format) (*Set, error) {
	if format == FormatAuto {
		f, err := d.detect()
		if err != nil {
			return nil, err
		}
		format = f
	}
	var (
		migs []Migration
		err  error
	)
	switch format {
	case FormatGolangMigrate:
		migs, err = d.golangMigrate()
	case FormatGoose:
		migs, err = d.goose()
	case FormatFlyway:
		migs, err = d.flyway()
	case FormatDbmate:
		migs, err = d.dbmate()
	case FormatAtlas:
		migs, err = d.atlas()
	case FormatPlain:
		migs, err = d.plain()
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return nil, err
	}
	for i := range migs {
		migs[i].Format = format
		if format != FormatGolangMigrate && format != FormatFlyway && !migs[i].NoTransaction && managesTransactions(migs[i].Up) {
			migs[i].NoTransaction = true
		}
	}
	return &Set{Dir: d.dir, Format: format, Migrations: migs}, nil
}

// detect guesses the format from file names and annotations.
func (d *discovery) detect() (Format, error) {
	if _, err := fs.Stat(d.fsys, "atlas.sum"); err == nil {
		return FormatAtlas, nil
	}
	example := map[Format]string{}
	note := func(f Format, name string) {
		if _, ok := example[f]; !ok {
			example[f] = name
		}
	}
	err := fs.WalkDir(d.fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != "." && strings.HasPrefix(e.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		base := e.Name()
		top := !strings.Contains(p, "/")
		switch {
		case reFlyway.MatchString(base) || reFlywayRepeat.MatchString(base):
			note(FormatFlyway, p)
		case !top:
			// Only Flyway looks into subdirectories.
		case reGolangMigrate.MatchString(base):
			note(FormatGolangMigrate, p)
		case strings.HasSuffix(base, ".sql"):
			src, err := d.read(p)
			if err != nil {
				return err
			}
			switch {
			case hasGooseUp(src):
				note(FormatGoose, p)
			case hasDbmateUp(src):
				note(FormatDbmate, p)
			default:
				note(FormatPlain, p)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	var found []string
	var only Format
	for _, f := range detectionOrder {
		if f == FormatPlain {
			continue
		}
		if ex, ok := example[f]; ok {
			found = append(found, fmt.Sprintf("%s (%s)", f, d.display(ex)))
			only = f
		}
	}
	switch {
	case len(found) == 1:
		return only, nil
	case len(found) > 1:
		return "", fmt.Errorf("detect format: looks like %s; name the format explicitly", strings.Join(found, " and "))
	case example[FormatPlain] != "":
		return FormatPlain, nil
	}
	return "", errors.New("detect format: no .sql migration files found")
}

// managesTransactions reports whether the statements begin or end
// transactions themselves; such a file runs as written.
func managesTransactions(sts []Statement) bool {
	for _, st := range sts {
		if analyze(st.SQL, 0).txControl {
			return true
		}
	}
	return false
}

// checkDuplicate records version → file and fails on a second file with
// the same version.
func checkDuplicate(seen map[string]string, version, file string) error {
	if prev, ok := seen[version]; ok {
		return fmt.Errorf("duplicate version %s: %s and %s", version, prev, file)
	}
	seen[version] = file
	return nil
}

// numericLess orders numeric version strings by value, then as text.
func numericLess(a, b string) bool {
	ai, aerr := strconv.ParseUint(strings.TrimLeft(a, "0"), 10, 64)
	bi, berr := strconv.ParseUint(strings.TrimLeft(b, "0"), 10, 64)
	if a == "" || strings.TrimLeft(a, "0") == "" {
		ai, aerr = 0, nil
	}
	if b == "" || strings.TrimLeft(b, "0") == "" {
		bi, berr = 0, nil
	}
	if aerr == nil && berr == nil && ai != bi {
		return ai < bi
	}
	if len(strings.TrimLeft(a, "0")) != len(strings.TrimLeft(b, "0")) {
		return len(strings.TrimLeft(a, "0")) < len(strings.TrimLeft(b, "0"))
	}
	return a < b
}

// canonicalNumber strips leading zeros ("0003" → "3"), as tools that store
// versions as integers see them.
func canonicalNumber(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}
