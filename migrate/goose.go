package migrate

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// hasGooseUp reports whether src has a "-- +goose Up" annotation line.
func hasGooseUp(src string) bool {
	for _, l := range strings.Split(src, "\n") {
		if a, ok := gooseAnnotation(l); ok && a == "up" {
			return true
		}
	}
	return false
}

// gooseAnnotation returns the lower-cased command of a "-- +goose …" line.
func gooseAnnotation(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "--") {
		return "", false
	}
	t = strings.TrimSpace(strings.TrimPrefix(t, "--"))
	if !strings.HasPrefix(t, "+goose") {
		return "", false
	}
	return strings.ToLower(strings.Join(strings.Fields(strings.TrimPrefix(t, "+goose")), " ")), true
}

// gooseFile is one parsed goose SQL migration.
type gooseFile struct {
	up, down      []Statement
	noTransaction bool
}

// parseGoose parses a goose SQL migration the way goose's sqlparser reads
// it: annotations are whole lines; SQL before "-- +goose Up" is an error;
// a StatementBegin/StatementEnd block is one statement; everything else is
// split with the PostgreSQL parser. Errors carry the 1-based line.
func parseGoose(src string) (gooseFile, error) {
	const (
		stateStart = iota
		stateUp
		stateDown
	)
	var (
		f          gooseFile
		state      = stateStart
		seenUp     bool
		seenDown   bool
		inBlock    bool
		blockLine  int
		blockStart int
		chunkStart int
		lines      = newLineIndex(src)
	)
	section := func() *[]Statement {
		if state == stateDown {
			return &f.down
		}
		return &f.up
	}
	flush := func(end int) {
		if state != stateStart && end > chunkStart {
			*section() = append(*section(), splitSQL(src, lines, chunkStart, end)...)
		}
	}
	off := 0
	for n := 1; off < len(src) || n == 1; n++ {
		end := strings.IndexByte(src[off:], '\n')
		next := len(src)
		if end >= 0 {
			end += off
			next = end + 1
		} else {
			end = len(src)
		}
		line := src[off:end]
		if cmd, ok := gooseAnnotation(line); ok {
			switch cmd {
			case "up":
				if inBlock {
					return f, fmt.Errorf("line %d: -- +goose Up inside the StatementBegin block of line %d", n, blockLine)
				}
				if seenUp {
					return f, fmt.Errorf("line %d: second -- +goose Up annotation", n)
				}
				if seenDown {
					return f, fmt.Errorf("line %d: -- +goose Up after -- +goose Down", n)
				}
				flush(off)
				seenUp, state, chunkStart = true, stateUp, next
			case "down":
				if inBlock {
					return f, fmt.Errorf("line %d: -- +goose Down inside the StatementBegin block of line %d", n, blockLine)
				}
				if seenDown {
					return f, fmt.Errorf("line %d: second -- +goose Down annotation", n)
				}
				if !seenUp {
					return f, fmt.Errorf("line %d: -- +goose Down before -- +goose Up", n)
				}
				flush(off)
				seenDown, state, chunkStart = true, stateDown, next
			case "statementbegin":
				if state == stateStart {
					return f, fmt.Errorf("line %d: -- +goose StatementBegin before -- +goose Up", n)
				}
				if inBlock {
					return f, fmt.Errorf("line %d: -- +goose StatementBegin inside the block of line %d", n, blockLine)
				}
				flush(off)
				inBlock, blockLine, blockStart = true, n, next
			case "statementend":
				if !inBlock {
					return f, fmt.Errorf("line %d: -- +goose StatementEnd without StatementBegin", n)
				}
				if st, ok := trimStatement(src, lines, blockStart, off); ok {
					*section() = append(*section(), st)
				}
				inBlock, chunkStart = false, next
			case "no transaction":
				f.noTransaction = true
			case "envsub on", "envsub off":
				// Environment substitution is goose's, not the SQL's: the
				// statements are applied as written.
			default:
				return f, fmt.Errorf("line %d: unknown goose annotation %q", n, strings.TrimSpace(line))
			}
		} else if state == stateStart && !inBlock {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "--") {
				return f, fmt.Errorf("line %d: SQL before the -- +goose Up annotation", n)
			}
		}
		if end >= len(src) {
			break
		}
		off = next
	}
	if inBlock {
		return f, fmt.Errorf("line %d: -- +goose StatementBegin without StatementEnd", blockLine)
	}
	if !seenUp {
		return f, errors.New("no -- +goose Up annotation")
	}
	flush(len(src))
	return f, nil
}

// goose discovers a goose directory: NNN_name.sql files, version = the
// number before the first underscore (as goose_db_version stores it).
func (d *discovery) goose() ([]Migration, error) {
	files, err := d.sqlFiles()
	if err != nil {
		return nil, err
	}
	entries, _ := readDirNames(d.fsys)
	for _, e := range entries {
		if reGooseGo.MatchString(e) {
			return nil, fmt.Errorf("%s is a goose Go migration, which dbtwin cannot run: apply this directory with an external command (goose up)", d.display(e))
		}
	}
	seen := map[string]string{}
	var migs []Migration
	for _, name := range files {
		m := reNumbered.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("%s: not a goose migration name (want NNN_name.sql)", d.display(name))
		}
		version := canonicalNumber(m[1])
		if version == "0" {
			return nil, fmt.Errorf("%s: goose versions start at 1", d.display(name))
		}
		if err := checkDuplicate(seen, version, d.display(name)); err != nil {
			return nil, err
		}
		src, err := d.read(name)
		if err != nil {
			return nil, err
		}
		g, err := parseGoose(src)
		if err != nil {
			return nil, fmt.Errorf("parse goose migration %s: %w", d.display(name), err)
		}
		migs = append(migs, Migration{
			Version:       version,
			Name:          m[2],
			File:          d.display(name),
			NoTransaction: g.noTransaction,
			Up:            g.up,
			Down:          g.down,
			Source:        src,
		})
	}
	sort.SliceStable(migs, func(i, j int) bool { return numericLess(migs[i].Version, migs[j].Version) })
	return migs, nil
}
