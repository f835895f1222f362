package detector

import "golang.org/x/sys/cpu"

//go:noescape
func knnScreenAVX2(c float32, row, bound *float32, n int, idx *int32) int

//go:noescape
func knnScreenSSE(c float32, row, bound *float32, n int, idx *int32) int

// knnScreen writes to idx the i for which c − 2·row[i] ≥ bound[i] does
// not hold, in order, and returns them: the kNN's candidates in one row of
// dot products. With the AVX-512, AVX2 or AVX kernels in use it runs eight
// lanes at a time, with the SSE kernels four; under the generic family it
// is knnScreenGo.
func knnScreen(c float32, row, bound []float32, idx []int32) []int32 {
	switch sgemmBest {
	case sgemmGeneric:
		return knnScreenGo(c, row, bound, idx)
	case sgemmSSE:
		return knnScreenWith(knnScreenSSE, c, row, bound, idx)
	}
	// Every other family needs AVX, which is all the screen uses.
	return knnScreenWith(knnScreenAVX2, c, row, bound, idx)
}

// knnScreenWith runs the assembly screen f over row.
func knnScreenWith(f func(c float32, row, bound *float32, n int, idx *int32) int, c float32, row, bound []float32, idx []int32) []int32 {
	n := len(row)
	if n == 0 {
		return idx[:0]
	}
	_ = bound[n-1]
	_ = idx[n-1]
	return idx[:f(c, &row[0], &bound[0], n, &idx[0])]
}

// knnScreenAsm tells whether the CPU runs knnScreenAVX2, whose
// instructions are all AVX (the name is the family it was written for).
var knnScreenAsm = cpu.X86.HasAVX

// knnScreens lists the screens this CPU runs, by name, for tests.
func knnScreens() map[string]func(c float32, row, bound []float32, idx []int32) []int32 {
	out := map[string]func(c float32, row, bound []float32, idx []int32) []int32{
		"sse": func(c float32, row, bound []float32, idx []int32) []int32 {
			return knnScreenWith(knnScreenSSE, c, row, bound, idx)
		},
	}
	if knnScreenAsm {
		out["avx2"] = func(c float32, row, bound []float32, idx []int32) []int32 {
			return knnScreenWith(knnScreenAVX2, c, row, bound, idx)
		}
	}
	return out
}
