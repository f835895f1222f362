package detector

import (
	"os"

	"golang.org/x/sys/cpu"
)

// The assembly kernels in sgemm_amd64.s; see sgemmKernelID for the
// contract.

//go:noescape
func sgemmAVX512x8(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVX512x4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVX512x2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVX512x1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVX2x6(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVX2x4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVX2x2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVX2x1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVXx6(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVXx4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVXx2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmAVXx1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmSSEx6(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmSSEx4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmSSEx2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

//go:noescape
func sgemmSSEx1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)

// sgemmAVX512 uses 32-column panels in zmm registers and masks its last
// partial panel. Its panel-mask setup uses BZHI, hence BMI2.
var sgemmAVX512 = &sgemmImpl{
	name:    "avx512",
	nr:      32,
	partial: true,
	kernels: []sgemmRowKernel{{8, sgemmAVX512x8ID}, {4, sgemmAVX512x4ID}, {2, sgemmAVX512x2ID}, {1, sgemmAVX512x1ID}},
}

// sgemmAVX2 uses 16-column panels in ymm registers and leaves a partial
// last panel to the driver.
var sgemmAVX2 = &sgemmImpl{
	name:    "avx2",
	nr:      16,
	partial: false,
	kernels: []sgemmRowKernel{{6, sgemmAVX2x6ID}, {4, sgemmAVX2x4ID}, {2, sgemmAVX2x2ID}, {1, sgemmAVX2x1ID}},
}

// sgemmAVX uses 16-column panels in ymm registers, with a multiplication
// and an addition for each product: the family of CPUs with AVX and
// neither AVX2 nor FMA (Sandy Bridge, Ivy Bridge). It leaves a partial
// last panel to the driver.
var sgemmAVX = &sgemmImpl{
	name:    "avx",
	nr:      16,
	partial: false,
	kernels: []sgemmRowKernel{{6, sgemmAVXx6ID}, {4, sgemmAVXx4ID}, {2, sgemmAVXx2ID}, {1, sgemmAVXx1ID}},
}

// sgemmSSE uses 8-column panels in xmm registers, with a multiplication
// and an addition for each product: the family of amd64 CPUs without AVX
// (older servers, and virtual CPUs that hide it). It leaves a partial
// last panel to the driver.
var sgemmSSE = &sgemmImpl{
	name:    "sse",
	nr:      8,
	partial: false,
	kernels: []sgemmRowKernel{{6, sgemmSSEx6ID}, {4, sgemmSSEx4ID}, {2, sgemmSSEx2ID}, {1, sgemmSSEx1ID}},
}

// sgemmImpls lists the kernel families this CPU can run, fastest first;
// the generic one is always last. (cpu.X86.HasAVX* already account for
// whether the operating system saves the wider registers.)
func sgemmImpls() []*sgemmImpl {
	var impls []*sgemmImpl
	x := cpu.X86
	if x.HasAVX512F && x.HasAVX2 && x.HasFMA && x.HasBMI2 {
		impls = append(impls, sgemmAVX512)
	}
	if x.HasAVX2 && x.HasFMA {
		impls = append(impls, sgemmAVX2)
	}
	if x.HasAVX {
		impls = append(impls, sgemmAVX)
	}
	// SSE and SSE2 are part of amd64.
	return append(impls, sgemmSSE, sgemmGeneric)
}

// sgemmBest is the family sgemmNN uses: the fastest this CPU runs, or the
// one SENTINEL_KERNELS names (see chooseKernels).
var sgemmBest = chooseKernels(sgemmImpls(), os.Getenv(KernelsEnv))

// sgemmCall runs the kernel id.
func sgemmCall(id sgemmKernelID, k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int) {
	switch id {
	case sgemmAVX512x8ID:
		sgemmAVX512x8(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVX512x4ID:
		sgemmAVX512x4(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVX512x2ID:
		sgemmAVX512x2(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVX512x1ID:
		sgemmAVX512x1(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVX2x6ID:
		sgemmAVX2x6(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVX2x4ID:
		sgemmAVX2x4(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVX2x2ID:
		sgemmAVX2x2(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVX2x1ID:
		sgemmAVX2x1(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVXx6ID:
		sgemmAVXx6(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVXx4ID:
		sgemmAVXx4(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVXx2ID:
		sgemmAVXx2(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmAVXx1ID:
		sgemmAVXx1(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmSSEx6ID:
		sgemmSSEx6(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmSSEx4ID:
		sgemmSSEx4(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmSSEx2ID:
		sgemmSSEx2(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmSSEx1ID:
		sgemmSSEx1(k, a, lda, b, ldb, c, ldc, n, beta)
	default:
		sgemmCallGo(id, k, a, lda, b, ldb, c, ldc, n, beta)
	}
}

// narrowKernels returns the family for products only n ≤ a few columns
// wide (a layer's filter gradient has as many columns as output
// channels): AVX-512's 32-column panels would compute mostly masked
// lanes there, so such products run AVX2's 16-column ones, which every
// AVX-512 CPU also has.
func narrowKernels(n int) *sgemmImpl {
	if sgemmBest == sgemmAVX512 && n <= sgemmAVX2.nr {
		return sgemmAVX2
	}
	return sgemmBest
}
