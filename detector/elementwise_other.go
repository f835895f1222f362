//go:build !amd64

package detector

func maskPositive(dst, src, y []uint32)     { maskPositiveGo(dst, src, y) }
func splitPositive(d0, d1, src, y []uint32) { splitPositiveGo(d0, d1, src, y) }
func biasRelu(dst, src []float32, b float32, relu bool) {
	biasReluGo(dst, src, b, relu)
}
func sumPositive(v, y []float32) float32   { return sumPositiveGo(v, y) }
func mulAdd(dst, src []float64, k float64) { mulAddGo(dst, src, k) }
func divide(dst []float64, w float64)      { divideGo(dst, w) }
