package harness

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/sqlinfo"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// explainable are the statements PREPARE (and so a generic EXPLAIN) takes.
var explainable = map[string]bool{"SelectStmt": true, "InsertStmt": true, "UpdateStmt": true, "DeleteStmt": true, "MergeStmt": true}

var paramRef = regexp.MustCompile(`\$([0-9]+)`)

// ExplainGeneric captures, on the baseline and the candidate, the generic
// plan of each latency row's statement (compare.LatencyRow.ExplainSQL),
// keyed by fingerprint, for Report.AttachPlans.
//
// The statement is never run and its constants never reach a plan: it is
// normalized (every constant becomes a parameter $n), prepared, and
// EXPLAINed (plain EXPLAIN, not ANALYZE) with plan_cache_mode =
// force_generic_plan and NULL for every parameter, so the plan is the one
// the server would use for any values, showing $n where values go. (This
// is PostgreSQL 16's EXPLAIN (GENERIC_PLAN), done in a way PostgreSQL 12
// and later understand.) Statements that cannot be prepared this way
// (several statements in one string, utility statements, a parameter whose
// type the server cannot infer) get no plan, and a note says why. A
// failure on one side is shown as that side's plan text.
func ExplainGeneric(ctx context.Context, baselineDSN, candidateDSN string, rows []compare.LatencyRow) (map[string]compare.Plans, []string, error) {
	type stmt struct{ fp, sql string }
	var todo []stmt
	var notes []string
	for _, row := range rows {
		sql, why := genericStatement(row.ExplainSQL)
		if why != "" {
			notes = append(notes, fmt.Sprintf("no plan for %s: %s", row.Fingerprint, why))
			continue
		}
		todo = append(todo, stmt{row.Fingerprint, sql})
	}
	if len(todo) == 0 {
		return nil, notes, nil
	}
	var out [2][]string
	for side, dsn := range []string{baselineDSN, candidateDSN} {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to %s: %w", pgdsn.Describe(dsn), err)
		}
		for _, s := range todo {
			plan, err := explainOne(ctx, conn, s.sql)
			if err != nil {
				if ctx.Err() != nil {
					conn.Close(context.WithoutCancel(ctx))
					return nil, nil, ctx.Err()
				}
				plan = "(no plan: " + explainError(err) + ")"
			}
			out[side] = append(out[side], plan)
		}
		conn.Close(context.WithoutCancel(ctx))
	}
	plans := make(map[string]compare.Plans, len(todo))
	for i, s := range todo {
		plans[s.fp] = compare.Plans{Baseline: out[0][i], Candidate: out[1][i]}
	}
	return plans, notes, nil
}

// genericStatement returns sql normalized for a generic plan, or why it
// cannot have one.
func genericStatement(sql string) (string, string) {
	if strings.TrimSpace(sql) == "" {
		return "", "no statement text"
	}
	info, err := sqlinfo.Analyze(sql)
	if err != nil {
		return "", "the statement does not parse"
	}
	if info.Statements != 1 {
		return "", fmt.Sprintf("the text holds %d statements", info.Statements)
	}
	if !explainable[info.Types[0]] {
		return "", "EXPLAIN does not take a " + info.Types[0]
	}
	norm, err := sqlinfo.Normalize(sql)
	if err != nil {
		return "", "the statement does not normalize"
	}
	return strings.TrimRight(strings.TrimSpace(norm), ";"), ""
}

// explainOne prepares sql, EXPLAINs its generic plan and deallocates it.
// Nothing is executed: EXPLAIN without ANALYZE only plans, and the
// transaction around it is rolled back.
func explainOne(ctx context.Context, conn *pgx.Conn, sql string) (string, error) {
	n := 0
	for _, m := range paramRef.FindAllStringSubmatch(sql, -1) {
		if v, err := strconv.Atoi(m[1]); err == nil && v > n {
			n = v
		}
	}
	args := make([]string, n)
	for i := range args {
		args[i] = "NULL"
	}
	if _, err := conn.Exec(ctx, "BEGIN READ ONLY; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL statement_timeout = '30s'"); err != nil {
		return "", err
	}
	// PREPARE is not transactional: deallocate after the rollback (an error
	// there only means PREPARE had failed).
	defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK; DEALLOCATE dbtwin_explain")
	if _, err := conn.Exec(ctx, "PREPARE dbtwin_explain AS "+sql); err != nil {
		return "", err
	}
	q := "EXPLAIN EXECUTE dbtwin_explain"
	if n > 0 {
		q += "(" + strings.Join(args, ", ") + ")"
	}
	rows, err := conn.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// explainError is the server's message for a failed EXPLAIN (the
// statement is normalized, so it quotes no value).
func explainError(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	return err.Error()
}
