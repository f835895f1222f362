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
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/config"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/store"
)

// globalFlags are the flags every command that touches a workspace takes.
type globalFlags struct {
	workspace   string
	config      string
	logLevel    string
	newDatabase bool
}

func newFlagSet(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *globalFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print an error and the whole flag list on
	// stderr; parse returns them instead, so that help goes to standard
	// output and an error is printed once.
	fs.SetOutput(io.Discard)
	g := &globalFlags{}
	fs.StringVar(&g.workspace, "workspace", config.DefaultWorkspace, "workspace `folder` holding inbox/, reports/, quarantine/, models/ and state.db")
	fs.StringVar(&g.config, "config", "", "TOML configuration `file` (see agent.toml.example); --workspace overrides its workspace")
	fs.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn or error (overrides the configuration)")
	fs.BoolVar(&g.newDatabase, "new-database", false, "create a new database even though the workspace already holds reports or models (its labels, holdout and patient key start empty)")
	fs.Usage = func() {}
	synopses.Store(fs, synopsis)
	return fs, g
}

// synopses holds each flag set's synopsis for its help text.
var synopses sync.Map

// helpText returns a command's usage and flags.
func helpText(fs *flag.FlagSet) string {
	var b strings.Builder
	syn, _ := synopses.Load(fs)
	fmt.Fprintf(&b, "Usage: sentinel %v\n\nFlags:\n", syn)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

// helpError carries the help text a command prints on standard output.
type helpError struct{ text string }

func (e helpError) Error() string        { return "help requested" }
func (e helpError) Is(target error) bool { return target == errHelp }

// parse parses args and turns --help and flag errors into errHelp and
// usageError.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return helpError{helpText(fs)}
		}
		return usageError{fmt.Sprintf("%s: %v (sentinel %s --help lists its flags)", fs.Name(), err, fs.Name())}
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
	// newDatabase allows a new database beside existing reports or models.
	newDatabase bool
	// configFile is the configuration file read ("" for none) and fromEnv
	// the SENTINEL_… variables that set a key.
	configFile string
	fromEnv    []string
}

// setup loads the configuration, applies the flags and creates the
// workspace folders.
func setup(fs *flag.FlagSet, g *globalFlags, stderr io.Writer) (*env, error) {
	return setupWith(fs, g, stderr, true)
}

// setupExisting is setup for the commands that only read, or change only
// what an existing workspace holds: it creates no folder, and fails when
// the workspace has no database (a mistyped --workspace, say).
func setupExisting(fs *flag.FlagSet, g *globalFlags, stderr io.Writer) (*env, error) {
	e, err := setupWith(fs, g, stderr, false)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(e.paths.Database); err != nil && e.cfg.Store.URL == "" {
		return nil, fmt.Errorf("no Sentinel workspace here: %s: %w (check --workspace or --config)", e.paths.Database, err)
	}
	return e, nil
}

// setupReadOnly is setup for the commands that read a workspace's model
// or configuration but need no database (score, echo): it creates no
// folder.
func setupReadOnly(fs *flag.FlagSet, g *globalFlags, stderr io.Writer) (*env, error) {
	return setupWith(fs, g, stderr, false)
}

func setupWith(fs *flag.FlagSet, g *globalFlags, stderr io.Writer, prepare bool) (*env, error) {
	if g.logLevel != "" {
		switch strings.ToLower(g.logLevel) {
		case "debug", "info", "warn", "error":
		default:
			// A bad flag is a bad command line, not a bad file.
			return nil, usageError{fmt.Sprintf("--log-level must be debug, info, warn or error, got %q", g.logLevel)}
		}
	}
	// The file, then the environment over it, then the command line over
	// both.
	cfg := config.Default()
	file := g.config
	if file == "" {
		file = os.Getenv(config.EnvConfig)
	}
	if file != "" {
		c, err := config.Load(file)
		if err != nil {
			return nil, configError{err}
		}
		cfg = c
	}
	fromEnv, err := config.ApplyEnv(&cfg, os.Environ())
	if err != nil {
		return nil, configError{err}
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
		if len(fromEnv.Applied) > 0 {
			err = fmt.Errorf("%w (the environment set %s)", err, strings.Join(fromEnv.Applied, ", "))
		}
		return nil, configError{err}
	}
	if err := cfg.ReadSecretFiles(); err != nil {
		return nil, configError{err}
	}
	paths, err := cfg.Resolve()
	if err != nil {
		return nil, configError{err}
	}
	if prepare {
		if err := paths.Prepare(); err != nil {
			return nil, err
		}
	}
	e := &env{cfg: cfg, paths: paths, log: newLogger(cfg.Log, stderr), newDatabase: g.newDatabase,
		configFile: file, fromEnv: fromEnv.Applied}
	for _, name := range fromEnv.Unknown {
		e.log.Warn("environment variable ignored: no such setting (sentinel config show lists what is used)", slog.String("variable", name))
	}
	return e, nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		// Durations in seconds, as a machine reading the log wants them,
		// not the handler's integer nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.Float64Value(a.Value.Duration().Seconds())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// errNoDatabase means the workspace holds work but its database is gone.
var errNoDatabase = errors.New("database missing")

func (e *env) openDB() (*store.DB, error) {
	if err := e.checkDatabaseExists(); err != nil {
		return nil, err
	}
	db := store.NewDB(e.databaseTarget())
	db.Agent = e.cfg.Store.Agent
	if db.Agent == "" {
		db.Agent = store.DefaultAgent(e.cfg.Workspace)
	}
	db.ClaimLease = e.cfg.Store.ClaimLease.Duration
	if err := db.Open(); err != nil {
		if errors.Is(err, store.ErrDamaged) {
			return nil, e.damaged(err)
		}
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

// databaseTarget is where the state lives: the PostgreSQL server of
// store.url, or else the workspace's SQLite file.
func (e *env) databaseTarget() string {
	if e.cfg.Store.URL != "" {
		return e.cfg.Store.URL
	}
	return e.paths.Database
}

// checkDatabaseExists refuses to create a database beside reports or
// models made with another one: a new database would forget the labels,
// holdout roles and patient key, and score every file again.
func (e *env) checkDatabaseExists() error {
	if _, err := os.Stat(e.paths.Database); err == nil || e.newDatabase || e.cfg.Store.URL != "" {
		return nil
	}
	var held []string
	if entries, err := os.ReadDir(e.paths.Reports); err == nil && len(entries) > 0 {
		held = append(held, "reports in "+e.paths.Reports)
	}
	if _, err := os.Stat(filepath.Join(e.paths.Models, "CURRENT")); err == nil {
		held = append(held, "models in "+e.paths.Models)
	}
	if len(held) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s does not exist, but the workspace holds %s. Restore the database from a backup; "+
		"or, to start again with an empty one (labels, holdout roles and the patient key are lost, and files in the inbox are scored again), "+
		"add --new-database", errNoDatabase, e.paths.Database, strings.Join(held, " and "))
}

// damaged explains what to do about a damaged database.
func (e *env) damaged(err error) error {
	return fmt.Errorf("%w. Stop every sentinel process on this workspace, then restore %s from a backup; "+
		"or move it aside and start again with --new-database (labels, holdout roles and the patient key are lost; reports on disk are kept)",
		err, e.paths.Database)
}

// openChecked opens the database for a command that takes files from the
// queue: it holds the workspace lock (released by the returned function)
// and runs SQLite's quick check first, so that a damaged database is
// found before anything is written into it.
func (e *env) openChecked(ctx context.Context) (*store.DB, func(), error) {
	unlock, err := agent.LockWorkspace(e.paths.Database)
	if err != nil {
		return nil, nil, err
	}
	db, err := e.openDB()
	if err != nil {
		unlock()
		return nil, nil, err
	}
	if err := db.Check(ctx); err != nil {
		db.Close()
		unlock()
		if errors.Is(err, store.ErrDamaged) {
			return nil, nil, e.damaged(err)
		}
		return nil, nil, err
	}
	return db, func() { db.Close(); unlock() }, nil
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
// database under the workspace lock (see openChecked), recording the model
// as the one in use. close releases both.
func (e *env) openForScoring(ctx context.Context) (m agent.Scorer, db *store.DB, close func(), err error) {
	m, err = e.loadScorer()
	if err != nil {
		return nil, nil, nil, err
	}
	db, close, err = e.openChecked(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := db.SaveModel(ctx, m.Info(), true); err != nil {
		close()
		return nil, nil, nil, err
	}
	return m, db, close, nil
}

// subcommand returns the subcommand a command group was given, one of
// names; --help prints the group's usage.
func subcommand(args []string, usage string, stderr io.Writer, names ...string) (string, error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return "", helpError{fmt.Sprintf("Usage: %s\n", usage)}
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

// jsonFlag adds --json, which prints what the command reports as one JSON
// object on standard output instead of text.
func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print the result as one JSON object on standard output instead of text")
}
