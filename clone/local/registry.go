package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Record is what the state directory knows about one cluster: enough to list
// it, to tell whether its owner still runs, and to stop and remove it from
// another process. It is stored as <state dir>/<name>.json.
type Record struct {
	// Name is the cluster's name, also the name of its directory.
	Name string `json:"name"`
	// RunID labels every sandbox that one dbtwin run started.
	RunID string `json:"run_id"`
	// OwnerPID is the process that started the cluster and tears it down.
	OwnerPID int `json:"owner_pid"`
	// OwnerStart is the owner's start time (clock ticks since boot, Linux),
	// so that a recycled PID is not mistaken for the owner. 0 if unknown.
	OwnerStart uint64 `json:"owner_start,omitempty"`
	// Keep marks a cluster started by `dbtwin sandbox up`: it outlives its
	// owner on purpose and gc leaves it alone unless asked otherwise.
	Keep bool `json:"keep,omitempty"`
	// Dir is the cluster's directory (data, socket, log).
	Dir string `json:"dir"`
	// Port is the server's port (TCP when TCP is set; otherwise only the
	// socket file's name).
	Port int `json:"port"`
	// TCP tells whether the server also listens on 127.0.0.1.
	TCP bool `json:"tcp,omitempty"`
	// BinDir and Major name the PostgreSQL installation that runs it.
	BinDir string `json:"bin_dir"`
	Major  int    `json:"major"`
	// OSUser is the operating-system user the server runs as.
	OSUser string `json:"os_user"`
	// Created is when the cluster was started.
	Created time.Time `json:"created"`
}

// DataDir is the cluster's PostgreSQL data directory.
func (r Record) DataDir() string { return filepath.Join(r.Dir, "data") }

// SocketDir is the directory holding the cluster's Unix socket.
func (r Record) SocketDir() string { return filepath.Join(r.Dir, "sock") }

// LogFile is the server log of the cluster.
func (r Record) LogFile() string { return filepath.Join(r.Dir, "postgres.log") }

// OwnerAlive reports whether the process that started the cluster still runs.
func (r Record) OwnerAlive() bool {
	if r.OwnerPID <= 0 {
		return false
	}
	if !pidAlive(r.OwnerPID) {
		return false
	}
	if r.OwnerStart != 0 {
		if st, ok := processStart(r.OwnerPID); ok && st != r.OwnerStart {
			return false // the PID was recycled
		}
	}
	return true
}

// ServerPID returns the postmaster's PID from postmaster.pid, and whether a
// server is running there now.
func (r Record) ServerPID() (int, bool) {
	b, err := os.ReadFile(filepath.Join(r.DataDir(), "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, pidAlive(pid)
}

func recordPath(stateDir, name string) string { return filepath.Join(stateDir, name+".json") }

func writeRecord(stateDir string, r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := recordPath(stateDir, r.Name) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write sandbox record: %w", err)
	}
	if err := os.Rename(tmp, recordPath(stateDir, r.Name)); err != nil {
		return fmt.Errorf("write sandbox record: %w", err)
	}
	return nil
}

// List returns the clusters registered in stateDir, sorted by name.
// A missing state directory is an empty list.
func List(stateDir string) ([]Record, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sandboxes in %s: %w", stateDir, err)
	}
	var out []Record
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(stateDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read sandbox record %s: %w", e.Name(), err)
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("read sandbox record %s: %w", e.Name(), err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup returns the record of the named cluster.
func Lookup(stateDir, name string) (Record, error) {
	recs, err := List(stateDir)
	if err != nil {
		return Record{}, err
	}
	for _, r := range recs {
		if r.Name == name {
			return r, nil
		}
	}
	return Record{}, fmt.Errorf("no sandbox named %q in %s: `dbtwin sandbox ls` lists them", name, stateDir)
}

// Down stops the named cluster (immediate shutdown: its contents are thrown
// away) and removes its directory and record. It works from any process, so
// it can clean up after one that crashed.
func Down(ctx context.Context, stateDir, name string) error {
	r, err := Lookup(stateDir, name)
	if err != nil {
		return err
	}
	return remove(ctx, stateDir, r)
}

// GCOptions tune GC.
type GCOptions struct {
	// IncludeKept also removes clusters started with `sandbox up` (Keep).
	IncludeKept bool
}

// GC removes every cluster in stateDir whose owner process is gone (a crashed
// or killed run), and returns the names it removed. Clusters whose owner
// still runs are left alone, and so are kept ones unless IncludeKept.
func GC(ctx context.Context, stateDir string, opt GCOptions) ([]string, error) {
	recs, err := List(stateDir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, r := range recs {
		if r.OwnerAlive() || (r.Keep && !opt.IncludeKept) {
			continue
		}
		if err := remove(ctx, stateDir, r); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, r.Name)
	}
	return removed, errors.Join(errs...)
}

// remove stops r's server if it runs and deletes its files and record.
func remove(ctx context.Context, stateDir string, r Record) error {
	if pid, running := r.ServerPID(); running && looksLikePostgres(pid) {
		if err := stopPID(ctx, pid); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", r.Name, err)
		}
	}
	if err := os.RemoveAll(r.Dir); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", r.Name, err)
	}
	if err := os.Remove(recordPath(stateDir, r.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove sandbox record %s: %w", r.Name, err)
	}
	return nil
}

// stopPID asks a postmaster for an immediate shutdown (SIGQUIT) and waits for
// it to exit, escalating to SIGKILL after a grace period.
func stopPID(ctx context.Context, pid int) error {
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("signal server pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pidAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// pidAlive reports whether a process with this PID exists (a zombie counts as
// gone).
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := statFields(b); len(f) > 0 && f[0] == "Z" {
			return false
		}
	}
	return true
}

// processStart returns a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat). ok is false where /proc is not available.
func processStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	f := statFields(b)
	// statFields starts at field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

// statFields returns the fields of /proc/PID/stat after the command name
// (which may itself contain spaces and parentheses).
func statFields(b []byte) []string {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// looksLikePostgres guards against signalling a recycled PID: where /proc
// exists, the process must be a postgres server.
func looksLikePostgres(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return true // no /proc (macOS): trust postmaster.pid
	}
	return strings.Contains(string(b), "postgres")
}
