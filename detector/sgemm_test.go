package detector

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// sgemmShapes are the products the network and the kNN compute, (m, n, k).
var sgemmShapes = [][3]int{
	{8, 1024, 9}, {16, 256, 72}, {32, 64, 144}, {16, 256, 288}, {8, 1024, 144},
	{1, 4096, 72}, {256, 2048, 48}, {8, 32768, 144}, {16, 8192, 288},
}

// sgemmSizes is the spread of each dimension the random tests cover: the
// edges of every kernel's rows and panel widths.
var sgemmSizes = []int{1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 65}

// guardedFloats returns a zeroed slice of n float32s that ends exactly where
// an inaccessible page begins, so that a kernel reading or writing even one
// element past the end crashes the test instead of passing silently.
func guardedFloats(t testing.TB, n int) []float32 {
	page := os.Getpagesize()
	size := (4*n+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&mem[size-page-4*n])), n)
}

// sgemmRef computes c = a·b (+ c when beta is 1) in float64.
func sgemmRef(m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				s += float64(a[i*lda+p]) * float64(b[p*ldb+j])
			}
			if beta != 0 {
				s += float64(c[i*ldc+j])
			}
			out[i*n+j] = s
		}
	}
	return out
}

func maxAbs(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

func randFloats(rng *rand.Rand, x []float32) {
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
}

// checkSgemm runs one product with impl on guarded slices of exactly the
// needed length and checks it against the float64 reference, that c outside
// the m×n window and a and b are untouched, and (beta 0) that c's NaNs
// do not leak.
func checkSgemm(t *testing.T, rng *rand.Rand, impl *sgemmImpl, m, n, k, lda, ldb, ldc int, beta float32) {
	t.Helper()
	a := guardedFloats(t, (m-1)*lda+k)
	b := guardedFloats(t, (k-1)*ldb+n)
	c := guardedFloats(t, (m-1)*ldc+n)
	randFloats(rng, a)
	randFloats(rng, b)
	const gap = -1234.5 // what c holds between rows
	for i := range c {
		c[i] = gap
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			for j := range row {
				row[j] = float32(math.NaN())
			}
		} else {
			randFloats(rng, row)
		}
	}
	a0 := append([]float32(nil), a...)
	b0 := append([]float32(nil), b...)
	want := sgemmRef(m, n, k, a, lda, b, ldb, beta, c, ldc)
	maxC := 0.0
	if beta != 0 {
		maxC = maxAbs(c)
	}

	sgemmWith(impl, m, n, k, a, lda, b, ldb, beta, c, ldc)

	tol := 1e-5*float64(k+1)*maxAbs(a)*maxAbs(b) + 1e-6*maxC
	bad := 0
	for i := range m {
		for j := range ldc {
			idx := i*ldc + j
			if idx >= len(c) {
				break
			}
			got := c[idx]
			if j >= n {
				if got != gap {
					t.Fatalf("%s %d×%d×%d lda %d ldb %d ldc %d beta %v: c[%d][%d] outside the product changed to %v",
						impl.name, m, n, k, lda, ldb, ldc, beta, i, j, got)
				}
				continue
			}
			if d := math.Abs(float64(got) - want[i*n+j]); !(d <= tol) {
				if bad++; bad <= 3 {
					t.Errorf("%s %d×%d×%d lda %d ldb %d ldc %d beta %v: c[%d][%d] = %v, want %v (tolerance %.3g)",
						impl.name, m, n, k, lda, ldb, ldc, beta, i, j, got, want[i*n+j], tol)
				}
			}
		}
	}
	if bad > 0 {
		t.FailNow()
	}
	for i := range a {
		if a[i] != a0[i] {
			t.Fatalf("%s: a[%d] changed", impl.name, i)
		}
	}
	for i := range b {
		if b[i] != b0[i] {
			t.Fatalf("%s: b[%d] changed", impl.name, i)
		}
	}
}

// TestSgemmRandom covers every kernel family this CPU runs (the assembly
// ones and the generic Go one) over the spread of sizes, with strides
// longer than the rows, both betas, and then the network's shapes.
func TestSgemmRandom(t *testing.T) {
	for _, impl := range sgemmImpls() {
		t.Run(impl.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(impl.name))))
			for _, m := range sgemmSizes {
				for _, n := range sgemmSizes {
					for _, k := range sgemmSizes {
						beta := float32(rng.IntN(2))
						lda, ldb, ldc := k+rng.IntN(5), n+rng.IntN(40), n+rng.IntN(5)
						if rng.IntN(4) == 0 {
							lda, ldb, ldc = k, n, n
						}
						checkSgemm(t, rng, impl, m, n, k, lda, ldb, ldc, beta)
					}
				}
			}
			for _, s := range sgemmShapes {
				m, n, k := s[0], s[1], s[2]
				for _, beta := range []float32{0, 1} {
					checkSgemm(t, rng, impl, m, n, k, k, n, n, beta)
				}
				checkSgemm(t, rng, impl, m, n-3, k, k+1, n+5, n-1, 0)
			}
			// b copied through the packing buffer: several row blocks and a b
			// larger than sgemmPackFloats, with column blocks that end in a
			// partial panel, and a long stride with few columns.
			checkSgemm(t, rng, impl, 19, 3001, 50, 53, 3010, 3003, 1)
			checkSgemm(t, rng, impl, 17, 100, 40, 40, 4000, 100, 0)
			checkSgemm(t, rng, impl, 40, 70, 33, 33, 5000, 71, 1)
			// Many row blocks: b copied in first-level-cache blocks.
			checkSgemm(t, rng, impl, 131, 77, 29, 30, 80, 79, 0)
			checkSgemm(t, rng, impl, 133, 300, 301, 301, 311, 300, 1)
			// Few rows and b rows 4 KiB apart: k split into blocks of sgemmKC,
			// with a last partial block.
			for _, m := range []int{1, 2, 3, 5, 7} {
				for _, beta := range []float32{0, 1} {
					checkSgemm(t, rng, impl, m, 100, 2*sgemmKC+3, 2*sgemmKC+3, 1024, 101, beta)
				}
			}
		})
	}
}

// TestSgemmBest checks that sgemmNN uses the fastest family the CPU has and
// that it rejects what it cannot compute.
func TestSgemmBest(t *testing.T) {
	if want := chooseKernels(sgemmImpls(), os.Getenv(KernelsEnv)); sgemmBest != want {
		t.Fatalf("sgemmNN uses %s, want %s (%s=%q)", sgemmBest.name, want.name, KernelsEnv, os.Getenv(KernelsEnv))
	}
	t.Logf("sgemmNN uses %s; available: %d families", sgemmBest.name, len(sgemmImpls()))
	c := []float32{7}
	sgemmNN(0, 1, 1, nil, 1, []float32{1}, 1, 0, c, 1)
	sgemmNN(1, 1, 0, nil, 0, nil, 1, 0, c, 1)
	if c[0] != 7 {
		t.Fatalf("empty product wrote c")
	}
	for name, f := range map[string]func(){
		"beta":   func() { sgemmNN(1, 1, 1, []float32{1}, 1, []float32{1}, 1, 0.5, c, 1) },
		"stride": func() { sgemmNN(2, 2, 2, make([]float32, 4), 1, make([]float32, 4), 2, 0, make([]float32, 4), 2) },
		"length": func() { sgemmNN(2, 2, 2, make([]float32, 4), 2, make([]float32, 3), 2, 0, make([]float32, 4), 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestSgemmGonum checks sgemmNN against gonum's blas32.Gemm, which it
// replaces.
func TestSgemmGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, s := range [][3]int{{8, 1024, 9}, {32, 64, 144}, {16, 256, 288}, {1, 4096, 72}, {13, 77, 31}} {
		m, n, k := s[0], s[1], s[2]
		a, b := make([]float32, m*k), make([]float32, k*n)
		randFloats(rng, a)
		randFloats(rng, b)
		for _, beta := range []float32{0, 1} {
			c0 := make([]float32, m*n)
			randFloats(rng, c0)
			got := append([]float32(nil), c0...)
			want := append([]float32(nil), c0...)
			sgemmNN(m, n, k, a, k, b, n, beta, got, n)
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
				blas32.General{Rows: m, Cols: k, Stride: k, Data: a},
				blas32.General{Rows: k, Cols: n, Stride: n, Data: b},
				beta, blas32.General{Rows: m, Cols: n, Stride: n, Data: want})
			tol := 1e-5*float64(k+1)*maxAbs(a)*maxAbs(b) + 1e-6*maxAbs(c0)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); !(d <= tol) {
					t.Fatalf("%d×%d×%d beta %v: c[%d] = %v, gonum %v", m, n, k, beta, i, got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkSgemm times c = a·b on the network's shapes, single-threaded:
// "ours" is sgemmNN, "ours-<family>" the other kernel families this CPU
// runs, "gonum" is blas32.Gemm with GOMAXPROCS 1, and "gonum-par" the same
// with the default GOMAXPROCS (gonum splits large products over goroutines
// itself).
func BenchmarkSgemm(b *testing.B) {
	for _, s := range sgemmShapes {
		m, n, k := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(3, 3))
		a, bm, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
		randFloats(rng, a)
		randFloats(rng, bm)
		flops := 2 * float64(m) * float64(n) * float64(k)
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		}
		b.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(b *testing.B) {
			for i, impl := range sgemmImpls() {
				name := "ours"
				if i > 0 {
					name = "ours-" + impl.name
				}
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						sgemmWith(impl, m, n, k, a, k, bm, n, 0, c, n)
					}
					report(b)
				})
			}
			gonum := func(b *testing.B) {
				for b.Loop() {
					blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
						blas32.General{Rows: m, Cols: k, Stride: k, Data: a},
						blas32.General{Rows: k, Cols: n, Stride: n, Data: bm},
						0, blas32.General{Rows: m, Cols: n, Stride: n, Data: c})
				}
				report(b)
			}
			b.Run("gonum", func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
				gonum(b)
			})
			b.Run("gonum-par", gonum)
		})
	}
}
