package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
)

// runOutbox lists what the outbox holds, or queues again the objects set
// aside for a destination after their last attempt.
func runOutbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := "sentinel outbox list [--state pending|sent|failed] [--limit N] [--json] | sentinel outbox retry DESTINATION|--all"
	sub, err := subcommand(args, usage, stderr, "list", "retry")
	if err != nil {
		return err
	}
	fs, g := newFlagSet("outbox "+sub, "outbox list [--state S] [--limit N] [--json] | outbox retry DESTINATION|--all [flags]", stderr)
	state := fs.String("state", "", "with list, only objects in this `state`: pending, sent or failed (set aside)")
	limit := fs.Int("limit", 100, "with list, at most this many objects, the most recent first")
	all := fs.Bool("all", false, "with retry, every destination")
	asJSON := jsonFlag(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch *state {
	case "", store.OutboxPending, store.OutboxSent, store.OutboxFailed:
	default:
		return usageError{fmt.Sprintf("outbox list: --state must be pending, sent or failed, got %q", *state)}
	}
	e, err := setupExisting(fs, g, stderr)
	if err != nil {
		return err
	}
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	if sub == "retry" {
		dest := ""
		switch {
		case *all && fs.NArg() == 0:
		case !*all && fs.NArg() == 1:
			dest = fs.Arg(0)
		default:
			return usageError{"outbox retry: give one DESTINATION, or --all"}
		}
		n, err := db.RetryOutbox(ctx, dest)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"destination": dest, "requeued": n})
		}
		what := "every destination"
		if dest != "" {
			what = dest
		}
		fmt.Fprintf(stdout, "%d objects set aside for %s queued again; the running agent sends them at its next pass\n", n, what)
		return nil
	}
	items, err := db.OutboxItems(ctx, *state, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		type row struct {
			Destination string    `json:"destination"`
			Object      string    `json:"object"`
			Output      string    `json:"output"`
			InstanceID  string    `json:"instance_id"`
			Revision    int       `json:"revision"`
			State       string    `json:"state"`
			Attempts    int       `json:"attempts"`
			LastError   string    `json:"last_error,omitempty"`
			UpdatedAt   time.Time `json:"updated_at"`
		}
		out := make([]row, 0, len(items))
		for _, it := range items {
			out = append(out, row{it.Destination, it.Object, it.Output, it.InstanceID, it.Revision, it.State, it.Attempts, it.LastError, it.UpdatedAt})
		}
		return printJSON(stdout, map[string]any{"objects": out})
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "the outbox holds nothing here")
		return nil
	}
	for _, it := range items {
		fmt.Fprintf(stdout, "%-8s %-12s %-6s %s (instance %s, revision %d), %d attempts", it.State, it.Destination, it.Output,
			it.Object, it.InstanceID, it.Revision, it.Attempts)
		if it.LastError != "" {
			fmt.Fprintf(stdout, ": %s", it.LastError)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}
