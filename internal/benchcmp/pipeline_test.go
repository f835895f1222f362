package benchcmp

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

// BenchmarkDecodeToScore takes the full-resolution cxr8 DICOM files one at
// a time through what the pipeline figure times (decode, display
// pipeline, resample, score), each film with every core to itself, and
// reports the milliseconds each stage took per film. Profile it with
// -cpuprofile to see where a film's time goes.
func BenchmarkDecodeToScore(b *testing.B) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "cxr8", "dicom")
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("the cxr8 DICOM files are not at %s: %v", dir, err)
	}
	o := DefaultOptions()
	o.fill()
	m, err := detector.SyntheticModel(o.trainConfig(), o.Bank, o.Seed)
	if err != nil {
		b.Fatal(err)
	}
	files, err := dicomFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	var load, resample, score time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		_, img, err := dicomio.Load(files[i%len(files)], dicomio.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		x := dicomio.Resample(img, m.InputSize(), m.InputSize())
		t2 := time.Now()
		if _, err := m.Score(x); err != nil {
			b.Fatal(err)
		}
		load, resample, score = load+t1.Sub(t0), resample+t2.Sub(t1), score+time.Since(t2)
	}
	per := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(b.N) }
	b.ReportMetric(per(load), "load-ms/film")
	b.ReportMetric(per(resample), "resample-ms/film")
	b.ReportMetric(per(score), "score-ms/film")
}
