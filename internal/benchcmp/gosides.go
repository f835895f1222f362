package benchcmp

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

// Figures are one side's measurements in one repetition. Times are in
// milliseconds; zero means not measured.
type Figures struct {
	TrainStepMS        float64            `json:"train_step_ms"`
	InferB1MS          float64            `json:"infer_b1_ms_per_image"`
	InferBNMS          float64            `json:"infer_bn_ms_per_image"`
	SWAGScoreMS        float64            `json:"swag_score_ms"`
	SWAGScore100kMS    float64            `json:"swag_score_bank100k_ms"`
	KNNMS              map[string]float64 `json:"knn_ms"`
	PipelineImagesPerS float64            `json:"pipeline_images_per_s"`
	PipelineDecoded    int                `json:"pipeline_decoded"`
	PipelineFailed     []string           `json:"pipeline_failed,omitempty"`
}

// medianMS runs fn warmup times untimed, then iters times, and returns the
// median time in milliseconds.
func medianMS(iters, warmup int, fn func() error) (float64, error) {
	for range warmup {
		if err := fn(); err != nil {
			return 0, err
		}
	}
	ts := make([]float64, iters)
	for i := range ts {
		t0 := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		ts[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	return median(ts), nil
}

// median returns the median of v (the mean of the middle two for an even
// count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func randomPixels(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func randomImage(rng *rand.Rand, side int) sentinel.Image {
	img := sentinel.NewImage(side, side)
	copy(img.Pix, randomPixels(rng, side*side))
	return img
}

// goFigures measures Sentinel's training step, inference, SWAG scoring and
// kNN queries once, each as the median of its iterations.
func goFigures(o Options) (Figures, error) {
	var f Figures
	cfg := o.trainConfig()
	arch := detector.Architecture{InputSize: o.Side, Channels: o.Channels}
	rng := rand.New(rand.NewSource(o.Seed))
	side2 := o.Side * o.Side

	ts, err := detector.NewTrainStepper(arch, o.Batch, o.Seed)
	if err != nil {
		return f, err
	}
	xb := randomPixels(rng, o.Batch*side2)
	f.TrainStepMS, err = medianMS(o.Iters, 2, func() error { _, err := ts.Step(xb); return err })
	ts.Close()
	if err != nil {
		return f, fmt.Errorf("train step: %w", err)
	}

	for _, b := range []int{1, o.Batch} {
		fw, err := detector.NewForward(arch, b, o.Seed)
		if err != nil {
			return f, err
		}
		x := xb[:b*side2]
		iters := o.Iters
		if b == 1 {
			iters *= 5
		}
		ms, err := medianMS(iters, 3, func() error { _, err := fw.Run(x); return err })
		fw.Close()
		if err != nil {
			return f, fmt.Errorf("inference at batch %d: %w", b, err)
		}
		if b == 1 {
			f.InferB1MS = ms
		} else {
			f.InferBNMS = ms / float64(b)
		}
	}

	img := randomImage(rng, o.Side)
	m, err := detector.SyntheticModel(cfg, o.Bank, o.Seed)
	if err != nil {
		return f, err
	}
	if f.SWAGScoreMS, err = medianMS(o.Iters*2, 2, func() error { _, err := m.Score(img); return err }); err != nil {
		return f, fmt.Errorf("swag score: %w", err)
	}

	st := cfg.MemoryStage
	d := o.Channels[st] + o.Channels[st+1]
	g := o.Side >> (st + 1)
	q := randomPixels(rng, g*g*d)
	f.KNNMS = map[string]float64{}
	for _, n := range o.KNNBanks {
		bank := randomPixels(rng, n*d)
		sq := detector.BankNorms(bank, n, d)
		iters := max(3, o.Iters/(1+n/100000))
		ms, err := medianMS(iters, 3, func() error {
			detector.KNNScores(q, g*g, bank, sq, n, d, cfg.Neighbours)
			return nil
		})
		if err != nil {
			return f, err
		}
		f.KNNMS[strconv.Itoa(n)] = ms
	}
	if slices.Contains(o.KNNBanks, 100000) {
		m100, err := detector.SyntheticModel(cfg, 100000, o.Seed)
		if err != nil {
			return f, err
		}
		if f.SWAGScore100kMS, err = medianMS(o.Iters, 1, func() error { _, err := m100.Score(img); return err }); err != nil {
			return f, fmt.Errorf("swag score at 100k: %w", err)
		}
	}
	return f, nil
}

// dicomFiles lists the .dcm files of dir in name order.
func dicomFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.dcm"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .dcm files in %s", dir)
	}
	sort.Strings(files)
	return files, nil
}

// goPipeline decodes, displays, resamples and scores every file of the
// DICOM folder passes times with GOMAXPROCS workers, as the agent's worker
// pool does (reports and the database left out: the peer has neither), and
// returns the images per second and the files that did not decode.
func goPipeline(o Options, m *detector.Model) (ips float64, decoded int, failed []string, err error) {
	files, err := dicomFiles(o.DICOM)
	if err != nil {
		return 0, 0, nil, err
	}
	side := m.InputSize()
	one := func(path string) error {
		_, img, err := dicomio.Load(path, dicomio.Options{})
		if err != nil {
			return err
		}
		_, err = m.Score(dicomio.Resample(img, side, side))
		return err
	}
	// Warm-up: one scorer per worker is compiled on first use.
	workers := max(1, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { _ = one(files[0]) })
	}
	wg.Wait()

	jobs := make(chan string)
	var mu sync.Mutex
	fails := map[string]string{}
	ok := 0
	t0 := time.Now()
	for range workers {
		wg.Go(func() {
			for p := range jobs {
				err := one(p)
				mu.Lock()
				if err != nil {
					fails[filepath.Base(p)] = err.Error()
				} else {
					ok++
				}
				mu.Unlock()
			}
		})
	}
	for range o.Passes {
		for _, p := range files {
			jobs <- p
		}
	}
	close(jobs)
	wg.Wait()
	secs := time.Since(t0).Seconds()
	for name, msg := range fails {
		failed = append(failed, name+": "+shorten(msg, 160))
	}
	sort.Strings(failed)
	return float64(ok) / secs, ok / max(o.Passes, 1), failed, nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RunChild runs one of the measurements that need a process of their own,
// so that its peak RSS is its alone, and prints a line of JSON-free text
// that the parent ignores. mode "train" runs o.Steps training steps;
// "agent" runs the decode-to-score pipeline over o.AgentFiles files (the
// DICOM folder cycled) and prints the RSS after the first tenth and at the
// end.
func RunChild(mode string, o Options) (string, error) {
	o.fill()
	switch mode {
	case "train":
		arch := detector.Architecture{InputSize: o.Side, Channels: o.Channels}
		ts, err := detector.NewTrainStepper(arch, o.Batch, o.Seed)
		if err != nil {
			return "", err
		}
		defer ts.Close()
		rng := rand.New(rand.NewSource(o.Seed))
		// A training set of a few batches held in memory, as Train holds it.
		set := randomPixels(rng, 4*o.Batch*o.Side*o.Side)
		n := o.Batch * o.Side * o.Side
		for s := range o.Steps {
			off := (s % 4) * n
			if _, err := ts.Step(set[off : off+n]); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("hwm_kib %d steps %d", procStatusKiB("VmHWM:"), o.Steps), nil
	case "agent":
		m, err := detector.SyntheticModel(o.trainConfig(), o.Bank, o.Seed)
		if err != nil {
			return "", err
		}
		files, err := dicomFiles(o.DICOM)
		if err != nil {
			return "", err
		}
		side := m.InputSize()
		var early int64
		workers := max(1, runtime.GOMAXPROCS(0))
		jobs := make(chan string, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for p := range jobs {
					if _, img, err := dicomio.Load(p, dicomio.Options{}); err == nil {
						_, _ = m.Score(dicomio.Resample(img, side, side))
					}
				}
			})
		}
		for i := range o.AgentFiles {
			if i == o.AgentFiles/10 {
				early = currentRSSKiB()
			}
			jobs <- files[i%len(files)]
		}
		close(jobs)
		wg.Wait()
		return fmt.Sprintf("hwm_kib %d rss_early_kib %d rss_end_kib %d", procStatusKiB("VmHWM:"), early, currentRSSKiB()), nil
	}
	return "", fmt.Errorf("unknown child mode %q", mode)
}

// currentRSSKiB returns the process's resident set from /proc/self/status,
// 0 where that is not available.
func currentRSSKiB() int64 { return procStatusKiB("VmRSS:") }

// procStatusKiB returns a kB field of /proc/self/status, 0 where that is not
// available. VmHWM is the process's own peak RSS: the rusage of a child can
// carry its parent's peak across fork and exec.
func procStatusKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// errPeerMissing is wrapped by the error returned when the peer cannot run.
var errPeerMissing = errors.New("the PyTorch peer cannot run")
