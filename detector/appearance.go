package detector

import (
	"fmt"
	"math"
	"slices"

	"github.com/sentinel-pacs/sentinel"
)

// The appearance check: a film the detector scores must look like the
// normals it learned, in both directions. The anomaly score is one-sided
// (higher is less like the normals), so a film that is darker, flatter,
// inverted, cropped, rotated or another kind of image altogether can
// score below every normal and would pass as one. The check measures a
// few global properties of the image at the model's input size and
// compares them, jointly, with the training normals.
//
// Features, on the image at the input size (values in [0, 1]):
//
//	mean, standard deviation; 2nd, 25th, 50th, 75th, 98th percentiles   exposure, contrast, polarity
//	mean absolute difference between neighbouring pixels                noise, blur
//	mean of the central half minus the mean of the rest                 framing, cropping
//	correlation with the normals' mean image (16×16 block means)        layout: cropping, rotation, another anatomy
//	correlations of the column and row profiles with the normals'       left-right and top-bottom layout
//
// Each feature is standardised by the normals' median and robust spread
// (1.4826 × the median absolute deviation, with a floor); the three
// correlations count only when lower than the normals'. The deviation is
// the Mahalanobis length of the standardised features under the normals'
// covariance (shrunk towards the identity, since a hundred normals
// estimate 78 covariances poorly): a transformed film moves several
// features at once, against the way they vary together over normals.
// Above the profile's limit the film is out of distribution.
type appearanceProfile struct {
	// Median and Scale are per feature, in appearanceFeatureNames order.
	Median []float64 `json:"median"`
	Scale  []float64 `json:"scale"`
	// Precision is the inverse of the standardised features' shrunk
	// covariance over the normals, row by row.
	Precision []float64 `json:"precision"`
	// Template is the training normals' mean image in 16×16 block
	// means; Columns and Rows their mean column and row profiles.
	Template []float64 `json:"template"`
	Columns  []float64 `json:"columns"`
	Rows     []float64 `json:"rows"`
	// Layouts are up to appearanceNeighbours normals' block means, each
	// centred and scaled to unit length, for the nearest-layout feature.
	Layouts [][]float64 `json:"layouts"`
	// Zoomed are the same normals' central 50% and 70%, enlarged to the
	// full size, as layouts: Zoomed[2k] and [2k+1] are Layouts[k]'s.
	Zoomed [][]float64 `json:"zoomed"`
	// OrientationLimit and FramingLimit bound the two relative tests
	// (relativeTests): below them a film is rotated or cropped.
	OrientationLimit float64 `json:"orientation_limit"`
	FramingLimit     float64 `json:"framing_limit"`
	// Limit is the largest deviation a film in distribution may have.
	Limit float64 `json:"limit"`
	// NormalsMax is the largest deviation over the training normals.
	NormalsMax float64 `json:"normals_max"`
}

var appearanceFeatureNames = []string{
	"mean", "std", "p02", "p25", "p50", "p75", "p98", "gradient", "centre", "anisotropy",
	"layout", "columns", "rows", "nearest", "sharpness",
}

// oneSided marks the features that count only when below the normals: a
// film more like the normals' layout than they are is not unusual.
var oneSided = []bool{false, false, false, false, false, false, false, false, false, false, true, true, true, true, false}

// appearanceBlocks is the side of the block-mean grid the layout feature
// compares.
const appearanceBlocks = 16

// Floors of the robust scales: intensities and gradients in [0, 1] units,
// correlations in correlation units.
var appearanceScaleFloor = []float64{0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.002, 0.01, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02}

// appearanceNeighbours bounds how many normals' layouts the profile keeps
// for the nearest-layout feature.
const appearanceNeighbours = 256

// appearanceShrinkage is the weight of the identity in the covariance.
var appearanceShrinkage = 0.3

// appearanceLimitFactor and appearanceMinLimit set the limit from the
// training normals: the largest deviation among them, times the factor,
// and never below the minimum. Chosen on cxr8 dev (docs/detection.md).
const (
	appearanceLimitFactor = 1.25
	appearanceMinLimit    = 6
)

// newAppearanceProfile computes the profile of the normals xs, each side×side.
func newAppearanceProfile(xs [][]float32, side int) (*appearanceProfile, error) {
	if len(xs) < 2 {
		return nil, fmt.Errorf("appearance: %d normals, need at least 2", len(xs))
	}
	p := &appearanceProfile{
		Template: make([]float64, appearanceBlocks*appearanceBlocks),
		Columns:  make([]float64, side),
		Rows:     make([]float64, side),
	}
	for _, x := range xs {
		for i, v := range blockMeans(x, side, appearanceBlocks) {
			p.Template[i] += v / float64(len(xs))
		}
		cols, rows := profiles(x, side)
		for i := range cols {
			p.Columns[i] += cols[i] / float64(len(xs))
			p.Rows[i] += rows[i] / float64(len(xs))
		}
	}
	step := max(1, (len(xs)+appearanceNeighbours-1)/appearanceNeighbours)
	kept := map[int]int{}
	for i := 0; i < len(xs); i += step {
		kept[i] = len(p.Layouts)
		p.Layouts = append(p.Layouts, unitLayout(blockMeans(xs[i], side, appearanceBlocks)))
		for _, f := range zoomFractions {
			p.Zoomed = append(p.Zoomed, unitLayout(blockMeans(zoom(xs[i], side, f), side, appearanceBlocks)))
		}
	}
	feats := make([][]float64, len(xs))
	for i, x := range xs {
		// A normal's nearest layout is another normal's.
		skip := -1
		if k, ok := kept[i]; ok {
			skip = k
		}
		feats[i] = p.featuresExcept(x, side, skip)
	}
	n := len(appearanceFeatureNames)
	p.Median, p.Scale = make([]float64, n), make([]float64, n)
	col := make([]float64, len(xs))
	for k := 0; k < n; k++ {
		for i := range feats {
			col[i] = feats[i][k]
		}
		med := median(col)
		dev := make([]float64, len(col))
		for i, v := range col {
			dev[i] = math.Abs(v - med)
		}
		p.Median[k] = med
		p.Scale[k] = max(1.4826*median(dev), appearanceScaleFloor[k])
	}
	// The covariance of the standardised features, about zero (the
	// median), shrunk towards the identity, and its inverse.
	zs := make([][]float64, len(feats))
	for i, f := range feats {
		zs[i] = p.standardise(f)
	}
	var err error
	if p.Precision, err = invert(shrunkCovariance(zs, -1, n), n); err != nil {
		return nil, fmt.Errorf("appearance: %w", err)
	}
	// Each normal's deviation is measured with the covariance of the
	// others, as a film the profile has not seen would be: in-sample
	// lengths of a dozen features over a hundred normals run short.
	for i := range zs {
		prec, err := invert(shrunkCovariance(zs, i, n), n)
		if err != nil {
			return nil, fmt.Errorf("appearance: %w", err)
		}
		p.NormalsMax = max(p.NormalsMax, mahalanobis(prec, zs[i]))
	}
	p.Limit = max(appearanceLimitFactor*p.NormalsMax, appearanceMinLimit)
	p.OrientationLimit, p.FramingLimit = math.Inf(1), math.Inf(1)
	for i, x := range xs {
		skip := -1
		if k, ok := kept[i]; ok {
			skip = k
		}
		o, f := p.relativeTests(x, side, skip)
		p.OrientationLimit = min(p.OrientationLimit, o)
		p.FramingLimit = min(p.FramingLimit, f)
	}
	p.OrientationLimit = min(p.OrientationLimit, 0) - relativeMargin
	p.FramingLimit = min(p.FramingLimit, 0) - relativeMargin
	return p, nil
}

// zoomFractions are the central parts of the normals, enlarged, against
// which the framing test compares a film.
var zoomFractions = []float64{0.5, 0.7}

// relativeMargin is how far below the lowest training normal (and below
// zero) a relative test must fall to count.
const relativeMargin = 0.01

// check returns the image's joint deviation and, when the film is out of
// distribution, why in words ("" otherwise).
func (p *appearanceProfile) check(x []float32, side int) (dev float64, why string) {
	f := p.features(x, side)
	if len(f) != len(p.Median) || len(p.Precision) != len(f)*len(f) {
		// A profile of other features (another version's): no check
		// rather than a wrong one.
		return 0, ""
	}
	z := p.standardise(f)
	dev = p.length(z)
	if dev > p.Limit {
		far := 0
		for k := range z {
			if math.Abs(z[k]) > math.Abs(z[far]) {
				far = k
			}
		}
		return dev, fmt.Sprintf("appearance deviation %.1f above its limit %.1f, most in %s", dev, p.Limit, appearanceWords[appearanceFeatureNames[far]])
	}
	if len(p.Zoomed) == 0 {
		return dev, ""
	}
	o, fr := p.relativeTests(x, side, -1)
	switch {
	case o < p.OrientationLimit:
		return dev, fmt.Sprintf("it looks rotated: a quarter or half turn of it is more like the normals than it is (%.3f, limit %.3f)", o, p.OrientationLimit)
	case fr < p.FramingLimit:
		return dev, fmt.Sprintf("it looks cropped: it is more like a part of a normal film than like a whole one (%.3f, limit %.3f)", fr, p.FramingLimit)
	}
	return dev, ""
}

// relativeTests compares the film's likeness to the nearest normal's
// layout with two alternatives that normal variation does not explain:
// orientation is the likeness minus that of the best of its quarter, half
// and three-quarter turns, framing the likeness minus its likeness to the
// normals' enlarged central parts. A normal film is more like a whole,
// upright normal than like either; a rotated or cropped one is not. The
// kept normal skip (if any) and its zoomed parts are left out.
func (p *appearanceProfile) relativeTests(x []float32, side, skip int) (orientation, framing float64) {
	b := blockMeans(x, side, appearanceBlocks)
	own := nearestLayout(unitLayout(b), p.Layouts, skip, 1)
	turned := -1.0
	r := b
	for k := 0; k < 3; k++ {
		r = turnBlocks(r, appearanceBlocks)
		turned = max(turned, nearestLayout(unitLayout(r), p.Layouts, skip, 1))
	}
	zoomed := nearestLayout(unitLayout(b), p.Zoomed, skip, len(zoomFractions))
	return own - turned, own - zoomed
}

// nearestLayout returns the largest correlation of the unit layout u
// with layouts, leaving out the group-th block of per layouts at skip.
func nearestLayout(u []float64, layouts [][]float64, skip, per int) float64 {
	best := -1.0
	for k, l := range layouts {
		if skip >= 0 && k/per == skip {
			continue
		}
		var d float64
		for i := range l {
			d += l[i] * u[i]
		}
		best = max(best, d)
	}
	return best
}

// turnBlocks turns an n×n grid a quarter turn clockwise.
func turnBlocks(b []float64, n int) []float64 {
	o := make([]float64, len(b))
	for y := 0; y < n; y++ {
		for c := 0; c < n; c++ {
			o[c*n+(n-1-y)] = b[y*n+c]
		}
	}
	return o
}

// zoom returns the central frac of x (side×side) enlarged to side×side
// (nearest neighbour, which block means smooth anyway).
func zoom(x []float32, side int, frac float64) []float32 {
	cw := max(1, int(float64(side)*frac))
	x0 := (side - cw) / 2
	o := make([]float32, len(x))
	for y := 0; y < side; y++ {
		for c := 0; c < side; c++ {
			o[y*side+c] = x[(x0+y*cw/side)*side+x0+c*cw/side]
		}
	}
	return o
}

// standardise returns the features in robust units, the one-sided ones
// clipped at zero from above.
func (p *appearanceProfile) standardise(f []float64) []float64 {
	z := make([]float64, len(f))
	for k, v := range f {
		z[k] = (v - p.Median[k]) / p.Scale[k]
		if oneSided[k] && z[k] > 0 {
			z[k] = 0
		}
		if math.IsNaN(z[k]) {
			z[k] = 1e6
		}
	}
	return z
}

// shrunkCovariance is the covariance of zs about zero, leaving out zs[skip]
// (none when skip < 0), shrunk towards the identity.
func shrunkCovariance(zs [][]float64, skip, n int) []float64 {
	cov := make([]float64, n*n)
	cnt := 0
	for i, z := range zs {
		if i == skip {
			continue
		}
		cnt++
		for a := 0; a < n; a++ {
			for b := 0; b < n; b++ {
				cov[a*n+b] += z[a] * z[b]
			}
		}
	}
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			cov[a*n+b] *= (1 - appearanceShrinkage) / float64(max(cnt, 1))
		}
		cov[a*n+a] += appearanceShrinkage
	}
	return cov
}

// length is the Mahalanobis length of z under the profile's precision.
func (p *appearanceProfile) length(z []float64) float64 { return mahalanobis(p.Precision, z) }

// mahalanobis is the length of z under the precision matrix prec.
func mahalanobis(prec, z []float64) float64 {
	n := len(z)
	var q float64
	for a := 0; a < n; a++ {
		var r float64
		for b := 0; b < n; b++ {
			r += prec[a*n+b] * z[b]
		}
		q += z[a] * r
	}
	return math.Sqrt(max(q, 0))
}

// features measures x (side×side, values in [0, 1]).
func (p *appearanceProfile) features(x []float32, side int) []float64 {
	return p.featuresExcept(x, side, -1)
}

// featuresExcept measures x, leaving the kept layout skip (if any) out of
// the nearest-layout feature.
func (p *appearanceProfile) featuresExcept(x []float32, side, skip int) []float64 {
	v := make([]float64, len(x))
	var sum float64
	for i, a := range x {
		v[i] = float64(a)
		sum += v[i]
	}
	mean := sum / float64(len(v))
	var ss float64
	for _, a := range v {
		ss += (a - mean) * (a - mean)
	}
	std := math.Sqrt(ss / float64(len(v)))
	sorted := slices.Clone(v)
	slices.Sort(sorted)
	q := func(f float64) float64 { return sorted[int(math.Round(f*float64(len(sorted)-1)))] }
	var grad, gx, gy float64
	var ng int
	var centre, rest float64
	var nc, nr int
	for y := 0; y < side; y++ {
		for c := 0; c < side; c++ {
			i := y*side + c
			if c+1 < side {
				gx += math.Abs(v[i+1] - v[i])
				ng++
			}
			if y+1 < side {
				gy += math.Abs(v[i+side] - v[i])
				ng++
			}
			if y >= side/4 && y < side-side/4 && c >= side/4 && c < side-side/4 {
				centre += v[i]
				nc++
			} else {
				rest += v[i]
				nr++
			}
		}
	}
	if ng > 0 {
		grad = (gx + gy) / float64(ng)
	}
	// Anisotropy: the balance of horizontal and vertical detail, which a
	// rotation turns over.
	anis := math.Log((gx + 1e-6) / (gy + 1e-6))
	if nc > 0 && nr > 0 {
		centre = centre/float64(nc) - rest/float64(nr)
	}
	cols, rows := profiles(x, side)
	blocks := blockMeans(x, side, appearanceBlocks)
	u := unitLayout(blocks)
	nearest := 0.0
	for k, l := range p.Layouts {
		if k == skip {
			continue
		}
		var d float64
		for i := range l {
			d += l[i] * u[i]
		}
		nearest = max(nearest, d)
	}
	return []float64{
		mean, std, q(0.02), q(0.25), q(0.5), q(0.75), q(0.98), grad, centre, anis,
		correlation(blocks, p.Template), correlation(cols, p.Columns), correlation(rows, p.Rows), nearest,
		sharpness(v, side),
	}
}

// unitLayout centres b and scales it to unit length (all zeros when flat),
// so that a dot product of two is their correlation.
func unitLayout(b []float64) []float64 {
	var m float64
	for _, v := range b {
		m += v
	}
	m /= float64(len(b))
	out := make([]float64, len(b))
	var ss float64
	for i, v := range b {
		out[i] = v - m
		ss += out[i] * out[i]
	}
	if ss < 1e-12 {
		return make([]float64, len(b))
	}
	r := 1 / math.Sqrt(ss)
	for i := range out {
		out[i] *= r
	}
	return out
}

// profiles returns the mean of each column and of each row of x
// (side×side).
func profiles(x []float32, side int) (cols, rows []float64) {
	cols, rows = make([]float64, side), make([]float64, side)
	for y := 0; y < side; y++ {
		for c := 0; c < side; c++ {
			v := float64(x[y*side+c]) / float64(side)
			cols[c] += v
			rows[y] += v
		}
	}
	return cols, rows
}

// invert returns the inverse of the n×n matrix a (row by row), by
// Gauss-Jordan elimination with partial pivoting.
func invert(a []float64, n int) ([]float64, error) {
	m := slices.Clone(a)
	inv := make([]float64, n*n)
	for i := 0; i < n; i++ {
		inv[i*n+i] = 1
	}
	for c := 0; c < n; c++ {
		piv := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r*n+c]) > math.Abs(m[piv*n+c]) {
				piv = r
			}
		}
		if math.Abs(m[piv*n+c]) < 1e-12 {
			return nil, fmt.Errorf("singular covariance")
		}
		if piv != c {
			for k := 0; k < n; k++ {
				m[c*n+k], m[piv*n+k] = m[piv*n+k], m[c*n+k]
				inv[c*n+k], inv[piv*n+k] = inv[piv*n+k], inv[c*n+k]
			}
		}
		d := m[c*n+c]
		for k := 0; k < n; k++ {
			m[c*n+k] /= d
			inv[c*n+k] /= d
		}
		for r := 0; r < n; r++ {
			if r == c {
				continue
			}
			f := m[r*n+c]
			if f == 0 {
				continue
			}
			for k := 0; k < n; k++ {
				m[r*n+k] -= f * m[c*n+k]
				inv[r*n+k] -= f * inv[c*n+k]
			}
		}
	}
	return inv, nil
}

// blockMeans averages x (side×side) over a blocks×blocks grid.
func blockMeans(x []float32, side, blocks int) []float64 {
	out := make([]float64, blocks*blocks)
	cnt := make([]float64, blocks*blocks)
	for y := 0; y < side; y++ {
		by := y * blocks / side
		for c := 0; c < side; c++ {
			i := by*blocks + c*blocks/side
			out[i] += float64(x[y*side+c])
			cnt[i]++
		}
	}
	for i := range out {
		if cnt[i] > 0 {
			out[i] /= cnt[i]
		}
	}
	return out
}

// correlation is Pearson's correlation of a and b; 0 when either is flat.
func correlation(a, b []float64) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa < 1e-12 || sbb < 1e-12 {
		return 0
	}
	return sab / math.Sqrt(saa*sbb)
}

// median returns the median of v (which it does not modify).
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// lowTailSDs is how many standard deviations of the held-out normals'
// scores below the lowest of them a score must fall to be out of
// distribution on the low side: a film that the detector finds far more
// "normal" than any normal is not one it understands.
const lowTailSDs = 3

// lowLimit returns the score below which a film is out of distribution on
// the low side, and whether the calibration has one.
func (c *calibration) lowLimit() (float64, bool) {
	if len(c.Scores) < 2 {
		return 0, false
	}
	return slices.Min(c.Scores) - lowTailSDs*stddev(c.Scores), true
}

// checkDistribution records how unlike the training normals the image x
// (at the input size, values in [0, 1]) looks, and whether it is out of
// distribution: its appearance beyond the profile's limits, or its score
// far below every held-out normal. Such a film is decided
// out_of_distribution whatever its score: the score's calibration does not
// hold for it. Its reason says when the score was above the threshold, so
// that a reader knows it would have been flagged.
func (m *Model) checkDistribution(s *sentinel.Score, x []float32) {
	c := &m.calib
	a := &sentinel.Appearance{}
	if p := c.Appearance; p != nil {
		dev, why := p.check(x, m.arch.InputSize)
		a.Deviation, a.Limit, a.Unlike = dev, p.Limit, why
	}
	if low, ok := c.lowLimit(); ok && a.Unlike == "" && s.Value < low {
		a.Unlike = fmt.Sprintf("score %.3f far below every held-out normal (limit %.3f): not a film the model understands", s.Value, low)
	}
	if c.Appearance != nil || a.Unlike != "" {
		s.Appearance = a
	}
	markOutOfDistribution(s)
}

// markOutOfDistribution applies s.Appearance's verdict to s's decision.
func markOutOfDistribution(s *sentinel.Score) {
	if s.Appearance == nil || s.Appearance.Unlike == "" {
		return
	}
	reason := "unlike the training normals: " + s.Appearance.Unlike
	if s.Value > s.Threshold {
		reason += fmt.Sprintf("; its score %.3f is above the threshold %.3f, but means little for such a film", s.Value, s.Threshold)
	}
	s.Decision, s.Reason = sentinel.DecisionOutOfDistribution, reason
}

// MarkOutOfDistribution applies a score's distribution verdict to its
// decision, for a decision made again from a combined score (the agent's
// learned scorer).
func MarkOutOfDistribution(s *sentinel.Score) { markOutOfDistribution(s) }

// appearanceWords names each feature for a reason a reader understands.
var appearanceWords = map[string]string{
	"mean":       "the mean brightness",
	"std":        "the contrast",
	"p02":        "the darkest tones",
	"p25":        "the dark tones",
	"p50":        "the median brightness",
	"p75":        "the bright tones",
	"p98":        "the brightest tones",
	"gradient":   "the fine texture (noise or blur)",
	"centre":     "the framing (centre against edges)",
	"layout":     "the layout (likeness to a chest film)",
	"columns":    "the left-right layout",
	"rows":       "the top-bottom layout",
	"nearest":    "the layout (likeness to the nearest normal)",
	"anisotropy": "the orientation of the detail",
	"sharpness":  "the sharpness of the detail",
}

// sharpness compares the detail between neighbouring pixels with the
// detail four pixels apart, per pixel of distance: a film enlarged from a
// smaller one, or blurred, has little of the first for its share of the
// second. The value is a log ratio.
func sharpness(v []float64, side int) float64 {
	var near, far float64
	var nn, nf int
	for y := 0; y < side; y++ {
		for c := 0; c < side; c++ {
			i := y*side + c
			if c+1 < side {
				near += math.Abs(v[i+1] - v[i])
				nn++
			}
			if c+4 < side {
				far += math.Abs(v[i+4]-v[i]) / 4
				nf++
			}
		}
	}
	if nn == 0 || nf == 0 {
		return 0
	}
	return math.Log((near/float64(nn) + 1e-6) / (far/float64(nf) + 1e-6))
}
