package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/sentinel-pacs/sentinel/store"
)

// runStore moves a workspace's state from its SQLite file to a new
// PostgreSQL database, which several agents may then share.
func runStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "sentinel store migrate --to postgres://USER@HOST/DATABASE [--json]", stderr, "migrate"); err != nil {
		return err
	}
	fs, g := newFlagSet("store migrate", "store migrate --to URL [--json] [flags]\n\n"+
		"Copy every row of the workspace's SQLite database into a new, empty PostgreSQL database.\n"+
		"Stop the agent first. The SQLite file is left as it was, as a backup.", stderr)
	to := fs.String("to", "", "the PostgreSQL `URL` (postgres://user:password@host/database) of a new, empty database")
	asJSON := jsonFlag(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{"store migrate: takes no arguments"}
	case *to == "":
		return usageError{"store migrate: give --to postgres://USER@HOST/DATABASE, the database to move the state into"}
	case !store.IsPostgres(*to):
		// Not echoed: the URL may hold a password.
		return usageError{"store migrate: --to must be a PostgreSQL URL, starting postgres:// or postgresql://"}
	}
	e, err := setupExisting(fs, g, stderr)
	if err != nil {
		return err
	}
	if e.cfg.Store.URL != "" {
		return errors.New("store migrate: the configuration already keeps the state on a PostgreSQL server " +
			"(store.url or SENTINEL_STORE_URL): there is no SQLite database to move")
	}
	// The workspace lock keeps a running agent, and any other command that
	// takes it, from writing while the rows are copied.
	src, closeSrc, err := e.openChecked(ctx)
	if err != nil {
		return err
	}
	defer closeSrc()
	dst := store.NewDB(*to)
	dst.Agent = src.Agent
	if err := dst.Open(); err != nil {
		return err
	}
	defer dst.Close()
	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, map[string]any{"to": dst.Where(), "tables": counts})
	}
	printCopied(stdout, src.Where(), dst.Where(), counts)
	password := ""
	if u, err := url.Parse(*to); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			password = " (with the password in place of xxxxx)"
		}
	}
	fmt.Fprintf(stdout, "\nNext: set [store] url = %q%s in the configuration, or SENTINEL_STORE_URL, then start the agent.\n"+
		"%s is left as it was, as a backup; the agent no longer uses it.\n", dst.Where(), password, src.Where())
	return nil
}

// printCopied writes how many rows each table copied, by table name.
func printCopied(w io.Writer, from, to string, counts map[string]int) {
	tables := make([]string, 0, len(counts))
	width, total := len("total"), 0
	for t, n := range counts {
		tables = append(tables, t)
		width = max(width, len(t))
		total += n
	}
	slices.Sort(tables)
	fmt.Fprintf(w, "copied %s to %s:\n", from, to)
	for _, t := range tables {
		fmt.Fprintf(w, "  %-*s %8d\n", width, t, counts[t])
	}
	fmt.Fprintf(w, "  %s\n  %-*s %8d rows\n", strings.Repeat("-", width+9), width, "total", total)
}
