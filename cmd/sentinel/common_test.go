package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// Flags may follow the positional arguments, as in "ingest DIR
// --workspace W"; a flag's value is never taken for a positional
// argument, a bool flag takes none, and "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	tests := []struct {
		args     []string
		ws       string
		json     bool
		rest     []string
		wantFail bool
	}{
		{args: []string{"DIR", "--workspace", "W"}, ws: "W", rest: []string{"DIR"}},
		{args: []string{"--workspace", "W", "DIR"}, ws: "W", rest: []string{"DIR"}},
		{args: []string{"A", "--json", "B", "-workspace=W"}, ws: "W", json: true, rest: []string{"A", "B"}},
		{args: []string{"A", "--", "--workspace", "W"}, rest: []string{"A", "--workspace", "W"}},
		{args: []string{"-", "--json"}, json: true, rest: []string{"-"}},
		{args: []string{"DIR", "--no-such-flag"}, wantFail: true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		ws := fs.String("workspace", "", "")
		js := fs.Bool("json", false, "")
		err := parse(fs, tt.args)
		if tt.wantFail {
			if err == nil {
				t.Errorf("%q: no error", tt.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if *ws != tt.ws || *js != tt.json || !slices.Equal(fs.Args(), tt.rest) {
			t.Errorf("%q: workspace %q, json %v, arguments %q; want %q, %v, %q", tt.args, *ws, *js, fs.Args(), tt.ws, tt.json, tt.rest)
		}
	}
}
