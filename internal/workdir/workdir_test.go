package workdir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestMakeNamesTheProcess(t *testing.T) {
	parent := t.TempDir()
	dir, err := Make(parent, "clone")
	if err != nil {
		t.Fatal(err)
	}
	m := nameRE.FindStringSubmatch(filepath.Base(dir))
	if m == nil || m[1] != strconv.Itoa(os.Getpid()) {
		t.Fatalf("name %q does not carry this process's id %d", filepath.Base(dir), os.Getpid())
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("permissions %v, want 0700", perm)
	}
}

func TestSweep(t *testing.T) {
	// A process that has exited: its id is free (the kernel hands ids out
	// in increasing order, so it is not reused within the test).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid

	parent := t.TempDir()
	cases := []struct {
		name    string
		dir     bool
		removed bool
	}{
		{name: "dbtwin-clone-pid" + strconv.Itoa(dead) + "-123", dir: true, removed: true},
		{name: "dbtwin-run-0a1b2c-pid" + strconv.Itoa(dead) + "-456", dir: true, removed: true},
		{name: "dbtwin-clone-pid" + strconv.Itoa(os.Getpid()) + "-789", dir: true}, // this process runs
		{name: "dbtwin-clone-pid1-789", dir: true},                                 // init always runs
		{name: "dbtwin-clone-pid" + strconv.Itoa(dead) + "-12", dir: false},        // a file, not Make's
		{name: "dbtwin-clone-3219", dir: true},                                     // an older dbtwin's: no pid
		{name: "other-clone-pid" + strconv.Itoa(dead) + "-1", dir: true},           // not dbtwin's
		{name: "dbtwin-clone-pid" + strconv.Itoa(dead) + "-1-x", dir: true},        // not Make's shape
	}
	for _, c := range cases {
		p := filepath.Join(parent, c.name)
		if c.dir {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			// Something inside, as a real scratch directory has.
			if err := os.WriteFile(filepath.Join(p, "schema.dump"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	removed, err := Sweep(parent)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range removed {
		got[filepath.Base(p)] = true
	}
	for _, c := range cases {
		_, statErr := os.Stat(filepath.Join(parent, c.name))
		gone := os.IsNotExist(statErr)
		if gone != c.removed || got[c.name] != c.removed {
			t.Errorf("%s: removed %v (reported %v), want %v", c.name, gone, got[c.name], c.removed)
		}
	}
	if len(removed) != 2 {
		t.Errorf("Sweep reported %d removals, want 2: %v", len(removed), removed)
	}
}
