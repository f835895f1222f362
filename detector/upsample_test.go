package detector

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// upsampleGrad builds sum(up(x) ⊙ r) for a random r and returns up(x) and
// the gradient with respect to x, so that forward and backward passes of two
// upsample implementations can be compared.
func upsampleGrad(t *testing.T, up func(*G.Node) (*G.Node, error), x, r []float32, shape []int) (out, grad []float32) {
	t.Helper()
	g := G.NewGraph()
	xn := G.NewTensor(g, tensor.Float32, 4, G.WithShape(shape...), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), x...)))))
	y, err := up(xn)
	if err != nil {
		t.Fatal(err)
	}
	var yv G.Value
	G.Read(y, &yv)
	rn := G.NewTensor(g, tensor.Float32, 4, G.WithShape(y.Shape()...), G.WithName("r"),
		G.WithValue(tensor.New(tensor.WithShape(y.Shape()...), tensor.WithBacking(append([]float32(nil), r...)))))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, rn))))
	if _, err := G.Grad(loss, xn); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(xn))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	gv, err := xn.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), yv.Data().([]float32)...), append([]float32(nil), gv.Data().([]float32)...)
}

func TestUpsample2xMatchesGorgonia(t *testing.T) {
	ref := func(x *G.Node) (*G.Node, error) { return G.Upsample2D(x, 2) }
	tests := []struct {
		name  string
		shape []int
	}{
		{"single pixel", []int{1, 1, 1, 1}},
		{"one channel", []int{1, 1, 4, 4}},
		{"batch and channels", []int{3, 5, 8, 8}},
		{"non-square", []int{2, 3, 3, 7}},
	}
	rng := rand.New(rand.NewSource(3))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.shape[0] * tt.shape[1] * tt.shape[2] * tt.shape[3]
			x := make([]float32, n)
			r := make([]float32, 4*n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			for i := range r {
				r[i] = float32(rng.NormFloat64())
			}
			wantOut, wantGrad := upsampleGrad(t, ref, x, r, tt.shape)
			gotOut, gotGrad := upsampleGrad(t, upsample2x, x, r, tt.shape)
			for i := range wantOut {
				if gotOut[i] != wantOut[i] {
					t.Fatalf("output %d = %v, gorgonia gives %v", i, gotOut[i], wantOut[i])
				}
			}
			// Independently of gorgonia: output (y, x) copies input
			// (y/2, x/2), so each input's gradient is its block's sum of r.
			h, w := tt.shape[2], tt.shape[3]
			grad := make([]float32, n)
			for p := 0; p < tt.shape[0]*tt.shape[1]; p++ {
				for y := range 2 * h {
					for xx := range 2 * w {
						in := p*h*w + (y/2)*w + xx/2
						out := p*4*h*w + y*2*w + xx
						if gotOut[out] != x[in] {
							t.Fatalf("output %d = %v, want input %d = %v", out, gotOut[out], in, x[in])
						}
						grad[in] += r[out]
					}
				}
			}
			for i := range grad {
				if d := gotGrad[i] - grad[i]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("gradient %d = %v, want %v", i, gotGrad[i], grad[i])
				}
			}
			for i := range wantGrad {
				if d := gotGrad[i] - wantGrad[i]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("gradient %d = %v, gorgonia gives %v", i, gotGrad[i], wantGrad[i])
				}
			}
		})
	}
}

func TestUpsample2xRejectsBadShapes(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 2, G.WithShape(4, 4), G.WithName("x"))
	if _, err := upsample2x(x); err == nil {
		t.Fatal("upsample of a matrix succeeded")
	}
	if _, err := (upsample2xGradOp{}).Do(tensor.New(tensor.WithShape(1, 1, 3, 4), tensor.WithBacking(make([]float32, 12)))); err == nil {
		t.Fatal("gradient of an odd-sized map succeeded")
	}
	if _, err := (upsample2xOp{}).Do(tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking(make([]float64, 4)))); err == nil {
		t.Fatal("upsample of float64 succeeded")
	}
}
