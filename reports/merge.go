package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/dbtwin/dbtwin/compare"
)

// ReadJSON reads a report written by the JSON renderer (a shard's
// report.json) and checks its schema version.
func ReadJSON(r io.Reader) (*compare.Report, error) {
	var rep compare.Report
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if err := rep.Validate(); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	return &rep, nil
}

// Merge joins the reports of shards (each covering different tenants)
// into one: tenants are concatenated and sorted, summaries added up, and
// the verdict is a regression when any tenant has one. A tenant present
// in two shards is an error (a shard was run twice, or the sharding is
// wrong). The inputs are not modified.
func Merge(reps ...*compare.Report) (*compare.Report, error) {
	if len(reps) == 0 {
		return nil, errors.New("merge reports: no reports")
	}
	out := &compare.Report{Version: compare.SchemaVersion}
	seen := map[string]int{}
	versions := map[string]bool{}
	for i, r := range reps {
		if r == nil {
			return nil, fmt.Errorf("merge reports: report %d is nil", i+1)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("merge reports: report %d: %w", i+1, err)
		}
		c, err := deepCopy(r)
		if err != nil {
			return nil, fmt.Errorf("merge reports: report %d: %w", i+1, err)
		}
		versions[c.Meta.DbtwinVersion] = true
		out.Meta.Notes = append(out.Meta.Notes, c.Meta.Notes...)
		for _, t := range c.Tenants {
			if j, dup := seen[t.Tenant]; dup {
				return nil, fmt.Errorf("merge reports: tenant %q is in report %d and report %d: merge each shard once", tenantName(t.Tenant), j, i+1)
			}
			seen[t.Tenant] = i + 1
			out.Tenants = append(out.Tenants, t)
		}
	}
	var vs []string
	for v := range versions {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	out.Meta.DbtwinVersion = vs[0]
	if len(vs) > 1 {
		out.Meta.DbtwinVersion = strings.Join(vs, ", ")
		out.Meta.Notes = append(out.Meta.Notes, "shards were made by different dbtwin versions: "+strings.Join(vs, ", "))
	}
	sort.Strings(out.Meta.Notes)
	out.Meta.Notes = dedup(out.Meta.Notes)
	out.Recompute()
	return out, nil
}

func deepCopy(r *compare.Report) (*compare.Report, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var c compare.Report
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func dedup(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
