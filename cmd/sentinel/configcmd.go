package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sentinel-pacs/sentinel/config"
)

// runConfig prints the configuration the commands would use: the
// defaults, the file, the environment and the command line merged, with
// secrets masked.
func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "sentinel config show [--json] [--config FILE] [--workspace DIR]", stderr, "show"); err != nil {
		return err
	}
	fs, g := newFlagSet("config show", "config show [--json] [flags]\n\n"+
		"Print the configuration as the other commands see it: the defaults, then the --config file\n"+
		"(or $"+config.EnvConfig+"), then the SENTINEL_… environment variables, then the command line.\n"+
		"Secrets are printed as \""+config.MaskedSecret+"\".", stderr)
	asJSON := jsonFlag(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"config show: takes no arguments"}
	}
	// Reading the configuration creates nothing.
	e, err := setupWith(fs, g, stderr, false)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(e.cfg.Masked()); err != nil {
		return fmt.Errorf("config show: %w", err)
	}
	if *asJSON {
		var m map[string]any
		if _, err := toml.Decode(b.String(), &m); err != nil {
			return fmt.Errorf("config show: %w", err)
		}
		return printJSON(stdout, m)
	}
	src := []string{"the defaults"}
	if e.configFile != "" {
		src = append(src, e.configFile)
	}
	if len(e.fromEnv) > 0 {
		src = append(src, "the environment ("+strings.Join(e.fromEnv, ", ")+")")
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "workspace" || f.Name == "log-level" {
			src = append(src, "--"+f.Name)
		}
	})
	fmt.Fprintf(stdout, "# Sentinel's configuration from %s.\n# Secrets are shown as %q.\n\n", strings.Join(src, ", then "), config.MaskedSecret)
	_, err = stdout.Write(b.Bytes())
	return err
}
