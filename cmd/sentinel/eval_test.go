package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/internal/phantom"
	"github.com/sentinel-pacs/sentinel/internal/plots"
)

// writePhantomPNGs writes n phantoms of a kind as 16-bit PNGs into dir and
// returns their file names.
func writePhantomPNGs(t *testing.T, dir string, rng *rand.Rand, n int, kind phantom.Kind, prefix string) []string {
	t.Helper()
	const size = 64
	var names []string
	for i := range n {
		pix := phantom.Generate(rng, size, kind)
		img := image.NewGray16(image.Rect(0, 0, size, size))
		for j, v := range pix {
			img.SetGray16(j%size, j/size, color.Gray16{Y: uint16(uint32(v) * 65535 / phantom.MaxValue)})
		}
		name := fmt.Sprintf("%s_%s_%02d.png", prefix, kind, i)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		names = append(names, name)
	}
	return names
}

// checkPicture checks that path is a PNG of the pictures' size.
func checkPicture(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if w, h := int(plots.Width/72*plots.DPI), int(plots.Height/72*plots.DPI); cfg.Width != w || cfg.Height != h {
		t.Errorf("%s is %d × %d, want %d × %d", path, cfg.Width, cfg.Height, w, h)
	}
}

// evalJSON runs 'sentinel eval --json' and decodes its object.
func evalJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, errOut, code := sentinelCmd(t, append([]string{"eval", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("eval exited %d: %s", code, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("eval --json printed %q: %v", out, err)
	}
	for _, k := range []string{"roc_auc", "pr_auc", "precision", "recall", "f1", "tp", "fp", "tn", "fn", "uncertain_fraction", "baseline_roc_auc"} {
		if _, ok := res[k]; !ok {
			t.Errorf("eval --json has no %q: %s", k, out)
		}
	}
	return res
}

func TestEvalPhantoms(t *testing.T) {
	ws, data := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []string
	for _, n := range writePhantomPNGs(t, data, rng, 30, phantom.Normal, "seed") {
		rows = append(rows, n+",normal,seed")
	}
	for _, n := range writePhantomPNGs(t, data, rng, 10, phantom.Normal, "dev") {
		rows = append(rows, n+",normal,dev")
	}
	for _, n := range writePhantomPNGs(t, data, rng, 10, phantom.Nodule, "dev") {
		rows = append(rows, n+",nodule,dev")
	}
	labels := filepath.Join(data, "labels.csv")
	if err := os.WriteFile(labels, []byte("file,finding,split\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := sentinelCmd(t, "train", "--workspace", ws, "--normals", data, "--labels", labels, "--split", "seed", "--epochs", "3"); code != exitOK {
		t.Fatalf("train exited %d: %s", code, errOut)
	}
	res := evalJSON(t, "--workspace", ws, "--data", data, "--labels", labels, "--split", "dev")
	if res["tn"].(float64)+res["fp"].(float64) != 10 || res["tp"].(float64)+res["fn"].(float64) != 10 {
		t.Errorf("confusion counts %v %v %v %v, want 10 normals and 10 abnormals", res["tp"], res["fp"], res["tn"], res["fn"])
	}
	for _, k := range []string{"roc_auc", "pr_auc", "baseline_roc_auc", "uncertain_fraction", "f1"} {
		if v := res[k].(float64); v < 0 || v > 1 {
			t.Errorf("%s = %v, want within [0, 1]", k, v)
		}
	}
	// The table form names the model and the baseline rows.
	out, errOut, code := sentinelCmd(t, "eval", "--workspace", ws, "--data", data, "--labels", labels, "--split", "dev")
	if code != exitOK || !strings.Contains(out, "baseline (no learning)") || !strings.Contains(out, "not uncertain") {
		t.Errorf("eval table exited %d:\n%s%s", code, out, errOut)
	}
	// The ROC-AUCs come with DeLong 95% intervals around them, and the
	// model's gain over the baseline with its paired interval.
	checkCI := func(name string, v float64, ci any) {
		t.Helper()
		iv, ok := ci.([]any)
		if !ok || len(iv) != 2 {
			t.Errorf("%s interval %v, want two numbers", name, ci)
			return
		}
		lo, hi := iv[0].(float64), iv[1].(float64)
		if !(lo <= v && v <= hi && hi-lo > 0 && hi-lo < 1) {
			t.Errorf("%s %v outside or with a degenerate interval [%v, %v]", name, v, lo, hi)
		}
	}
	checkCI("ROC-AUC", res["roc_auc"].(float64), res["roc_auc_ci95"])
	checkCI("baseline ROC-AUC", res["baseline_roc_auc"].(float64), res["baseline_roc_auc_ci95"])
	checkCI("gain", res["roc_auc_gain"].(float64), res["roc_auc_gain_ci95"])
	if g := res["roc_auc"].(float64) - res["baseline_roc_auc"].(float64); math.Abs(g-res["roc_auc_gain"].(float64)) > 1e-9 {
		t.Errorf("gain %v, the ROC-AUCs differ by %v", res["roc_auc_gain"], g)
	}
	if b := res["baseline"].(map[string]any); fmt.Sprint(b["roc_auc_ci95"]) != fmt.Sprint(res["baseline_roc_auc_ci95"]) {
		t.Errorf("baseline row's interval %v, top level's %v", b["roc_auc_ci95"], res["baseline_roc_auc_ci95"])
	}
	// --cases writes one row per case that agrees with the figures, and
	// --plot the pictures.
	casesCSV := filepath.Join(t.TempDir(), "cases.csv")
	plotDir := filepath.Join(t.TempDir(), "pictures")
	if _, errOut, code := sentinelCmd(t, "eval", "--workspace", ws, "--data", data, "--labels", labels, "--split", "dev", "--json", "--cases", casesCSV, "--plot", plotDir); code != exitOK {
		t.Fatalf("eval --cases --plot exited %d: %s", code, errOut)
	}
	for _, name := range []string{"roc", "pr", "scores", "scores-baseline"} {
		checkPicture(t, filepath.Join(plotDir, name+".png"))
		if _, err := os.Stat(filepath.Join(plotDir, name+".svg")); err != nil {
			t.Error(err)
		}
	}
	// A folder that cannot be made is an error, not a crash.
	if _, _, code := sentinelCmd(t, "eval", "--workspace", ws, "--data", data, "--labels", labels, "--split", "dev", "--plot", casesCSV); code == exitOK {
		t.Errorf("eval --plot under a file exited %d", code)
	}
	recs := readCSV(t, casesCSV)
	if len(recs) != 21 {
		t.Fatalf("cases file has %d rows, want a header and 20", len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, k := range []string{"file", "abnormal", "score", "threshold", "uncertainty", "decision", "baseline", "memory_z", "reconstruction_z"} {
		if _, ok := col[k]; !ok {
			t.Fatalf("cases header %v lacks %s", recs[0], k)
		}
	}
	var tp, fp int
	var unc, uncWrong, cert, certWrong float64
	for _, r := range recs[1:] {
		score, err1 := strconv.ParseFloat(r[col["score"]], 64)
		thr, err2 := strconv.ParseFloat(r[col["threshold"]], 64)
		if err1 != nil || err2 != nil || thr != res["threshold"].(float64) {
			t.Fatalf("case row %v: score or threshold unreadable or not the model's", r)
		}
		wrong := (score > thr) != (r[col["abnormal"]] == "true")
		if r[col["decision"]] == "uncertain" {
			unc++
			if wrong {
				uncWrong++
			}
		} else {
			cert++
			if wrong {
				certWrong++
			}
		}
		if score > thr {
			if r[col["abnormal"]] == "true" {
				tp++
			} else {
				fp++
			}
		}
		if d := r[col["decision"]]; d == "abnormal" && !(score > thr) || d == "normal" && score > thr {
			t.Errorf("case row %v: decision %s for score %v, threshold %v", r, d, score, thr)
		}
	}
	if float64(tp) != res["tp"].(float64) || float64(fp) != res["fp"].(float64) {
		t.Errorf("cases file gives TP %d, FP %d; the figures say %v, %v", tp, fp, res["tp"], res["fp"])
	}
	rate := func(k, n float64) float64 {
		if n == 0 {
			return 0
		}
		return k / n
	}
	if u, c := rate(uncWrong, unc), rate(certWrong, cert); u != res["uncertain_error_rate"].(float64) || c != res["certain_error_rate"].(float64) ||
		math.Abs(unc/20-res["uncertain_fraction"].(float64)) > 1e-12 {
		t.Errorf("cases file gives %v uncertain, wrong at the threshold %v of them and %v of the others; the figures say %v, %v, %v",
			unc, u, c, res["uncertain_fraction"], res["uncertain_error_rate"], res["certain_error_rate"])
	}
	if _, _, code := sentinelCmd(t, "eval", "--workspace", ws, "--data", data); code != exitUsage {
		t.Errorf("eval without --labels exited %d, want %d", code, exitUsage)
	}
}

// TestEvalSharedCXR8 trains briefly on the cxr8 seed normals and evaluates
// on dev, checking the command end to end on real images; the full-length
// figures are in docs/detection.md.
func TestEvalSharedCXR8(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "cxr8")
	if _, err := os.Stat(filepath.Join(dir, "labels.csv")); err != nil {
		t.Skipf("%s not found: skipping the real-data evaluation", dir)
	}
	ws := t.TempDir()
	labels, images := filepath.Join(dir, "labels.csv"), filepath.Join(dir, "images")
	if _, errOut, code := sentinelCmd(t, "train", "--workspace", ws, "--normals", images, "--labels", labels, "--split", "seed", "--epochs", "4"); code != exitOK {
		t.Fatalf("train exited %d: %s", code, errOut)
	}
	res := evalJSON(t, "--workspace", ws, "--data", images, "--labels", labels, "--split", "dev")
	if res["normal"].(float64) != 81 || res["abnormal"].(float64) != 125 {
		t.Errorf("dev holds %v normal and %v abnormal, want 81 and 125", res["normal"], res["abnormal"])
	}
	if b := res["baseline_roc_auc"].(float64); b < 0.5 || b > 0.7 {
		t.Errorf("baseline ROC-AUC %v, measured about 0.60", b)
	}
	t.Logf("4-epoch model ROC-AUC %.3f, baseline %.3f", res["roc_auc"], res["baseline_roc_auc"])
}
