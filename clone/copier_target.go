package clone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dbtwin/dbtwin/internal/pgbin"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TempDatabaseMarker is part of the name of every database a clone or
// restore is built in: "<target>__dbtwin_tmp_<random>". Such a database
// only outlives the clone if the process is killed; `dbtwin gc` may drop
// databases whose name contains it.
const TempDatabaseMarker = "__dbtwin_tmp_"

// NotEmptyError is returned, before any work is done, when the target
// database exists and holds user objects but Options.Replace is false.
type NotEmptyError struct {
	// Database is the target database's name.
	Database string
}

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("target database %q is not empty: pass --replace to overwrite it", e.Database)
}

// target is the database a clone or restore produces, on the server the
// target DSN names, and the temporary database it is built in.
type target struct {
	dsn      string // as the caller gave it
	desc     string // pgdsn.Describe(dsn)
	name     string // the target database
	maintDSN string // same server, database postgres (or template1)
	major    int    // server major version
	exists   bool   // the target database exists (and may be replaced)
	tmpName  string
	tmpDSN   string
	log      *slog.Logger
}

// prepareTarget checks the target server and database before any work: the
// server is reachable, the target is not a template database and, unless
// replace is set, it is empty or does not exist.
func prepareTarget(ctx context.Context, dsn string, replace bool, log *slog.Logger) (*target, error) {
	t := &target{dsn: dsn, desc: pgdsn.Describe(dsn), log: log}
	name, err := pgdsn.Database(dsn)
	if err != nil {
		return nil, fmt.Errorf("read target connection string: %w", err)
	}
	if name == "" || name == "template0" || name == "template1" {
		return nil, fmt.Errorf("target %s: database %q cannot be the target of a clone: name another database", t.desc, name)
	}
	t.name = name

	// The maintenance connection goes to "postgres", or to template1 on
	// servers without it (and when the target is "postgres" itself, which
	// a session cannot drop while connected to it).
	var conn *pgx.Conn
	for _, db := range []string{"postgres", "template1"} {
		if db == name {
			continue
		}
		mdsn, err := pgdsn.WithDatabase(dsn, db)
		if err != nil {
			return nil, fmt.Errorf("read target connection string: %w", err)
		}
		conn, err = pgx.Connect(ctx, mdsn)
		if err == nil {
			t.maintDSN = mdsn
			break
		}
		if isSQLState(err, "3D000") { // invalid_catalog_name: no such database, try the next
			continue
		}
		return nil, connectError("target server "+pgdsn.Describe(mdsn), "--target", err)
	}
	if conn == nil {
		return nil, fmt.Errorf("connect to target server %s: neither database postgres nor template1 exists", t.desc)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var versionNum int
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.current_setting('server_version_num')::int,
		EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1)`, name).Scan(&versionNum, &t.exists); err != nil {
		return nil, fmt.Errorf("inspect target server %s: %w", t.desc, err)
	}
	t.major = pgbin.MajorFromServerVersionNum(versionNum)
	if t.major < 13 {
		return nil, fmt.Errorf("target server %s runs PostgreSQL %d: dbtwin needs 13 or newer for the sandbox", t.desc, t.major)
	}
	if !t.exists || replace {
		return t, nil
	}

	tconn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if isSQLState(err, "3D000") { // dropped meanwhile
			t.exists = false
			return t, nil
		}
		return nil, connectError("target "+t.desc, "--target", err)
	}
	defer tconn.Close(context.WithoutCancel(ctx))
	var nonEmpty bool
	const inUserSchema = `n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'`
	if err := tconn.QueryRow(ctx, `SELECT
  EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE `+inUserSchema+`)
  OR EXISTS (SELECT FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE `+inUserSchema+`)
  OR EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE `+inUserSchema+`)`).Scan(&nonEmpty); err != nil {
		return nil, fmt.Errorf("inspect target %s: %w", t.desc, err)
	}
	if nonEmpty {
		return nil, &NotEmptyError{Database: name}
	}
	return t, nil
}

// locale is the encoding and locale a source database was created with.
type locale struct {
	encoding, collate, ctype string
	provider                 string // "libc" or "icu"
	icuLocale                string // set when provider is "icu"
}

// createTemp creates the temporary database, copying the source's encoding
// and locale when loc is non-nil and the target server accepts them.
func (t *target) createTemp(ctx context.Context, loc *locale) error {
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("make temporary database name: %w", err)
	}
	t.tmpName = tempName(t.name, hex.EncodeToString(suffix[:]))
	dsn, err := pgdsn.WithDatabase(t.dsn, t.tmpName)
	if err != nil {
		return err
	}
	t.tmpDSN = dsn

	if loc != nil {
		sql := "CREATE DATABASE " + pgx.Identifier{t.tmpName}.Sanitize() +
			" TEMPLATE template0 ENCODING " + quoteLiteral(loc.encoding) +
			" LC_COLLATE " + quoteLiteral(loc.collate) + " LC_CTYPE " + quoteLiteral(loc.ctype)
		// Servers before 15 know only libc locales; from 15 on, name the
		// provider, or the database would inherit template0's.
		if t.major >= 15 {
			if loc.provider == "icu" {
				sql += " LOCALE_PROVIDER icu ICU_LOCALE " + quoteLiteral(loc.icuLocale)
			} else {
				sql += " LOCALE_PROVIDER libc"
			}
		}
		err := ExecMaintenance(ctx, t.maintDSN, sql)
		if err == nil {
			t.log.Debug("created temporary database", "database", t.tmpName, "encoding", loc.encoding, "collate", loc.collate)
			return nil
		}
		if ctx.Err() != nil || isSQLState(err, "42501") || !isPgError(err) {
			return fmt.Errorf("create temporary database %q on %s: %w%s", t.tmpName, t.desc, err, privilegeHint(err))
		}
		t.log.Warn("the target server does not accept the source database's encoding or locale; "+
			"the clone uses the server's defaults, so text may sort differently than on the source",
			"encoding", loc.encoding, "collate", loc.collate, "ctype", loc.ctype, "icu_locale", loc.icuLocale, "error", err)
	}
	if err := ExecMaintenance(ctx, t.maintDSN, CreateDatabaseSQL(t.tmpName, "", t.major)); err != nil {
		return fmt.Errorf("create temporary database %q on %s: %w%s", t.tmpName, t.desc, err, privilegeHint(err))
	}
	return nil
}

// dropTemp drops the temporary database. It runs even when ctx was
// cancelled (that is when it is needed most), bounded by its own timeout.
func (t *target) dropTemp(ctx context.Context) {
	if t.tmpName == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := ExecMaintenance(ctx, t.maintDSN, DropDatabaseSQL(t.tmpName, t.major)); err != nil {
		t.log.Error("drop temporary database; drop it by hand or run `dbtwin gc`",
			"database", t.tmpName, "server", t.desc, "error", err)
		return
	}
	t.log.Debug("dropped temporary database", "database", t.tmpName)
}

// replaceWithTemp drops the target database, if it exists, and renames the
// temporary database to the target's name. No session may be connected to
// the temporary database any more.
//
// Once begun, the swap is finished even if ctx is cancelled meanwhile:
// stopping between the DROP and the RENAME would lose both the old target
// and the finished clone.
func (t *target) replaceWithTemp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if t.exists {
		if err := ExecMaintenance(ctx, t.maintDSN, DropDatabaseSQL(t.name, t.major)); err != nil {
			return fmt.Errorf("drop target database %q on %s to replace it: %w", t.name, t.desc, err)
		}
	}
	sql := "ALTER DATABASE " + pgx.Identifier{t.tmpName}.Sanitize() + " RENAME TO " + pgx.Identifier{t.name}.Sanitize()
	if err := ExecMaintenance(ctx, t.maintDSN, sql); err != nil {
		if isSQLState(err, "42P04") {
			return fmt.Errorf("rename %q to %q on %s: database %q was created meanwhile by someone else: %w",
				t.tmpName, t.name, t.desc, t.name, err)
		}
		return fmt.Errorf("rename %q to %q on %s: %w", t.tmpName, t.name, t.desc, err)
	}
	t.tmpName = "" // nothing to drop any more
	return nil
}

// build runs fill, which creates the temporary database (createTemp, at a
// moment of its choosing: a clone dumps the source's schema meanwhile),
// populates it and ends by calling replaceWithTemp. On any failure, or when
// ctx is cancelled, the temporary database is dropped if it was named:
// nothing half-built remains.
func (t *target) build(ctx context.Context, fill func(ctx context.Context) error) error {
	if err := fill(ctx); err != nil {
		t.dropTemp(ctx)
		return err
	}
	if t.tmpName != "" {
		t.dropTemp(ctx)
		return fmt.Errorf("internal error: the temporary database was not renamed to %q", t.name)
	}
	return nil
}

// tempName is "<target>__dbtwin_tmp_<suffix>", with target shortened so the
// whole fits PostgreSQL's 63-byte identifiers.
func tempName(target, suffix string) string {
	const maxIdent = 63
	keep := maxIdent - len(TempDatabaseMarker) - len(suffix)
	if len(target) > keep {
		target = target[:keep]
		for !utf8.ValidString(target) {
			target = target[:len(target)-1]
		}
	}
	return target + TempDatabaseMarker + suffix
}

// quoteLiteral quotes s as an SQL string literal
// (standard_conforming_strings, the default since PostgreSQL 9.1).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func isPgError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

func isSQLState(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// privilegeHint explains an insufficient_privilege error on CREATE
// DATABASE.
func privilegeHint(err error) string {
	if isSQLState(err, "42501") {
		return " (the target role needs the CREATEDB privilege: ALTER ROLE ... CREATEDB)"
	}
	return ""
}
