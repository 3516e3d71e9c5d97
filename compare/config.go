package compare

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of DefaultConfig.
const (
	DefaultPairWindow   = 100000
	DefaultDiffLines    = 24
	DefaultSQLChars     = 200
	DefaultLatencyRatio = 2.0
	DefaultLatencyFloor = 5 * time.Millisecond
	DefaultWarmUp       = 1
	DefaultExplainMax   = 20
)

// Config tunes a comparison. Start from DefaultConfig (or ParseConfig,
// which starts from it): a zero Config does not validate.
//
// In YAML (the compare section of dbtwin.yaml):
//
//	pair_window: 100000
//	float_tolerance: 1e-9
//	latency: {ratio: 2, floor: 5ms, warm_up: 1, gate: p95}
//	rules:
//	  - sql: "(?i)from audit_log"        # regexp on the statement text
//	    ignore: true                     # the whole statement
//	  - fingerprint: 5e2d9c1a3b7f0e44
//	    ignore_columns: [updated_at]
//	  - ignore_columns: [etag]           # no matcher: every statement
//	  - sql: "(?i)avg\\("
//	    float_tolerance: 1e-6
type Config struct {
	// PairWindow is how far out of Seq order a results file may be: no
	// result is written PairWindow or more lines after a result with a
	// higher Seq. Pairing keeps at most about 2×PairWindow unmatched
	// results in memory per file, whatever the file size; a file more out
	// of order than that is an error that says to raise it.
	PairWindow int `yaml:"pair_window"`
	// FloatTolerance lets float4, float8 and numeric values differ by
	// |a−b| ≤ FloatTolerance × max(1, |a|, |b|) (absolute near zero,
	// relative beyond). 0: exact. Hashes cannot apply it: see Rule.
	FloatTolerance float64 `yaml:"float_tolerance"`
	// Rules ignore statements or columns, or set a float tolerance, for
	// the statements they match.
	Rules []Rule `yaml:"rules"`
	// FailInconclusive makes Inconclusive a regression.
	FailInconclusive bool `yaml:"fail_inconclusive"`
	// FailOnLint is the lint severity from which migration lint findings
	// fail the run: "error" (default), "warning", "info" or "never".
	FailOnLint string `yaml:"fail_on_lint"`
	// DiffLines caps the lines of each diff sample.
	DiffLines int `yaml:"diff_lines"`
	// SQLChars cuts example statements in the report.
	SQLChars int `yaml:"sql_chars"`
	// Latency sets the latency regression rule.
	Latency LatencyConfig `yaml:"latency"`
}

// LatencyConfig is the latency regression rule: a fingerprint is Slower
// when, after WarmUp executions per side, its Gate quantile on the
// candidate is at least Ratio times the baseline's AND at least Floor
// more. Faster is the mirror image.
type LatencyConfig struct {
	// Ratio is the threshold candidate/baseline (> 1; default 2).
	Ratio float64 `yaml:"ratio"`
	// Floor is the least absolute difference that counts (default 5ms),
	// so that 0.1 ms → 0.3 ms does not fail a build.
	Floor time.Duration `yaml:"floor"`
	// WarmUp is how many successful executions of each fingerprint are
	// left out on each side before measuring (cold caches; default 1).
	WarmUp int `yaml:"warm_up"`
	// MinSamples is how many measured executions each side needs before
	// a verdict (default 3: one stalled execution on a busy CI runner must
	// not fail a build).
	MinSamples int `yaml:"min_samples"`
	// CountSessionStart also measures each session's first statement,
	// which runs on a fresh connection and pays for loading the catalog
	// caches (tens of milliseconds unrelated to the statement); by default
	// it is left out, like the warm-up.
	CountSessionStart bool `yaml:"count_session_start"`
	// Gate is the quantile judged: "p50" (default) or "p95". The median is
	// the default because p95 over the handful of executions a CI workload
	// has is its slowest run, which a single scheduling stall decides; p95
	// suits long workloads with many executions per fingerprint.
	Gate string `yaml:"gate"`
	// ExplainMax caps how many slower fingerprints are marked for EXPLAIN.
	ExplainMax int `yaml:"explain_max"`
}

// Rule matches statements by fingerprint and/or a regular expression on
// their text (both must match when both are set; neither set matches every
// statement) and says what to relax for them.
type Rule struct {
	// Fingerprint is a statement fingerprint (as in the report).
	Fingerprint string `yaml:"fingerprint"`
	// SQL is a regular expression (RE2) searched in the statement text.
	SQL string `yaml:"sql"`
	// Ignore ignores the statement entirely: a difference is Ignored.
	Ignore bool `yaml:"ignore"`
	// IgnoreColumns are result column names left out of the comparison.
	IgnoreColumns []string `yaml:"ignore_columns"`
	// FloatTolerance overrides Config.FloatTolerance (when larger).
	FloatTolerance float64 `yaml:"float_tolerance"`
	// Reason is free text shown next to what the rule ignored.
	Reason string `yaml:"reason"`

	re *regexp.Regexp
}

// DefaultConfig returns the configuration a run uses when nothing is set.
func DefaultConfig() Config {
	return Config{
		PairWindow: DefaultPairWindow,
		FailOnLint: "error",
		DiffLines:  DefaultDiffLines,
		SQLChars:   DefaultSQLChars,
		Latency: LatencyConfig{
			Ratio:      DefaultLatencyRatio,
			Floor:      DefaultLatencyFloor,
			WarmUp:     DefaultWarmUp,
			MinSamples: 3,
			Gate:       "p50",
			ExplainMax: DefaultExplainMax,
		},
	}
}

// ParseConfig reads a YAML compare configuration over DefaultConfig
// (keys not given keep their default) and validates it. Unknown keys are
// errors.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse compare config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the configuration and compiles its rules' expressions.
func (c *Config) Validate() error {
	switch {
	case c.PairWindow < 1:
		return fmt.Errorf("validate compare config: pair_window %d must be at least 1 (start from compare.DefaultConfig)", c.PairWindow)
	case c.FloatTolerance < 0:
		return fmt.Errorf("validate compare config: float_tolerance %g must not be negative", c.FloatTolerance)
	case c.DiffLines < 1:
		return fmt.Errorf("validate compare config: diff_lines %d must be at least 1", c.DiffLines)
	case c.SQLChars < 20:
		return fmt.Errorf("validate compare config: sql_chars %d must be at least 20", c.SQLChars)
	case c.Latency.Ratio <= 1:
		return fmt.Errorf("validate compare config: latency.ratio %g must be greater than 1", c.Latency.Ratio)
	case c.Latency.Floor < 0:
		return fmt.Errorf("validate compare config: latency.floor %s must not be negative", c.Latency.Floor)
	case c.Latency.WarmUp < 0:
		return fmt.Errorf("validate compare config: latency.warm_up %d must not be negative", c.Latency.WarmUp)
	case c.Latency.MinSamples < 1:
		return fmt.Errorf("validate compare config: latency.min_samples %d must be at least 1", c.Latency.MinSamples)
	case c.Latency.Gate != "p50" && c.Latency.Gate != "p95":
		return fmt.Errorf("validate compare config: latency.gate %q must be p50 or p95", c.Latency.Gate)
	case c.Latency.ExplainMax < 0:
		return fmt.Errorf("validate compare config: latency.explain_max %d must not be negative", c.Latency.ExplainMax)
	}
	if _, err := lintThreshold(c.FailOnLint); err != nil {
		return err
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.FloatTolerance < 0 {
			return fmt.Errorf("validate compare config: rules[%d].float_tolerance %g must not be negative", i, r.FloatTolerance)
		}
		if !r.Ignore && len(r.IgnoreColumns) == 0 && r.FloatTolerance == 0 {
			return fmt.Errorf("validate compare config: rules[%d] relaxes nothing: set ignore, ignore_columns or float_tolerance", i)
		}
		r.re = nil
		if r.SQL != "" {
			re, err := regexp.Compile(r.SQL)
			if err != nil {
				return fmt.Errorf("validate compare config: rules[%d].sql: %w", i, err)
			}
			r.re = re
		}
	}
	return nil
}

// lintThreshold turns FailOnLint into a severity rank (0: never fail).
func lintThreshold(s string) (int, error) {
	switch s {
	case "", "error":
		return 3, nil
	case "warning":
		return 2, nil
	case "info":
		return 1, nil
	case "never":
		return 0, nil
	}
	return 0, fmt.Errorf("validate compare config: fail_on_lint %q must be error, warning, info or never", s)
}

// matches reports whether the rule applies to a statement.
func (r *Rule) matches(fingerprint, sql string) bool {
	if r.Fingerprint != "" && r.Fingerprint != fingerprint {
		return false
	}
	if r.re != nil && !r.re.MatchString(sql) {
		return false
	}
	return true
}

// relax is what the rules matching one statement allow.
type relax struct {
	ignore        bool
	ignoreReason  string
	ignoreColumns map[string]bool
	tolerance     float64
}

// any reports whether something beyond exact comparison applies.
func (x *relax) any() bool { return x.ignore || len(x.ignoreColumns) > 0 || x.tolerance > 0 }

// relaxFor merges the rules matching a statement.
func (c *Config) relaxFor(fingerprint, sql string) relax {
	x := relax{tolerance: c.FloatTolerance}
	for i := range c.Rules {
		r := &c.Rules[i]
		if !r.matches(fingerprint, sql) {
			continue
		}
		if r.Ignore && !x.ignore {
			x.ignore = true
			x.ignoreReason = r.Reason
		}
		for _, col := range r.IgnoreColumns {
			if x.ignoreColumns == nil {
				x.ignoreColumns = map[string]bool{}
			}
			x.ignoreColumns[col] = true
		}
		if r.FloatTolerance > x.tolerance {
			x.tolerance = r.FloatTolerance
		}
	}
	return x
}
