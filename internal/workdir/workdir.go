// Package workdir makes the private scratch directories a dbtwin process
// works in (a clone's schema archive, a run's prepared workload) and sweeps
// the ones a killed process left behind.
//
// A directory's name carries the process id of its maker,
// dbtwin-<kind>-pid<PID>-<random>, so `dbtwin gc` can tell an abandoned
// directory from one a running process still uses without any registry.
// A process removes its own directories when it ends, on error and on
// Ctrl-C; only a process killed outright (SIGKILL, OOM) leaves one, and
// some hold what must not linger (a run's workload holds the queries'
// unmasked parameters).
//
// It is not for files that outlive the process (reports, sandboxes'
// registry): those have their own places.
package workdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
)

// Make creates a directory, readable by its owner only, in parent
// (os.TempDir() when parent is empty) and returns its path. kind says what
// it is for ("clone", "run-<id>"); it appears in the name, which also holds
// this process's id.
func Make(parent, kind string) (string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	// MkdirTemp makes the directory 0700.
	return os.MkdirTemp(parent, fmt.Sprintf("dbtwin-%s-pid%d-", kind, os.Getpid()))
}

// nameRE matches the names Make gives; the group is the maker's pid.
var nameRE = regexp.MustCompile(`^dbtwin-.+-pid([0-9]+)-[0-9]+$`)

// Sweep removes the directories Make created in parent (os.TempDir() when
// empty) whose maker no longer runs, and returns their paths. It touches
// only directories of the current user, and leaves a directory alone when
// its process id is in use again (by any process): a directory is removed
// only when it cannot belong to a running process.
func Sweep(parent string) ([]string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", parent, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		m := nameRE.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || running(pid) {
			continue
		}
		path := filepath.Join(parent, e.Name())
		if !ownedByMe(e) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, fmt.Errorf("remove abandoned scratch directory %s: %w", path, err))
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// running reports whether a process with this id exists (signal 0 checks
// without sending; EPERM means it exists under another user).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func ownedByMe(e fs.DirEntry) bool {
	info, err := e.Info()
	if err != nil {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
