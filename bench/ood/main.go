// Command ood measures the detector's distribution check: how many films
// of each kind a trained model calls out_of_distribution, and how well the
// appearance deviation separates films from other sources from the
// training source's normals.
//
//	go run ./bench/ood -model W/models/CURRENT-model-file [-data ../shared/data]
//
// Cases: cxr8 dev normals and pneumonia films as they are (the target is
// at most 1% of normals out of distribution), each dev normal transformed
// (black, white, noise, inverted polarity, heavy crop, 90° rotation, low
// contrast, over-exposure), the corpus's CT and MR slices, and the
// corpus's radiographs and chest films from other sources. It prints a
// markdown table.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/learn"
)

func main() {
	modelPath := flag.String("model", "", "model file")
	data := flag.String("data", "../shared/data", "the shared data folder")
	flag.Parse()
	if err := run(*modelPath, *data); err != nil {
		fmt.Fprintln(os.Stderr, "ood:", err)
		os.Exit(1)
	}
}

type row struct {
	name string
	devs []float64
	ood  int
	// flagged and below count the films not out of distribution that the
	// score puts above the threshold (abnormal or uncertain) and at or
	// below it.
	flagged, below int
	n              int
}

func run(modelPath, data string) error {
	m, err := detector.Load(modelPath)
	if err != nil {
		return err
	}
	side := m.InputSize()
	labels, err := readLabels(filepath.Join(data, "cxr8", "labels.csv"))
	if err != nil {
		return err
	}
	var normals, pneumonia []sentinel.Image
	for _, l := range labels {
		if l.split != "dev" {
			continue
		}
		_, img, err := dicomio.Load(filepath.Join(data, "cxr8", "images", l.file), dicomio.Options{})
		if err != nil {
			return err
		}
		img = dicomio.Resample(img, side, side)
		if l.finding == "normal" {
			normals = append(normals, img)
		} else {
			pneumonia = append(pneumonia, img)
		}
	}
	score := func(name string, imgs []sentinel.Image) (row, error) {
		r := row{name: name}
		for _, img := range imgs {
			s, err := m.Score(img)
			if err != nil {
				return r, err
			}
			r.n++
			switch {
			case s.Decision == sentinel.DecisionOutOfDistribution:
				r.ood++
			case s.Decision.Below():
				r.below++
			default:
				r.flagged++
			}
			if s.Appearance != nil {
				r.devs = append(r.devs, s.Appearance.Deviation)
			}
		}
		return r, nil
	}
	var rows []row
	add := func(name string, imgs []sentinel.Image) error {
		r, err := score(name, imgs)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, r)
		return nil
	}
	if err := add("cxr8 dev normal", normals); err != nil {
		return err
	}
	if err := add("cxr8 dev pneumonia", pneumonia); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, t := range transforms(rng) {
		var out []sentinel.Image
		for _, img := range normals {
			out = append(out, t.f(img))
		}
		if err := add(t.name, out); err != nil {
			return err
		}
	}
	others := map[string][]sentinel.Image{}
	inv, err := os.ReadFile(filepath.Join(data, "dicom", "INVENTORY.tsv"))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(inv), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 7 || !strings.HasSuffix(line, "decode") {
			continue
		}
		kind := ""
		switch {
		case f[5] == "CT":
			kind = "corpus CT slices"
		case f[5] == "MR":
			kind = "corpus MR slices"
		case (f[5] == "CR" || f[5] == "DX") && !strings.Contains(f[0], "img2dcm") && !strings.HasPrefix(f[0], "cxr8"):
			kind = "corpus CR/DX radiographs (other sources)"
		default:
			continue
		}
		_, img, err := dicomio.Load(filepath.Join(data, "dicom", f[0]), dicomio.Options{})
		if err != nil {
			continue
		}
		others[kind] = append(others[kind], dicomio.Resample(img, side, side))
	}
	// Chest films of another hospital: PneumoniaMNIST's test normals
	// (paediatric, Guangzhou), stored at 28 px and enlarged to the input
	// size, so that their blur differs from cxr8's as well as their source.
	if pm, err := readPMNIST(filepath.Join(data, "pneumoniamnist")); err == nil {
		for _, f := range pm {
			_, img, err := dicomio.Load(f, dicomio.Options{})
			if err != nil {
				continue
			}
			k := "PneumoniaMNIST test normals (another hospital, 28 px enlarged)"
			others[k] = append(others[k], dicomio.Resample(img, side, side))
		}
	}
	kinds := make([]string, 0, len(others))
	for k := range others {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		if err := add(k, others[k]); err != nil {
			return err
		}
	}
	lim := 0.0
	if s, err := m.Score(normals[0]); err == nil && s.Appearance != nil {
		lim = s.Appearance.Limit
	}
	d := append([]float64{}, rows[0].devs...)
	sort.Float64s(d)
	fmt.Printf("model %s, input %d px, appearance limit %.2f; dev normals' deviation: 90%% %.2f, 99%% %.2f, max %.2f\n\n",
		m.Info().Version, side, lim, d[len(d)*9/10], d[len(d)*99/100], d[len(d)-1])
	fmt.Println("| cases | n | out_of_distribution | share | else abnormal or uncertain | else below the threshold | appearance deviation median | ROC-AUC vs dev normals |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	base := rows[0].devs
	for i, r := range rows {
		auc := "–"
		if i > 0 {
			s := append(append([]float64{}, base...), r.devs...)
			pos := make([]bool, len(s))
			for j := len(base); j < len(s); j++ {
				pos[j] = true
			}
			auc = fmt.Sprintf("%.3f", learn.AUROC(s, pos))
		}
		fmt.Printf("| %s | %d | %d | %.1f%% | %d | %d | %.2f | %s |\n", r.name, r.n, r.ood, 100*float64(r.ood)/math.Max(1, float64(r.n)),
			r.flagged, r.below, med(r.devs), auc)
	}
	return nil
}

type transform struct {
	name string
	f    func(sentinel.Image) sentinel.Image
}

func transforms(rng *rand.Rand) []transform {
	mapPix := func(img sentinel.Image, f func(v float32) float32) sentinel.Image {
		out := sentinel.NewImage(img.Width, img.Height)
		for i, v := range img.Pix {
			out.Pix[i] = min(max(f(v), 0), 1)
		}
		return out
	}
	return []transform{
		{"black", func(img sentinel.Image) sentinel.Image { return sentinel.NewImage(img.Width, img.Height) }},
		{"white", func(img sentinel.Image) sentinel.Image { return mapPix(img, func(float32) float32 { return 1 }) }},
		{"uniform noise", func(img sentinel.Image) sentinel.Image {
			return mapPix(img, func(float32) float32 { return rng.Float32() })
		}},
		{"inverted polarity", func(img sentinel.Image) sentinel.Image { return mapPix(img, func(v float32) float32 { return 1 - v }) }},
		{"crop: central 40% enlarged", func(img sentinel.Image) sentinel.Image { return crop(img, 0.4) }},
		{"rotated 90°", rotate90},
		{"low contrast (×0.3 about the mean)", func(img sentinel.Image) sentinel.Image {
			var s float32
			for _, v := range img.Pix {
				s += v
			}
			mu := s / float32(len(img.Pix))
			return mapPix(img, func(v float32) float32 { return mu + 0.3*(v-mu) })
		}},
		{"over-exposed (+0.35)", func(img sentinel.Image) sentinel.Image {
			return mapPix(img, func(v float32) float32 { return v + 0.35 })
		}},
	}
}

func crop(img sentinel.Image, frac float64) sentinel.Image {
	w, h := img.Width, img.Height
	cw, ch := int(float64(w)*frac), int(float64(h)*frac)
	x0, y0 := (w-cw)/2, (h-ch)/2
	c := sentinel.NewImage(cw, ch)
	for y := 0; y < ch; y++ {
		copy(c.Pix[y*cw:(y+1)*cw], img.Pix[(y0+y)*w+x0:(y0+y)*w+x0+cw])
	}
	return dicomio.Resample(c, w, h)
}

func rotate90(img sentinel.Image) sentinel.Image {
	w, h := img.Width, img.Height
	out := sentinel.NewImage(h, w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out.Pix[x*h+(h-1-y)] = img.Pix[y*w+x]
		}
	}
	return out
}

func med(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64{}, v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

type label struct{ file, finding, split string }

func readLabels(path string) ([]label, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []label
	for _, r := range recs[1:] {
		out = append(out, label{r[0], r[2], r[3]})
	}
	return out, nil
}

// readPMNIST returns the paths of PneumoniaMNIST's test normals.
func readPMNIST(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "labels.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range recs[1:] {
		if len(r) >= 3 && r[1] == "normal" && r[2] == "test" {
			out = append(out, filepath.Join(dir, "images", r[0]))
		}
	}
	return out, nil
}
