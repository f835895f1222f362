package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sentinel-pacs/sentinel/internal/benchcmp"
)

// runBenchAll dispatches the bench subcommands: compare here, the others to
// runBench.
func runBenchAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return runBenchCompare(ctx, args[1:], stdout, stderr)
	}
	return runBench(ctx, args, stdout, stderr)
}

// runBenchCompare races the detector against the PyTorch peer in
// bench/peer/peer.py and prints the table of ratios.
func runBenchCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := benchcmp.DefaultOptions()
	fs, _ := newFlagSet("bench compare", "bench compare [--json] [--reps N] [flags]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	fs.IntVar(&o.Reps, "reps", o.Reps, "repetitions of every figure on each side (medians are reported)")
	fs.IntVar(&o.Iters, "iters", o.Iters, "timed iterations per figure and repetition")
	fs.IntVar(&o.Passes, "passes", o.Passes, "passes over the DICOM folder per pipeline repetition")
	fs.StringVar(&o.Python, "python", o.Python, "Python `interpreter` that sees torch, pydicom, GDCM and numpy")
	fs.StringVar(&o.Peer, "peer", o.Peer, "the peer `script`")
	fs.StringVar(&o.DICOM, "dicom", o.DICOM, "`folder` of full-resolution DICOM files for the pipeline")
	fs.IntVar(&o.Side, "side", o.Side, "input size")
	channels := fs.String("channels", joinInts(o.Channels), "encoder channels, comma-separated")
	fs.IntVar(&o.Batch, "batch", o.Batch, "training and large inference batch size")
	fs.IntVar(&o.SWAGSamples, "swag-samples", o.SWAGSamples, "SWAG samples per score")
	fs.IntVar(&o.Bank, "bank", o.Bank, "memory bank patches for scoring and the pipeline")
	banks := fs.String("knn-banks", joinInts(o.KNNBanks), "bank sizes of the kNN figure, comma-separated")
	fs.IntVar(&o.Steps, "steps", o.Steps, "training steps of the RSS measurement")
	fs.IntVar(&o.AgentFiles, "agent-files", o.AgentFiles, "files the agent RSS measurement processes")
	child := fs.String("child", "", "internal: run one RSS measurement (train or agent) and exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if o.Channels, err = parseInts(*channels); err != nil {
		return usageError{"bench compare: --channels: " + err.Error()}
	}
	if o.KNNBanks, err = parseInts(*banks); err != nil {
		return usageError{"bench compare: --knn-banks: " + err.Error()}
	}
	if *child != "" {
		out, err := benchcmp.RunChild(*child, o)
		if err != nil {
			return fmt.Errorf("bench compare child: %w", err)
		}
		fmt.Fprintln(stdout, out)
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench compare: %w", err)
	}
	o.Self = []string{exe, "bench", "compare"}
	o.Log = stderr
	r, err := benchcmp.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("bench compare: %w", err)
	}
	if *asJSON {
		return printJSON(stdout, r)
	}
	benchcmp.WriteTable(stdout, r)
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
