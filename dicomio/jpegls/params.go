package jpegls

import "github.com/sentinel-pacs/sentinel/dicomio/codec"

// presets are the JPEG-LS preset coding parameters (T.87 C.2.4.1.1) as an
// LSE marker segment of type 1 gives them; zero means "use the default".
type presets struct {
	maxVal, t1, t2, t3, reset int
}

// Default threshold bases of T.87 C.2.4.1.1.1 and the default RESET.
const (
	basicT1      = 3
	basicT2      = 7
	basicT3      = 21
	defaultReset = 64
)

// codingParams are the values one scan is decoded with, derived from the
// frame precision, the scan's NEAR and any preset parameters.
type codingParams struct {
	maxVal     int
	near       int
	t1, t2, t3 int
	reset      int
	rng        int // RANGE
	qbpp       int // bits of a value in 0 … RANGE−1
	limit      int // LIMIT, the longest Golomb code word
}

// clampThreshold is the CLAMP function of T.87 C.2.4.1.1.1.
func clampThreshold(i, j, maxVal int) int {
	if i > maxVal || i < j {
		return j
	}
	return i
}

// ceilLog2 returns the smallest b with 1<<b ≥ v, for v ≥ 1.
func ceilLog2(v int) int {
	b := 0
	for 1<<b < v {
		b++
	}
	return b
}

// newCodingParams derives the coding parameters for a scan of precision
// bits with the given NEAR, applying the non-zero fields of ps and
// computing the rest as T.87 C.2.4.1.1 specifies.
func newCodingParams(precision, near int, ps presets) (codingParams, error) {
	var cp codingParams
	cp.maxVal = 1<<precision - 1
	if ps.maxVal != 0 {
		if ps.maxVal > cp.maxVal {
			return cp, codec.Corruptf("jpegls: preset MAXVAL %d exceeds the %d-bit sample range", ps.maxVal, precision)
		}
		cp.maxVal = ps.maxVal
	}
	if near < 0 || near > 255 || 2*near > cp.maxVal {
		return cp, codec.Corruptf("jpegls: NEAR %d is invalid for MAXVAL %d", near, cp.maxVal)
	}
	cp.near = near
	maxVal := cp.maxVal

	// Default thresholds (C.2.4.1.1.1).
	var t1, t2, t3 int
	if maxVal >= 128 {
		factor := (min(maxVal, 4095) + 128) / 256
		t1 = clampThreshold(factor*(basicT1-2)+2+3*near, near+1, maxVal)
		t2 = clampThreshold(factor*(basicT2-3)+3+5*near, t1, maxVal)
		t3 = clampThreshold(factor*(basicT3-4)+4+7*near, t2, maxVal)
	} else {
		factor := 256 / (maxVal + 1)
		t1 = clampThreshold(max(2, basicT1/factor+3*near), near+1, maxVal)
		t2 = clampThreshold(max(3, basicT2/factor+5*near), t1, maxVal)
		t3 = clampThreshold(max(4, basicT3/factor+7*near), t2, maxVal)
	}
	if ps.t1 != 0 {
		t1 = ps.t1
	}
	if ps.t2 != 0 {
		t2 = ps.t2
	}
	if ps.t3 != 0 {
		t3 = ps.t3
	}
	if t1 < near+1 || t1 > maxVal || t2 < t1 || t2 > maxVal || t3 < t2 || t3 > maxVal {
		return cp, codec.Corruptf("jpegls: thresholds T1=%d T2=%d T3=%d are invalid for MAXVAL %d and NEAR %d", t1, t2, t3, maxVal, near)
	}
	cp.t1, cp.t2, cp.t3 = t1, t2, t3

	cp.reset = defaultReset
	if ps.reset != 0 {
		if ps.reset < 3 || ps.reset > max(255, maxVal) {
			return cp, codec.Corruptf("jpegls: RESET %d is invalid for MAXVAL %d", ps.reset, maxVal)
		}
		cp.reset = ps.reset
	}

	cp.rng = (maxVal+2*near)/(2*near+1) + 1
	cp.qbpp = ceilLog2(cp.rng)
	bpp := max(2, ceilLog2(maxVal+1))
	cp.limit = 2 * (bpp + max(8, bpp))
	return cp, nil
}

// quantize returns the region number −4 … 4 of gradient d (T.87 A.3.3).
func (cp *codingParams) quantize(d int) int {
	switch {
	case d <= -cp.t3:
		return -4
	case d <= -cp.t2:
		return -3
	case d <= -cp.t1:
		return -2
	case d < -cp.near:
		return -1
	case d <= cp.near:
		return 0
	case d < cp.t1:
		return 1
	case d < cp.t2:
		return 2
	case d < cp.t3:
		return 3
	default:
		return 4
	}
}
