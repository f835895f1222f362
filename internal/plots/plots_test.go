package plots

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
)

func samePoints(t *testing.T, what string, got, want []Point) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
	for i := range got {
		if math.Abs(got[i].X-want[i].X) > 1e-12 || math.Abs(got[i].Y-want[i].Y) > 1e-12 {
			t.Fatalf("%s: point %d is %v, want %v (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

// Five cases worked by hand. From the highest score down: 0.9 positive,
// 0.8 negative, 0.7 positive and negative tied, 0.1 positive; three
// positives, two negatives.
func TestROCAndPRPointsByHand(t *testing.T) {
	scores := []float64{0.1, 0.7, 0.9, 0.8, 0.7}
	pos := []bool{true, false, true, false, true}
	samePoints(t, "ROC", ROC(scores, pos), []Point{
		{0, 0},
		{0, 1.0 / 3},   // 0.9
		{0.5, 1.0 / 3}, // 0.8
		{1, 2.0 / 3},   // the 0.7 tie: one of each, a diagonal step
		{1, 1},         // 0.1
	})
	samePoints(t, "PR", PR(scores, pos), []Point{
		{1.0 / 3, 1},
		{1.0 / 3, 0.5},
		{2.0 / 3, 0.5},
		{1, 0.6},
	})
	// The area under the ROC points is the Mann-Whitney ROC-AUC: of the
	// six positive-negative pairs the positive outranks in 2 (0.9) and
	// ties in 1 (0.7): (2 + 0.5)/6.
	var area float64
	roc := ROC(scores, pos)
	for i := 1; i < len(roc); i++ {
		area += (roc[i].X - roc[i-1].X) * (roc[i].Y + roc[i-1].Y) / 2
	}
	if math.Abs(area-2.5/6) > 1e-12 {
		t.Fatalf("area under the ROC points %v, want %v", area, 2.5/6)
	}
	// Above 0.75 two cases are called: one positive, one negative.
	r, p := At(scores, pos, 0.75)
	samePoints(t, "operating point", []Point{r, p}, []Point{{0.5, 1.0 / 3}, {1.0 / 3, 0.5}})
	// Above everything nothing is called: precision 1 by convention.
	r, p = At(scores, pos, 1)
	samePoints(t, "operating point above all", []Point{r, p}, []Point{{0, 0}, {0, 1}})
	// Without a case of each class there is no ROC curve; without a
	// positive no PR curve.
	if ROC([]float64{1, 2}, []bool{true, true}) != nil || PR([]float64{1, 2}, []bool{false, false}) != nil {
		t.Fatal("curves without both classes")
	}
}

// checkPNG decodes a written PNG and checks its size.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if want := int(Width / 72 * DPI); cfg.Width != want || cfg.Height != int(Height/72*DPI) {
		t.Fatalf("%s is %d × %d, want %d × %d", path, cfg.Width, cfg.Height, want, int(Height/72*DPI))
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// Something is drawn: more than one colour.
	first := img.At(0, 0)
	varied := false
	for y := 0; y < cfg.Height && !varied; y += 3 {
		for x := 0; x < cfg.Width; x += 3 {
			if img.At(x, y) != first {
				varied = true
				break
			}
		}
	}
	if !varied {
		t.Fatalf("%s is blank", path)
	}
}

func checkSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<svg") || !strings.HasSuffix(strings.TrimSpace(string(b)), "</svg>") {
		t.Fatalf("%s is not an SVG document", path)
	}
}

func TestPicturesWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pictures") // Save creates it
	scores := []float64{0.1, 0.7, 0.9, 0.8, 0.7, 0.3, 0.2, 0.95}
	pos := []bool{true, false, true, false, true, false, false, true}
	base := []float64{0.5, 0.4, 0.6, 0.7, 0.3, 0.2, 0.8, 0.1}
	r, p := At(scores, pos, 0.75)
	roc, err := ROCPlot("ROC", []Curve{
		{Label: "model: ROC-AUC 0.80 (95% CI 0.50–1.00)", Points: ROC(scores, pos), Operating: &r, OperatingLabel: "model threshold"},
		{Label: "baseline", Points: ROC(base, pos)},
	})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := PRPlot("PR", []Curve{{Label: "model", Points: PR(scores, pos), Operating: &p, OperatingLabel: "threshold"}}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := Histogram("scores", "score", []Group{{"normal", []float64{0.1, 0.2, math.NaN()}}, {"abnormal", []float64{0.7, 0.9, math.Inf(1)}}}, 10, 0.5, "threshold")
	if err != nil {
		t.Fatal(err)
	}
	lc, err := LearningCurves("learning", "labels", "ROC-AUC", []Series{
		{Label: "hybrid", X: []float64{0, 10, 20}, Y: [][]float64{{0.6, 0.62}, {0.65, 0.7}, {0.7, 0.74}}},
		{Label: "random", X: []float64{0, 10, 20}, Y: [][]float64{{0.6}, {0.61}, {0.66}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, pl := range map[string]*plot.Plot{"roc": roc, "pr": pr, "scores": hist, "learning": lc} {
		paths, err := Save(pl, dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 2 || paths[0] != filepath.Join(dir, name+".png") || paths[1] != filepath.Join(dir, name+".svg") {
			t.Fatalf("Save wrote %v", paths)
		}
		checkPNG(t, paths[0])
		checkSVG(t, paths[1])
	}
	// Bad input is an error, not a crash.
	if _, err := Histogram("empty", "score", []Group{{"normal", []float64{math.NaN()}}}, 10, 0, ""); err == nil {
		t.Error("a histogram of no finite value drew")
	}
	if _, err := LearningCurves("bad", "x", "y", []Series{{Label: "s", X: []float64{1}, Y: nil}}); err == nil {
		t.Error("a series with fewer values than x drew")
	}
	if _, err := Save(roc, filepath.Join(dir, "roc.png"), "x"); err == nil {
		t.Error("saving under a file did not fail")
	}
}

func TestWriteEvaluation(t *testing.T) {
	dir := t.TempDir()
	pos := []bool{true, false, true, false, true, false}
	ev := Evaluation{Title: "test", Positive: pos, Scorers: []Scorer{
		{Name: "model", Scores: []float64{0.9, 0.1, 0.8, 0.4, 0.3, 0.2}, Threshold: 0.35, ROCAUC: 0.89, Lo: 0.6, Hi: 1, AP: 0.9},
		{Name: "baseline", File: "baseline", Scores: []float64{0.5, 0.6, 0.4, 0.3, 0.7, 0.2}, Threshold: 0.65, ROCAUC: 0.56, Lo: math.NaN(), Hi: math.NaN(), AP: 0.6},
	}}
	paths, err := WriteEvaluation(dir, ev)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
		if strings.HasSuffix(p, ".png") {
			checkPNG(t, p)
		} else {
			checkSVG(t, p)
		}
	}
	if got := strings.Join(names, " "); got != "roc.png roc.svg pr.png pr.svg scores.png scores.svg scores-baseline.png scores-baseline.svg" {
		t.Fatalf("wrote %s", got)
	}
	// One class only, or scores that do not match the cases: an error.
	if _, err := WriteEvaluation(t.TempDir(), Evaluation{Positive: []bool{true}, Scorers: ev.Scorers}); err == nil {
		t.Error("drew curves of one class")
	}
	ev.Scorers[1].Scores = ev.Scorers[1].Scores[:3]
	if _, err := WriteEvaluation(t.TempDir(), ev); err == nil {
		t.Error("drew a scorer with fewer scores than cases")
	}
}
