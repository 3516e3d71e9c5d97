// Package harness runs dbtwin's pipeline end to end, for one verification
// run: config → clone → mask → fan out → migrate → replay → compare →
// report. It is the only package that knows every stage; each stage lives in
// its own package and knows nothing of the others.
//
//   - Run (dbtwin run): per tenant of a dbtwin.yaml (LoadConfig), clone the
//     source into a sandbox (masked in the COPY stream when rules are
//     configured, then audited), fan the golden clone out into baseline,
//     candidate and control, migrate the candidate (with lock metrics and
//     lint), replay the (masked) workload on all three, compare — results,
//     final table contents, latency with EXPLAIN plans — and write the
//     reports. Shards (--shard i/n) and parallel tenants are supported.
//   - Demo (dbtwin demo): the same on generated fixtures.
//   - MaskedClone, LoadMaskPlan: masking glue shared by the CLI and Run.
//
// What it is not for: flag parsing (cmd/dbtwin) or any stage's own logic.
package harness
