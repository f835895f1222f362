package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g := newFlagSet("train", "train --normals DIR [--labels CSV --split NAME] [--json] [flags]", stderr)
	asJSON := jsonFlag(fs)
	normals := fs.String("normals", "", "`folder` of normal images (DICOM, PNG or JPEG); required")
	labels := fs.String("labels", "", "labels `CSV` with columns file,finding,split: only its normal rows are used")
	split := fs.String("split", "", "with --labels, use only this split's rows (e.g. seed)")
	epochs := fs.Int("epochs", 0, "training epochs (overrides detector.epochs)")
	seed := fs.Int64("seed", 0, "random seed (overrides detector.seed)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *normals == "" || fs.NArg() > 0 {
		return usageError{"train: --normals DIR is required and takes no other arguments"}
	}
	if *split != "" && *labels == "" {
		return usageError{"train: --split needs --labels"}
	}
	e, err := setup(fs, g, stderr)
	if err != nil {
		return err
	}
	if *epochs > 0 {
		e.cfg.Detector.Epochs = *epochs
	}
	if *seed != 0 {
		e.cfg.Detector.Seed = *seed
	}
	files, err := agent.NormalFiles(*normals, *labels, *split)
	if err != nil {
		return err
	}
	if *labels != "" {
		// A labels file with a patient column gives the seed normals their
		// patients, which PNG and JPEG files do not carry.
		if e.filePatients, err = agent.ReadPatients(*labels); err != nil {
			return err
		}
	}
	db, err := e.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	tc := e.trainConfig()
	// Reading the images, then each epoch: a bar on a terminal, log
	// records otherwise.
	st := &stages{e: e, stderr: stderr}
	st.next("reading", "images", len(files))
	tc.Progress = st.trainingProgress("")
	fmt.Fprintf(stderr, "training on %d normal images from %s (input %dx%d, %d epochs)\n",
		len(files), *normals, tc.InputSize, tc.InputSize, tc.Epochs)
	info, err := agent.Train(ctx, db, agent.TrainOptions{
		Files: files, ModelsDir: e.paths.Models, Detector: tc,
		Decode: st.countingDecoder(e.decoder()), Resample: dicomio.Resample, Workers: e.cfg.Ingest.Workers, Logger: e.log,
	})
	st.finish()
	if err != nil {
		return err
	}
	if err := e.recordSeeds(ctx, db, files); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, info)
	}
	fmt.Fprintf(stdout, "model %s: %d training and %d calibration normals, threshold %.6g at %.0f%% false positives\nsaved to %s\n",
		info.Version, info.TrainImages, info.CalibImages, info.Threshold, 100*info.TargetFPR, info.Path)
	return nil
}

// progressPrinter shows training progress as a bar on a terminal and as
// plain lines otherwise, for the demo, which logs nothing.
func progressPrinter(w io.Writer) func(detector.Progress) {
	term := false
	if f, ok := w.(*os.File); ok {
		term = isTerminal(f)
	}
	return func(p detector.Progress) {
		if !term {
			fmt.Fprintf(w, "epoch %d/%d loss %.5f elapsed %s eta %s\n", p.Epoch, p.Epochs, p.Loss,
				p.Elapsed.Round(time.Second), p.ETA.Round(time.Second))
			return
		}
		const width = 30
		done := width * p.Epoch / max(1, p.Epochs)
		fmt.Fprintf(w, "\r[%s%s] epoch %d/%d loss %.5f eta %s   ", strings.Repeat("=", done),
			strings.Repeat(" ", width-done), p.Epoch, p.Epochs, p.Loss, p.ETA.Round(time.Second))
		if p.Epoch == p.Epochs {
			fmt.Fprintln(w)
		}
	}
}
