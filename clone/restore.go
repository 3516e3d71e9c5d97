package clone

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/dbtwin/dbtwin/internal/pgbin"
)

// DumpFormat is the format of a pg_dump output.
type DumpFormat string

// The formats Restore reads.
const (
	FormatCustom    DumpFormat = "custom"    // pg_dump -Fc: a file starting with "PGDMP"
	FormatDirectory DumpFormat = "directory" // pg_dump -Fd: a directory holding toc.dat
	FormatTar       DumpFormat = "tar"       // pg_dump -Ft
	FormatPlain     DumpFormat = "plain"     // pg_dump -Fp: SQL for psql, possibly gzip-compressed
)

// DetectFormat tells the format of the dump at path from its content, not
// its name. It fails when path does not exist, is empty, or is a directory
// without toc.dat.
func DetectFormat(path string) (DumpFormat, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("open dump %s: %w", path, fs.ErrNotExist) // "file does not exist"
	}
	if err != nil {
		return "", fmt.Errorf("open dump %s: %w", path, err)
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "toc.dat")); err != nil {
			return "", fmt.Errorf("open dump %s: a directory, but not a pg_dump directory-format dump (no toc.dat)", path)
		}
		return FormatDirectory, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open dump %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read dump %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case n == 0:
		return "", fmt.Errorf("read dump %s: the file is empty", path)
	case bytes.HasPrefix(head, []byte("PGDMP")):
		return FormatCustom, nil
	case n >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return FormatTar, nil
	}
	return FormatPlain, nil
}

// Restore loads the dump at dumpPath (any pg_dump format: custom, directory,
// tar or plain SQL, told apart by content) into the database targetDSN
// names, which it creates or, with Options.Replace, replaces.
//
// As with Clone, the dump is restored into a temporary database that
// replaces the target only when the restore and ANALYZE succeeded; a
// corrupt dump, a failing statement or a cancelled ctx leaves the target
// untouched and no temporary database behind.
//
// Custom and directory archives are restored by pg_restore --jobs
// (Options.Jobs), tar archives by pg_restore in one session (the format
// cannot be read in parallel), all with --exit-on-error and without owners,
// privileges, tablespaces, security labels, publications and subscriptions
// (see Clone).
//
// Plain SQL runs in psql with ON_ERROR_STOP, without --single-transaction:
// the temporary database already makes the restore all-or-nothing, and
// hand-written SQL files may hold statements that cannot run in a
// transaction block (CREATE INDEX CONCURRENTLY, VACUUM). Since psql cannot
// skip ownership and privilege statements the way pg_restore does, the SQL
// is filtered on its way to psql: single-line ALTER ... OWNER TO, GRANT,
// REVOKE, ALTER DEFAULT PRIVILEGES, SET SESSION AUTHORIZATION and SET
// default_tablespace statements become empty lines (so psql's line numbers
// still match the file). A plain dump that switches databases (\connect,
// from pg_dump --create or pg_dumpall) is refused.
func Restore(ctx context.Context, dumpPath, targetDSN string, opts Options) (*Result, error) {
	o := opts.withDefaults()
	start := o.Now()
	format, err := DetectFormat(dumpPath)
	if err != nil {
		return nil, err
	}
	program := "pg_restore"
	if format == FormatPlain {
		program = "psql"
	}
	bin, err := pgbin.Find(ctx, o.BinDir, program)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", program, err)
	}
	tgt, err := prepareTarget(ctx, targetDSN, o.Replace, o.Logger)
	if err != nil {
		return nil, err
	}
	r := &restorer{o: o, tools: tools{bin: bin, log: o.Logger}, path: dumpPath, format: format, tgt: tgt,
		res: &Result{Database: tgt.name}}
	o.Logger.Info("restore", "dump", dumpPath, "format", format, "target", tgt.desc, "jobs", o.Jobs, program, bin.Version)
	if err := tgt.build(ctx, r.fill); err != nil {
		return nil, err
	}
	r.res.Duration = o.Now().Sub(start)
	return r.res, nil
}

// restorer carries one Restore through its phases.
type restorer struct {
	o      Options
	tools  tools
	path   string
	format DumpFormat
	tgt    *target
	res    *Result
}

func (r *restorer) fill(ctx context.Context) error {
	if err := r.tgt.createTemp(ctx, nil); err != nil {
		return err
	}
	err := runPhase(ctx, r.o, r.res, PhaseRestore, func(ctx context.Context) error {
		err := r.restore(ctx)
		if err != nil && r.format == FormatCustom && r.o.Jobs > 1 && needsSerialRestore(err) {
			// A custom archive written to a pipe has no data offsets and
			// cannot be restored in parallel: start over in one session.
			r.o.Logger.Warn("the archive cannot be restored in parallel (it was written to a pipe); restoring in one session",
				"dump", r.path)
			r.tgt.dropTemp(ctx)
			if err := r.tgt.createTemp(ctx, nil); err != nil {
				return err
			}
			r.o.Jobs = 1
			err = r.restore(ctx)
		}
		return err
	})
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("temporary database %q on %s", r.tgt.tmpName, r.tgt.desc)
	if err := runPhase(ctx, r.o, r.res, PhaseAnalyze, func(ctx context.Context) error {
		return analyzeAll(ctx, r.tgt.tmpDSN, desc, r.o.Jobs, nil, nil)
	}); err != nil {
		return err
	}
	return runPhase(ctx, r.o, r.res, PhaseFinish, r.tgt.replaceWithTemp)
}

func needsSerialRestore(err error) bool {
	var te *toolError
	return errors.As(err, &te) &&
		(strings.Contains(te.stderr, "lack of data offsets") || strings.Contains(te.stderr, "non-seekable"))
}

// restore runs pg_restore or psql into the temporary database.
func (r *restorer) restore(ctx context.Context) error {
	ci, err := newConninfo(r.tgt.tmpDSN)
	if err != nil {
		return err
	}
	into := fmt.Sprintf("into temporary database %q on %s", r.tgt.tmpName, r.tgt.desc)
	if r.format == FormatPlain {
		return r.restorePlain(ctx, ci, into)
	}
	args := []string{"--exit-on-error", "--no-password"}
	args = append(args, restoreFlags...)
	if r.format != FormatTar && r.o.Jobs > 1 {
		args = append(args, fmt.Sprintf("--jobs=%d", r.o.Jobs))
	}
	args = append(args, "--dbname="+ci.arg, r.path)
	err = r.tools.run(ctx, "pg_restore", args, ci, nil)
	if err == nil {
		return nil
	}
	var te *toolError
	if errors.As(err, &te) && strings.Contains(te.stderr, "unsupported version") {
		ve := &VersionError{Program: "pg_restore", Path: r.tools.bin.Program("pg_restore"),
			ProgramMajor: r.tools.bin.Major, NeedMajor: r.tools.bin.Major + 1, Of: "dump file " + r.path, Err: err}
		if v, verr := archiveDumpVersion(r.path, r.format); verr == nil {
			if major, _, perr := pgbin.ParseVersion("(PostgreSQL) " + v); perr == nil {
				ve.NeedMajor = major
				ve.Of += " (written by pg_dump " + v + ")"
			}
		}
		return ve
	}
	return fmt.Errorf("restore %s %s %s: %w", r.format, r.path, into, withHint(err))
}

// plainPrescan is how much of a plain dump is checked before psql runs:
// pg_dump --create and pg_dumpall switch databases within their first lines.
const plainPrescan = 4 << 20

// restorePlain feeds a plain SQL dump through plainFilter into psql.
func (r *restorer) restorePlain(ctx context.Context, ci conninfo, into string) error {
	// Refuse a dump that switches databases before psql runs any of it: its
	// CREATE DATABASE would otherwise run on the target server.
	head, err := openPlain(r.path)
	if err != nil {
		return err
	}
	pre := newPlainFilter(io.LimitReader(head, plainPrescan))
	_, _ = io.Copy(io.Discard, pre)
	head.Close()
	if bad := pre.failure(); bad != nil {
		return fmt.Errorf("restore plain dump %s: %w", r.path, bad)
	}

	in, err := openPlain(r.path)
	if err != nil {
		return err
	}
	defer in.Close()
	filter := newPlainFilter(in)
	args := []string{"-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--dbname=" + ci.arg, "-f", "-"}
	err = r.tools.run(ctx, "psql", args, ci, filter)
	if ferr := filter.failure(); ferr != nil {
		return fmt.Errorf("restore plain dump %s: %w", r.path, ferr)
	}
	if err == nil {
		return nil
	}
	var te *toolError
	if errors.As(err, &te) {
		// psql reads stdin; its messages name "<stdin>:LINE", and the
		// filter keeps line numbers, so they are the file's lines.
		te.stderr = strings.ReplaceAll(te.stderr, "<stdin>", r.path)
	}
	err = fmt.Errorf("restore plain dump %s %s: %w", r.path, into, err)
	if v := filter.dumpVersion; v != "" {
		if major, _, perr := pgbin.ParseVersion("(PostgreSQL) " + v); perr == nil && major > r.tools.bin.Major {
			err = &VersionError{Program: "psql", Path: r.tools.bin.Program("psql"), ProgramMajor: r.tools.bin.Major,
				NeedMajor: major, Of: "dump file " + r.path + " (written by pg_dump " + v + ")", Err: err}
		}
	}
	return err
}

// openPlain opens a plain SQL dump, decompressing it if it is gzipped
// (pg_dump -Fp -Z).
func openPlain(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open dump %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read dump %s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	return readCloser{br, f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// plainFilter passes a plain SQL dump through, turning the statements that
// assume the source's roles and tablespaces into empty lines, and stops
// with an error at a \connect. Lines inside COPY ... FROM stdin data are
// passed through untouched.
type plainFilter struct {
	r           *bufio.Reader
	out         []byte
	err         error // read error or io.EOF, returned once out is drained
	bad         error // a reason to refuse the dump
	line        int
	midLine     bool // the previous chunk ended without a newline
	inCopy      bool
	dumpVersion string // from the "-- Dumped by pg_dump version" header
}

func newPlainFilter(r io.Reader) *plainFilter {
	return &plainFilter{r: bufio.NewReaderSize(r, 64<<10)}
}

var (
	copyFromStdin = regexp.MustCompile(`(?i)^COPY\s.*\sFROM\s+stdin.*;\s*$`)
	skipStatement = regexp.MustCompile(`(?i)^(ALTER\s.*\sOWNER\s+TO\s.*;|GRANT\s.*;|REVOKE\s.*;|ALTER\s+DEFAULT\s+PRIVILEGES\s.*;|SET\s+SESSION\s+AUTHORIZATION\s.*;|SET\s+default_tablespace\s*=.*;)\s*$`)
	dumpedBy      = regexp.MustCompile(`^-- Dumped by pg_dump version (\S+)`)
)

func (f *plainFilter) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		chunk, err := f.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			err = nil
		case err != nil:
			f.err = err
		}
		if len(chunk) == 0 {
			continue
		}
		atStart := !f.midLine
		f.midLine = chunk[len(chunk)-1] != '\n'
		if !atStart {
			f.out = append(f.out[:0], chunk...)
			continue
		}
		f.line++
		f.out = append(f.out[:0], chunk...)
		if f.inCopy {
			if bytes.Equal(bytes.TrimRight(chunk, "\r\n"), []byte(`\.`)) {
				f.inCopy = false
			}
			continue
		}
		line := string(bytes.TrimRight(chunk, "\r\n"))
		if f.line <= 50 {
			if m := dumpedBy.FindStringSubmatch(line); m != nil {
				f.dumpVersion = m[1]
			}
		}
		switch {
		case strings.HasPrefix(line, `\connect`) || line == `\c` || strings.HasPrefix(line, `\c `):
			f.bad = fmt.Errorf("line %d switches databases (%s): the dump was made with pg_dump --create or by pg_dumpall; "+
				"dump the one database without --create", f.line, line)
			f.out = f.out[:0]
			f.err = f.bad
		case copyFromStdin.MatchString(line):
			f.inCopy = true
		case !f.midLine && skipStatement.MatchString(line):
			f.out = append(f.out[:0], '\n')
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// failure returns why the filter refused the dump, if it did.
func (f *plainFilter) failure() error { return f.bad }

// archiveDumpVersion reads the version of the pg_dump that wrote a custom,
// directory or tar archive from the archive's header.
func archiveDumpVersion(path string, format DumpFormat) (string, error) {
	switch format {
	case FormatCustom:
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		return readArchiveHeader(bufio.NewReader(f))
	case FormatDirectory:
		f, err := os.Open(filepath.Join(path, "toc.dat"))
		if err != nil {
			return "", err
		}
		defer f.Close()
		return readArchiveHeader(bufio.NewReader(f))
	case FormatTar:
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err != nil {
				return "", fmt.Errorf("find toc.dat in tar archive: %w", err)
			}
			if h.Name == "toc.dat" {
				return readArchiveHeader(bufio.NewReader(tr))
			}
		}
	}
	return "", fmt.Errorf("%s dumps have no archive header", format)
}

// readArchiveHeader parses the header pg_dump writes at the start of a
// custom archive and of toc.dat (WriteHead in pg_backup_archiver.c) and
// returns the pg_dump version recorded in it.
func readArchiveHeader(r *bufio.Reader) (string, error) {
	var fixed [11]byte // "PGDMP", major, minor, rev, intSize, offSize, format
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return "", fmt.Errorf("read archive header: %w", err)
	}
	if string(fixed[:5]) != "PGDMP" {
		return "", errors.New("read archive header: no PGDMP magic")
	}
	vmaj, vmin, intSize := fixed[5], fixed[6], int(fixed[8])
	if vmaj != 1 || vmin < 10 || intSize < 1 || intSize > 8 {
		return "", fmt.Errorf("read archive header: unknown archive version %d.%d", vmaj, vmin)
	}
	readInt := func() (int64, error) {
		var b [9]byte
		if _, err := io.ReadFull(r, b[:1+intSize]); err != nil {
			return 0, err
		}
		var v uint64
		for i := intSize; i >= 1; i-- {
			v = v<<8 | uint64(b[i])
		}
		if b[0] != 0 {
			return -int64(v), nil
		}
		return int64(v), nil
	}
	readStr := func() (string, error) {
		n, err := readInt()
		if err != nil {
			return "", err
		}
		if n <= 0 {
			return "", nil
		}
		if n > 1<<16 {
			return "", fmt.Errorf("string of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b), err
	}
	// Compression: one byte (the algorithm) since archive 1.15, an int
	// (the level) before.
	if vmin >= 15 {
		if _, err := r.ReadByte(); err != nil {
			return "", fmt.Errorf("read archive header: %w", err)
		}
	} else if _, err := readInt(); err != nil {
		return "", fmt.Errorf("read archive header: %w", err)
	}
	for range 7 { // creation date: sec, min, hour, mday, mon, year, isdst
		if _, err := readInt(); err != nil {
			return "", fmt.Errorf("read archive header: %w", err)
		}
	}
	for range 2 { // database name, server version
		if _, err := readStr(); err != nil {
			return "", fmt.Errorf("read archive header: %w", err)
		}
	}
	v, err := readStr()
	if err != nil {
		return "", fmt.Errorf("read archive header: %w", err)
	}
	if _, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0]); err != nil {
		return "", fmt.Errorf("read archive header: unexpected pg_dump version %q", v)
	}
	return v, nil
}
