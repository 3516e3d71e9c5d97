// Package harness runs dbtwin's pipeline end to end: config → clone → mask →
// fan out → migrate → replay → compare → report. It is the only package that
// knows every stage; each stage lives in its own package and knows nothing
// of the others.
//
// Today it holds the demo (Demo): fixtures generated into an embedded
// sandbox, cloned, and fanned out into baseline, candidate and control. The
// later stages join it as they land.
//
// What it is not for: flag parsing (cmd/dbtwin) or any stage's own logic.
package harness
