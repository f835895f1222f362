package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sentinel-pacs/sentinel/store"
)

// runReaders manages the people who sign in to the page: each has a name,
// a role and a token of their own, printed once when added and stored only
// as its hash.
func runReaders(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "sentinel readers add NAME [--admin] | readers list [--json] | readers revoke NAME"
	sub, err := subcommand(args, synopsis, stderr, "add", "list", "revoke")
	if err != nil {
		return err
	}
	fs, g := newFlagSet("readers "+sub, "readers add NAME [--admin] | readers list [--json] | readers revoke NAME [flags]", stderr)
	admin := fs.Bool("admin", false, "with add, the reader may also retrain, roll back and manage readers")
	asJSON := fs.Bool("json", false, "with list, print one JSON object")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if want := map[string]int{"add": 1, "list": 0, "revoke": 1}[sub]; fs.NArg() != want {
		return usageError{"usage: " + synopsis}
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
	switch sub {
	case "add":
		role := store.RoleReader
		if *admin {
			role = store.RoleAdmin
		}
		token, err := db.AddReader(ctx, fs.Arg(0), role)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "reader %s added as %s; the token below is shown once and cannot be recovered: hand it over privately\n", fs.Arg(0), role)
		fmt.Fprintln(stdout, token)
	case "revoke":
		if err := db.RevokeReader(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reader %s revoked; their sessions are signed out\n", fs.Arg(0))
	case "list":
		rs, err := db.Readers(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			type reader struct {
				Name      string     `json:"name"`
				Role      string     `json:"role"`
				CreatedAt time.Time  `json:"created_at"`
				RevokedAt *time.Time `json:"revoked_at"`
			}
			out := struct {
				Readers []reader `json:"readers"`
			}{Readers: []reader{}}
			for _, r := range rs {
				rd := reader{Name: r.Name, Role: r.Role, CreatedAt: r.CreatedAt}
				if !r.RevokedAt.IsZero() {
					rd.RevokedAt = &r.RevokedAt
				}
				out.Readers = append(out.Readers, rd)
			}
			return printJSON(stdout, out)
		}
		fmt.Fprintf(stdout, "%-24s %-7s %-20s %s\n", "NAME", "ROLE", "CREATED", "REVOKED")
		for _, r := range rs {
			revoked := "-"
			if !r.RevokedAt.IsZero() {
				revoked = r.RevokedAt.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(stdout, "%-24s %-7s %-20s %s\n", r.Name, r.Role, r.CreatedAt.Local().Format("2006-01-02 15:04:05"), revoked)
		}
	}
	return nil
}
