// Command sentinel finds chest X-rays that look unlike the normal ones it
// has learned. See the README for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/store"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	// 2 is left to the Go runtime, which exits 2 on a fatal error such as
	// running out of memory.
	exitConfig  = 3  // the configuration file is invalid
	exitNoModel = 4  // the command needs a trained model and there is none
	exitDamaged = 5  // the database is damaged, or missing beside existing work
	exitBusy    = 6  // another sentinel process holds the workspace
	exitUsage   = 64 // bad command line (sysexits' EX_USAGE)
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "train on synthetic phantoms, run the agent on a mix of studies, print the results", runDemo},
		{"run", "watch the inbox and score every file dropped in it until stopped", runRun},
		{"train", "train a model on a folder of normal images", runTrain},
		{"score", "score image files and print their reports", runScore},
		{"eval", "evaluate the model on labelled images against a no-learning baseline", runEval},
		{"ingest", "process every file in a folder once, then exit", runIngest},
		{"decode", "print a DICOM file's header, or write its pixels as .npy or PNG", runDecode},
		{"queries", "choose cases to ask radiologists about and export the worklist", runQueries},
		{"labels", "import radiologists' labels from CSV or JSON", runLabels},
		{"readers", "add, list or revoke the readers who sign in to the page", runReaders},
		{"retrain", "retrain on labelled and admitted normals; current on its own only if shown better, else held", runRetrain},
		{"admit", "run one oracle-free admission cycle", runAdmit},
		{"models", "list model versions, promote a held one, or roll back to one", runModels},
		{"bench", "benchmarks: 'bench learning' runs the learning loop with a labels file answering, 'bench compare' races the PyTorch peer", runBenchAll},
		{"status", "print counts, recent failures and the current model", runStatus},
		{"config", "'config show' prints the merged configuration (file, SENTINEL_… environment, flags), secrets masked", runConfig},
		{"echo", "send a C-ECHO to a configured DICOM destination or to HOST:PORT", runEcho},
		{"outbox", "list the DICOM and webhook outputs waiting, sent or set aside, or queue set-aside ones again", runOutbox},
		{"store", "'store migrate --to URL' copies the workspace's state from its SQLite file into a new PostgreSQL database", runStore},
		{"version", "print the version, the VCS revision and the Go version (also --version)", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, versionLine())
			return nil
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sentinel <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'sentinel <command> --help' for a command's flags.\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var help helpError
		if errors.As(err, &help) {
			fmt.Fprint(stdout, help.text)
			return exitOK
		}
		if c.name == "run" && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// Stopped (SIGTERM, Ctrl-C) before start-up finished: a
			// requested stop, not a failure.
			fmt.Fprintln(stderr, "sentinel: stopped during start-up")
			return exitOK
		}
		return exitCode(err, stderr)
	}
	fmt.Fprintf(stderr, "sentinel: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// usageError marks a bad command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// configError marks an invalid configuration.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// errHelp is returned after --help has printed the flags.
var errHelp = errors.New("help requested")

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintln(stderr, "sentinel:", err)
	var ue usageError
	var ce configError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ce):
		return exitConfig
	case errors.Is(err, sentinel.ErrNoModel):
		return exitNoModel
	case errors.Is(err, store.ErrDamaged), errors.Is(err, errNoDatabase):
		return exitDamaged
	case errors.Is(err, agent.ErrWorkspaceBusy):
		return exitBusy
	}
	return exitFailure
}

// versionLine names the version, the VCS revision the binary was built
// from (when the Go tool recorded one) and the Go version.
func versionLine() string {
	rev, dirty := "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, st := range bi.Settings {
			switch st.Key {
			case "vcs.revision":
				rev = st.Value
			case "vcs.modified":
				dirty = st.Value == "true"
			}
		}
	}
	line := "sentinel " + version
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+modified"
		}
		line += " (" + rev + ")"
	}
	return line + " " + runtime.Version()
}
