// Package replay reads captured workloads and replays them.
//
// A workload is a stream of Events (connect, statement, disconnect) from one
// of several sources: PostgreSQL server logs (stderr with any
// log_line_prefix, csvlog, jsonlog), the capture proxy, or dbtwin's own
// versioned JSONL format, which every other source converts to. Readers have
// the bufio.Scanner shape — for r.Next() { ev := r.Event() }; r.Err() — and
// stream with bounded memory; a malformed line is a counted, located warning,
// never a crash.
//
// The replay engine runs a workload against a target database, one
// connection per captured session, and streams one result per statement
// (status, SQLSTATE, columns, row count, order-aware and multiset hashes of
// the rows, a bounded sample, duration) into a results file.
//
// What it is not for: deciding what counts as a regression (package compare)
// or knowing where the target database comes from (package clone and its
// sandboxes). replay never knows about sandboxes: it is given a DSN.
package replay
