package detector

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
)

// referenceForward runs the network in float64 with direct loops: each
// layer's optional nearest 2× upsample, 3×3 convolution with padding 1,
// bias and ReLU. It returns every layer's output for one image.
func referenceForward(a Architecture, ps []param, x []float32) [][]float64 {
	side := a.InputSize
	in := make([]float64, len(x))
	for i, v := range x {
		in[i] = float64(v)
	}
	c, h := 1, side
	var outs [][]float64
	for li, l := range a.layers() {
		if l.upsample {
			up := make([]float64, c*4*h*h)
			for ch := range c {
				for y := range 2 * h {
					for xx := range 2 * h {
						up[ch*4*h*h+y*2*h+xx] = in[ch*h*h+(y/2)*h+xx/2]
					}
				}
			}
			in, h = up, 2*h
		}
		oh := (h+2-3)/l.stride + 1
		w, b := ps[2*li].Data, ps[2*li+1].Data
		out := make([]float64, l.out*oh*oh)
		for o := range l.out {
			for oy := range oh {
				for ox := range oh {
					s := float64(b[o])
					for ch := range c {
						for ky := range 3 {
							for kx := range 3 {
								iy, ix := oy*l.stride+ky-1, ox*l.stride+kx-1
								if iy < 0 || iy >= h || ix < 0 || ix >= h {
									continue
								}
								s += float64(w[((o*c+ch)*3+ky)*3+kx]) * in[ch*h*h+iy*h+ix]
							}
						}
					}
					if l.relu {
						s = max(s, 0)
					}
					out[o*oh*oh+oy*oh+ox] = s
				}
			}
		}
		outs = append(outs, out)
		in, c, h = out, l.out, oh
	}
	return outs
}

func randomInput(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

// TestInferNetMatchesReference checks every layer of the inference network
// against the float64 reference, on one goroutine and on every core, at
// batch 1 and 3.
func TestInferNetMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, a := range []Architecture{
		{InputSize: 32, Channels: []int{4, 8}},
		{InputSize: 64, Channels: []int{8, 16, 32}},
	} {
		ps := a.initParams(rng, 0.3)
		for i := range ps {
			for j := range ps[i].Data {
				ps[i].Data[j] += float32(0.05 * rng.NormFloat64()) // non-zero biases
			}
		}
		for _, batch := range []int{1, 3} {
			x := randomInput(rng, batch*a.InputSize*a.InputSize)
			var first []float32
			for _, par := range []bool{false, true} {
				n, err := newInferNet(a, ps, batch)
				if err != nil {
					t.Fatal(err)
				}
				y, err := n.reconstruct(x, par)
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = slices.Clone(y)
				} else if !slices.Equal(first, y) {
					t.Errorf("%v batch %d: parallel run differs from the serial one", a.Channels, batch)
				}
				for img := range batch {
					side2 := a.InputSize * a.InputSize
					ref := referenceForward(a, ps, x[img*side2:(img+1)*side2])
					for li, want := range ref {
						got := n.acts[li][img*len(want) : (img+1)*len(want)]
						var worst, scale float64
						for i, v := range want {
							worst = max(worst, math.Abs(float64(got[i])-v))
							scale = max(scale, math.Abs(v))
						}
						if worst > 1e-5*(1+scale) {
							t.Errorf("%v batch %d image %d layer %d parallel %v: max error %.3g (scale %.3g)", a.Channels, batch, img, li, par, worst, scale)
						}
					}
				}
			}
		}
	}
}

// TestInferNetMatchesGraph checks that scoring's network reconstructs what
// the gorgonia training graph reconstructs with the same weights.
func TestInferNetMatchesGraph(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	a := Architecture{InputSize: 64, Channels: []int{8, 16, 32}}
	ps := a.initParams(rng, 0.4)
	const batch = 2
	x := randomInput(rng, batch*64*64)
	gn, err := buildNetwork(a, ps, batch)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(gn.g)
	defer vm.Close()
	copy(gn.xbuf, x)
	if err := G.Let(gn.x, gn.input()); err != nil {
		t.Fatal(err)
	}
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	want, err := float32Values(gn.out)
	if err != nil {
		t.Fatal(err)
	}
	n, err := newInferNet(a, ps, batch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.reconstruct(x, true)
	if err != nil {
		t.Fatal(err)
	}
	if e := maxRelErr(got, want); e > 1e-5 {
		t.Fatalf("inference network differs from the graph: max relative error %.3g", e)
	}
}

func TestInferNetRejectsWrongWeights(t *testing.T) {
	a := Architecture{InputSize: 32, Channels: []int{4, 8}}
	ps := a.initParams(rand.New(rand.NewSource(1)), 0)
	ps[2].Data = ps[2].Data[:len(ps[2].Data)-1]
	if _, err := newInferNet(a, ps, 1); err == nil {
		t.Fatal("a weight tensor one value short was accepted")
	}
	ps = a.initParams(rand.New(rand.NewSource(1)), 0)
	n, err := newInferNet(a, ps, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.reconstruct(make([]float32, 31*32), false); err == nil {
		t.Fatal("an input of the wrong size was accepted")
	}
}

// TestTopMeanMatchesSort checks the selection against sorting everything,
// on values with many ties and on distinct ones.
func TestTopMeanMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, n := range []int{1, 2, 5, 64, 1000, 4096} {
		for _, ties := range []bool{false, true} {
			v := make([]float64, n)
			for i := range v {
				v[i] = rng.NormFloat64()
				if ties {
					v[i] = float64(rng.Intn(4))
				}
			}
			for _, f := range []float64{0, 0.01, 0.1, 0.5, 1} {
				s := slices.Clone(v)
				slices.Sort(s)
				k := min(n, max(1, int(math.Ceil(f*float64(n)))))
				want := mean(s[n-k:])
				if got := topMean(v, f); got != want {
					t.Errorf("n %d ties %v fraction %v: topMean %v, sorted %v", n, ties, f, got, want)
				}
			}
		}
	}
}

// sortFloats orders values as slices.Sort does, signs, zeros,
// subnormals, infinities, ties and a single value included.
func TestSortFloatsMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	special := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64,
		-math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64, 1, -1}
	for _, n := range []int{1, 2, 65, 1000, 4096} {
		for kind := range 4 {
			v := make([]float64, n)
			for i := range v {
				switch kind {
				case 0:
					v[i] = rng.NormFloat64()
				case 1:
					v[i] = float64(rng.Intn(3)) // ties, and every key sharing most digits
				case 2:
					v[i] = special[rng.Intn(len(special))]
				default:
					v[i] = math.Float64frombits(rng.Uint64() &^ (0x7FF << 52)) // subnormals and zeros
				}
			}
			want := slices.Clone(v)
			slices.Sort(want)
			got := slices.Clone(v)
			sortFloats(got)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("n %d kind %d: [%d] = %v, slices.Sort gives %v", n, kind, i, got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkSortFloats sorts a blurred 64×64 map of squared errors, what
// scoring sorts several times per image, with sortFloats and with
// slices.Sort.
func BenchmarkSortFloats(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	v := make([]float64, 64*64)
	for i := range v {
		x := rng.Float64() * 0.1
		v[i] = x * x
	}
	v = gaussianBlur(v, 64, 1)
	s := make([]float64, len(v))
	b.Run("sortFloats", func(b *testing.B) {
		for b.Loop() {
			copy(s, v)
			sortFloats(s)
		}
	})
	b.Run("slices.Sort", func(b *testing.B) {
		for b.Loop() {
			copy(s, v)
			slices.Sort(s)
		}
	})
}
