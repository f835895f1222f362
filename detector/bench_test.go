package detector

import (
	"context"
	"math/rand"
	"testing"
	"time"
)

// benchSide is the input size the benchmarks run at: the production default.
const benchSide = 64

// BenchmarkTrainEpoch measures one epoch over 100 training images of 64×64
// with the default configuration. It also reports the time 30 epochs take,
// the training budget the defaults are chosen for.
func BenchmarkTrainEpoch(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	images := synthImages(rng, 100, benchSide, false)
	xs := make([][]float32, len(images))
	for i, img := range images {
		xs[i], _ = prepareImage(img, benchSide)
	}
	cfg := DefaultTrainConfig()
	cfg.Epochs = b.N
	t := &trainer{cfg: cfg, arch: cfg.architecture(), rng: rng, start: time.Now()}
	b.ResetTimer()
	if _, _, err := t.fit(context.Background(), xs); err != nil {
		b.Fatal(err)
	}
	perEpoch := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perEpoch*30, "s/30epochs")
	b.ReportMetric(perEpoch/float64(len(xs))*1e3, "ms/image")
}

// BenchmarkScore measures scoring one 64×64 image on one goroutine with
// the default configuration: the SWAG mean and SWAGSamples (8) sampled
// networks, and a memory bank of 2500 patches.
func BenchmarkScore(b *testing.B) {
	m := untrainedModel(benchSide, DefaultTrainConfig().Channels)
	img := synthImage(rand.New(rand.NewSource(1)), benchSide, true)
	if _, err := m.Score(img); err != nil { // build the first graph
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := m.Score(img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreParallel measures scoring 64×64 images from as many
// goroutines as GOMAXPROCS, all SWAG samples included, and reports the
// throughput in images per second (the target is at least 10 on two cores).
func BenchmarkScoreParallel(b *testing.B) {
	m := untrainedModel(benchSide, DefaultTrainConfig().Channels)
	img := synthImage(rand.New(rand.NewSource(1)), benchSide, true)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Score(img); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkTrainStep measures one Adam step of the default network at
// batch 32, the step `sentinel bench compare` times against the peer.
func BenchmarkTrainStep(b *testing.B) {
	cfg := DefaultTrainConfig()
	const batch = 32
	st, err := NewTrainStepper(cfg.architecture(), batch, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewSource(1))
	x := make([]float32, batch*cfg.InputSize*cfg.InputSize)
	for i := range x {
		x[i] = rng.Float32()
	}
	if _, err := st.Step(x); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := st.Step(x); err != nil {
			b.Fatal(err)
		}
	}
}
