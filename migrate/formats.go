package migrate

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/big"
	"path"
	"sort"
	"strings"
)

func readDirNames(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// golangMigrate discovers N_name.up.sql / N_name.down.sql pairs.
func (d *discovery) golangMigrate() ([]Migration, error) {
	files, err := d.sqlFiles()
	if err != nil {
		return nil, err
	}
	byVersion := map[string]*Migration{}
	upSeen, downSeen := map[string]string{}, map[string]string{}
	var order []string
	for _, name := range files {
		m := reGolangMigrate.FindStringSubmatch(name)
		if m == nil {
			continue // golang-migrate ignores files it does not recognise
		}
		version := canonicalNumber(m[1])
		mig, ok := byVersion[version]
		if !ok {
			mig = &Migration{Version: version, Name: m[2]}
			byVersion[version] = mig
			order = append(order, version)
		}
		src, err := d.read(name)
		if err != nil {
			return nil, err
		}
		sts := splitSQL(src, newLineIndex(src), 0, len(src))
		if m[3] == "up" {
			if err := checkDuplicate(upSeen, version, d.display(name)); err != nil {
				return nil, err
			}
			mig.File, mig.Up, mig.Source, mig.Name = d.display(name), sts, src, m[2]
		} else {
			if err := checkDuplicate(downSeen, version, d.display(name)); err != nil {
				return nil, err
			}
			mig.DownFile, mig.Down = d.display(name), sts
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return numericLess(order[i], order[j]) })
	var migs []Migration
	for _, v := range order {
		mig := byVersion[v]
		if mig.File == "" {
			continue // a down file alone: nothing to apply
		}
		// One multi-statement Exec: PostgreSQL runs it as one implicit
		// transaction; a single statement runs outside any.
		mig.NoTransaction = len(mig.Up) <= 1 || managesTransactions(mig.Up)
		migs = append(migs, *mig)
	}
	return migs, nil
}

// flywayVersion is a parsed Flyway version ("1.2.10" → [1 2 10]); the
// text form ("1_2" → "1.2", leading zeros kept) is what Flyway stores.
type flywayVersion []*big.Int

func parseFlywayVersion(s string) (string, flywayVersion, error) {
	s = strings.ReplaceAll(s, "_", ".")
	var v flywayVersion
	for _, p := range strings.Split(s, ".") {
		if p == "" {
			return "", nil, fmt.Errorf("invalid version %q", s)
		}
		n, ok := new(big.Int).SetString(p, 10)
		if !ok {
			return "", nil, fmt.Errorf("invalid version %q", s)
		}
		v = append(v, n)
	}
	// Flyway ignores trailing zero parts when comparing (1.0 == 1).
	for len(v) > 1 && v[len(v)-1].Sign() == 0 {
		v = v[:len(v)-1]
	}
	// The text, as flyway_schema_history.version stores it.
	return s, v, nil
}

func (a flywayVersion) less(b flywayVersion) bool {
	for i := 0; i < len(a) || i < len(b); i++ {
		x, y := big.NewInt(0), big.NewInt(0)
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := x.Cmp(y); c != 0 {
			return c < 0
		}
	}
	return false
}

// flywayChecksum is Flyway's checksum of a migration: CRC32 over the lines
// without their terminators (and without a UTF-8 BOM), as a signed int.
func flywayChecksum(src string) int32 {
	src = strings.TrimPrefix(src, "\uFEFF")
	h := crc32.NewIEEE()
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 64*1024), len(src)+1)
	sc.Split(scanJavaLines)
	for sc.Scan() {
		h.Write(sc.Bytes())
	}
	return int32(h.Sum32())
}

// scanJavaLines splits like Java's BufferedReader.readLine: \n, \r or \r\n.
func scanJavaLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		switch c {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// flyway discovers V<version>__<description>.sql and R__<description>.sql
// files anywhere under the directory (Flyway scans its locations
// recursively). Undo (U…) migrations are kept as Down of their version.
func (d *discovery) flyway() ([]Migration, error) {
	type versioned struct {
		m Migration
		v flywayVersion
	}
	var (
		vs     []versioned
		rs     []Migration
		undo   = map[string][]Statement{}
		seen   = map[string]string{}
		rseen  = map[string]string{}
		parsed = map[string]flywayVersion{}
	)
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
		base := path.Base(p)
		var kind, ver, desc string
		if m := reFlyway.FindStringSubmatch(base); m != nil {
			kind, ver, desc = m[1], m[2], m[3]
		} else if m := reFlywayRepeat.FindStringSubmatch(base); m != nil {
			kind, desc = "R", m[1]
		} else {
			return nil
		}
		src, err := d.read(p)
		if err != nil {
			return err
		}
		sts := splitSQL(src, newLineIndex(src), 0, len(src))
		mig := Migration{
			Name:     strings.ReplaceAll(desc, "_", " "),
			File:     d.display(p),
			Up:       sts,
			Source:   src,
			checksum: flywayChecksum(src),
		}
		noTx, err := d.flywayNoTransaction(p, sts)
		if err != nil {
			return err
		}
		mig.NoTransaction = noTx
		switch kind {
		case "R":
			if err := checkDuplicate(rseen, mig.Name, mig.File); err != nil {
				return fmt.Errorf("repeatable migration: %w", err)
			}
			mig.Repeatable = true
			rs = append(rs, mig)
		case "U":
			canon, _, err := parseFlywayVersion(ver)
			if err != nil {
				return fmt.Errorf("%s: %w", mig.File, err)
			}
			undo[canon] = sts
		default:
			canon, v, err := parseFlywayVersion(ver)
			if err != nil {
				return fmt.Errorf("%s: %w", mig.File, err)
			}
			key := fmt.Sprint(v)
			if prev, ok := seen[key]; ok {
				return fmt.Errorf("duplicate version %s: %s and %s", canon, prev, mig.File)
			}
			seen[key] = mig.File
			parsed[canon] = v
			mig.Version = canon
			vs = append(vs, versioned{mig, v})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].v.less(vs[j].v) })
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	migs := make([]Migration, 0, len(vs)+len(rs))
	for _, x := range vs {
		x.m.Down = undo[x.m.Version]
		migs = append(migs, x.m)
	}
	return append(migs, rs...), nil
}

// flywayNoTransaction applies Flyway's rules: executeInTransaction in a
// sibling <file>.conf, else no transaction when a statement cannot run in
// one.
func (d *discovery) flywayNoTransaction(p string, sts []Statement) (bool, error) {
	if b, err := fs.ReadFile(d.fsys, p+".conf"); err == nil {
		for i, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
			if !ok || strings.TrimSpace(k) != "executeInTransaction" {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "false":
				return true, nil
			case "true":
				return false, nil
			default:
				return false, fmt.Errorf("%s.conf:%d: executeInTransaction must be true or false", d.display(p), i+1)
			}
		}
	}
	for _, st := range sts {
		if analyze(st.SQL, 0).refuses {
			return true, nil
		}
	}
	return managesTransactions(sts), nil
}

// hasDbmateUp reports whether src has a "-- migrate:up" line.
func hasDbmateUp(src string) bool {
	for _, l := range strings.Split(src, "\n") {
		if k, _, ok := dbmateDirective(l); ok && k == "up" {
			return true
		}
	}
	return false
}

// dbmateDirective reads "-- migrate:up transaction:false".
func dbmateDirective(line string) (kind string, opts map[string]string, ok bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "--") {
		return "", nil, false
	}
	fields := strings.Fields(strings.TrimSpace(strings.TrimPrefix(t, "--")))
	if len(fields) == 0 || (fields[0] != "migrate:up" && fields[0] != "migrate:down") {
		return "", nil, false
	}
	opts = map[string]string{}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, ":")
		opts[k] = v
	}
	return strings.TrimPrefix(fields[0], "migrate:"), opts, true
}

// parseDbmate splits a dbmate migration into its up and down blocks.
func parseDbmate(src string) (up, down []Statement, noTx bool, err error) {
	lines := newLineIndex(src)
	type block struct {
		kind       string
		start, end int
		line       int
	}
	var blocks []block
	off := 0
	for n := 1; off <= len(src); n++ {
		end := strings.IndexByte(src[off:], '\n')
		next := len(src) + 1
		if end >= 0 {
			end += off
			next = end + 1
		} else {
			end = len(src)
		}
		line := src[off:end]
		if kind, opts, ok := dbmateDirective(line); ok {
			for _, b := range blocks {
				if b.kind == kind {
					return nil, nil, false, fmt.Errorf("line %d: second -- migrate:%s block (first at line %d)", n, kind, b.line)
				}
			}
			if len(blocks) > 0 {
				blocks[len(blocks)-1].end = off
			}
			blocks = append(blocks, block{kind: kind, start: min(next, len(src)), end: len(src), line: n})
			if kind == "up" && opts["transaction"] == "false" {
				noTx = true
			}
		} else if len(blocks) == 0 {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "--") {
				return nil, nil, false, fmt.Errorf("line %d: SQL outside the -- migrate:up and -- migrate:down blocks", n)
			}
		}
		off = next
	}
	found := false
	for _, b := range blocks {
		sts := splitSQL(src, lines, b.start, b.end)
		if b.kind == "up" {
			up, found = sts, true
		} else {
			down = sts
		}
	}
	if !found {
		return nil, nil, false, errors.New("no -- migrate:up block")
	}
	return up, down, noTx, nil
}

// dbmate discovers NNN_name.sql files with -- migrate:up blocks; the
// version is the leading digits, as schema_migrations stores it.
func (d *discovery) dbmate() ([]Migration, error) {
	files, err := d.sqlFiles()
	if err != nil {
		return nil, err
	}
	seen := map[string]string{}
	var migs []Migration
	for _, name := range files {
		m := reNumbered.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("%s: not a dbmate migration name (want VERSION_name.sql)", d.display(name))
		}
		if err := checkDuplicate(seen, m[1], d.display(name)); err != nil {
			return nil, err
		}
		src, err := d.read(name)
		if err != nil {
			return nil, err
		}
		up, down, noTx, err := parseDbmate(src)
		if err != nil {
			return nil, fmt.Errorf("parse dbmate migration %s: %w", d.display(name), err)
		}
		migs = append(migs, Migration{Version: m[1], Name: m[2], File: d.display(name), NoTransaction: noTx, Up: up, Down: down, Source: src})
	}
	return migs, nil
}

// atlas discovers an Atlas directory: *.sql in name order, version = the
// name up to the first "_", integrity checked against atlas.sum.
func (d *discovery) atlas() ([]Migration, error) {
	files, err := d.sqlFiles()
	if err != nil {
		return nil, err
	}
	if err := d.verifyAtlasSum(files); err != nil {
		return nil, err
	}
	seen := map[string]string{}
	var migs []Migration
	for _, name := range files {
		base := strings.TrimSuffix(name, ".sql")
		version, desc, _ := strings.Cut(base, "_")
		if err := checkDuplicate(seen, version, d.display(name)); err != nil {
			return nil, err
		}
		src, err := d.read(name)
		if err != nil {
			return nil, err
		}
		migs = append(migs, Migration{
			Version:       version,
			Name:          desc,
			File:          d.display(name),
			NoTransaction: atlasDirective(src, "txmode") == "none",
			Up:            splitSQL(src, newLineIndex(src), 0, len(src)),
			Source:        src,
		})
	}
	return migs, nil
}

// atlasDirective returns the argument of "-- atlas:<name> <arg>" in the
// file's leading comment block.
func atlasDirective(src, name string) string {
	for _, l := range strings.Split(src, "\n") {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "--") {
			break
		}
		f := strings.Fields(strings.TrimSpace(strings.TrimPrefix(t, "--")))
		if len(f) >= 2 && f[0] == "atlas:"+name {
			return f[1]
		}
	}
	return ""
}

// verifyAtlasSum checks atlas.sum the way `atlas migrate validate` does:
// line 1 is "h1:" + base64(sha256 of every file's name and hash), then one
// "<file> h1:<hash>" line per file, where each hash is the running SHA-256
// over all names and contents so far.
func (d *discovery) verifyAtlasSum(files []string) error {
	b, err := fs.ReadFile(d.fsys, "atlas.sum")
	if err != nil {
		return fmt.Errorf("read %s: %w", d.display("atlas.sum"), err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "h1:") {
		return fmt.Errorf("%s:1: checksum file format invalid (want h1:<sum>)", d.display("atlas.sum"))
	}
	want := map[string]string{}
	var wantOrder []string
	for i, l := range lines[1:] {
		n, h, ok := strings.Cut(l, " h1:")
		if !ok {
			return fmt.Errorf("%s:%d: checksum file format invalid (want <file> h1:<hash>)", d.display("atlas.sum"), i+2)
		}
		want[n] = h
		wantOrder = append(wantOrder, n)
	}
	run := sha256.New()
	total := sha256.New()
	var got []string
	for _, name := range files {
		src, err := fs.ReadFile(d.fsys, name)
		if err != nil {
			return err
		}
		run.Write([]byte(name))
		if first, _, _ := strings.Cut(string(src), "\n"); strings.Contains(first, "atlas:sum ignore") {
			continue
		}
		run.Write(src)
		h := base64.StdEncoding.EncodeToString(run.Sum(nil))
		got = append(got, name)
		w, ok := want[name]
		if !ok {
			return fmt.Errorf("%s: %s is not in the sum file (run atlas migrate hash)", d.display("atlas.sum"), d.display(name))
		}
		if w != h {
			return fmt.Errorf("%s: checksum mismatch for %s (edited after atlas migrate hash?)", d.display("atlas.sum"), d.display(name))
		}
		total.Write([]byte(name))
		total.Write([]byte(h))
	}
	if len(got) != len(wantOrder) {
		return fmt.Errorf("%s: lists %d files, the directory has %d", d.display("atlas.sum"), len(wantOrder), len(got))
	}
	if sum := base64.StdEncoding.EncodeToString(total.Sum(nil)); "h1:"+sum != lines[0] {
		return fmt.Errorf("%s:1: checksum mismatch for the directory", d.display("atlas.sum"))
	}
	return nil
}

// plain discovers ordered .sql files: numeric prefixes compare as numbers,
// the rest by name; version = the numeric prefix, else the name. Each file
// runs in one transaction unless its leading comments say
// "-- dbtwin:no-transaction".
func (d *discovery) plain() ([]Migration, error) {
	files, err := d.sqlFiles()
	if err != nil {
		return nil, err
	}
	var migs []Migration
	seen := map[string]string{}
	for _, name := range files {
		version, desc := strings.TrimSuffix(name, ".sql"), ""
		if m := reNumbered.FindStringSubmatch(name); m != nil {
			version, desc = m[1], m[2]
		}
		if err := checkDuplicate(seen, version, d.display(name)); err != nil {
			return nil, err
		}
		src, err := d.read(name)
		if err != nil {
			return nil, err
		}
		migs = append(migs, Migration{
			Version:       version,
			Name:          desc,
			File:          d.display(name),
			NoTransaction: headerDirective(src, "dbtwin:no-transaction"),
			Up:            splitSQL(src, newLineIndex(src), 0, len(src)),
			Source:        src,
		})
	}
	sort.SliceStable(migs, func(i, j int) bool {
		a, b := reNumbered.MatchString(path.Base(migs[i].File)), reNumbered.MatchString(path.Base(migs[j].File))
		if a && b {
			return numericLess(migs[i].Version, migs[j].Version)
		}
		if a != b {
			return a
		}
		return migs[i].File < migs[j].File
	})
	return migs, nil
}

// headerDirective reports whether a "--" comment line before the first
// statement contains word.
func headerDirective(src, word string) bool {
	for _, l := range strings.Split(src, "\n") {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "--") {
			return false
		}
		if strings.Contains(t, word) {
			return true
		}
	}
	return false
}
