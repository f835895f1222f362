//go:build !amd64

package detector

// sgemmImpls lists the kernel families this CPU can run: only the generic
// one off amd64.
func sgemmImpls() []*sgemmImpl { return []*sgemmImpl{sgemmGeneric} }

// sgemmBest is the family sgemmNN uses.
var sgemmBest = chooseKernels(sgemmImpls(), "")

// sgemmCall runs the kernel id.
func sgemmCall(id sgemmKernelID, k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int) {
	sgemmCallGo(id, k, a, lda, b, ldb, c, ldc, n, beta)
}

// narrowKernels returns the family for narrow products: the only one.
func narrowKernels(int) *sgemmImpl { return sgemmBest }
