package detector

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// elementwiseValues draws float32 bits: ordinary values of both signs and
// every special kind (zeros, subnormals, infinities, NaNs).
func elementwiseValues(rng *rand.Rand, n int) []uint32 {
	special := []uint32{0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x7F7FFFFF, 0xFF7FFFFF,
		0x7F800000, 0xFF800000, 0x7F800001, 0x7FC00000, 0xFFC00000, 0xFFFFFFFF}
	out := make([]uint32, n)
	for i := range out {
		switch rng.Intn(4) {
		case 0:
			out[i] = special[rng.Intn(len(special))]
		case 1:
			out[i] = rng.Uint32()
		default:
			out[i] = math.Float32bits(float32(rng.NormFloat64()))
		}
	}
	return out
}

// sameFloat tells whether two float32s are the same bits, or both NaNs.
func sameFloat(a, b uint32) bool {
	fa, fb := math.Float32frombits(a), math.Float32frombits(b)
	return a == b || (fa != fa && fb != fb)
}

// The element-wise loops in use give the Go loops' bits, on every length
// around the four-value step and on every kind of float32.
func TestElementwiseMatchesLoops(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	for n := range 41 {
		for range 30 {
			src, y := elementwiseValues(rng, 2*n), elementwiseValues(rng, 2*n)

			got, want := make([]uint32, n), make([]uint32, n)
			maskPositive(got, src[:n], y[:n])
			maskPositiveGo(want, src[:n], y[:n])
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("maskPositive, n %d: [%d] = %#x, want %#x (src %#x, y %#x)", n, j, got[j], want[j], src[j], y[j])
				}
			}

			for _, mask := range [][]uint32{y, nil} {
				g0, g1, w0, w1 := make([]uint32, n), make([]uint32, n), make([]uint32, n), make([]uint32, n)
				splitPositive(g0, g1, src, mask)
				splitPositiveGo(w0, w1, src, mask)
				for j := range w0 {
					if g0[j] != w0[j] || g1[j] != w1[j] {
						t.Fatalf("splitPositive, n %d, mask %v: [%d] = %#x %#x, want %#x %#x", n, mask != nil, j, g0[j], g1[j], w0[j], w1[j])
					}
				}
			}

			b := math.Float32frombits(elementwiseValues(rng, 1)[0])
			if rng.Intn(2) == 0 {
				b = float32(rng.NormFloat64())
			}
			for _, relu := range []bool{true, false} {
				s := float32Slice(src[:n])
				gf, wf := make([]float32, n), make([]float32, n)
				biasRelu(gf, s, b, relu)
				biasReluGo(wf, s, b, relu)
				for j := range wf {
					if !sameFloat(math.Float32bits(gf[j]), math.Float32bits(wf[j])) {
						t.Fatalf("biasRelu, n %d, relu %v: %v + %v gave %v (%#x), want %v (%#x)", n, relu, s[j], b, gf[j], math.Float32bits(gf[j]), wf[j], math.Float32bits(wf[j]))
					}
				}
			}
		}
	}
}

func float32Slice(bits []uint32) []float32 {
	out := make([]float32, len(bits))
	for i, b := range bits {
		out[i] = math.Float32frombits(b)
	}
	return out
}

// The masked sum in use agrees with a float64 sum to float32 rounding,
// with every kind of float32 as the mask and finite values summed.
func TestSumPositiveMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewSource(22))
	for n := range 70 {
		for range 20 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			y := float32Slice(elementwiseValues(rng, n))
			for _, mask := range [][]float32{y, nil} {
				var want, mag float64
				for i, x := range v {
					if mask == nil || mask[i] > 0 {
						want += float64(x)
						mag += math.Abs(float64(x))
					}
				}
				got := sumPositive(v, mask)
				if math.Abs(float64(got)-want) > 1e-6*mag+1e-30 {
					t.Fatalf("n %d, mask %v: sum %v, float64 gives %v", n, mask != nil, got, want)
				}
			}
		}
	}
}

// The float64 multiply-add and division in use give the Go loops' bits,
// on every length around the step and on every kind of float64.
func TestMulAddDivideMatchLoops(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	special := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(),
		math.SmallestNonzeroFloat64, math.MaxFloat64, 1e-310, -1}
	pick := func() float64 {
		if rng.Intn(5) == 0 {
			return special[rng.Intn(len(special))]
		}
		return rng.NormFloat64() * math.Exp2(float64(rng.Intn(40)-20))
	}
	same := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b) }
	for n := range 23 {
		for range 40 {
			src, dst := make([]float64, n), make([]float64, n)
			for i := range src {
				src[i], dst[i] = pick(), pick()
			}
			k := pick()
			got, want := slices.Clone(dst), slices.Clone(dst)
			mulAdd(got, src, k)
			mulAddGo(want, src, k)
			for i := range want {
				if !same(got[i], want[i]) {
					t.Fatalf("mulAdd, n %d: %v + %v·%v gave %v, want %v", n, dst[i], k, src[i], got[i], want[i])
				}
			}
			got, want = slices.Clone(dst), slices.Clone(dst)
			divide(got, k)
			divideGo(want, k)
			for i := range want {
				if !same(got[i], want[i]) {
					t.Fatalf("divide, n %d: %v / %v gave %v, want %v", n, dst[i], k, got[i], want[i])
				}
			}
		}
	}
}
