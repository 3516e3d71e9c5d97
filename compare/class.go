package compare

// Class says how a statement's candidate result relates to its baseline
// result, or (for a fingerprint) the worst such relation among its
// statements and its latency.
type Class string

// The classes, most serious first (see Classes).
const (
	// NewError: the baseline succeeded and the candidate failed (error,
	// statement timeout or lost connection). A regression.
	NewError Class = "new_error"
	// MissingInCandidate: the baseline has a result the candidate results
	// file lacks (the candidate replay stopped early). A regression: the
	// comparison is incomplete.
	MissingInCandidate Class = "missing_in_candidate"
	// MissingInBaseline: the candidate has a result the baseline lacks. A
	// regression for the same reason.
	MissingInBaseline Class = "missing_in_baseline"
	// DifferentColumns: both succeeded with different column names, types
	// or number. A regression.
	DifferentColumns Class = "different_columns"
	// DifferentRowCount: both succeeded with a different number of rows
	// returned or affected (command tag). A regression.
	DifferentRowCount Class = "different_row_count"
	// DifferentRows: same columns and count, different values (or order,
	// for a statement with a top-level ORDER BY). A regression.
	DifferentRows Class = "different_rows"
	// ChangedError: both failed, with a different SQLSTATE or status. A
	// regression.
	ChangedError Class = "changed_error"
	// Slower: the fingerprint's latency quantile grew past the ratio and
	// the absolute floor (fingerprints only). A regression.
	Slower Class = "slower"
	// Inconclusive: the hashes differ, but tolerance or ignore rules apply
	// and the rows beyond the kept sample cannot be checked against them.
	// Not a regression unless Config.FailInconclusive.
	Inconclusive Class = "inconclusive"
	// ExpectedNoise: different rows or row count from a statement whose
	// result is non-deterministic by construction (volatile functions,
	// LIMIT without ORDER BY). Not a regression.
	ExpectedNoise Class = "expected_noise"
	// Noise: the same kind of difference also appeared between baseline
	// and control, two copies of the same database: non-determinism, not a
	// regression.
	Noise Class = "noise"
	// FixedError: the baseline failed and the candidate succeeded.
	FixedError Class = "fixed_error"
	// Faster: the fingerprint's latency shrank past the ratio and floor
	// (fingerprints only).
	Faster Class = "faster"
	// Skipped: replay did not run the statement on one side (COPY FROM
	// STDIN, whose data a workload does not hold).
	Skipped Class = "skipped"
	// Ignored: the statement differs but an ignore rule of the config
	// matches it.
	Ignored Class = "ignored"
	// Same: no difference.
	Same Class = "same"
)

// classOrder lists every class, most serious first (an immutable table).
var classOrder = [...]Class{
	NewError, MissingInCandidate, MissingInBaseline, DifferentColumns, DifferentRowCount,
	DifferentRows, ChangedError, Slower, Inconclusive, ExpectedNoise, Noise, FixedError,
	Faster, Skipped, Ignored, Same,
}

// classLabels are short human labels for reports.
var classLabels = map[Class]string{
	NewError:           "new error",
	MissingInCandidate: "missing in candidate",
	MissingInBaseline:  "missing in baseline",
	DifferentColumns:   "different columns or types",
	DifferentRowCount:  "different row count",
	DifferentRows:      "different rows",
	ChangedError:       "changed error",
	Slower:             "slower",
	Inconclusive:       "inconclusive (beyond sample)",
	ExpectedNoise:      "expected noise",
	Noise:              "noise",
	FixedError:         "fixed error",
	Faster:             "faster",
	Skipped:            "skipped",
	Ignored:            "ignored",
	Same:               "same",
}

// Classes returns every class, most serious first.
func Classes() []Class { return append([]Class(nil), classOrder[:]...) }

// Rank orders classes by seriousness: 0 for Same, higher is worse, -1 for
// an unknown class.
func (c Class) Rank() int {
	for i, x := range classOrder {
		if x == c {
			return len(classOrder) - 1 - i
		}
	}
	return -1
}

// Label is the class in words ("new error").
func (c Class) Label() string {
	if l, ok := classLabels[c]; ok {
		return l
	}
	return string(c)
}

// IsRegression reports whether the class fails a run by default
// (Inconclusive fails only with Config.FailInconclusive; Finding.Regression
// records the decision actually made).
func (c Class) IsRegression() bool {
	switch c {
	case NewError, MissingInCandidate, MissingInBaseline, DifferentColumns,
		DifferentRowCount, DifferentRows, ChangedError, Slower:
		return true
	}
	return false
}

// isData reports whether c is a difference in the returned data (as
// opposed to success or failure).
func (c Class) isData() bool {
	return c == DifferentColumns || c == DifferentRowCount || c == DifferentRows || c == Inconclusive
}

// worse returns the more serious of a and b.
func worse(a, b Class) Class {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}
