package detector

import (
	"fmt"
	"math"
	"slices"

	"github.com/sentinel-pacs/sentinel"
)

// analysis is everything scoring measures on one image before calibration
// turns it into a score.
type analysis struct {
	// recon holds one reconstruction score per SWAG sample (one from the
	// mean weights when the model draws no samples).
	recon []float64
	// reconMap is the smoothed squared-error map averaged over the samples.
	reconMap []float64
	// memory is the memory-bank score and memMap the blurred patch-distance
	// map, both at the input size.
	memory float64
	memMap []float64
	// memorySamples holds one memory score per SWAG sample, each from that
	// sample's encoder (empty unless the model's SampledMemory is set).
	memorySamples []float64
	// pixel is the pixel-memory score and pixMap its patch-distance map
	// (nil when the pixel memory is off); nearest is the image's distance
	// to the nearest training normal, over the best shift of its centre
	// when NearestShift is set (0 when its weight is 0).
	pixel   float64
	pixMap  []float64
	nearest float64
	// texture is the texture component (0 when its weight is 0).
	texture float64
}

// memoryBlurSigma is the anomaly map's Gaussian in input pixels: PatchCore's
// σ = 4 at its 224-pixel input, scaled to the model's input size.
func memoryBlurSigma(side int) float64 { return 4 * float64(side) / 224 }

// analyse runs the networks on one prepared image and measures its
// component scores and maps.
func (m *Model) analyse(x []float32) (analysis, error) {
	sc := <-m.pool
	defer func() { m.pool <- sc }()
	if sc == nil {
		var err error
		if sc, err = m.newScorer(); err != nil {
			return analysis{}, err
		}
	}
	a, err := m.analyseWith(sc, x)
	if err != nil {
		sc = nil // a failed run may leave a machine in any state
	}
	return a, err
}

func (m *Model) analyseWith(sc *scorer, x []float32) (analysis, error) {
	side := m.arch.InputSize
	st := m.config.MemoryStage
	var a analysis
	// Task 0 runs the mean network's encoder and scores its patches against
	// the memory bank; task i > 0 reconstructs x with SWAG sample i−1. The
	// reconstruction comes from the mean network only when the model draws
	// no samples. Each task writes its own slot and the slots are combined
	// in order, so the result does not depend on which core ran what.
	type recon struct {
		score float64
		sm    []float64
	}
	recons := make([]recon, max(1, len(sc.samples)))
	errs := make([]error, 1+len(sc.samples))
	sampled := m.config.SampledMemory && len(sc.samples) > 0
	if sampled {
		a.memorySamples = make([]float64, len(sc.samples))
	}
	measure := func(y []float32) recon {
		sm := gaussianBlur(squaredErrors(x, y), side, m.config.ReconBlur)
		return recon{topMean(sm, m.config.ReconTopFraction), sm}
	}
	alone := len(sc.samples) == 0
	eachTask(1+len(sc.samples), func(t int) {
		if t > 0 {
			n := sc.samples[t-1]
			y, err := n.reconstruct(x, false)
			if err != nil {
				errs[t] = err
				return
			}
			recons[t-1] = measure(y)
			if sampled {
				ps, err := m.patchScores(n.stage(st), n.stage(st+1))
				if err != nil {
					errs[t] = err
					return
				}
				a.memorySamples[t-1] = topMean(ps, m.config.MemoryTopFraction)
			}
			return
		}
		upto := st + 2
		if alone {
			upto = len(sc.mean.plans)
		}
		y, err := sc.mean.run(x, upto, alone)
		if err != nil {
			errs[0] = err
			return
		}
		if a.memory, a.memMap, err = m.memoryScore(sc.mean.stage(st), sc.mean.stage(st+1)); err != nil {
			errs[0] = err
			return
		}
		if alone {
			recons[0] = measure(y)
		}
	})
	for _, err := range errs {
		if err != nil {
			return a, err
		}
	}
	a.reconMap = make([]float64, side*side)
	for _, r := range recons {
		a.recon = append(a.recon, r.score)
		for i, v := range r.sm {
			a.reconMap[i] += v / float64(len(recons))
		}
	}
	m.pixelScores(&a, x)
	return a, nil
}

// pixelScores measures the components that need no network on x, a
// network input: the pixel memory's score and map, the nearest-normal
// distance and the texture component. All standardise x first, which
// leaves an input the network already takes standardised unchanged up to
// rounding; training, calibration and scoring all pass the same network
// input, so the rounding is the same.
func (m *Model) pixelScores(a *analysis, x []float32) {
	if m.pixels.n == 0 && !(m.config.NearestWeight > 0) && !(m.config.TextureWeight > 0) {
		return
	}
	z := standardise(x)
	if m.pixels.n > 0 {
		side := m.arch.InputSize
		ps, g := m.pixels.scores(z, side, m.config.Neighbours)
		a.pixel = topMean(ps, m.config.PixelTopFraction)
		a.pixMap = pixelMap(ps, g, side, m.pixels.size, m.pixels.stride)
	}
	if m.config.NearestWeight > 0 {
		a.nearest = m.nearest(z)
	}
	if m.config.TextureWeight > 0 {
		a.texture = math.Abs(meanGradient(z, m.arch.InputSize) - m.calib.TextureCenter)
	}
}

// meanGradient returns the mean magnitude of the forward-difference
// gradient of a side×side image: how much fine detail (edges, vessels,
// noise) it holds. On an image standardised to unit variance it does not
// depend on exposure or contrast.
func meanGradient(z []float32, side int) float64 {
	var sum float64
	for y := 0; y+1 < side; y++ {
		row, next := z[y*side:(y+1)*side], z[(y+1)*side:(y+2)*side]
		for x := 0; x+1 < side; x++ {
			dx, dy := float64(row[x+1]-row[x]), float64(next[x]-row[x])
			sum += math.Sqrt(dx*dx + dy*dy)
		}
	}
	n := (side - 1) * (side - 1)
	if n < 1 {
		return 0
	}
	return sum / float64(n)
}

// memoryScore scores the patches of an image, given by its two encoder
// stages' outputs, against the memory bank: the image's score and its
// blurred patch-distance map at the input size.
func (m *Model) memoryScore(fine, coarse []float32) (float64, []float64, error) {
	ps, err := m.patchScores(fine, coarse)
	if err != nil {
		return 0, nil, err
	}
	g := m.arch.InputSize >> (m.config.MemoryStage + 1)
	side := m.arch.InputSize
	mp := gaussianBlur(upsampleMap(ps, g, side), side, memoryBlurSigma(side))
	return topMean(ps, m.config.MemoryTopFraction), mp, nil
}

// patchScores returns the distances of an image's patches, given by its two
// encoder stages' outputs, to their nearest memory patches.
func (m *Model) patchScores(fine, coarse []float32) ([]float64, error) {
	st := m.config.MemoryStage
	g := m.arch.InputSize >> (st + 1)
	cf, cc := m.arch.Channels[st], m.arch.Channels[st+1]
	if len(fine) != cf*g*g || len(coarse) != cc*g*g/4 {
		return nil, fmt.Errorf("encoder stages hold %d and %d values, want %d and %d", len(fine), len(coarse), cf*g*g, cc*g*g/4)
	}
	if m.bankDim != cf+cc || m.bankRows == 0 {
		return nil, fmt.Errorf("memory bank of %d×%d, features are %d wide", m.bankRows, m.bankDim, cf+cc)
	}
	q := patchFeatures(fine, cf, coarse, cc, g)
	return knnScores(q, g*g, m.bank, m.bankSq, m.bankRows, m.bankDim, m.config.Neighbours), nil
}

// zscore standardises v by a mean and a standard deviation.
func zscore(v, mu, sd float64) float64 { return (v - mu) / sd }

// fusionWeights returns the weights of the fused score's components:
// reconstruction, encoder memory, pixel memory, nearest normal and
// texture. They sum to 1.
func (c savedConfig) fusionWeights() (wr, wm, wp, wn, wt float64) {
	wp, wn, wt = c.PixelWeight, c.NearestWeight, c.TextureWeight
	ae := 1 - wp - wn - wt
	return ae * (1 - c.MemoryWeight), ae * c.MemoryWeight, wp, wn, wt
}

// hasUncertainty says whether anything in the fused score varies over the
// SWAG samples: the reconstruction, when it has a weight, or the memory
// score, when it has one and the samples score the memory bank. A model
// whose score holds neither gives no uncertainty at all rather than one
// that is zero by construction.
func (c savedConfig) hasUncertainty() bool {
	wr, wm, _, _, _ := c.fusionWeights()
	return c.SWAGSamples > 1 && (wr > 0 || (c.SampledMemory && wm > 0))
}

// finish turns an analysis into a score with the model's calibration.
func (m *Model) finish(a analysis) sentinel.Score {
	c := m.calib
	wr, wm, wp, wn, wt := m.config.fusionWeights()
	r := mean(a.recon)
	zr := zscore(r, c.ReconMean, c.ReconStd)
	zm := zscore(a.memory, c.MemoryMean, c.MemoryStd)
	value := wr*zr + wm*zm
	comps := map[string]float64{
		ComponentReconstruction:  r,
		ComponentMemory:          a.memory,
		ComponentReconstructionZ: zr,
		ComponentMemoryZ:         zm,
	}
	if a.pixMap != nil {
		zp := zscore(a.pixel, c.PixelMean, positive(c.PixelStd))
		value += wp * zp
		comps[ComponentPixel], comps[ComponentPixelZ] = a.pixel, zp
	}
	if wn > 0 {
		zn := zscore(a.nearest, c.NearestMean, positive(c.NearestStd))
		value += wn * zn
		comps[ComponentNearest], comps[ComponentNearestZ] = a.nearest, zn
	}
	if wt > 0 {
		zt := zscore(a.texture, c.TextureMean, positive(c.TextureStd))
		value += wt * zt
		comps[ComponentTexture], comps[ComponentTextureZ] = a.texture, zt
	}
	var u *float64
	if m.config.hasUncertainty() && len(a.recon) > 1 {
		// The part of the score that each SWAG sample measures: the
		// reconstruction, and the memory score when the samples score the
		// memory bank; the other components do not depend on the weights.
		share := make([]float64, len(a.recon))
		for i, r := range a.recon {
			share[i] = wr * r / c.ReconStd
			if len(a.memorySamples) == len(a.recon) {
				share[i] += wm * a.memorySamples[i] / c.MemoryStd
			}
		}
		v := stddev(share)
		u = &v
	}
	// The heatmap blends the components that have a map, in proportion to
	// their weights.
	mw := wr + wm
	if a.pixMap != nil {
		mw += wp
	}
	mw = positive(mw)
	side := m.arch.InputSize
	h := sentinel.NewImage(side, side)
	for i := range h.Pix {
		v := wr*a.reconMap[i]/positive(c.ReconMapP99) + wm*a.memMap[i]/positive(c.MemoryMapP99)
		if a.pixMap != nil {
			v += wp * a.pixMap[i] / positive(c.PixelMapP99)
		}
		h.Pix[i] = float32(min(max(v/mw, 0), 1))
	}
	decision, reason := c.decide(value, u)
	return sentinel.Score{
		Value:       value,
		Threshold:   c.Threshold,
		NormalLimit: c.normalLimit(),
		Decision:    decision,
		Reason:      reason,
		Uncertainty: u,
		Components:  comps,
		Heatmap:     h,
	}
}

// positive returns v, or the smallest positive float64 when v is not
// positive, for use as a divisor.
func positive(v float64) float64 {
	if v > 0 {
		return v
	}
	return math.SmallestNonzeroFloat64
}

// calibrate analyses the held-out images with m and sets m's calibration
// from them: the standardisation of the component scores, the fused scores,
// the threshold, the uncertainty limit and the heatmap scales. The fused
// scores are made by finish, as Score makes them, so that scoring a
// held-out image again reproduces its calibration score exactly.
func (m *Model) calibrate(xs [][]float32, cfg TrainConfig) error {
	as := make([]analysis, len(xs))
	recon := make([]float64, len(xs))
	memory := make([]float64, len(xs))
	pixel := make([]float64, len(xs))
	nearest := make([]float64, len(xs))
	texture := make([]float64, len(xs))
	// The texture component measures from the training normals' mean
	// gradient, which the held-out images' analyses need first.
	var center float64
	if m.config.TextureWeight > 0 {
		for _, z := range m.normalsStd {
			center += meanGradient(z, m.arch.InputSize)
		}
		center /= float64(max(1, len(m.normalsStd)))
		m.calib.TextureCenter = center
	}
	var rmap, mmap, pmap []float64
	for i, x := range xs {
		a, err := m.analyse(x)
		if err != nil {
			return fmt.Errorf("held-out image %d: %w", i, err)
		}
		as[i] = a
		recon[i] = mean(a.recon)
		memory[i] = a.memory
		pixel[i] = a.pixel
		nearest[i] = a.nearest
		texture[i] = a.texture
		rmap = append(rmap, a.reconMap...)
		mmap = append(mmap, a.memMap...)
		pmap = append(pmap, a.pixMap...)
	}
	slices.Sort(rmap)
	slices.Sort(mmap)
	slices.Sort(pmap)
	m.calib = calibration{
		UncertainMargin: cfg.UncertainMargin,
		ReconMean:       mean(recon),
		ReconStd:        positive(sampleStd(recon)),
		MemoryMean:      mean(memory),
		MemoryStd:       positive(sampleStd(memory)),
		ReconMapP99:     quantile(rmap, 0.99),
		MemoryMapP99:    quantile(mmap, 0.99),
		TextureCenter:   center,
	}
	if len(pmap) > 0 {
		m.calib.PixelMean, m.calib.PixelStd = mean(pixel), positive(sampleStd(pixel))
		m.calib.PixelMapP99 = quantile(pmap, 0.99)
	}
	if m.config.NearestWeight > 0 {
		m.calib.NearestMean, m.calib.NearestStd = mean(nearest), positive(sampleStd(nearest))
	}
	if m.config.TextureWeight > 0 {
		m.calib.TextureMean, m.calib.TextureStd = mean(texture), positive(sampleStd(texture))
	}
	m.calib.Scores = make([]float64, len(xs))
	for i, a := range as {
		s := m.finish(a)
		m.calib.Scores[i] = s.Value
		if s.Uncertainty != nil {
			m.calib.Uncertainties = append(m.calib.Uncertainties, *s.Uncertainty)
		}
	}
	sorted := slices.Sorted(slices.Values(m.calib.Scores))
	m.calib.Threshold = quantile(sorted, 1-cfg.TargetFPR)
	if cfg.NormalQuantile < 1 {
		lim := quantile(sorted, cfg.NormalQuantile)
		m.calib.NormalLimit = &lim
	}
	if len(m.normalsStd) > 0 {
		base := make([]float64, len(xs))
		for i, x := range xs {
			base[i] = m.baseline(x)
		}
		m.calib.BaselineThreshold = quantile(slices.Sorted(slices.Values(base)), 1-cfg.TargetFPR)
	}
	if len(m.calib.Uncertainties) > 0 {
		m.calib.UncertaintyLimit = quantile(slices.Sorted(slices.Values(m.calib.Uncertainties)), cfg.UncertainQuantile)
		if cfg.UncertainQuantile >= 1 {
			m.calib.UncertaintyLimit = math.MaxFloat64
		}
	}
	return nil
}

// sampleStd returns the sample standard deviation of v (n−1 in the
// denominator), 0 for fewer than two values.
func sampleStd(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	mu := mean(v)
	var s float64
	for _, x := range v {
		s += (x - mu) * (x - mu)
	}
	return math.Sqrt(s / float64(len(v)-1))
}
