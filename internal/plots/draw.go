package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The pictures' size: at the PNG's 96 dots per inch, 576 × 432 pixels.
const (
	Width  = 6 * vg.Inch
	Height = 4.5 * vg.Inch
	// DPI is the PNG's resolution (gonum's default for PNG).
	DPI = 96
)

// The palette: the model in blue, the baseline in orange, chance in grey;
// normal cases in blue and abnormal ones in red.
var (
	palette = []color.RGBA{
		{31, 119, 180, 255},  // blue
		{255, 127, 14, 255},  // orange
		{44, 160, 44, 255},   // green
		{214, 39, 40, 255},   // red
		{148, 103, 189, 255}, // purple
		{140, 86, 75, 255},   // brown
		{227, 119, 194, 255}, // pink
	}
	grey = color.RGBA{127, 127, 127, 255}
)

// Color returns the i-th colour of the palette, wrapping around.
func Color(i int) color.RGBA { return palette[((i%len(palette))+len(palette))%len(palette)] }

func faded(c color.RGBA, alpha uint8) color.NRGBA {
	return color.NRGBA{c.R, c.G, c.B, alpha}
}

// Curve is one scorer's curve on a ROC or precision-recall picture.
type Curve struct {
	// Label names the curve in the legend (with its figures, e.g. the
	// ROC-AUC and its interval).
	Label  string
	Points []Point
	// Operating, when set, is marked with OperatingLabel in the legend:
	// the scorer's threshold.
	Operating      *Point
	OperatingLabel string
}

func xys(pts []Point) plotter.XYs {
	out := make(plotter.XYs, len(pts))
	for i, p := range pts {
		out[i].X, out[i].Y = p.X, p.Y
	}
	return out
}

// newPlot returns a plot with a title and axis labels, both axes on [0, 1]
// when unit.
func newPlot(title, x, y string, unit bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	if unit {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1.02
	}
	p.Add(plotter.NewGrid())
	p.Legend.ThumbnailWidth = vg.Points(16)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	return p
}

// addCurves adds the curves (as steps when step) and their operating
// points.
func addCurves(p *plot.Plot, curves []Curve, step bool) error {
	for i, c := range curves {
		pts := c.Points
		if step && len(pts) > 0 {
			pts = append([]Point{{0, pts[0].Y}}, pts...)
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys(pts))
		if err != nil {
			return fmt.Errorf("plots: curve %q: %w", c.Label, err)
		}
		l.Color, l.Width = Color(i), vg.Points(1.8)
		if step {
			l.StepStyle = plotter.PreStep
		}
		p.Add(l)
		p.Legend.Add(c.Label, l)
	}
	for i, c := range curves {
		if c.Operating == nil {
			continue
		}
		s, err := plotter.NewScatter(xys([]Point{*c.Operating}))
		if err != nil {
			return fmt.Errorf("plots: operating point of %q: %w", c.Label, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: Color(i), Radius: vg.Points(4.5), Shape: draw.CircleGlyph{}}
		ring, _ := plotter.NewScatter(xys([]Point{*c.Operating}))
		ring.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(4.5), Shape: draw.RingGlyph{}}
		p.Add(s, ring)
		p.Legend.Add(c.OperatingLabel, s, ring)
	}
	return nil
}

// chance returns a dashed grey line through pts, for the chance level.
func chance(pts ...Point) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys(pts))
	if err != nil {
		return nil, err
	}
	l.Color, l.Dashes = grey, []vg.Length{vg.Points(4), vg.Points(3)}
	return l, nil
}

// ROCPlot draws ROC curves with the chance diagonal and the operating
// points; the legend sits bottom right.
func ROCPlot(title string, curves []Curve) (*plot.Plot, error) {
	p := newPlot(title, "false-positive rate (1 − specificity)", "true-positive rate (sensitivity)", true)
	diag, err := chance(Point{0, 0}, Point{1, 1})
	if err != nil {
		return nil, err
	}
	p.Add(diag)
	if err := addCurves(p, curves, false); err != nil {
		return nil, err
	}
	p.Legend.Add("chance", diag)
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), vg.Points(6)
	return p, nil
}

// PRPlot draws precision-recall curves as steps with the chance level
// (the share of positive cases, prevalence) and the operating points; the
// legend sits bottom right, under the chance level when prevalence is high
// enough.
func PRPlot(title string, curves []Curve, prevalence float64) (*plot.Plot, error) {
	p := newPlot(title, "recall (sensitivity)", "precision (positive predictive value)", true)
	if err := addCurves(p, curves, true); err != nil {
		return nil, err
	}
	if prevalence >= 0 && prevalence <= 1 {
		l, err := chance(Point{0, prevalence}, Point{1, prevalence})
		if err != nil {
			return nil, err
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("chance (prevalence %.2f)", prevalence), l)
	}
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), vg.Points(6)
	return p, nil
}

// Group is one class's scores on a histogram.
type Group struct {
	Label  string
	Values []float64
}

// Histogram draws each group's scores on shared bins, each bar the share
// of its group's cases, overlaid with some transparency, and the threshold
// as a dashed vertical line named thresholdLabel. Values that are not
// finite are left out.
func Histogram(title, xLabel string, groups []Group, bins int, threshold float64, thresholdLabel string) (*plot.Plot, error) {
	if bins < 1 {
		return nil, errors.New("plots: a histogram needs at least one bin")
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range groups {
		for _, v := range finite(g.Values) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return nil, errors.New("plots: a histogram needs at least one finite value")
	}
	if !math.IsNaN(threshold) && !math.IsInf(threshold, 0) {
		lo, hi = min(lo, threshold), max(hi, threshold)
	}
	if hi == lo {
		lo, hi = lo-0.5, hi+0.5
	}
	width := (hi - lo) / float64(bins)
	p := newPlot(title, xLabel, "share of the class's cases", false)
	top := 0.0
	for i, g := range groups {
		vs := finite(g.Values)
		h := &plotter.Histogram{Width: width, Bins: make([]plotter.HistogramBin, bins)}
		for b := range h.Bins {
			h.Bins[b].Min, h.Bins[b].Max = lo+float64(b)*width, lo+float64(b+1)*width
		}
		for _, v := range vs {
			b := min(int((v-lo)/width), bins-1)
			h.Bins[b].Weight += 1 / float64(len(vs))
		}
		for _, b := range h.Bins {
			top = max(top, b.Weight)
		}
		c := groupColor(i)
		h.FillColor = faded(c, 110)
		h.LineStyle = draw.LineStyle{Color: c, Width: vg.Points(0.8)}
		p.Add(h)
		p.Legend.Add(fmt.Sprintf("%s (%d)", g.Label, len(vs)), h)
	}
	if !math.IsNaN(threshold) && !math.IsInf(threshold, 0) {
		l, err := plotter.NewLine(plotter.XYs{{X: threshold, Y: 0}, {X: threshold, Y: top * 1.05}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Width, l.Dashes = color.Black, vg.Points(1.5), []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(thresholdLabel, l)
	}
	p.Y.Min, p.Y.Max = 0, top*1.1
	p.Legend.Top = true
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), -vg.Points(6)
	return p, nil
}

// groupColor gives the first group (normal) blue and the second
// (abnormal) red.
func groupColor(i int) color.RGBA {
	switch i {
	case 0:
		return palette[0]
	case 1:
		return palette[3]
	}
	return Color(i)
}

// Series is one line of a learning-curve picture: at each X, the values
// of every run (seed). The line joins the runs' means; with more than one
// run, a shaded band spans their lowest to highest.
type Series struct {
	Label string
	X     []float64
	Y     [][]float64
}

// LearningCurves draws the series; the legend sits bottom right.
func LearningCurves(title, xLabel, yLabel string, series []Series) (*plot.Plot, error) {
	p := newPlot(title, xLabel, yLabel, false)
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("plots: series %q has %d x and %d y values", s.Label, len(s.X), len(s.Y))
		}
		var mean, lo, hi []Point
		runs := 0
		for j, x := range s.X {
			ys := finite(s.Y[j])
			if len(ys) == 0 {
				continue
			}
			var sum float64
			for _, y := range ys {
				sum += y
			}
			runs = max(runs, len(ys))
			mean = append(mean, Point{x, sum / float64(len(ys))})
			lo = append(lo, Point{x, slices.Min(ys)})
			hi = append(hi, Point{x, slices.Max(ys)})
		}
		if len(mean) == 0 {
			continue
		}
		c := Color(i)
		label := s.Label
		if runs > 1 {
			slices.Reverse(lo)
			band, err := plotter.NewPolygon(xys(append(hi, lo...)))
			if err != nil {
				return nil, fmt.Errorf("plots: series %q: %w", s.Label, err)
			}
			band.Color, band.LineStyle.Width = faded(c, 50), 0
			p.Add(band)
			label = fmt.Sprintf("%s (mean of %d seeds; band: lowest to highest)", s.Label, runs)
		}
		l, pts, err := plotter.NewLinePoints(xys(mean))
		if err != nil {
			return nil, fmt.Errorf("plots: series %q: %w", s.Label, err)
		}
		l.Color, l.Width = c, vg.Points(1.8)
		pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
		p.Add(l, pts)
		p.Legend.Add(label, l, pts)
	}
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), vg.Points(6)
	return p, nil
}

// Save writes p as DIR/NAME.png and DIR/NAME.svg, creating dir, and
// returns the paths written.
func Save(p *plot.Plot, dir, name string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	var out []string
	for _, ext := range []string{".png", ".svg"} {
		path := filepath.Join(dir, name+ext)
		if err := p.Save(Width, Height, path); err != nil {
			return out, fmt.Errorf("plots: write %s: %w", path, err)
		}
		out = append(out, path)
	}
	return out, nil
}
