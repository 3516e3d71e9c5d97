package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
)

// TestMain lets a test run this binary as the dbtwin command itself
// (DBTWIN_TEST_MAIN=1), so signal handling is tested in a real process.
func TestMain(m *testing.M) {
	if os.Getenv("DBTWIN_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSignalTearsDown interrupts `dbtwin demo` in the middle of cloning
// (the demo's source cluster and the run's sandbox are both up then),
// with SIGINT (Ctrl-C), with SIGTERM (a CI runner cancelling a job) and by
// closing the pipe its log goes to (`dbtwin demo 2>&1 | head`), and checks
// that the process exits with code 2 and leaves no sandbox, no server
// process and no files behind, its scratch directories included.
func TestSignalTearsDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal // 0: close the reading end of stderr's pipe
	}{
		{"SIGINT", syscall.SIGINT},
		{"SIGTERM", syscall.SIGTERM},
		{"closed log pipe", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := localtest.StateDir(t)
			tmp := t.TempDir()

			cmd := exec.Command(os.Args[0], "demo", "--scale", "0.1", "--tenants", "2", "--state-dir", stateDir, "--report-dir", t.TempDir())
			cmd.Env = append(os.Environ(), "DBTWIN_TEST_MAIN=1", "TMPDIR="+tmp)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the demo is cloning: a sandbox runs and holds data.
			sc := bufio.NewScanner(stderr)
			var seen []string
			cloning := false
			for sc.Scan() {
				seen = append(seen, sc.Text())
				if strings.Contains(sc.Text(), `msg="stage started"`) && strings.Contains(sc.Text(), "stage=clone") {
					cloning = true
					break
				}
			}
			if !cloning {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("demo never started cloning; stderr:\n%s", strings.Join(seen, "\n"))
			}
			recs, err := local.List(stateDir)
			if err != nil || len(recs) != 2 {
				t.Fatalf("want 2 running sandboxes before the signal (the sources and the run's), got %d (%v)", len(recs), err)
			}
			var serverPIDs []int
			for _, r := range recs {
				pid, running := r.ServerPID()
				if !running {
					t.Fatalf("sandbox %s is not running before the signal", r.Name)
				}
				serverPIDs = append(serverPIDs, pid)
			}

			time.Sleep(50 * time.Millisecond) // into the copy
			rest := make(chan string, 1)
			if tc.sig == 0 {
				// Nobody reads the log any more: the next line the
				// process writes meets a closed pipe.
				stderr.Close()
				rest <- ""
			} else {
				if err := cmd.Process.Signal(tc.sig); err != nil {
					t.Fatal(err)
				}
				go func() {
					var b strings.Builder
					for sc.Scan() {
						b.WriteString(sc.Text() + "\n")
					}
					rest <- b.String()
				}()
			}
			// Every line read before Wait, which closes the pipe as soon as
			// the process has exited and would lose the last ones.
			tail := <-rest
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want exit code 2; stderr after the signal:\n%s", err, tail)
			}
			if tc.sig != 0 && !strings.Contains(tail, "interrupted") {
				t.Errorf("stderr does not say the run was interrupted:\n%s", tail)
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "dbtwin-*")); len(left) != 0 {
				t.Errorf("scratch directories left behind: %v", left)
			}
			if left, _ := local.List(stateDir); len(left) != 0 {
				t.Errorf("%d sandbox(es) left registered after %s", len(left), tc.name)
			}
			for i, r := range recs {
				if _, err := os.Stat(r.Dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("sandbox directory %s left behind after %s", r.Dir, tc.name)
				}
				if syscall.Kill(serverPIDs[i], 0) == nil {
					t.Errorf("server pid %d still runs after %s", serverPIDs[i], tc.name)
				}
			}
		})
	}
}
