package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sentinel-pacs/sentinel/agent"
)

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "sentinel models list [--json] | sentinel models rollback VERSION | sentinel models promote VERSION [--by NAME]", stderr, "list", "rollback", "promote")
	if err != nil {
		return err
	}
	fs, g := newFlagSet("models "+sub, "models list [--json] | models rollback VERSION | models promote VERSION [--by NAME] [flags]", stderr)
	asJSON := fs.Bool("json", false, "with list, print JSON")
	by := fs.String("by", "", "with promote, who decides (default: the user running the command)")
	if err := parse(fs, args[1:]); err != nil {
		return err
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
	if sub == "promote" {
		if fs.NArg() != 1 {
			return usageError{"models promote: give exactly one VERSION"}
		}
		who := *by
		if who == "" {
			who = os.Getenv("USER")
		}
		if who == "" {
			who = "an operator"
		}
		info, err := agent.PromoteModel(ctx, db, e.paths.Models, fs.Arg(0), who)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "model %s is current, promoted by %s (%s)\n", info.Version, who, info.Path)
		printRevisionNote(stdout, e)
		return nil
	}
	if sub == "rollback" {
		if fs.NArg() != 1 {
			return usageError{"models rollback: give exactly one VERSION"}
		}
		info, err := agent.Rollback(ctx, db, e.paths.Models, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "model %s is current again (%s)\n", info.Version, info.Path)
		printRevisionNote(stdout, e)
		return nil
	}
	vs, err := db.ModelVersions(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		type row struct {
			Active bool   `json:"active"`
			Note   string `json:"note"`
			Model  any    `json:"model"`
		}
		out := make([]row, len(vs))
		for i, v := range vs {
			out[i] = row{v.Active, v.Note, v.Info}
		}
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "%-1s %-24s %-20s %6s %8s %s\n", "", "VERSION", "CREATED", "TRAIN", "HOLDOUT", "NOTE / METRICS")
	for _, v := range vs {
		mark := " "
		if v.Active {
			mark = "*"
		}
		hold := "-"
		if a, ok := v.Info.Metrics["holdout_auc"]; ok && a >= 0 {
			hold = fmt.Sprintf("%.4f", a)
		}
		fmt.Fprintf(stdout, "%s %-24s %-20s %6d %8s %s\n", mark, v.Info.Version, v.Info.CreatedAt.Format("2006-01-02 15:04:05"),
			v.Info.TrainImages, hold, describe(v.Note, v.Info.Metrics))
	}
	return nil
}

func describe(note string, m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		switch k {
		case "seed_fpr", "train_normals", "labelled_abnormals", "holdout_normals", "holdout_abnormals":
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, m[k]))
		}
	}
	if note != "" {
		parts = append([]string{note}, parts...)
	}
	return strings.Join(parts, "; ")
}
