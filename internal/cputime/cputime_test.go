package cputime

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestReadCountsWaitedChildren(t *testing.T) {
	before := Read(os.Getpid())
	// A child that burns CPU for a while; its time counts once waited for.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	used := Read(os.Getpid()).Sub(before)
	if used.Client < wall/4 {
		t.Errorf("child ran %s of wall time, Read counted %s of client CPU", wall, used.Client)
	}
}

func TestProcStat(t *testing.T) {
	f, ok := procStat(os.Getpid())
	if !ok || f[1] != int64(os.Getppid()) {
		t.Fatalf("procStat(self): ppid field %v, want %d", f, os.Getppid())
	}
	if _, ok := procStat(-1); ok {
		t.Error("procStat of no process: want false")
	}
}
