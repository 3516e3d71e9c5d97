package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/internal/termtable"
	"github.com/dbtwin/dbtwin/internal/workdir"
)

func runSandbox(ctx context.Context, e *env, args []string) error {
	const synopsis = "up|ls|down|gc [flags]"
	const desc = `Manage embedded PostgreSQL sandboxes (clone/local clusters).

  up            start a sandbox that stays up after dbtwin exits; prints how to connect
  ls            list sandboxes: owner, run id, status
  down NAME...  stop sandboxes and delete their files
  gc            remove sandboxes whose owning dbtwin process is gone (crashed runs)`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fs := newFlagSet("sandbox", synopsis, desc, e)
		fs.Usage()
		if len(args) == 0 {
			return usagef(nil, "missing subcommand: up, ls, down or gc")
		}
		return nil
	}
	switch args[0] {
	case "up":
		return sandboxUp(ctx, e, args[1:])
	case "ls", "list":
		return sandboxLs(e, args[1:])
	case "down", "rm":
		return sandboxDown(ctx, e, args[1:])
	case "gc":
		return runGC(ctx, e, args[1:])
	}
	return usagef(nil, "unknown subcommand %q: want up, ls, down or gc", args[0])
}

func sandboxUp(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("sandbox up", "[--tcp] [--db NAME]",
		`Start an embedded PostgreSQL sandbox that stays up after this command
returns, for a developer to work in. It is not garbage-collected; remove it
with 'dbtwin sandbox down NAME'.`, e)
	tcp := fs.Bool("tcp", false, "also listen on 127.0.0.1 on a free port (password printed once)")
	db := fs.String("db", "", "also create this empty database")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q", fs.Arg(0))
	}
	log, err := c.logger(e)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	cl, err := local.Start(ctx, local.Config{BinDir: c.pgBinDir, StateDir: c.stateDir, TCP: *tcp, Keep: true, Logger: log})
	if err != nil {
		return err
	}
	dbName := "postgres"
	if *db != "" {
		if err := cl.CreateDatabase(ctx, *db); err != nil {
			_ = cl.Close(ctx)
			return err
		}
		dbName = *db
	}
	fmt.Fprintf(e.stdout, "sandbox %s is up (PostgreSQL %d)\n", cl.Name(), cl.Major())
	fmt.Fprintf(e.stdout, "  connect:  psql %q\n", cl.DSN(dbName))
	if *tcp {
		fmt.Fprintf(e.stdout, "  over TCP: %s\n", cl.TCPDSN(dbName))
	}
	fmt.Fprintf(e.stdout, "  log:      %s\n", cl.Record().LogFile())
	fmt.Fprintf(e.stdout, "  remove:   dbtwin sandbox down %s\n", cl.Name())
	return nil
}

func sandboxLs(e *env, args []string) error {
	var c common
	fs := newFlagSet("sandbox ls", "", "List embedded sandboxes, with their owner and whether it still runs.", e)
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	recs, err := local.List(c.stateDir)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		fmt.Fprintf(e.stdout, "no sandboxes in %s\n", c.stateDir)
		return nil
	}
	t := termtable.New(e.stdout, "NAME", "RUN", "OWNER", "STATUS", "PG", "AGE", "DIR")
	for _, r := range recs {
		owner := fmt.Sprintf("pid %d", r.OwnerPID)
		status := "running"
		if _, running := r.ServerPID(); !running {
			status = "stopped"
		}
		switch {
		case r.Keep:
			owner = "kept (sandbox up)"
		case !r.OwnerAlive():
			owner += " (gone)"
			status += ", garbage"
		}
		age := time.Since(r.Created).Round(time.Second).String()
		if err := t.Append(r.Name, r.RunID, owner, status, fmt.Sprint(r.Major), age, r.Dir); err != nil {
			return err
		}
	}
	return t.Render()
}

func sandboxDown(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("sandbox down", "NAME...", "Stop the named sandboxes and delete their files.", e)
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef(fs, "name at least one sandbox ('dbtwin sandbox ls' lists them)")
	}
	var failed []string
	for _, name := range fs.Args() {
		if err := local.Down(ctx, c.stateDir, name); err != nil {
			fmt.Fprintf(e.stderr, "dbtwin sandbox down: %v\n", err)
			failed = append(failed, name)
			continue
		}
		fmt.Fprintf(e.stdout, "removed %s\n", name)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not remove %s", strings.Join(failed, ", "))
	}
	return nil
}

func runGC(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("gc", "[--all] [--target DSN]",
		`Remove embedded sandboxes whose owning dbtwin process is gone: what a
crashed or killed run left behind. Sandboxes of runs still going are never
touched; kept ones ('sandbox up') only with --all. Also removes the scratch
directories (dbtwin-*-pid<PID>-* in $TMPDIR) of dbtwin processes that are
gone: a killed run's prepared workload holds its queries' unmasked values.

With --target, also drop the temporary "<db>__dbtwin_tmp_<id>" databases that
a killed 'dbtwin clone' left on that server (never one with open sessions).`, e)
	all := fs.Bool("all", false, "also remove sandboxes started with 'dbtwin sandbox up'")
	target := fs.String("target", "", "a server that 'dbtwin clone' wrote to: drop its abandoned temporary databases")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q", fs.Arg(0))
	}
	removed, err := local.GC(ctx, c.stateDir, local.GCOptions{IncludeKept: *all})
	if err == nil {
		var dirs []string
		dirs, err = workdir.Sweep("")
		for _, d := range dirs {
			removed = append(removed, "scratch directory "+d)
		}
	}
	if *target != "" && err == nil {
		var dropped []string
		dropped, err = clone.DropStaleTemps(ctx, *target)
		for _, n := range dropped {
			removed = append(removed, "database "+n)
		}
	}
	for _, n := range removed {
		fmt.Fprintf(e.stdout, "removed %s\n", n)
	}
	if len(removed) == 0 && err == nil {
		fmt.Fprintln(e.stdout, "nothing to remove")
	}
	return err
}
