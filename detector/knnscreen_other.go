//go:build !amd64

package detector

// knnScreen is knnScreenGo off amd64.
func knnScreen(c float32, row, bound []float32, idx []int32) []int32 {
	return knnScreenGo(c, row, bound, idx)
}
