package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/config"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/store"
)

// globalFlags are the flags every command that touches a workspace takes.
type globalFlags struct {
	workspace string
	config    string
	logLevel  string
}

func newFlagSet(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *globalFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	g := &globalFlags{}
	fs.StringVar(&g.workspace, "workspace", config.DefaultWorkspace, "workspace `folder` holding inbox/, reports/, quarantine/, models/ and state.db")
	fs.StringVar(&g.config, "config", "", "TOML configuration `file` (see agent.toml.example); --workspace overrides its workspace")
	fs.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn or error (overrides the configuration)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sentinel %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, g
}

// parse parses args and turns --help and flag errors into errHelp and
// usageError.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err.Error()}
	}
	return nil
}

// flagsFirst moves the flags of args (with their values) before the
// positional arguments, so that "ingest DIR --workspace W" parses as
// "ingest --workspace W DIR" does; the flag package alone stops at the
// first positional argument. Everything after "--" stays positional.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // an unknown flag: Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(pos) == 0 {
		return flags
	}
	return append(append(flags, "--"), pos...)
}

// env is what a command needs from its workspace.
type env struct {
	cfg   config.Config
	paths config.Resolved
	log   *slog.Logger
	// patientKey is the workspace's patient hash (store.PatientKeyer),
	// set when the workspace database is opened; until then files are
	// read without patient keys.
	patientKey func(issuer, id string) string
	// filePatients gives, by file name, the patient of files that carry no
	// Patient ID (PNG, JPEG), from a research labels file.
	filePatients map[string]string
}

// setup loads the configuration, applies the flags and creates the
// workspace folders.
func setup(fs *flag.FlagSet, g *globalFlags, stderr io.Writer) (*env, error) {
	cfg := config.Default()
	if g.config != "" {
		c, err := config.Load(g.config)
		if err != nil {
			return nil, configError{err}
		}
		cfg = c
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "workspace":
			cfg.Workspace = g.workspace
		case "log-level":
			cfg.Log.Level = g.logLevel
		}
	})
	if err := cfg.Validate(); err != nil {
		return nil, configError{err}
	}
	paths, err := cfg.Resolve()
	if err != nil {
		return nil, configError{err}
	}
	if err := paths.Prepare(); err != nil {
		return nil, err
	}
	return &env{cfg: cfg, paths: paths, log: newLogger(cfg.Log, stderr)}, nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (e *env) openDB() (*store.DB, error) {
	db := store.NewDB(e.paths.Database)
	if err := db.Open(); err != nil {
		return nil, err
	}
	key, err := db.PatientKeyer(context.Background())
	if err != nil {
		db.Close()
		return nil, err
	}
	e.patientKey = key
	return db, nil
}

// loadModel loads the workspace's current model, or explains how to make
// one.
func (e *env) loadModel() (*detector.Model, error) {
	m, err := agent.LoadCurrentModel(e.paths.Models)
	if errors.Is(err, sentinel.ErrNoModel) {
		return nil, fmt.Errorf("%w: train one with 'sentinel train --workspace %s --normals DIR' (or try 'sentinel demo')",
			err, e.cfg.Workspace)
	}
	return m, err
}

// isTerminal reports whether f is a character device, i.e. a person is
// probably watching.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// loadScorer loads the current model as the reports use it: with the head
// and threshold the learning loop fitted, when it has them.
func (e *env) loadScorer() (agent.Scorer, error) {
	m, err := e.loadModel()
	if err != nil {
		return nil, err
	}
	return agent.WithLearning(m, e.learningOptions().Embedder)
}

// openForScoring loads the current model (see loadScorer) and opens the
// database, recording the model as the one in use.
func (e *env) openForScoring(ctx context.Context) (agent.Scorer, *store.DB, error) {
	m, err := e.loadScorer()
	if err != nil {
		return nil, nil, err
	}
	db, err := e.openDB()
	if err != nil {
		return nil, nil, err
	}
	if err := db.SaveModel(ctx, m.Info(), true); err != nil {
		db.Close()
		return nil, nil, err
	}
	return m, db, nil
}

// subcommand returns the subcommand a command group was given, one of
// names; --help prints the group's usage.
func subcommand(args []string, usage string, stderr io.Writer, names ...string) (string, error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintf(stderr, "Usage: %s\n", usage)
		return "", errHelp
	}
	if len(args) == 0 || !slices.Contains(names, args[0]) {
		return "", usageError{"usage: " + usage}
	}
	return args[0], nil
}

// printJSON writes v as indented JSON, as the commands' --json and
// --format json outputs are.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
