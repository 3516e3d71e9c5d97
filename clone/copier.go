package clone

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dbtwin/dbtwin/internal/pgbin"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultSplitThreshold is the size from which a table that dominates a
// clone is copied in parallel ctid ranges; see Options.SplitThreshold.
const DefaultSplitThreshold = 64 << 20

// Options configure Clone and Restore. The zero value is ready to use.
type Options struct {
	// Jobs is the number of parallel workers: COPY streams in Clone,
	// pg_restore --jobs for indexes and constraints and for Restore, and
	// ANALYZE sessions. 0 means runtime.NumCPU().
	Jobs int

	// Replace allows replacing a target database that holds user objects.
	// Without it such a target is an error (*NotEmptyError) raised before
	// any work; an empty or missing target is always fine.
	Replace bool

	// BinDir is the directory of pg_dump, pg_restore and psql. Empty means
	// pgbin.Find's search (pg_config, PATH, /usr/lib/postgresql/*/bin).
	BinDir string

	// Logger receives progress and diagnostics; nil discards them. No DSN
	// is ever logged with its password.
	Logger *slog.Logger

	// Progress receives phase and per-table events; nil means none, and
	// Logger has them at debug level instead. internal/progress renders
	// them on a terminal or as log lines.
	Progress Progress

	// SplitThreshold: a table of at least this many bytes that is also more
	// than a worker's fair share of the whole (its size > total/Jobs) is
	// copied as up to Jobs ctid ranges in parallel, each at least
	// SplitThreshold bytes (source PostgreSQL 14+, which scans TID ranges).
	// 0 means DefaultSplitThreshold (64 MiB); negative disables splitting.
	SplitThreshold int64

	// ValidateConstraints checks every CHECK constraint and foreign key
	// against the clone's rows, as pg_restore does. Otherwise one the source
	// has validated, on tables that are not masked, is added without that
	// check when the target role is a superuser (see constraints.go): the
	// rows are the source's, from one snapshot, so the check cannot fail
	// unless the source's own rows break the constraint.
	ValidateConstraints bool

	// Masker rewrites sensitive columns while rows stream, so raw values
	// never reach the target (package masking's Plan implements it). Nil
	// copies every table as it is.
	Masker Masker

	// Now is the clock for durations; nil means time.Now.
	Now func() time.Time
}

// Masker decides, per table, whether its rows are rewritten on the way from
// source to target.
//
// MaskTable is called once per table before the data phase, with the
// table's schema-qualified unquoted name ("public.users") and the columns
// the COPY reads from the source, in order (generated columns excluded: the
// target recomputes them from the masked values). It returns nil filters
// for a table that passes through untouched, as raw binary COPY bytes.
// Otherwise the text filter reads the source's COPY text-format stream from
// src and writes the rewritten rows in text format to dst, with the columns
// named by targetColumns (a masker may leave columns out so that the target
// fills in their defaults), and returns the number of rows it wrote. The
// binary filter, when not nil, does the same in binary COPY format; the
// copier uses it unless the table must travel as text anyway (types whose
// binary form embeds OIDs), which spares both servers the text conversion
// of every column. A filter must keep memory bounded (a row at a time) and
// stop promptly when ctx is cancelled. The function type is spelled out (no
// named type) so that an implementation needs nothing from this package.
//
// ChangedColumns names the columns of a table whose values the filters
// change: the clone gathers their planner statistics from the masked rows
// (ANALYZE), and copies the other columns' from the source. A column left
// out would have the source's values in the clone's statistics.
type Masker interface {
	MaskTable(table string, columns []string) (text, binary func(ctx context.Context, dst io.Writer, src io.Reader) (rows int64, err error), targetColumns []string)
	ChangedColumns(table string) []string
}

func (o Options) withDefaults() Options {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Jobs < 1 {
		o.Jobs = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.SplitThreshold == 0 {
		o.SplitThreshold = DefaultSplitThreshold
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Result says what a Clone or Restore did.
type Result struct {
	// Database is the name of the target database now holding the clone.
	Database string
	// Tables has one entry per copied table, sorted by name. Restore,
	// where pg_restore or psql copies the rows, leaves it empty.
	Tables []TableResult
	// Rows and Bytes are the sums over Tables.
	Rows, Bytes int64
	// Snapshot is the id of the source snapshot every session used
	// (Clone only).
	Snapshot string
	// Phases lists the steps in the order they ran, with durations.
	Phases []Phase
	// Duration is the wall time of the whole operation.
	Duration time.Duration
}

// VersionError is returned when a PostgreSQL client program is older than
// what it must read: pg_dump older than the source server (pg_dump refuses
// to dump a newer server), or pg_restore/psql older than the pg_dump that
// wrote a dump file. Branch on it with errors.As.
type VersionError struct {
	// Program is "pg_dump", "pg_restore" or "psql"; Path its location.
	Program, Path string
	// ProgramMajor is the program's major version.
	ProgramMajor int
	// NeedMajor is the major version it would need to be at least.
	NeedMajor int
	// Of says what has version NeedMajor: "source server user@host:5432/app"
	// or "dump file /path/app.dump".
	Of string
	// Err is the program's own failure, when it ran and failed (pg_restore's
	// "unsupported version in file header"); nil when dbtwin refused to run
	// it.
	Err error
}

func (e *VersionError) Error() string {
	s := fmt.Sprintf("%s %d (%s) cannot read %s, which is PostgreSQL %d: %s",
		e.Program, e.ProgramMajor, e.Path, e.Of, e.NeedMajor, pgbin.InstallHint(e.NeedMajor))
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the program's failure, if any.
func (e *VersionError) Unwrap() error { return e.Err }

// Clone copies the database sourceDSN names into the database targetDSN
// names, which it creates or, with Options.Replace, replaces.
//
// How:
//
//  1. One source session opens a READ ONLY, REPEATABLE READ transaction and
//     exports its snapshot (pg_export_snapshot); pg_dump (--snapshot) and
//     every worker session import it, so all of them see the database as of
//     one instant while it keeps changing. Nothing is ever written to the
//     source; a role with CONNECT, USAGE on the schemas and SELECT on the
//     tables and sequences is enough.
//  2. pg_dump --schema-only writes a custom-format archive; pg_restore
//     --section=pre-data creates types, tables and functions in a temporary
//     database "<target>__dbtwin_tmp_<random>" on the target server.
//  3. Workers (Options.Jobs) stream each table with COPY TO on the source
//     into COPY FROM on the target, largest tables first, through an
//     in-memory pipe (or, unmasked, a relay that hands the source's
//     CopyData messages to the target as they come off the socket). A
//     table that would keep one worker busy long after the others is
//     split into ctid block ranges (Options.SplitThreshold).
//     The stream is binary COPY; an array of a user-defined type (enum,
//     domain, extension type) has its element type OID rewritten to the
//     target's on the way; tables with a column whose binary form embeds
//     type OIDs deeper (composites, arrays of them) use text COPY.
//  4. Sequences get the source's values (setval), large objects are copied,
//     pg_restore --section=post-data --jobs builds indexes, constraints and
//     triggers in parallel, populated materialized views are refreshed and
//     every table is analyzed (a partitioned table as a whole only where
//     the source has statistics over it, as autovacuum never makes them).
//     Autovacuum is off on the clone's tables while it is built, and their
//     settings are put back at the end.
//     CHECK constraints and foreign keys the source has validated, on
//     unmasked tables, are not checked again row by row: the CHECKs are
//     dropped before the rows and added back after them, the keys added
//     after post-data, each marked validated, where the target role is a
//     superuser (see constraints.go).
//  5. The temporary database replaces the target (DROP ... WITH (FORCE),
//     then ALTER DATABASE ... RENAME). Before that, any failure or a
//     cancelled ctx drops the temporary database: the target is either the
//     complete clone or untouched.
//
// Owners, privileges, tablespaces, security labels, publications and
// subscriptions are not copied: the clone's objects belong to the target
// role (see restoreFlags in schema.go). Extensions are created with CREATE
// EXTENSION and must be installed on the target server.
func Clone(ctx context.Context, sourceDSN, targetDSN string, opts Options) (*Result, error) {
	o := opts.withDefaults()
	start := o.Now()
	srcDesc := pgdsn.Describe(sourceDSN)
	if err := checkDistinct(sourceDSN, targetDSN); err != nil {
		return nil, err
	}
	bin, err := pgbin.Find(ctx, o.BinDir, "pg_dump", "pg_restore")
	if err != nil {
		return nil, fmt.Errorf("find pg_dump and pg_restore: %w", err)
	}
	srcInfo, err := newConninfo(sourceDSN)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	tgt, err := prepareTarget(ctx, targetDSN, o.Replace, o.Logger)
	if err != nil {
		return nil, err
	}

	src, err := openSource(ctx, sourceDSN)
	if err != nil {
		return nil, err
	}
	defer src.close(ctx)
	if bin.Major < src.major {
		return nil, &VersionError{Program: "pg_dump", Path: bin.Program("pg_dump"),
			ProgramMajor: bin.Major, NeedMajor: src.major, Of: "source server " + srcDesc}
	}

	c := &cloner{
		o:     o,
		tools: tools{bin: bin, log: o.Logger},
		src:   src,
		srcCI: srcInfo,
		tgt:   tgt,
		res:   &Result{Database: tgt.name, Snapshot: src.snapshot},
	}
	o.Logger.Info("clone", "source", srcDesc, "target", tgt.desc, "snapshot", src.snapshot,
		"tables", len(src.tables), "jobs", o.Jobs, "pg_dump", bin.Version)
	if err := tgt.build(ctx, c.fill); err != nil {
		return nil, err
	}
	c.res.Duration = o.Now().Sub(start)
	return c.res, nil
}

// checkDistinct refuses a target that is the source itself: replacing it
// would drop the database being cloned.
func checkDistinct(sourceDSN, targetDSN string) error {
	s, err1 := pgconn.ParseConfig(sourceDSN)
	t, err2 := pgconn.ParseConfig(targetDSN)
	if err1 != nil {
		return fmt.Errorf("read source connection string %s: %w", pgdsn.Redact(sourceDSN), err1)
	}
	if err2 != nil {
		return fmt.Errorf("read target connection string %s: %w", pgdsn.Redact(targetDSN), err2)
	}
	if s.Host == t.Host && s.Port == t.Port && s.Database == t.Database {
		return fmt.Errorf("source and target are the same database (%s): name another target database", pgdsn.Describe(targetDSN))
	}
	return nil
}

// cloner carries one Clone through its phases.
type cloner struct {
	o     Options
	tools tools
	src   *source
	srcCI conninfo
	tgt   *target
	res   *Result
	mu    sync.Mutex // guards res.Tables
	// autovacuum puts back the tables' autovacuum settings, which the
	// build turns off (pauseAutovacuum).
	autovacuum string
	// superuser: the target role may write the catalog (pg_statistic,
	// pg_constraint). trustCatalog: the clone may take the source's
	// validated constraints as valid (superuser, and
	// Options.ValidateConstraints is off; see constraints.go). checks are
	// the CHECK constraints it dropped before the rows and adds back after
	// them.
	superuser    bool
	trustCatalog bool
	checks       []constraint
}

// phase runs fn as the named phase: it tells Progress and the log, and
// records the duration in the result.
func (c *cloner) phase(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	return runPhase(ctx, c.o, c.res, name, fn)
}

func runPhase(ctx context.Context, o Options, res *Result, name string, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.Progress.PhaseStart(name)
	start := o.Now()
	err := fn(ctx)
	p := Phase{Name: name, Duration: o.Now().Sub(start)}
	res.Phases = append(res.Phases, p)
	if err != nil {
		return err
	}
	o.Progress.PhaseDone(p)
	if o.logsEvents() {
		o.Logger.Debug("phase done", "phase", name, "duration", p.Duration.Round(time.Millisecond))
	}
	return nil
}

// logsEvents reports whether the log, rather than a Progress the caller
// gave (which reports them itself), has the phase and table events.
func (o Options) logsEvents() bool {
	_, none := o.Progress.(nopProgress)
	return none
}

// planForeignKeys chooses the foreign keys the clone adds without checking
// their rows (see constraints.go) and returns them with the pg_restore list
// of post-data entries that leaves them out ("" and none when the clone
// checks every key, as pg_restore does).
func (c *cloner) planForeignKeys(ctx context.Context, archive string) ([]constraint, string, error) {
	if !c.trustCatalog {
		return nil, "", nil
	}
	keys := trustedConstraints(c.src.constraints, 'f', c.src.tables)
	list, err := c.tools.postDataList(ctx, archive, keys)
	if err != nil || list == "" {
		return nil, "", err
	}
	c.o.Logger.Debug("foreign keys taken as valid from the source", "keys", len(keys))
	return keys, list, nil
}

// dropTrustedChecks drops, before the rows are loaded, the CHECK
// constraints the clone takes as valid from the source (see
// constraints.go), and records them in c.checks to be added back after the
// rows. If they cannot be dropped they stay, and the rows are checked.
func (c *cloner) dropTrustedChecks(ctx context.Context) error {
	if !c.trustCatalog {
		return nil
	}
	checks := trustedConstraints(c.src.constraints, 'c', c.src.tables)
	if len(checks) == 0 {
		return nil
	}
	desc := fmt.Sprintf("temporary database %q on %s", c.tgt.tmpName, c.tgt.desc)
	conn, err := connectTarget(ctx, c.tgt.tmpDSN, desc)
	if err != nil {
		return err
	}
	err = dropChecks(ctx, conn, checks)
	conn.Close(context.WithoutCancel(ctx))
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		// All or none were dropped: none, so COPY checks them.
		c.o.Logger.Warn("CHECK constraints stay in place while the rows load, and are checked", "target", desc, "err", err)
	default:
		c.checks = checks
		c.o.Logger.Debug("CHECK constraints taken as valid from the source", "constraints", len(checks))
	}
	return nil
}

// fill builds the clone in the temporary database.
func (c *cloner) fill(ctx context.Context) error {
	dir, cleanup, err := tempDir()
	if err != nil {
		return err
	}
	defer cleanup()
	archive := schemaArchive(dir)
	var tmpCI conninfo
	var tmpDesc string

	err = c.phase(ctx, PhaseSchema, func(ctx context.Context) error {
		// pg_dump reads the source while the target server creates the
		// temporary database: each waits on a different server.
		g := newGroup(ctx)
		g.Go(func(ctx context.Context) error { return c.tgt.createTemp(ctx, c.src.locale) })
		g.Go(func(ctx context.Context) error {
			if err := c.tools.dumpSchema(ctx, c.srcCI, c.src.snapshot, archive); err != nil {
				return fmt.Errorf("dump schema of source %s: %w", c.src.desc, withHint(err))
			}
			return nil
		})
		if err := g.Wait(); err != nil {
			return err
		}
		var err error
		if tmpCI, err = newConninfo(c.tgt.tmpDSN); err != nil {
			return err
		}
		tmpDesc = fmt.Sprintf("temporary database %q on %s", c.tgt.tmpName, c.tgt.desc)
		if err := c.tools.restoreSection(ctx, tmpCI, archive, "pre-data", "", 1, 0); err != nil {
			return fmt.Errorf("restore schema (pre-data) into %s: %w", tmpDesc, withHint(err))
		}
		conn, err := connectTarget(ctx, c.tgt.tmpDSN, tmpDesc)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if c.superuser, err = canWriteCatalog(ctx, conn); err != nil {
			return fmt.Errorf("read the role of %s: %w", tmpDesc, err)
		}
		c.trustCatalog = c.superuser && !c.o.ValidateConstraints
		if !c.superuser {
			c.o.Logger.Debug("the target role is not a superuser: every constraint is checked on the clone's rows")
		}
		c.autovacuum, err = pauseAutovacuum(ctx, conn)
		return err
	})
	if err != nil {
		return err
	}

	if err := c.phase(ctx, PhaseData, c.copyData); err != nil {
		return err
	}

	// One target session for sequences and large objects.
	tconn, err := connectTarget(ctx, c.tgt.tmpDSN, tmpDesc)
	if err != nil {
		return err
	}
	defer tconn.Close(context.WithoutCancel(ctx))

	err = c.phase(ctx, PhaseSequences, func(ctx context.Context) error {
		seqs, err := readSequences(ctx, c.src.conn)
		if err != nil {
			return fmt.Errorf("read sequences of source %s: %w%s", c.src.desc, err, sourcePrivilegeHint(err))
		}
		if err := setSequences(ctx, tconn, seqs); err != nil {
			return err
		}
		if err := copyLargeObjects(ctx, c.src.conn, tconn, c.src.largeObjects); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	var stats *statsPlan
	err = c.phase(ctx, PhasePostData, func(ctx context.Context) error {
		// CHECK constraints come back before the index builds, which
		// ADD CONSTRAINT would wait for.
		if err := addTrusted(ctx, tconn, c.checks); err != nil {
			return fmt.Errorf("add CHECK constraints to %s: %w", tmpDesc, err)
		}
		trusted, list, err := c.planForeignKeys(ctx, archive)
		if err != nil {
			return err
		}
		g := newGroup(ctx)
		// Planner statistics are read while the source's snapshot
		// transaction still holds its locks (they keep every column's type
		// what the rows were copied as), then the source is closed, rather
		// than hold back its vacuum while the indexes build.
		g.Go(func(ctx context.Context) error {
			defer c.src.close(ctx)
			var err error
			stats, err = copyStats(ctx, c.src.conn, tconn, c.superuser, c.src.tables, c.res.Tables, c.o.Logger)
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				c.o.Logger.Warn("planner statistics not copied from the source: the clone runs ANALYZE instead", "err", err)
				stats = nil
			case stats != nil:
				c.o.Logger.Debug("planner statistics copied from the source", "columns", stats.copied,
					"relations", len(stats.done), "expression index columns", len(stats.indexRows))
			}
			return nil
		})
		if len(c.src.matviews) > 0 {
			// Materialized views refresh in a session of their own while
			// pg_restore builds the indexes: a refresh only reads the
			// tables, which index builds and constraints do not block,
			// and a single session would otherwise run it at the end with
			// the other cores idle. (An index of a view waits for its
			// refresh, then is built over the refreshed rows.)
			g.Go(func(ctx context.Context) error {
				conn, err := connectTarget(ctx, c.tgt.tmpDSN, tmpDesc)
				if err != nil {
					return err
				}
				defer conn.Close(context.WithoutCancel(ctx))
				// Alongside pg_restore's sessions, as they run.
				w := parallelWorkers(runtime.NumCPU(), c.o.Jobs+1)
				if err := execSimple(ctx, conn.PgConn(), fmt.Sprintf("SET max_parallel_workers_per_gather = %d", w)); err != nil {
					return fmt.Errorf("set up session on %s: %w", tmpDesc, err)
				}
				return refreshMatviews(ctx, conn, c.src.matviews, c.o.Logger)
			})
		}
		g.Go(func(ctx context.Context) error {
			var largest int64
			for _, t := range c.src.tables {
				largest = max(largest, t.bytes)
			}
			if err := c.tools.restoreSection(ctx, tmpCI, archive, "post-data", list, c.o.Jobs, postDataSortMemory(largest)); err != nil {
				return fmt.Errorf("restore indexes, constraints and triggers (post-data) into %s: %w", tmpDesc, withHint(err))
			}
			if len(trusted) == 0 {
				return nil
			}
			conn, err := connectTarget(ctx, c.tgt.tmpDSN, tmpDesc)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if err := addTrusted(ctx, conn, trusted); err != nil {
				return fmt.Errorf("add foreign keys to %s: %w", tmpDesc, err)
			}
			return nil
		})
		return g.Wait()
	})
	if err != nil {
		return err
	}
	if err := c.phase(ctx, PhaseAnalyze, func(ctx context.Context) error {
		if stats != nil {
			if err := finishStats(ctx, tconn, stats); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.o.Logger.Warn("planner statistics of index expressions not copied from the source: the clone runs ANALYZE instead", "err", err)
				stats = nil
			}
		}
		tconn.Close(ctx)
		return analyzeAll(ctx, c.tgt.tmpDSN, tmpDesc, c.o.Jobs, c.src.parentStats, stats)
	}); err != nil {
		return err
	}
	return c.phase(ctx, PhaseFinish, func(ctx context.Context) error {
		if c.autovacuum != "" {
			conn, err := connectTarget(ctx, c.tgt.tmpDSN, tmpDesc)
			if err != nil {
				return err
			}
			err = execSimple(ctx, conn.PgConn(), c.autovacuum)
			conn.Close(context.WithoutCancel(ctx))
			if err != nil {
				return fmt.Errorf("put the tables' autovacuum settings back in %s: %w", tmpDesc, err)
			}
		}
		return c.tgt.replaceWithTemp(ctx)
	})
}

// source is the session that exports the snapshot, with what was read
// under it.
type source struct {
	conn         *pgx.Conn
	cfg          *pgx.ConnConfig
	desc         string
	major        int
	snapshot     string
	locale       *locale
	tables       []*table
	matviews     []matview
	largeObjects []uint32
	// parentStats holds the (quoted, qualified) tables that have
	// statistics over their inheritance children on the source: which
	// partitioned tables the clone analyzes as a whole (analyzeAll).
	parentStats map[string]bool
	// constraints are the source's validated CHECK constraints and foreign
	// keys the clone may take as valid (listConstraints).
	constraints []constraint
	closeOnce   sync.Once
}

// openSource connects to the source, starts the snapshot transaction,
// reads the catalog under it and locks the tables it will copy in ACCESS
// SHARE mode (as pg_dump does), so that no DROP, TRUNCATE or ALTER can
// change them until the clone ends; ordinary writes continue.
func openSource(ctx context.Context, dsn string) (*source, error) {
	s := &source{desc: pgdsn.Describe(dsn)}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("read source connection string %s: %w", pgdsn.Redact(dsn), err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "dbtwin clone"
	}
	s.cfg = cfg
	s.conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError("source "+s.desc, "--source", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.close(ctx)
		}
	}()
	if err := execSimple(ctx, s.conn.PgConn(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, fmt.Errorf("begin snapshot transaction on source %s: %w", s.desc, err)
	}
	var versionNum int
	if err := s.conn.QueryRow(ctx, `SELECT pg_catalog.pg_export_snapshot(),
		pg_catalog.current_setting('server_version_num')::int`).Scan(&s.snapshot, &versionNum); err != nil {
		return nil, fmt.Errorf("export snapshot on source %s: %w", s.desc, err)
	}
	s.major = pgbin.MajorFromServerVersionNum(versionNum)

	loc := &locale{provider: "libc"}
	icu := "NULL"
	switch {
	case s.major >= 17:
		icu = "CASE WHEN d.datlocprovider = 'i' THEN d.datlocale END"
	case s.major >= 15:
		icu = "CASE WHEN d.datlocprovider = 'i' THEN d.daticulocale END"
	}
	var icuLocale *string
	if err := s.conn.QueryRow(ctx, `SELECT pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, `+icu+`
		FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`).
		Scan(&loc.encoding, &loc.collate, &loc.ctype, &icuLocale); err != nil {
		return nil, fmt.Errorf("read encoding of source %s: %w", s.desc, err)
	}
	if icuLocale != nil {
		loc.provider, loc.icuLocale = "icu", *icuLocale
	}
	s.locale = loc

	if s.tables, err = listTables(ctx, s.conn, s.major); err != nil {
		return nil, fmt.Errorf("read catalog of source %s: %w", s.desc, err)
	}
	if s.matviews, err = listPopulatedMatviews(ctx, s.conn); err != nil {
		return nil, fmt.Errorf("read catalog of source %s: %w", s.desc, err)
	}
	if s.largeObjects, err = listLargeObjects(ctx, s.conn); err != nil {
		return nil, fmt.Errorf("read catalog of source %s: %w", s.desc, err)
	}
	if s.parentStats, err = listParentStats(ctx, s.conn); err != nil {
		return nil, fmt.Errorf("read statistics of source %s: %w", s.desc, err)
	}
	if s.constraints, err = listConstraints(ctx, s.conn, s.major); err != nil {
		return nil, fmt.Errorf("read catalog of source %s: %w", s.desc, err)
	}
	for batch := range slices.Chunk(s.tables, 500) {
		names := make([]string, len(batch))
		for i, t := range batch {
			names[i] = t.ident()
		}
		if err := execSimple(ctx, s.conn.PgConn(), "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS SHARE MODE"); err != nil {
			return nil, fmt.Errorf("lock tables on source %s: %w%s", s.desc, err, sourcePrivilegeHint(err))
		}
	}
	ok = true
	return s, nil
}

// close ends the snapshot transaction and the session; later calls do
// nothing.
func (s *source) close(ctx context.Context) {
	s.closeOnce.Do(func() {
		if s.conn != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			s.conn.Close(ctx)
		}
	})
}

// sessionSetup makes text COPY unambiguous between two servers whatever
// their configured defaults: ISO dates, standard interval output, floats
// with full precision (PostgreSQL < 12 rounds them otherwise), UTC.
const sessionSetup = "SET datestyle = ISO; SET intervalstyle = postgres; SET extra_float_digits = 3; SET timezone = 'UTC'"

// connectWorkerSource opens a source session inside the exported snapshot.
// row_security = off makes a table whose row-level security policies would
// hide rows from this role an error instead of a silently partial copy.
func (s *source) connectWorker(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.cfg)
	if err != nil {
		return nil, connectError("source "+s.desc, "--source", err)
	}
	for _, sql := range []string{
		sessionSetup + "; SET row_security = off",
		"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		"SET TRANSACTION SNAPSHOT " + quoteLiteral(s.snapshot),
	} {
		if err := execSimple(ctx, conn.PgConn(), sql); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("join snapshot %s on source %s: %w", s.snapshot, s.desc, err)
		}
	}
	return conn, nil
}

// sourcePrivilegeHint explains an insufficient_privilege error on the
// source.
func sourcePrivilegeHint(err error) string {
	if isSQLState(err, "42501") {
		return " (the source role needs USAGE on every schema and SELECT on every table and sequence: " +
			"GRANT SELECT ON ALL TABLES IN SCHEMA s TO role; GRANT SELECT ON ALL SEQUENCES IN SCHEMA s TO role)"
	}
	return ""
}

// connectTarget opens a session on the temporary database.
func connectTarget(ctx context.Context, dsn, desc string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", desc, err)
	}
	if err := execSimple(ctx, conn.PgConn(), sessionSetup+"; SET synchronous_commit = off"); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("set up session on %s: %w", desc, err)
	}
	return conn, nil
}

// execSimple runs sql (one or more statements, no parameters) with the
// simple query protocol.
func execSimple(ctx context.Context, conn *pgconn.PgConn, sql string) error {
	_, err := conn.Exec(ctx, sql).ReadAll()
	return err
}

// tableState aggregates the chunks of one table.
type tableState struct {
	t      *table
	chunks int

	mu        sync.Mutex
	remaining int
	rows      int64
	bytes     int64
	start     time.Time
}

// job is one COPY: a whole table, or the block range [from, to) of it
// (to < 0: to the end).
type job struct {
	ts       *tableState
	split    bool
	from, to int64
	estBytes int64
}

// splitRanges decides whether t is copied whole (nil) or as block ranges
// [from, to) with the last range open-ended (to = -1). See
// Options.SplitThreshold for the rule. total is the size of all tables.
func splitRanges(t *table, total int64, jobs int, threshold int64, tidRange bool) [][2]int64 {
	if !tidRange || jobs < 2 || threshold < 0 || t.bytes < threshold || t.blocks < 2 {
		return nil
	}
	if t.bytes*int64(jobs) <= total { // no more than a fair share of the work
		return nil
	}
	chunkBytes := max(threshold, (t.bytes+int64(jobs)-1)/int64(jobs))
	n := min(int64(jobs), (t.bytes+chunkBytes-1)/chunkBytes, t.blocks)
	if n < 2 {
		return nil
	}
	per := (t.blocks + n - 1) / n
	var ranges [][2]int64
	for from := int64(0); from < t.blocks; from += per {
		ranges = append(ranges, [2]int64{from, from + per})
	}
	// Rows in blocks added after the size was read are invisible to the
	// snapshot, but an open end costs nothing and guards against a size
	// read that lags.
	ranges[len(ranges)-1][1] = -1
	return ranges
}

// planJobs turns tables into COPY jobs, largest first.
func planJobs(tables []*table, jobs int, threshold int64, tidRange bool) ([]job, []*tableState) {
	var total int64
	for _, t := range tables {
		total += t.bytes
	}
	var js []job
	var states []*tableState
	for _, t := range tables {
		ranges := splitRanges(t, total, jobs, threshold, tidRange)
		ts := &tableState{t: t, chunks: max(1, len(ranges))}
		ts.remaining = ts.chunks
		states = append(states, ts)
		if ranges == nil {
			js = append(js, job{ts: ts, estBytes: t.bytes})
			continue
		}
		for _, r := range ranges {
			js = append(js, job{ts: ts, split: true, from: r[0], to: r[1], estBytes: t.bytes / int64(len(ranges))})
		}
	}
	slices.SortStableFunc(js, func(a, b job) int {
		switch {
		case a.estBytes > b.estBytes:
			return -1
		case a.estBytes < b.estBytes:
			return 1
		}
		return 0
	})
	return js, states
}

// worker is a pair of sessions: one on the source, in the snapshot, and
// one on the temporary database.
type worker struct {
	src, dst *pgx.Conn
}

func (w *worker) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if w.src != nil {
		w.src.Close(ctx)
	}
	if w.dst != nil {
		w.dst.Close(ctx)
	}
}

// copyData is the data phase: every table, in parallel workers.
func (c *cloner) copyData(ctx context.Context) error {
	jobs, states := planJobs(c.src.tables, c.o.Jobs, c.o.SplitThreshold, c.src.major >= 14)
	plan := make([]TableInfo, len(states))
	for i, ts := range states {
		if c.o.Masker != nil {
			text, binary, cols := c.o.Masker.MaskTable(ts.t.String(), ts.t.cols)
			ts.t.masked = text != nil
			if ts.t.masked {
				ts.t.changed = c.o.Masker.ChangedColumns(ts.t.String())
			}
			switch {
			case text == nil:
				// Nothing to mask: the table stays raw bytes.
			case binary != nil && !ts.t.text:
				// Arrays to relabel are relabelled after the masker
				// (resolveRelabels).
				ts.t.filter, ts.t.targetCols = binary, cols
			default:
				ts.t.filter, ts.t.targetCols = text, cols
				if !ts.t.text {
					ts.t.text, ts.t.reason = true, "masked"
				}
			}
		}
		plan[i] = TableInfo{Name: ts.t.String(), Bytes: ts.t.bytes, Chunks: ts.chunks}
		if ts.t.text {
			c.o.Logger.Debug("copy in text format", "table", ts.t.String(), "reason", ts.t.reason)
		}
	}
	// Now that the masked tables are known, and before any row.
	if err := c.dropTrustedChecks(ctx); err != nil {
		return err
	}
	c.o.Progress.Start(plan)
	if len(jobs) == 0 {
		return nil
	}

	n := min(c.o.Jobs, len(jobs))
	workers := make([]*worker, n)
	defer func() {
		for _, w := range workers {
			if w != nil {
				w.close(ctx)
			}
		}
	}()
	tmpDesc := fmt.Sprintf("temporary database %q on %s", c.tgt.tmpName, c.tgt.desc)
	g := newGroup(ctx)
	for i := range workers {
		g.Go(func(ctx context.Context) error {
			w := &worker{}
			workers[i] = w
			var err error
			if w.src, err = c.src.connectWorker(ctx); err != nil {
				return err
			}
			w.dst, err = connectTarget(ctx, c.tgt.tmpDSN, tmpDesc)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	if err := resolveRelabels(ctx, workers[0].dst, c.src.tables); err != nil {
		return err
	}

	queue := make(chan job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	g = newGroup(ctx)
	for _, w := range workers {
		g.Go(func(ctx context.Context) error {
			for j := range queue {
				if err := c.copyJob(ctx, w, j); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	slices.SortFunc(c.res.Tables, func(a, b TableResult) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// copyJob copies one table or one range of it.
//
// A whole table loads as BEGIN; TRUNCATE; COPY ... (FREEZE); COMMIT. The
// TRUNCATE gives the table a new, empty file inside this transaction, which
// makes COPY FREEZE legal (rows are written already frozen, so the clone's
// first VACUUM does not rewrite every page) and lets a server at
// wal_level=minimal, as sandboxes run, skip WAL for the whole load. Chunks
// of a split table load concurrently from several sessions, none of which
// may TRUNCATE under the others, so they use a plain COPY.
func (c *cloner) copyJob(ctx context.Context, w *worker, j job) error {
	t := j.ts.t
	j.ts.mu.Lock()
	if j.ts.start.IsZero() {
		j.ts.start = c.o.Now()
	}
	j.ts.mu.Unlock()

	format := t.format()
	var srcSQL string
	if j.split {
		cond := fmt.Sprintf("ctid >= '(%d,0)'::tid", j.from)
		if j.to >= 0 {
			cond += fmt.Sprintf(" AND ctid < '(%d,0)'::tid", j.to)
		}
		// ONLY: a SELECT on an inheritance parent would also return its
		// children's rows, which are copied as tables of their own.
		srcSQL = fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT (FORMAT %s)",
			strings.TrimSuffix(strings.TrimPrefix(t.colList(), "("), ")"), t.ident(), cond, format)
	} else {
		srcSQL = fmt.Sprintf("COPY %s %s TO STDOUT (FORMAT %s)", t.ident(), t.colList(), format)
	}
	dstSQL := fmt.Sprintf("COPY %s %s FROM STDIN (FORMAT %s)", t.ident(), t.targetColList(), format)

	what := fmt.Sprintf("clone table %q", t.String())
	if j.split {
		what += fmt.Sprintf(" (blocks %d to %s)", j.from, blockEnd(j.to))
	}
	if !j.split {
		dstSQL = strings.TrimSuffix(dstSQL, ")") + ", FREEZE)"
		if err := execSimple(ctx, w.dst.PgConn(), "BEGIN; TRUNCATE ONLY "+t.ident()); err != nil {
			return fmt.Errorf("%s: truncate target: %w", what, err)
		}
	}
	name := t.String()
	advance := func(n int64) { c.o.Progress.Advance(name, n) }
	var rows, n int64
	var err error
	if t.filter == nil {
		var rel *arrayRelabeler
		if t.relabelOIDs != nil {
			rel = newArrayRelabeler(len(t.cols), t.relabelOIDs)
		}
		rows, n, err = relay(ctx, w.src.PgConn(), w.dst.PgConn(), srcSQL, dstSQL, rel, advance)
	} else {
		rows, n, err = stream(ctx, w.src.PgConn(), w.dst.PgConn(), srcSQL, dstSQL, t.filter, advance)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !j.split {
		if err := execSimple(ctx, w.dst.PgConn(), "COMMIT"); err != nil {
			return fmt.Errorf("%s: commit: %w", what, err)
		}
	}

	j.ts.mu.Lock()
	j.ts.rows += rows
	j.ts.bytes += n
	j.ts.remaining--
	done := j.ts.remaining == 0
	r := TableResult{Name: name, Rows: j.ts.rows, Bytes: j.ts.bytes, Chunks: j.ts.chunks,
		Format: format, Masked: t.masked, Duration: c.o.Now().Sub(j.ts.start)}
	j.ts.mu.Unlock()
	if done {
		c.mu.Lock()
		c.res.Tables = append(c.res.Tables, r)
		c.res.Rows += r.Rows
		c.res.Bytes += r.Bytes
		c.mu.Unlock()
		if c.o.logsEvents() {
			c.o.Logger.Debug("table copied", "table", name, "rows", r.Rows, "bytes", r.Bytes,
				"chunks", r.Chunks, "format", r.Format, "duration", r.Duration)
		}
		c.o.Progress.TableDone(r)
	}
	return nil
}

func blockEnd(to int64) string {
	if to < 0 {
		return "end"
	}
	return fmt.Sprint(to)
}

// errTargetStopped is how the target side of a stream tells the source side
// to stop writing.
var errTargetStopped = errors.New("target stopped reading")

// progressEvery is how many bytes a stream copies between Advance calls.
const progressEvery = 1 << 20

// stream runs srcSQL (COPY ... TO STDOUT) on src and dstSQL (COPY ... FROM
// STDIN) on dst at the same time, with filter (a masker's) between them,
// joined by in-memory pipes: memory use is a few buffers, whatever the
// table's size. A table without a filter goes through relay instead. It
// returns the rows loaded (the COPY FROM command tag) and the bytes that
// came out of the source.
func stream(ctx context.Context, src, dst *pgconn.PgConn, srcSQL, dstSQL string,
	filter func(context.Context, io.Writer, io.Reader) (int64, error), advance func(int64)) (rows, bytes int64, err error) {
	pr, pw := io.Pipe()
	// CopyFrom's reader goroutine blocks in pr.Read and CopyTo in pw.Write;
	// closing the pipe on cancellation unblocks both at once.
	stop := context.AfterFunc(ctx, func() {
		pr.CloseWithError(ctx.Err())
		pw.CloseWithError(ctx.Err())
	})
	defer stop()

	// in is what the target reads: the source's pipe, or the filter's.
	in := pr
	var filterErr error
	filterDone := make(chan struct{})
	if filter == nil {
		close(filterDone)
	} else {
		fr, fw := io.Pipe()
		stopF := context.AfterFunc(ctx, func() {
			fr.CloseWithError(ctx.Err())
			fw.CloseWithError(ctx.Err())
		})
		defer stopF()
		in = fr
		go func() {
			defer close(filterDone)
			bw := bufio.NewWriterSize(fw, 256<<10)
			_, err := filter(ctx, bw, pr)
			if err == nil {
				err = bw.Flush()
			}
			filterErr = err
			// Unblock the source if the filter stopped early, and end the
			// target's input (nil: EOF).
			pr.CloseWithError(errTargetStopped)
			fw.CloseWithError(err)
		}()
	}

	cw := &countingWriter{advance: advance}
	var srcErr error
	srcDone := make(chan struct{})
	go func() {
		defer close(srcDone)
		// The server sends one CopyData message per row; the buffer turns
		// them into large pipe writes, so the two goroutines hand over
		// 256 KiB at a time instead of one row at a time.
		bw := bufio.NewWriterSize(pw, 256<<10)
		cw.w = bw
		_, err := src.CopyTo(ctx, cw, srcSQL)
		if err == nil {
			err = bw.Flush()
		}
		cw.report()
		srcErr = err
		pw.CloseWithError(err) // nil: the reader sees EOF
	}()
	tag, dstErr := dst.CopyFrom(ctx, in, dstSQL)
	in.CloseWithError(errTargetStopped)
	<-filterDone
	pr.CloseWithError(errTargetStopped)
	<-srcDone

	switch {
	case ctx.Err() != nil:
		return 0, cw.n, ctx.Err()
	case srcErr != nil && !errors.Is(srcErr, errTargetStopped):
		return 0, cw.n, fmt.Errorf("copy out of source: %w", srcErr)
	case filterErr != nil && !errors.Is(filterErr, errTargetStopped):
		return 0, cw.n, fmt.Errorf("mask: %w", filterErr)
	case dstErr != nil:
		return 0, cw.n, fmt.Errorf("copy into target: %w", dstErr)
	}
	return tag.RowsAffected(), cw.n, nil
}

// countingWriter counts the bytes written through it and reports them to
// advance every progressEvery bytes.
type countingWriter struct {
	w        io.Writer
	n        int64
	reported int64
	advance  func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.n-c.reported >= progressEvery {
		c.report()
	}
	return n, err
}

func (c *countingWriter) report() {
	if d := c.n - c.reported; d > 0 {
		c.reported = c.n
		c.advance(d)
	}
}

// setSequences gives each sequence in the temporary database the source's
// state, in one round trip.
func setSequences(ctx context.Context, conn *pgx.Conn, seqs []*sequence) error {
	if len(seqs) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, s := range seqs {
		batch.Queue("SELECT pg_catalog.setval($1::text::regclass, $2, $3)", s.ident(), s.lastValue, s.isCalled).Exec(func(_ pgconn.CommandTag) error { return nil })
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("set sequences in the clone: %w", err)
	}
	return nil
}

// largeObjectChunk is how much of a large object is read per round trip.
const largeObjectChunk = 1 << 20

// copyLargeObjects copies each large object's contents (pg_dump before
// PostgreSQL 17 puts no large objects in a --schema-only dump; 17 and later
// create them empty in pre-data), a chunk at a time. Reading one needs
// SELECT on it on the source.
func copyLargeObjects(ctx context.Context, src, dst *pgx.Conn, oids []uint32) error {
	for _, oid := range oids {
		if _, err := dst.Exec(ctx, `SELECT pg_catalog.lo_create($1)
			WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_largeobject_metadata WHERE oid = $1)`, oid); err != nil {
			return fmt.Errorf("create large object %d in the clone: %w", oid, err)
		}
		for off := int64(0); ; off += largeObjectChunk {
			var data []byte
			if err := src.QueryRow(ctx, "SELECT pg_catalog.lo_get($1, $2, $3)", oid, off, largeObjectChunk).Scan(&data); err != nil {
				return fmt.Errorf("read large object %d on the source: %w", oid, err)
			}
			if len(data) > 0 {
				if _, err := dst.Exec(ctx, "SELECT pg_catalog.lo_put($1, $2, $3)", oid, off, data); err != nil {
					return fmt.Errorf("write large object %d in the clone: %w", oid, err)
				}
			}
			if len(data) < largeObjectChunk {
				break
			}
		}
	}
	return nil
}

// refreshMatviews refreshes the materialized views populated on the source.
// A materialized view reading another must wait until that one is
// refreshed; rather than compute the order from pg_depend, each round
// retries the failures of the previous one until a round makes no progress.
func refreshMatviews(ctx context.Context, conn *pgx.Conn, mvs []matview, log *slog.Logger) error {
	pending := mvs
	for len(pending) > 0 {
		var failed []matview
		var lastErr error
		for _, m := range pending {
			if err := execSimple(ctx, conn.PgConn(), "REFRESH MATERIALIZED VIEW "+m.ident()); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				log.Debug("refresh materialized view; will retry after the others", "view", m.String(), "error", err)
				failed = append(failed, m)
				lastErr = fmt.Errorf("refresh materialized view %q: %w", m.String(), err)
			}
		}
		if len(failed) == len(pending) {
			return lastErr
		}
		pending = failed
	}
	return nil
}
