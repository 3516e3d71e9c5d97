package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/internal/pgbin"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/masking"
	"github.com/jackc/pgx/v5"
)

// MaskKeyEnv is the environment variable that holds the masking key. The key
// is never taken from a file or a flag (it would end up in shell history and
// CI logs) and never logged.
const MaskKeyEnv = "DBTWIN_MASK_KEY"

// DemoMaskKey is the key the demo uses on its synthetic fixtures. It is
// public, so it protects nothing: real runs must set DBTWIN_MASK_KEY.
const DemoMaskKey = "dbtwin-demo-key-not-a-secret"

// MaskKeyFromEnv returns the masking key from DBTWIN_MASK_KEY, or an error
// that says how to set one.
func MaskKeyFromEnv() ([]byte, error) {
	k := os.Getenv(MaskKeyEnv)
	if k == "" {
		return nil, errors.New("masking needs a secret key: set " + MaskKeyEnv +
			" (at least 16 bytes, e.g. from your CI secrets; keep it stable so masked values are comparable night to night)")
	}
	return []byte(k), nil
}

// LoadMaskPlan builds the masking plan for the database schemaDSN points at
// (a source, read in a READ ONLY transaction, or any copy with the same
// schema): the rules, the catalog (columns, keys, foreign keys) and the
// key. A column without a decision fails here, naming it.
func LoadMaskPlan(ctx context.Context, schemaDSN string, rules *masking.Rules, key []byte) (*masking.Plan, *masking.Catalog, error) {
	kr, err := masking.NewKeyring(key)
	if err != nil {
		return nil, nil, fmt.Errorf("masking key from %s: %w", MaskKeyEnv, err)
	}
	conn, err := pgx.Connect(ctx, schemaDSN)
	if err != nil {
		return nil, nil, fmt.Errorf("read schema for masking from %s: %w", pgdsn.Describe(schemaDSN), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, nil, fmt.Errorf("read schema for masking from %s: %w", pgdsn.Describe(schemaDSN), err)
	}
	cat, err := masking.LoadCatalog(ctx, conn)
	if err != nil {
		return nil, nil, fmt.Errorf("read schema for masking from %s: %w", pgdsn.Describe(schemaDSN), err)
	}
	plan, err := masking.NewPlan(rules, cat, kr)
	if err != nil {
		return nil, nil, err
	}
	return plan, cat, nil
}

// MaskedClone clones sourceDSN into targetDSN, masking in the COPY stream
// with the rules and key, then audits the result before anything uses
// it: primary, unique and foreign keys validated over the masked rows, and
// a leak audit that no sampled original value of a masked column appears in
// the clone. A failed audit drops the clone (it must not be used) and says
// what failed.
func MaskedClone(ctx context.Context, sourceDSN, targetDSN string, rules *masking.Rules, key []byte, opts clone.Options) (*clone.Result, *masking.AuditReport, error) {
	plan, _, err := LoadMaskPlan(ctx, sourceDSN, rules, key)
	if err != nil {
		return nil, nil, err
	}
	opts.Masker = plan
	res, err := clone.Clone(ctx, sourceDSN, targetDSN, opts)
	if err != nil {
		return nil, nil, err
	}
	// The clone built its keys over the masked rows: they stand for the
	// audit's own counts. The audit reads every masked column of the clone
	// again, which takes a while on a large database: the log says so.
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("auditing the masked clone: keys over the masked rows, and no sampled original value in it", "database", pgdsn.Describe(targetDSN))
	start := time.Now()
	audit, err := masking.Audit(ctx, sourceDSN, targetDSN, plan, masking.AuditOptions{TrustConstraints: true, Jobs: opts.Jobs})
	if err == nil {
		err = audit.Err()
	}
	if audit != nil {
		log.Info("masked clone audited", "constraints", len(audit.Constraints), "columns", len(audit.Columns),
			"passed", err == nil, "duration", time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		if derr := dropDatabase(context.WithoutCancel(ctx), targetDSN); derr != nil {
			err = errors.Join(err, derr)
		}
		return res, audit, fmt.Errorf("audit the masked clone (dropped it): %w", err)
	}
	return res, audit, nil
}

// dropDatabase drops the database targetDSN names, from the server's
// maintenance database.
func dropDatabase(ctx context.Context, targetDSN string) error {
	db, err := pgdsn.Database(targetDSN)
	if err != nil {
		return err
	}
	maint, err := pgdsn.WithDatabase(targetDSN, "postgres")
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, maint)
	if err != nil {
		return fmt.Errorf("drop %s: %w", pgdsn.Describe(targetDSN), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	major, err := pgbin.ServerMajor(conn.PgConn().ParameterStatus("server_version"))
	if err != nil {
		return fmt.Errorf("drop %s: %w", pgdsn.Describe(targetDSN), err)
	}
	if _, err := conn.Exec(ctx, clone.DropDatabaseSQL(db, major)); err != nil {
		return fmt.Errorf("drop %s: %w", pgdsn.Describe(targetDSN), err)
	}
	return nil
}
