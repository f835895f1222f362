package detector

import "golang.org/x/sys/cpu"

//go:noescape
func knnScreenAVX2(c float32, row, bound *float32, n int, idx *int32) int

// knnScreen writes to idx the i for which c − 2·row[i] ≥ bound[i] does
// not hold, in order, and returns them: the kNN's candidates in one row of
// dot products. With the AVX2 or AVX-512 kernels in use it runs eight
// lanes at a time; under the SSE and generic families it is knnScreenGo.
func knnScreen(c float32, row, bound []float32, idx []int32) []int32 {
	n := len(row)
	if n == 0 {
		return idx[:0]
	}
	if !knnScreenAsm || (sgemmBest != sgemmAVX2 && sgemmBest != sgemmAVX512) {
		return knnScreenGo(c, row, bound, idx)
	}
	_ = bound[n-1]
	_ = idx[n-1]
	return idx[:knnScreenAVX2(c, &row[0], &bound[0], n, &idx[0])]
}

// knnScreenAsm tells whether the CPU runs knnScreenAVX2.
var knnScreenAsm = cpu.X86.HasAVX2
