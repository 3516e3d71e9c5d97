// Package sqlinfo says what a SQL statement is, using the real PostgreSQL
// parser (pg_query_go), never pattern matching.
//
// Analyze takes the text a client sent (one statement, or several separated
// by semicolons, as with the simple query protocol) and returns an Info:
//
//   - Fingerprint: pg_query's fingerprint, equal for statements that differ
//     only in constants, whitespace, comments or the order of some lists
//     (the same id pg_stat_statements-style tools use for "this query").
//   - Class: read, write, ddl, tcl (transaction control) or other, so that
//     a comparison can treat a failing write differently from a failing read.
//   - HasOrderBy: every top-level SELECT has an ORDER BY, so its rows come in
//     a defined order and an order-aware result hash is meaningful.
//   - Volatile: functions whose value differs between two runs of the same
//     statement (now(), random(), nextval(), gen_random_uuid() …), the usual
//     cause of result differences that are noise rather than regressions.
//   - LimitWithoutOrder: a LIMIT/OFFSET somewhere without an ORDER BY at the
//     same level, which makes the chosen rows depend on the plan.
//   - CopyFromStdin: a COPY … FROM STDIN, whose data is not in the SQL text.
//
// Analyze is a pure function with no cache and no state: callers that see the
// same text many times (workload readers, replay) may memoize it. A statement
// that does not parse yields an Info with Class Unknown and ParseError set,
// together with that error, never a panic.
//
// Normalize replaces constants with $n placeholders, for display.
//
// sqlinfo needs cgo: pg_query_go compiles PostgreSQL's parser from C.
package sqlinfo
