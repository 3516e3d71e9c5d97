// Package cputime reads how much CPU time a benchmark's processes have
// spent: the benchmark with the children it has waited for (dbtwin,
// pg_dump, pg_restore, psql), and one PostgreSQL server (its postmaster,
// the backends that exited, the ones still running). The benchmarks print
// it beside wall time because a busy shared machine disturbs CPU time far
// less, and because on a machine whose cores are all busy, wall time is
// CPU time divided by the cores.
//
// It reads Linux's /proc and getrusage; it is not for other systems, and
// not for anything but benchmarks.
package cputime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Times are CPU times (user + system) spent so far.
type Times struct {
	// Client is this process and its waited-for children.
	Client time.Duration
	// Server is the postmaster, its exited children and its live ones.
	Server time.Duration
}

// Sub returns what was spent between b and a.
func (a Times) Sub(b Times) Times { return Times{a.Client - b.Client, a.Server - b.Server} }

// Total is Client + Server.
func (a Times) Total() time.Duration { return a.Client + a.Server }

// Read reads the CPU times of this process and of the PostgreSQL server
// whose postmaster has process id pm (from /proc, in Linux clock ticks of
// 10 ms). A backend's time reaches the postmaster's account when the
// postmaster reaps it: wait a moment after a session ends before reading.
func Read(pm int) Times {
	var t Times
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			t.Client += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	const tick = 10 * time.Millisecond
	if f, ok := procStat(pm); ok {
		t.Server += time.Duration(f[11]+f[12]+f[13]+f[14]) * tick // utime stime cutime cstime
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, ok := procStat(pid); ok && f[1] == int64(pm) {
			t.Server += time.Duration(f[11]+f[12]) * tick
		}
	}
	return t
}

// procStat returns the numeric fields of /proc/<pid>/stat from the fourth
// (ppid) on, indexed from the third (state = 0, ppid = 1, utime = 11 …).
func procStat(pid int) ([]int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 15 {
		return nil, false
	}
	out := make([]int64, len(fields))
	for j, f := range fields[1:] {
		out[j+1], _ = strconv.ParseInt(f, 10, 64)
	}
	return out, true
}
