package harness

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"

	"github.com/dbtwin/dbtwin/internal/atomicfile"
	"github.com/dbtwin/dbtwin/masking"
	"github.com/dbtwin/dbtwin/replay"
	"github.com/dbtwin/dbtwin/sqlinfo"
)

// withheldMessage replaces the message of an error captured in production
// when the workload is masked: server messages quote values ("invalid input
// syntax for type integer: \"…\""), and the SQLSTATE is what compare needs.
const withheldMessage = "(captured message withheld: the workload is masked)"

// preparedWorkload is the workload as the replays read it: a dbtwin JSONL
// file in the run's scratch directory, masked for one tenant or converted
// once for all of them.
type preparedWorkload struct {
	path string
	// statements written, and dropped because the parser rejected them
	// (they cannot be masked).
	statements, dropped int64
	// literals and params masked.
	literals, params int64
}

// prepareWorkload reads the configured workload once and writes it as
// JSONL, masking every statement's literals and parameters with plan when
// it is not nil. Without masking the conversion is shared by every tenant.
func (tr *tenantRun) prepareWorkload(ctx context.Context, plan *masking.Plan) (preparedWorkload, error) {
	r := tr.r
	if plan == nil {
		r.plainOnce.Do(func() {
			r.plain, r.plainErr = r.writeWorkload(ctx, filepath.Join(r.tempDir, "workload.jsonl"), nil)
		})
		if r.plainErr == nil {
			tr.log.Info("workload ready", "statements", r.plain.statements, "masked", false)
		}
		return r.plain, r.plainErr
	}
	wl, err := r.writeWorkload(ctx, filepath.Join(r.tempDir, tr.t.Name+"-workload.jsonl"), plan)
	if err != nil {
		return wl, err
	}
	tr.log.Info("workload ready", "statements", wl.statements, "masked", true,
		"literals_masked", wl.literals, "params_masked", wl.params, "unparsable_dropped", wl.dropped)
	return wl, nil
}

// writeWorkload converts (and masks) the configured workload into path.
func (r *runner) writeWorkload(ctx context.Context, path string, plan *masking.Plan) (wl preparedWorkload, err error) {
	wl.path = path
	in, err := replay.Open(ctx, r.cfg.Workload.File, replay.ReaderOptions{Format: r.workloadFormat, Prefix: r.cfg.Workload.LogPrefix})
	if err != nil {
		return wl, err
	}
	defer in.Close()
	f, err := atomicfile.Create(path)
	if err != nil {
		return wl, err
	}
	defer f.Abort()
	h := replay.WorkloadHeader{Source: filepath.Base(r.cfg.Workload.File), Format: in.Stats().Format}
	if plan != nil {
		h.Source += " (masked)"
	}
	w, err := replay.NewWorkloadWriter(f, h)
	if err != nil {
		return wl, err
	}
	for in.Next() {
		ev := in.Event()
		if plan != nil {
			res, err := plan.MaskEvent(&ev)
			if errors.Is(err, masking.ErrUnparsable) {
				wl.dropped++
				continue
			}
			if err != nil {
				return wl, err
			}
			wl.literals += int64(res.Literals)
			wl.params += int64(res.Params)
			if ev.Error != nil {
				ev.Error.Message = withheldMessage
			}
		}
		if ev.Kind == replay.KindStatement {
			wl.statements++
		}
		if err := w.Write(ev); err != nil {
			return wl, err
		}
	}
	if err := in.Err(); err != nil {
		return wl, fmt.Errorf("read %s: %w", r.cfg.Workload.File, err)
	}
	if st := in.Stats(); st.WarningCount > 0 {
		// Warnings quote the line they are about: only the count is logged.
		r.log.Warn("workload lines skipped", "file", r.cfg.Workload.File, "warnings", st.WarningCount)
	}
	if err := w.Flush(); err != nil {
		return wl, err
	}
	if err := f.Commit(); err != nil {
		return wl, err
	}
	return wl, nil
}

// queries iterates over the SQL of the prepared workload's statements
// (for lint's cross-check). Call the returned function after the
// iteration for its error.
func (wl preparedWorkload) queries(ctx context.Context) (iter.Seq[string], func() error) {
	var ierr error
	seq := func(yield func(string) bool) {
		in, err := replay.Open(ctx, wl.path, replay.ReaderOptions{Format: replay.FormatJSONL})
		if err != nil {
			ierr = err
			return
		}
		defer in.Close()
		for in.Next() {
			if ev := in.Event(); ev.Kind == replay.KindStatement && !yield(ev.SQL) {
				return
			}
		}
		ierr = in.Err()
	}
	return seq, func() error { return ierr }
}

// replay replays the prepared workload on the tenant's database of role,
// in ordered mode, into the results file path.
func (tr *tenantRun) replay(ctx context.Context, wl preparedWorkload, role, path string) error {
	r := tr.r
	in, err := replay.Open(ctx, wl.path, replay.ReaderOptions{Format: replay.FormatJSONL})
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	w, err := replay.NewResultsWriter(f, replay.ResultsHeader{Mode: replay.ModeOrdered, SampleRows: r.cfg.Replay.SampleRows})
	if err != nil {
		return err
	}
	eo := replay.EngineOptions{
		Mode:             replay.ModeOrdered,
		StatementTimeout: r.cfg.Replay.StatementTimeout,
		SampleRows:       r.cfg.Replay.SampleRows,
		Fingerprint:      fingerprint,
		Logger:           tr.log,
	}
	if r.opts.ReplayProgress != nil {
		c := r.opts.ReplayProgress("replay " + tr.t.Name + " " + role)
		defer c.Close()
		eo.Progress = c.Update
	}
	st, err := replay.Replay(ctx, in, tr.dsn(role), eo, w)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	tr.log.Info("replayed", "on", role, "statements", st.Statements, "ok", st.OK, "errors", st.Errors,
		"timeouts", st.Timeouts, "lock_waits", st.LockWaits, "results", path)
	return nil
}

// fingerprint is the replay's statement fingerprint: pg_query's, "" for a
// statement the parser rejects.
func fingerprint(sql string) string {
	fp, err := sqlinfo.Fingerprint(sql)
	if err != nil {
		return ""
	}
	return fp
}
