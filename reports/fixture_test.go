package reports

import (
	"time"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/migrate"
)

const ms = time.Millisecond

// fixture is a hand-written report that exercises every class, noise,
// a latency regression with plans, final-state differences, migrations
// with locks (one failed, run by a command whose URL holds a password)
// and lint findings, over two tenants (one failing, one passing).
func fixture() *compare.Report {
	policy := compare.Policy{LatencyRatio: 2, LatencyFloor: 5 * ms, LatencyGate: "p95", WarmUp: 1, FailOnLint: "error"}
	ok1 := compare.Outcome{Status: "ok", Tag: "SELECT 1", Rows: 1}
	ok3 := compare.Outcome{Status: "ok", Tag: "SELECT 3", Rows: 3}
	finding := func(fp string, class compare.Class, reg bool, counts []compare.StatementCount, ex compare.Example) compare.Finding {
		n := 0
		for _, c := range counts {
			n += c.Count
		}
		if ex.Class == "" {
			ex.Class = class
		}
		return compare.Finding{Fingerprint: fp, Class: class, Regression: reg, Count: n, Classes: counts, Example: ex}
	}
	sc := func(c compare.Class, n int) compare.StatementCount { return compare.StatementCount{Class: c, Count: n} }
	d := func(note string, lines ...compare.DiffLine) *compare.Diff {
		return &compare.Diff{Note: note, Lines: lines}
	}
	del := func(s string) compare.DiffLine { return compare.DiffLine{Op: compare.DiffDelete, Text: s} }
	ins := func(s string) compare.DiffLine { return compare.DiffLine{Op: compare.DiffInsert, Text: s} }
	eq := func(s string) compare.DiffLine { return compare.DiffLine{Op: compare.DiffEqual, Text: s} }
	gap := func(s string) compare.DiffLine { return compare.DiffLine{Op: compare.DiffElided, Text: s} }

	acme := compare.TenantReport{
		Tenant: "acme",
		Policy: policy,
		Inputs: compare.Inputs{
			Baseline:  compare.SideInput{Results: 1480, Mode: "ordered", SampleRows: 20, Errors: 3, StatementTime: 2140 * ms},
			Candidate: compare.SideInput{Results: 1479, Mode: "ordered", SampleRows: 20, Errors: 15, StatementTime: 4410 * ms},
			Control:   &compare.SideInput{Results: 1480, Mode: "ordered", SampleRows: 20, Errors: 3, StatementTime: 2160 * ms},
			Pairs:     1481,
		},
		Env: compare.Env{PostgresBaseline: "15.8", PostgresCandidate: "15.8", Phases: []compare.Phase{
			{Name: "clone", Duration: 1840 * ms}, {Name: "migrate", Duration: 1510 * ms}, {Name: "replay", Duration: 6900 * ms}, {Name: "compare", Duration: 120 * ms}}},
		Findings: []compare.Finding{
			finding("a1b2c3d4e5f60718", compare.NewError, true, []compare.StatementCount{sc(compare.NewError, 12)}, compare.Example{
				Session: "6650f1a2.3e1", Seq: 1042, SQL: "SELECT id, email, full_name FROM users WHERE account_id = $1 ORDER BY id",
				Baseline: ok3, Candidate: compare.Outcome{Status: "error", SQLState: "42703", Message: `column "full_name" does not exist`},
				Diff: d("", del("ok SELECT 3 (3 rows)"), ins(`error 42703: column "full_name" does not exist`))}),
			finding("b2c3d4e5f6071829", compare.DifferentRows, true, []compare.StatementCount{sc(compare.DifferentRows, 38), sc(compare.Same, 2)}, compare.Example{
				Session: "6650f1a2.3e4", Seq: 77, SQL: "SELECT account_id, sum(amount) AS total FROM invoices WHERE issued_at >= $1 GROUP BY account_id",
				Baseline: ok3, Candidate: ok3,
				Diff: d("no top-level ORDER BY: rows compared as a multiset, shown sorted", eq("account_id | total"), del("11 | 1234.57"), del("12 | 99.99"), ins("11 | 1235"), ins("12 | 100"), eq("13 | 7.00"), gap("3 lines unchanged"))}),
			finding("c3d4e5f607182930", compare.DifferentColumns, true, []compare.StatementCount{sc(compare.DifferentColumns, 5)}, compare.Example{
				Session: "6650f1a2.3e4", Seq: 80, SQL: "SELECT * FROM invoices WHERE id = $1",
				Baseline: ok1, Candidate: ok1, Diff: d("", eq("id int8"), del("amount numeric"), ins("amount int4"), eq("issued_at timestamptz"))}),
			finding("d4e5f60718293041", compare.DifferentRowCount, true, []compare.StatementCount{sc(compare.DifferentRowCount, 3), sc(compare.Same, 9)}, compare.Example{
				Session: "6650f1a2.3e7", Seq: 233, SQL: "UPDATE orders SET status = $1 WHERE status = $2 AND placed_at < now() - $3::interval",
				Baseline: compare.Outcome{Status: "ok", Tag: "UPDATE 4"}, Candidate: compare.Outcome{Status: "ok", Tag: "UPDATE 3"},
				Diff: d("", del("ok UPDATE 4"), ins("ok UPDATE 3"))}),
			finding("e5f6071829304152", compare.ChangedError, true, []compare.StatementCount{sc(compare.ChangedError, 1)}, compare.Example{
				Session: "6650f1a2.3f0", Seq: 301, SQL: "INSERT INTO users (account_id, email) VALUES ($1, $2)",
				Baseline:  compare.Outcome{Status: "error", SQLState: "23505", Message: `duplicate key value violates unique constraint "users_email_key"`},
				Candidate: compare.Outcome{Status: "error", SQLState: "23502", Message: `null value in column "full_name" of relation "users" violates not-null constraint`},
				Diff:      d("", del(`error 23505: duplicate key value violates unique constraint "users_email_key"`), ins(`error 23502: null value in column "full_name" of relation "users" violates not-null constraint`))}),
			finding("f60718293041526a", compare.MissingInCandidate, true, []compare.StatementCount{sc(compare.MissingInCandidate, 1), sc(compare.Same, 4)}, compare.Example{
				Session: "6650f1a2.3f2", Seq: 1480, SQL: "COMMIT", Baseline: compare.Outcome{Status: "ok", Tag: "COMMIT"}, Candidate: compare.Outcome{Status: "missing"}}),
			finding("0718293041526a7b", compare.MissingInBaseline, true, []compare.StatementCount{sc(compare.MissingInBaseline, 1)}, compare.Example{
				Session: "6650f1a2.3f3", Seq: 1481, SQL: "SELECT pg_sleep($1)", Baseline: compare.Outcome{Status: "missing"}, Candidate: ok1}),
			finding("18293041526a7b8c", compare.Slower, true, []compare.StatementCount{sc(compare.Same, 200)}, compare.Example{
				Session: "6650f1a2.3e9", Seq: 12, SQL: "SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC LIMIT $2",
				Class: compare.Same, Baseline: ok3, Candidate: ok3}),
			finding("293041526a7b8c9d", compare.Inconclusive, false, []compare.StatementCount{sc(compare.Inconclusive, 2), sc(compare.Same, 6)}, compare.Example{
				Session: "6650f1a2.3ea", Seq: 540, SQL: "SELECT avg(amount) FROM invoices GROUP BY account_id", Underlying: compare.DifferentRows,
				Reason: "hashes differ; tolerance or ignore rules apply but the result is larger than the kept sample", Baseline: ok3, Candidate: ok3}),
			finding("3041526a7b8c9dae", compare.Noise, false, []compare.StatementCount{sc(compare.Noise, 7), sc(compare.Same, 30)}, compare.Example{
				Session: "6650f1a2.3eb", Seq: 610, SQL: "SELECT id FROM jobs WHERE state = $1 FOR UPDATE SKIP LOCKED", Underlying: compare.DifferentRows,
				Reason: "baseline and control differ too (different rows): non-deterministic", Baseline: ok1, Candidate: ok1,
				Diff: d("", eq("id"), del("901"), ins("902"))}),
			finding("41526a7b8c9daebf", compare.ExpectedNoise, false, []compare.StatementCount{sc(compare.ExpectedNoise, 20)}, compare.Example{
				Session: "6650f1a2.3ec", Seq: 700, SQL: "SELECT id, now() - created_at AS age FROM sessions LIMIT $1", Underlying: compare.DifferentRows,
				Reason: "non-deterministic statement (volatile: now; LIMIT without ORDER BY)", Baseline: ok3, Candidate: ok3}),
			finding("526a7b8c9daebfc0", compare.FixedError, false, []compare.StatementCount{sc(compare.FixedError, 2)}, compare.Example{
				Session: "6650f1a2.3ed", Seq: 802, SQL: "SELECT nickname FROM users WHERE id = $1",
				Baseline: compare.Outcome{Status: "error", SQLState: "42703", Message: `column "nickname" does not exist`}, Candidate: ok1,
				Diff: d("", del(`error 42703: column "nickname" does not exist`), ins("ok SELECT 1 (1 row)"))}),
			finding("6a7b8c9daebfc0d1", compare.Faster, false, []compare.StatementCount{sc(compare.Same, 50)}, compare.Example{
				Session: "6650f1a2.3ee", Seq: 15, SQL: "SELECT count(*) FROM orders WHERE account_id = $1 AND status = $2", Class: compare.Same, Baseline: ok1, Candidate: ok1}),
			finding("7b8c9daebfc0d1e2", compare.Skipped, false, []compare.StatementCount{sc(compare.Skipped, 1)}, compare.Example{
				Session: "6650f1a2.3ef", Seq: 20, SQL: "COPY events FROM STDIN", Baseline: compare.Outcome{Status: "skipped"}, Candidate: compare.Outcome{Status: "skipped"}}),
			finding("8c9daebfc0d1e2f3", compare.Ignored, false, []compare.StatementCount{sc(compare.Ignored, 4)}, compare.Example{
				Session: "6650f1a2.3f0", Seq: 25, SQL: "SELECT * FROM audit_log WHERE at > $1", Underlying: compare.DifferentRows,
				Reason: "ignored by a compare rule: audit rows carry timestamps", Baseline: ok3, Candidate: ok3}),
			finding("9daebfc0d1e2f304", compare.Same, false, []compare.StatementCount{sc(compare.Same, 1090)}, compare.Example{
				Session: "6650f1a2.3e1", Seq: 3, SQL: "SELECT id, name FROM accounts WHERE id = $1", Baseline: ok1, Candidate: ok1}),
		},
		Latency: []compare.LatencyRow{
			{Fingerprint: "18293041526a7b8c", SQL: "SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC LIMIT $2",
				Baseline:  compare.Quantiles{N: 199, P50: 900 * time.Microsecond, P95: 1400 * time.Microsecond, Max: 3 * ms},
				Candidate: compare.Quantiles{N: 199, P50: 48 * ms, P95: 61 * ms, Max: 90 * ms}, Control: &compare.Quantiles{N: 199, P50: 950 * time.Microsecond, P95: 1500 * time.Microsecond, Max: 4 * ms},
				Ratio: 43.571, Class: compare.Slower, NeedsExplain: true, Plans: &compare.Plans{
					Baseline:  "Limit  (cost=0.42..8.45 rows=20 width=16)\n  ->  Index Scan Backward using orders_customer_placed_idx on orders  (cost=0.42..80.1 rows=200 width=16)\n        Index Cond: (customer_id = $1)",
					Candidate: "Limit  (cost=1520.3..1520.35 rows=20 width=16)\n  ->  Sort  (cost=1520.3..1520.8 rows=200 width=16)\n        Sort Key: placed_at DESC\n        ->  Seq Scan on orders  (cost=0.00..1515.0 rows=200 width=16)\n              Filter: (customer_id = $1)",
				}},
			{Fingerprint: "a1b2c3d4e5f60718", SQL: "SELECT id, email, full_name FROM users WHERE account_id = $1 ORDER BY id",
				Baseline: compare.Quantiles{N: 11, P50: 2 * ms, P95: 3 * ms, Max: 3 * ms}, Candidate: compare.Quantiles{N: 1, P50: 300 * time.Microsecond, P95: 300 * time.Microsecond, Max: 300 * time.Microsecond},
				Ratio: 0.1, Class: compare.Same},
			{Fingerprint: "3041526a7b8c9dae", SQL: "SELECT id FROM jobs WHERE state = $1 FOR UPDATE SKIP LOCKED",
				Baseline: compare.Quantiles{N: 36, P50: 4 * ms, P95: 9 * ms, Max: 12 * ms}, Candidate: compare.Quantiles{N: 36, P50: 9 * ms, P95: 31 * ms, Max: 40 * ms},
				Control: &compare.Quantiles{N: 36, P50: 8 * ms, P95: 30 * ms, Max: 41 * ms}, Ratio: 3.444, Class: compare.Noise},
			{Fingerprint: "6a7b8c9daebfc0d1", SQL: "SELECT count(*) FROM orders WHERE account_id = $1 AND status = $2",
				Baseline: compare.Quantiles{N: 49, P50: 31 * ms, P95: 44 * ms, Max: 60 * ms}, Candidate: compare.Quantiles{N: 49, P50: 6 * ms, P95: 9 * ms, Max: 12 * ms},
				Ratio: 0.205, Class: compare.Faster},
			{Fingerprint: "9daebfc0d1e2f304", SQL: "SELECT id, name FROM accounts WHERE id = $1",
				Baseline: compare.Quantiles{N: 1089, P50: 120 * time.Microsecond, P95: 310 * time.Microsecond, Max: 2 * ms}, Candidate: compare.Quantiles{N: 1089, P50: 125 * time.Microsecond, P95: 300 * time.Microsecond, Max: 2 * ms},
				Ratio: 0.968, Class: compare.Same},
		},
		FinalState: []compare.TableStateDiff{
			{Table: "orders", RowsBaseline: 5120, RowsCandidate: 5120, ChunksDiffering: 2, SampleKeys: []string{"1042", "1043", "2210"}},
			{Table: "sessions", RowsBaseline: 310, RowsCandidate: 312, ChunksDiffering: 1, SampleKeys: []string{"9c1e…"}, AlsoInControl: true},
		},
		Migration: &migrate.Report{
			Format: "command", Source: "atlas migrate apply --url postgres://app:s3cret@db.internal:5432/acme?sslmode=disable",
			Target: "app@/tmp/dbtwin-sock/acme_candidate", ServerVersion: 150008, SampleInterval: 50 * ms, Duration: 1510 * ms,
			Migrations: []migrate.MigrationResult{
				{Version: "0007", Name: "add_full_name", File: "migrations/0007_add_full_name.sql", Transactional: false, Duration: 420 * ms, Statements: []migrate.StatementResult{
					{Line: 1, SQL: "ALTER TABLE users ADD COLUMN full_name text", Duration: 2 * ms, Locks: []migrate.LockHeld{{Relation: "users", Kind: "table", Mode: migrate.LockAccessExclusive, Held: 2 * ms, Samples: 1}}},
					{Line: 2, SQL: "UPDATE users SET full_name = name", Duration: 180 * ms, Locks: []migrate.LockHeld{{Relation: "users", Kind: "table", Mode: migrate.LockRowExclusive, Held: 180 * ms, Samples: 4}}},
					{Line: 3, SQL: "CREATE INDEX CONCURRENTLY users_full_name_idx ON users (full_name)", Duration: 238 * ms, Locks: []migrate.LockHeld{
						{Relation: "users", Kind: "table", Mode: migrate.LockShareUpdateExclusive, Held: 238 * ms, Samples: 5},
						{Relation: "users_full_name_idx", Kind: "index", Mode: migrate.LockAccessExclusive, Held: 238 * ms, Samples: 5, Created: true}}},
				}},
				{Version: "0008", Name: "rename_name", File: "migrations/0008_rename_name.sql", Transactional: true, Duration: 35 * ms, Statements: []migrate.StatementResult{
					{Line: 1, SQL: "ALTER TABLE users RENAME COLUMN name TO display_name", Duration: 30 * ms, Locks: []migrate.LockHeld{{Relation: "users", Kind: "table", Mode: migrate.LockAccessExclusive, Held: 30 * ms, Samples: 1}}},
				}},
				{Version: "0009", Name: "amount_scale", File: "migrations/0009_amount_scale.sql", Transactional: true, Duration: 980 * ms, Statements: []migrate.StatementResult{
					{Line: 1, SQL: "ALTER TABLE invoices ALTER COLUMN amount TYPE numeric(12,0)", Duration: 975 * ms, Rewritten: []string{"invoices"},
						RowsBefore: map[string]int64{"invoices": 42000}, RowsAfter: map[string]int64{"invoices": 42000},
						Locks: []migrate.LockHeld{{Relation: "invoices", Kind: "table", Mode: migrate.LockAccessExclusive, Held: 980 * ms, Samples: 20}}},
				}},
				{Version: "0010", Name: "drop_orders_idx", File: "migrations/0010_drop_orders_idx.sql", Transactional: true, Duration: 75 * ms, Error: "ERROR: lock timeout (SQLSTATE 55P03)", Statements: []migrate.StatementResult{
					{Line: 1, SQL: "DROP INDEX orders_customer_placed_idx", Duration: 75 * ms, Error: "lock timeout", SQLState: "55P03", Locks: []migrate.LockHeld{
						{Relation: "orders", Kind: "table", Mode: migrate.LockAccessExclusive, Held: 75 * ms, Samples: 2}}},
				}},
			},
		},
		Lint: migrate.Findings{
			{Rule: "DT010", Name: "rename-column", Severity: migrate.SeverityError, File: "migrations/0008_rename_name.sql", Line: 1, Version: "0008",
				Statement: "ALTER TABLE users RENAME COLUMN name TO display_name", Message: "renames users.name, which the old application still reads",
				Lock: "ACCESS EXCLUSIVE on users", Fix: "add the new column, write both, backfill, switch reads, then drop the old one in a later release",
				Queries: []migrate.QueryRef{{Fingerprint: "9daebfc0d1e2f304", SQL: "SELECT id, name FROM accounts WHERE id = ?", Count: 1090, Uses: "reads users.name"}}},
			{Rule: "DT003", Name: "column-type-change", Severity: migrate.SeverityError, File: "migrations/0009_amount_scale.sql", Line: 1, Version: "0009",
				Statement: "ALTER TABLE invoices ALTER COLUMN amount TYPE numeric(12,0)", Message: "changes the type of invoices.amount: the table is rewritten under ACCESS EXCLUSIVE",
				Lock: "ACCESS EXCLUSIVE on invoices", Fix: "add a new column of the new type, backfill in batches, switch over"},
			{Rule: "DT013", Name: "missing-lock-timeout", Severity: migrate.SeverityWarning, File: "migrations/0010_drop_orders_idx.sql", Line: 1, Version: "0010",
				Statement: "DROP INDEX orders_customer_placed_idx", Message: "takes ACCESS EXCLUSIVE on orders without SET lock_timeout first",
				Lock: "ACCESS EXCLUSIVE on orders", Fix: "SET lock_timeout = '2s' before the statement and retry"},
		},
	}

	globex := compare.TenantReport{
		Tenant: "globex",
		Policy: policy,
		Inputs: compare.Inputs{
			Baseline:  compare.SideInput{Results: 310, Mode: "ordered", SampleRows: 20, StatementTime: 410 * ms},
			Candidate: compare.SideInput{Results: 310, Mode: "ordered", SampleRows: 20, StatementTime: 405 * ms},
			Pairs:     310,
		},
		Findings: []compare.Finding{
			finding("3041526a7b8c9dae", compare.Noise, false, []compare.StatementCount{sc(compare.Noise, 1), sc(compare.Same, 9)}, compare.Example{
				Session: "77a0.1", Seq: 41, SQL: "SELECT id FROM jobs WHERE state = $1 FOR UPDATE SKIP LOCKED", Underlying: compare.NewError,
				Reason: "baseline and control differ too (new error): non-deterministic", Baseline: ok1,
				Candidate: compare.Outcome{Status: "error", SQLState: "40P01", Message: "deadlock detected"},
				Diff:      d("", del("ok SELECT 1 (1 row)"), ins("error 40P01: deadlock detected"))}),
			finding("9daebfc0d1e2f304", compare.Same, false, []compare.StatementCount{sc(compare.Same, 300)}, compare.Example{
				Session: "77a0.2", Seq: 2, SQL: "SELECT id, name FROM accounts WHERE id = $1", Baseline: ok1, Candidate: ok1}),
		},
		Latency: []compare.LatencyRow{
			{Fingerprint: "9daebfc0d1e2f304", SQL: "SELECT id, name FROM accounts WHERE id = $1",
				Baseline: compare.Quantiles{N: 299, P50: 110 * time.Microsecond, P95: 280 * time.Microsecond, Max: ms}, Candidate: compare.Quantiles{N: 299, P50: 115 * time.Microsecond, P95: 290 * time.Microsecond, Max: ms},
				Ratio: 1.036, Class: compare.Same},
		},
		FinalState: []compare.TableStateDiff{{Table: "jobs", RowsBaseline: 80, RowsCandidate: 80, ChunksDiffering: 1, SampleKeys: []string{"17"}, AlsoInControl: true}},
		Lint: migrate.Findings{{Rule: "DT013", Name: "missing-lock-timeout", Severity: migrate.SeverityWarning, File: "migrations/0010_drop_orders_idx.sql", Line: 1,
			Statement: "DROP INDEX orders_customer_placed_idx", Message: "takes ACCESS EXCLUSIVE on orders without SET lock_timeout first",
			Lock: "ACCESS EXCLUSIVE on orders", Fix: "SET lock_timeout = '2s' before the statement and retry"}},
	}
	r := &compare.Report{Version: compare.SchemaVersion, Meta: compare.Meta{DbtwinVersion: "v0.3.0-test"}, Tenants: []compare.TenantReport{globex, acme}}
	r.Recompute()
	return r
}
