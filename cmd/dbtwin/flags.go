package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/replay"
	"github.com/spf13/pflag"
)

// newFlagSet returns a FlagSet whose --help prints the synopsis, a
// description and the flags to stdout.
func newFlagSet(name, synopsis, description string, e *env) *pflag.FlagSet {
	fs := pflag.NewFlagSet("dbtwin "+name, pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: dbtwin %s %s\n\n%s\n\nFlags:\n%s", name, synopsis, strings.TrimSpace(description), fs.FlagUsages())
	}
	return fs
}

// common are the flags every command that starts sandboxes or runs
// PostgreSQL programs shares.
type common struct {
	pgBinDir string
	stateDir string
	logLevel string
	jsonLogs bool
}

func (c *common) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.pgBinDir, "pg-bindir", os.Getenv("DBTWIN_PG_BINDIR"), "directory of the PostgreSQL programs (initdb, postgres, pg_dump); default: pg_config --bindir, PATH, /usr/lib/postgresql/*/bin, newest first [$DBTWIN_PG_BINDIR]")
	fs.StringVar(&c.stateDir, "state-dir", local.DefaultStateDir(), "where embedded sandboxes and their records live [$DBTWIN_STATE_DIR]")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&c.jsonLogs, "log-json", false, "write logs as JSON lines instead of text")
}

// logger builds the slog.Logger for a command: text (or JSON) on stderr.
func (c *common) logger(e *env) (*slog.Logger, error) { return c.loggerTo(e.stderr) }

// loggerTo builds the command's logger writing to w.
func (c *common) loggerTo(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.jsonLogs {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

// errHandled says a command has already done what its arguments asked (it
// printed its help): nothing more to run, exit 0.
var errHandled = errors.New("handled")

// onlySubcommand checks the arguments of a command that has one subcommand
// ("dbtwin migrate lint"): it prints the command's help for -h, and returns
// a usage error naming the subcommand when it is missing.
func onlySubcommand(e *env, args []string, name, sub, synopsis, what string) error {
	if len(args) > 0 && args[0] == sub {
		return nil
	}
	fs := newFlagSet(name, sub+" "+synopsis,
		fmt.Sprintf("%s The subcommand is %s; see 'dbtwin %s %s --help'.", what, sub, name, sub), e)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fs.Usage()
		return errHandled
	}
	return usagef(nil, "want 'dbtwin %s %s %s'", name, sub, synopsis)
}

// workloadFlags are the flags of every command that reads a captured
// workload: its format and, for stderr logs, the log_line_prefix.
type workloadFlags struct {
	format, prefix string
}

func (w *workloadFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&w.format, "log-format", "auto", "workload format: auto, stderr, csvlog, jsonlog, jsonl")
	fs.StringVar(&w.prefix, "log-prefix", "", "log_line_prefix of a stderr log, in PostgreSQL's syntax (default: detected from common ones)")
}

// options checks the flags and returns reader options for them.
func (w *workloadFlags) options(fs *pflag.FlagSet) (replay.ReaderOptions, error) {
	f, err := replay.ParseFormat(w.format)
	if err != nil {
		return replay.ReaderOptions{}, usagef(fs, "%v", err)
	}
	if w.prefix != "" {
		if _, err := replay.CompilePrefix(w.prefix); err != nil {
			return replay.ReaderOptions{}, usagef(fs, "--log-prefix: %v", err)
		}
	}
	return replay.ReaderOptions{Format: f, Prefix: w.prefix}, nil
}
