// Command crmq is the operator CLI: migrate the schema, create orgs and API
// keys, enqueue a job and read its status, and benchmark a running system
// against raw asynq. Every subcommand is one entry of the commands table.
//
// Exit codes: 0 success, 1 failure, 2 usage error. Results go to stdout,
// logs and the one error line to stderr.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"

	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/cmd/internal/proc"
	"github.com/crmq/crmq/store"
)

// command is one subcommand. Adding one is one line in commandTable plus
// its run function, e.g.
//
//	{"seed", "[--org NAME]", "load the demo data set into an org", runSeed},
type command struct {
	path    string // words after crmq, e.g. "org create"
	args    string // positional arguments for the usage line
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

// commandTable is a function, not a variable, because help reads it and
// is reachable from the commands (a variable would be an init cycle).
func commandTable() []command {
	return []command{
		{"migrate", "", "apply every database migration not yet applied (idempotent)", runMigrate},
		{"org create", "NAME", "create an org and print its first API key (only the key, on stdout)", runOrgCreate},
		{"org key", "NAME", "issue another API key for an existing org (every scope, or --scopes a,b) and print it", runOrgKey},
		{"enqueue", "TYPE", "enqueue a job (writes its job row) and print its id", runEnqueue},
		{"job", "ID", "print a job's status row as JSON", runJob},
		{"seed", "", "load the deterministic demo dataset into an org (default demo) and print a new key for it", runSeed},
		{"bench e2e", "", "drive system:ping through the running API and compare its latency with raw asynq", runBenchE2E},
		{"bench capacity", "", "step the ping rate through the API (250, 500, 750, 1,000, 1,500/s ...): p50/p99 beside raw asynq, CPU seconds and Postgres statements per job, the highest rate within 2x; then the enqueue rate against raw Enqueue + INSERT", runBenchCapacity},
		{"bench summary", "", "time summary generation with the offline provider over an org's records against the bare graph read", runBenchSummary},
		{"demo-sites", "", "serve the demo's fixture company websites on loopback (for enrichment without the internet)", runDemoSites},
		{"bench enrich", "", "bulk-enrich accounts against local fixture sites with politeness on: records per second and peak memory, against bare fetching", runBenchEnrich},
		{"eval summaries", "", "score a summary provider (offline, or gemini with a key) on the evaluation set: must-mention coverage, invented facts, repeats, length", runEvalSummaries},
		{"bench rfm", "", "time the RFM refresh of a generated org (1M accounts, 10M deals) against a bare NTILE statement", runBenchRFM},
		{"bench behaviour", "", "time a full refresh of the five ABM techniques and a segment over a generated org (bench rfm's, with line items, contacts, activities and cases in the demo's proportions, --scale)", runBenchBehaviour},
		{"bench export", "", "time export:segment of a generated 1M-account segment against psql \\copy piped into zip", runBenchExport},
	}
}

func main() {
	proc.SetGCDefault() // as the services run, so a bench's in-process side does too
	ctx, stop := proc.SignalContext()
	stopProfile := startCPUProfile(os.Getenv("CRMQ_CPUPROFILE"), os.Stderr)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// startCPUProfile writes a CPU profile of the whole command to path
// (CRMQ_CPUPROFILE), for `go tool pprof` over a bench run; "" does nothing.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "crmq: CRMQ_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// errHelp: -h was asked for; the usage went to stdout.
var errHelp = errors.New("help requested")

// usageError is a mistake in the command line (exit 2).
type usageError struct {
	cmd string // "crmq enqueue"
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *command, format string, args ...any) error {
	name := "crmq"
	if cmd != nil {
		name += " " + cmd.path
	}
	return &usageError{cmd: name, msg: fmt.Sprintf(format, args...)}
}

// run is main without the process: tests call it with their own writers
// and environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, rest, err := lookup(args)
	if err == nil && cmd == nil {
		printHelp(stdout)
		return 0
	}
	c := &cli{stdout: stdout, stderr: stderr, cmd: cmd}
	defer c.close()
	if err == nil {
		err = cmd.run(ctx, c, rest)
	}
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		hint := "crmq help"
		if ue.cmd != "crmq" {
			hint = ue.cmd + " -h"
		}
		fmt.Fprintf(stderr, "%s: %s (usage: %s)\n", ue.cmd, ue.msg, hint)
		return 2
	default:
		fmt.Fprintf(stderr, "crmq: %s\n", oneLine(err.Error()))
		return 1
	}
}

// lookup finds the command named by the longest prefix of args. A nil
// command without error means help was asked for.
func lookup(args []string) (*command, []string, error) {
	if len(args) == 0 {
		return nil, nil, usagef(nil, "no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "crmq help enqueue" is "crmq enqueue -h".
			cmd, _, err := lookup(args[1:])
			if err != nil || cmd == nil {
				return cmd, nil, err
			}
			return cmd, []string{"-h"}, nil
		}
		return nil, nil, nil
	}
	var best *command
	table := commandTable()
	for i := range table {
		words := strings.Fields(table[i].path)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == table[i].path {
			if best == nil || len(words) > len(strings.Fields(best.path)) {
				best = &table[i]
			}
		}
	}
	if best == nil {
		var subs []string
		for _, c := range table {
			if p, ok := strings.CutPrefix(c.path, args[0]+" "); ok {
				subs = append(subs, p)
			}
		}
		if len(subs) > 0 {
			return nil, nil, usagef(nil, "%q needs a subcommand: %s", args[0], strings.Join(subs, ", "))
		}
		return nil, nil, usagef(nil, "unknown command %q", args[0])
	}
	return best, args[len(strings.Fields(best.path)):], nil
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, "crmq is the operator CLI of crmq.\n\nusage: crmq COMMAND [ARGS] [FLAGS]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commandTable() {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.path+" "+c.args), c.summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, "\n`crmq COMMAND -h` shows a command's flags. Settings (DATABASE_URL, REDIS_URL,\n"+
		"HTTP_ADDR, CRMQ_POLL_INTERVAL, ...) come from the environment, as for api and worker.\n"+
		"Exit codes: 0 ok, 1 failure, 2 usage error.\n")
}

// cli is what a running command shares: its writers and, opened on first
// use, the config, the logger and the database.
type cli struct {
	stdout, stderr io.Writer
	cmd            *command
	detail         string // more usage text a command sets before parse

	cfg     *config.Config
	log     *slog.Logger
	db      *store.DB
	closers []func()
}

func (c *cli) close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// config loads the environment once; the logger writes to the command's stderr.
func (c *cli) config() (config.Config, error) {
	if c.cfg != nil {
		return *c.cfg, nil
	}
	cfg, err := config.Load(false)
	if err != nil {
		return config.Config{}, fmt.Errorf("config: %w", err)
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(c.stderr, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(c.stderr, opts)
	}
	c.log = slog.New(h).With("process", "crmq", "command", c.cmd.path)
	c.cfg = &cfg
	return cfg, nil
}

// logger returns the command's logger; config must have been loaded.
func (c *cli) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.NewTextHandler(c.stderr, nil))
	}
	return c.log
}

// openDB connects to DATABASE_URL; the connection closes when run returns.
func (c *cli) openDB(ctx context.Context) (*store.DB, error) {
	if c.db != nil {
		return c.db, nil
	}
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, min(cfg.DBMaxConns, 4))
	if err != nil {
		return nil, err
	}
	c.db = db
	c.closers = append(c.closers, func() { _ = db.Close() })
	return db, nil
}

// flags returns an empty flag set for the command; parse fills it.
func (c *cli) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("crmq "+c.cmd.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself, in one line
	return fs
}

// parse parses flags anywhere among the arguments (so `crmq enqueue
// system:ping --wait` works) and checks the number of positional
// arguments. -h prints the command's usage to stdout.
func (c *cli) parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.usage(fs, c.stdout)
			return nil, errHelp
		}
		if err != nil {
			return nil, usagef(c.cmd, "%s", err.Error())
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < minPos:
		return nil, usagef(c.cmd, "missing %s", c.cmd.args)
	case len(pos) > maxPos:
		return nil, usagef(c.cmd, "unexpected argument %q", pos[maxPos])
	}
	return pos, nil
}

func (c *cli) usage(fs *flag.FlagSet, w io.Writer) {
	line := "crmq " + c.cmd.path
	if c.cmd.args != "" {
		line += " " + c.cmd.args
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		line += " [flags]"
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", line, c.cmd.summary)
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", c.detail)
	}
	if hasFlags {
		var b bytes.Buffer
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprintf(w, "\nflags:\n%s", b.String())
	}
}

// oneLine keeps the error report to one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
