// Package compare turns replay results into a regression report: it pairs
// the results of the same captured statement replayed on the baseline (old
// schema), the candidate (migrated) and optionally the control (a second
// copy of the baseline), says how each statement's outcome changed, and
// decides whether the run has regressions.
//
// # Pairing
//
// Results files (package replay) are JSONL written in completion order,
// which is not the captured order. [Compare] streams the files at the same
// time and pairs results by (Session, Seq), keeping in memory only the
// results still waiting for their other side: about 2×[Config.PairWindow]
// of them at most, whatever the file size, when no result is written
// PairWindow or more lines after a result with a higher Seq (plus, per
// file, the last PairWindow Seqs; a hard cap of 8×PairWindow waiting
// results stops with an error rather than grow). A
// statement that one file lacks is proved missing once that file has
// moved a window past it, and is reported as MissingInCandidate or
// MissingInBaseline. A file more out of order than the window is an
// error that says to raise it, never a wrong answer. [Stats] shows the
// high-water mark.
//
// # Classification
//
// Per statement (see [Class]): same; new error (ok → error, timeout or
// lost connection, with SQLSTATE); fixed error; changed error (a different
// SQLSTATE); different columns or types; different row count (rows
// returned or the command tag, e.g. "UPDATE 3" vs "UPDATE 2"); different
// rows. Rows are compared by the order-aware hash when the statement has a
// top-level ORDER BY (package sqlinfo says so), by the multiset hash
// otherwise.
//
// Float tolerance and ignore rules ([Rule]) cannot be applied to hashes.
// When the hashes differ and a rule could matter (an ignored column or a
// tolerant float/numeric column is in the result), compare falls back to
// the row samples replay kept: if both samples are the whole result they
// are compared under the rules (as a multiset without ORDER BY); otherwise
// the statement is Inconclusive ("beyond sample"), which does not fail a
// run unless Config.FailInconclusive. The honest consequence: tolerance
// only works for results no bigger than the replay's sample size.
//
// # Noise
//
// Two kinds of difference are not regressions. Noise: the control, an
// identical copy of the baseline, differs from the baseline in the same
// way (same class, a data difference at least as large, or the same
// error) — so the difference is non-determinism, not the migration.
// ExpectedNoise: the statement differs in rows or row count and calls
// volatile functions (now(), random() …) or has a LIMIT without ORDER BY,
// so it is non-deterministic by construction (this holds even without a
// control, and even when the control happened to agree).
//
// # Latency
//
// Per fingerprint and side, successful executions are measured after a
// warm-up (the first Latency.WarmUp executions, in pairing order, which
// follows Seq within the pairing window, are left out) into a
// bounded, order-independent quantile sketch: exact for up to 64
// executions, then logarithmic buckets with ~1% relative error. A
// fingerprint is Slower when the gate quantile (p95 by default) grew by
// at least Latency.Ratio AND by at least Latency.Floor, so sub-millisecond
// jitter cannot fail a build; when the control is slower by the same rule
// it is Noise. Slower fingerprints are marked NeedsExplain (up to
// Latency.ExplainMax); the harness EXPLAINs them on both sides and calls
// [Report.AttachPlans].
//
// # Report
//
// The [Report] is JSON-serialisable (schema "dbtwin_report": 1) and
// deterministic: sorted, with no wall-clock time in it (durations come
// from the inputs or from the harness through [Report.SetEnv]). The harness
// adds the final-state table comparison ([Report.SetFinalState]) and the
// migration report and lint findings ([Report.SetMigration]); each
// recomputes the verdict. Example statements are shown normalized
// (constants replaced by $n, comments removed), because captured SQL comes
// from production and can hold unmasked values; result rows and error
// messages come from the masked clones.
//
// # What it is not
//
// compare never touches a database and never reads a clock. It does not
// render reports (package reports does) or run EXPLAIN or the final-state
// checksums (the harness does, and hands the results in).
package compare
