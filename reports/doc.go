// Package reports renders a compare.Report for people and for CI: a
// terminal table (tablewriter), GitHub-flavoured Markdown for a step
// summary or a pull-request comment, JUnit XML for test reporters, the
// JSON report itself (the format shards exchange), and one self-contained
// HTML page with inline SVG plots. Every format is a Renderer; New picks
// one by name.
//
// All renderers work from the same JSON-serialisable report and render a
// sanitized copy of it (Sanitize): every string passes through Redact, so
// a connection string or password that slipped into a field (a migration
// command line, an error message) comes out as "xxxxx". HTML is escaped by
// html/template, Markdown by entities, XML by encoding/xml. Output is
// deterministic — sorted, with no wall-clock time — and golden-tested
// under testdata/ (go test ./reports -update rewrites the golden files).
//
// Merge joins the JSON reports of shards (different tenants) for
// `dbtwin report merge`; ReadJSON reads one back.
//
// What it is not for: deciding anything. Classification, noise and the
// verdict are package compare's; reports only present them.
package reports
