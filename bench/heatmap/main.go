// Command heatmap measures where the heatmap puts its weight on labelled
// chest films: for each film it scores, the share of the map's weight (the
// sum of its values, at the model's input size) that falls inside a
// central lung region, the share in the border band, and whether the
// hottest pixel lies in the lungs. It prints the means over the pneumonia
// films, the normal films and the pneumonia films scored above the
// threshold as a markdown table, for the map as scored
// (sentinel.Score.Heatmap, which the pictures showed before
// detector.FocusHeatmap), for FocusHeatmap's steps apart, and for
// FocusHeatmap itself (what is drawn).
//
//	go run ./bench/heatmap -workspace W -data ../shared/data/cxr8/images \
//	    -labels ../shared/data/cxr8/labels.csv -split dev \
//	    [-ablation 1,2,4] [-pictures DIR -films a.png,b.png]
//
// The lung region is two ellipses in coordinates relative to the film
// (x to the right, y down, both 0 to 1): centres (0.30, 0.44) and (0.70,
// 0.44), semi-axes 0.16 across and 0.28 down, 28% of the film's area.
// They hold the lung fields of a centred PA or AP chest film and leave
// out the mediastinum between them (x 0.46–0.54), the neck and shoulders
// above y 0.16, the abdomen below y 0.72, and the corners and edges where
// labels, markers and collimation sit. The border band is every pixel
// within 1/16 of the side of an edge.
//
// -ablation adds rows for the blur alone at the given standard
// deviations. With -pictures, the films named by -films are also drawn as
// the agent draws its report's heatmap picture, one PNG each in DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/internal/parallel"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "heatmap:", err)
		os.Exit(1)
	}
}

// lungEllipses are the centres and semi-axes of the lung region, relative
// to the film.
var lungEllipses = [2][4]float64{{0.30, 0.44, 0.16, 0.28}, {0.70, 0.44, 0.16, 0.28}}

// inLungs says whether the pixel (x, y) of a w×h map has its centre in
// the lung region.
func inLungs(x, y, w, h int) bool {
	u, v := (float64(x)+0.5)/float64(w), (float64(y)+0.5)/float64(h)
	for _, e := range lungEllipses {
		du, dv := (u-e[0])/e[2], (v-e[1])/e[3]
		if du*du+dv*dv <= 1 {
			return true
		}
	}
	return false
}

// inBorder says whether the pixel (x, y) of a w×h map lies within 1/16 of
// the side of an edge.
func inBorder(x, y, w, h int) bool {
	bx, by := max(1, w/16), max(1, h/16)
	return x < bx || y < by || x >= w-bx || y >= h-by
}

// measure is what one heatmap gives.
type measure struct {
	lungs, border float64 // shares of the weight
	peakInLungs   bool
	empty         bool // no weight at all
}

func measureMap(m sentinel.Image) measure {
	var total, lungs, border float64
	best, peak := float32(-1), false
	for y := range m.Height {
		for x := range m.Width {
			v := m.Pix[y*m.Width+x]
			if !(v > 0) {
				continue
			}
			in := inLungs(x, y, m.Width, m.Height)
			total += float64(v)
			if in {
				lungs += float64(v)
			}
			if inBorder(x, y, m.Width, m.Height) {
				border += float64(v)
			}
			if v > best {
				best, peak = v, in
			}
		}
	}
	if total == 0 {
		return measure{empty: true}
	}
	return measure{lungs: lungs / total, border: border / total, peakInLungs: peak}
}

// lungArea returns the share of a w×h map's pixels in the lung region and
// in the border band.
func lungArea(w, h int) (lungs, border float64) {
	for y := range h {
		for x := range w {
			if inLungs(x, y, w, h) {
				lungs++
			}
			if inBorder(x, y, w, h) {
				border++
			}
		}
	}
	n := float64(w * h)
	return lungs / n, border / n
}

type filmCase struct {
	file     string
	abnormal bool
	score    sentinel.Score
	m        []measure // one per variant
}

// variant is one way of deriving the drawn map from a score's heatmap.
type variant struct {
	name string
	opt  *detector.HeatmapOptions // nil: the heatmap as scored
}

// variants are measured in this order: the heatmap as scored (what was
// drawn before FocusHeatmap), each step of FocusHeatmap alone, and
// FocusHeatmap itself.
func variants(blurs []float64) []variant {
	d := detector.DefaultHeatmap
	vs := []variant{{"as scored (before)", nil}}
	for _, b := range blurs {
		vs = append(vs, variant{fmt.Sprintf("blur %g", b), &detector.HeatmapOptions{Blur: b}})
	}
	vs = append(vs,
		variant{"blur + mask", &detector.HeatmapOptions{Blur: d.Blur, Mask: true}},
		variant{"blur + floor", &detector.HeatmapOptions{Blur: d.Blur, Floor: true}},
		variant{"FocusHeatmap (after)", &d},
	)
	return vs
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("heatmap", flag.ContinueOnError)
	workspace := fs.String("workspace", "", "workspace `folder` whose current model scores the films")
	modelPath := fs.String("model", "", "model `file` (instead of the workspace's current model)")
	data := fs.String("data", "", "`folder` the labels file's paths are relative to")
	labels := fs.String("labels", "", "labels `CSV` with columns file,finding[,split]")
	split := fs.String("split", "dev", "measure only this split's rows")
	pictures := fs.String("pictures", "", "write the heatmaps of the -films into this `folder`")
	films := fs.String("films", "", "comma-separated `files` (as in the labels) to draw with -pictures")
	workers := fs.Int("workers", 2, "films scored at once")
	ablation := fs.String("ablation", "", "also measure these comma-separated blur `sigmas` alone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *labels == "" || (*workspace == "") == (*modelPath == "") {
		return errors.New("-data, -labels and one of -workspace or -model are required")
	}
	var (
		m   *detector.Model
		err error
	)
	if *modelPath != "" {
		m, err = detector.Load(*modelPath)
	} else {
		m, err = agent.LoadCurrentModel(filepath.Join(*workspace, "models"))
	}
	if err != nil {
		return err
	}
	rows, err := agent.ReadLabels(*labels)
	if err != nil {
		return err
	}
	var cases []filmCase
	for _, r := range rows {
		if r.Split == *split {
			cases = append(cases, filmCase{file: r.File, abnormal: !r.Normal()})
		}
	}
	if len(cases) == 0 {
		return fmt.Errorf("labels %s have no rows in split %q", *labels, *split)
	}
	var blurs []float64
	for _, f := range strings.Split(*ablation, ",") {
		if f = strings.TrimSpace(f); f != "" {
			b, err := strconv.ParseFloat(f, 64)
			if err != nil || !(b >= 0) {
				return fmt.Errorf("-ablation: %q is not a blur", f)
			}
			blurs = append(blurs, b)
		}
	}
	vs := variants(blurs)
	side := m.InputSize()
	err = parallel.All(ctx, len(cases), max(1, *workers), func(i int) error {
		c := &cases[i]
		_, img, err := dicomio.Load(filepath.Join(*data, filepath.FromSlash(c.file)), dicomio.Options{})
		if err != nil {
			return err
		}
		if c.score, err = m.Score(dicomio.Resample(img, side, side)); err != nil {
			return fmt.Errorf("%s: %w", c.file, err)
		}
		at := dicomio.Resample(img, side, side)
		for _, v := range vs {
			heat := c.score.Heatmap
			if v.opt != nil {
				heat = detector.FocusHeatmapWith(heat, at, *v.opt)
			}
			c.m = append(c.m, measureMap(heat))
		}
		return nil
	})
	if err != nil {
		return err
	}
	printTable(stdout, m, cases, *split, vs)
	if *pictures != "" {
		return drawPictures(*pictures, *data, *films, cases)
	}
	return nil
}

func printTable(w io.Writer, m *detector.Model, cases []filmCase, split string, vs []variant) {
	side := m.InputSize()
	la, ba := lungArea(side, side)
	fmt.Fprintf(w, "model %s, split %s, heatmap %d×%d; lung region %.1f%% and border band %.1f%% of the area\n\n",
		m.Info().Version, split, side, side, 100*la, 100*ba)
	fmt.Fprintln(w, "| heatmap | films | n | weight in the lungs | weight outside | lungs / outside, per unit area | weight in the border band | hottest pixel in the lungs | no weight |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	groups := []struct {
		name string
		keep func(filmCase) bool
	}{
		{"pneumonia", func(c filmCase) bool { return c.abnormal }},
		{"normal", func(c filmCase) bool { return !c.abnormal }},
		{"pneumonia, score above threshold", func(c filmCase) bool { return c.abnormal && c.score.Value > c.score.Threshold }},
	}
	for k, v := range vs {
		for _, g := range groups {
			var lungs, border []float64
			peaks, empty, n := 0, 0, 0
			for _, c := range cases {
				if !g.keep(c) {
					continue
				}
				n++
				if c.m[k].empty {
					empty++
					continue
				}
				lungs = append(lungs, c.m[k].lungs)
				border = append(border, c.m[k].border)
				if c.m[k].peakInLungs {
					peaks++
				}
			}
			if len(lungs) == 0 {
				fmt.Fprintf(w, "| %s | %s | %d | – | – | – | – | – | %d |\n", v.name, g.name, n, empty)
				continue
			}
			in := mean(lungs)
			density := (in / la) / math.Max((1-in)/(1-la), 1e-12)
			fmt.Fprintf(w, "| %s | %s | %d | %.1f%% ± %.1f | %.1f%% | %.2f | %.1f%% | %.0f%% | %d |\n",
				v.name, g.name, n, 100*in, 100*stderr(lungs), 100*(1-in), density, 100*mean(border),
				100*float64(peaks)/float64(len(lungs)), empty)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "(± is the standard error of the mean over the films; \"per unit area\" divides each share by the area it covers.)")
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(max(1, len(v)))
}

func stderr(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	mu := mean(v)
	var s float64
	for _, x := range v {
		s += (x - mu) * (x - mu)
	}
	return math.Sqrt(s/float64(len(v)-1)) / math.Sqrt(float64(len(v)))
}

// drawPictures draws the films named in list (comma-separated, as in the
// labels) with their heatmaps into dir.
func drawPictures(dir, data, list string, cases []filmCase) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(cases, func(c filmCase) bool { return c.file == name })
		if i < 0 {
			return fmt.Errorf("-films: %s is not in the split", name)
		}
		_, film, err := dicomio.Load(filepath.Join(data, filepath.FromSlash(name)), dicomio.Options{})
		if err != nil {
			return err
		}
		c := cases[i]
		f, err := os.Create(filepath.Join(dir, filepath.Base(name)))
		if err != nil {
			return err
		}
		pic, err := render(film, c.score)
		if err == nil {
			err = png.Encode(f, pic)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("picture of %s: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "%s: score %.3f, threshold %.3f, %s, lungs %.0f%%\n", name, c.score.Value, c.score.Threshold, c.score.Decision, 100*c.m[len(c.m)-1].lungs)
	}
	return nil
}
