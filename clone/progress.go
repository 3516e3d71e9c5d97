package clone

import "time"

// Progress receives events while Clone or Restore runs, so that a caller can
// draw progress bars (internal/progress does, on a terminal) or log lines.
//
// Calls come from several goroutines at once (one per copy worker), so an
// implementation must be safe for concurrent use, and it must be quick:
// Advance is called every few hundred kilobytes of every table. A slow
// implementation slows the copy down; it never changes its result.
//
// The order of events is: PhaseStart/PhaseDone pairs for each phase (see
// Phase); within the "data" phase, Start once with the plan, then Advance and
// TableDone for each table, interleaved across tables. Restore, which hands
// the rows to pg_restore or psql, sends only phase events.
type Progress interface {
	// PhaseStart says that the named phase ("schema", "data", ...) begins.
	PhaseStart(name string)
	// PhaseDone says that a phase ended, and how long it took.
	PhaseDone(p Phase)
	// Start announces the tables the data phase is about to copy, largest
	// first, with their estimated sizes.
	Start(plan []TableInfo)
	// Advance says that bytes more bytes of table (TableInfo.Name) were
	// copied. Bytes are COPY stream bytes, which differ somewhat from the
	// estimate (the table's on-disk size): use the estimate for a total,
	// not as a bound.
	Advance(table string, bytes int64)
	// TableDone says that every chunk of a table has been copied.
	TableDone(r TableResult)
}

// TableInfo describes a table the data phase is going to copy.
type TableInfo struct {
	// Name is the schema-qualified table name, unquoted: "public.orders",
	// "Sales.Quarterly Report". It is the key in Advance and TableDone.
	Name string
	// Bytes is the table's size on the source (pg_relation_size), the
	// estimate for how many bytes its copy will stream.
	Bytes int64
	// Chunks is how many ctid ranges the table is split into (1: not split).
	Chunks int
}

// TableResult says what copying one table did.
type TableResult struct {
	// Name is the schema-qualified table name, as in TableInfo.
	Name string
	// Rows is the number of rows loaded into the target (from the COPY
	// command tags).
	Rows int64
	// Bytes is the number of COPY stream bytes that went from source to
	// target.
	Bytes int64
	// Duration is the wall time from the start of the table's first chunk
	// to the end of its last.
	Duration time.Duration
	// Chunks is how many ctid ranges the table was copied in (1: whole).
	Chunks int
	// Format is the COPY format used: "binary", or "text" for tables with a
	// column whose binary form embeds type OIDs or that the masker can only
	// rewrite in text (see the package documentation of Clone).
	Format string
	// Masked is set when the rows went through Options.Masker.
	Masked bool
}

// Phase names used in PhaseStart, PhaseDone and Result.Phases.
const (
	PhaseSchema    = "schema"    // pg_dump --schema-only while the temporary database is created, then pg_restore --section=pre-data
	PhaseData      = "data"      // parallel COPY of every table
	PhaseSequences = "sequences" // setval for every sequence, then the contents of large objects
	PhasePostData  = "post-data" // pg_restore --section=post-data: indexes, constraints, triggers; alongside, REFRESH MATERIALIZED VIEW for those populated on the source and the source's planner statistics copied
	PhaseAnalyze   = "analyze"   // ANALYZE of the materialized views and of what the statistics phase did not copy (every table on a target where it cannot)
	PhaseRestore   = "restore"   // Restore only: pg_restore or psql runs the dump
	PhaseFinish    = "finish"    // the temporary database replaces the target
)

// Phase is one step of a clone and how long it took.
type Phase struct {
	Name     string
	Duration time.Duration
}

// nopProgress is used when Options.Progress is nil.
type nopProgress struct{}

func (nopProgress) PhaseStart(string)     {}
func (nopProgress) PhaseDone(Phase)       {}
func (nopProgress) Start([]TableInfo)     {}
func (nopProgress) Advance(string, int64) {}
func (nopProgress) TableDone(TableResult) {}
