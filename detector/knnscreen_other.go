//go:build !amd64

package detector

// knnScreen is knnScreenGo off amd64.
func knnScreen(c float32, row, bound []float32, idx []int32) []int32 {
	return knnScreenGo(c, row, bound, idx)
}

// knnScreens lists the screens this CPU runs, by name, for tests: none
// but the loop off amd64.
func knnScreens() map[string]func(c float32, row, bound []float32, idx []int32) []int32 {
	return map[string]func(c float32, row, bound []float32, idx []int32) []int32{"go": knnScreenGo}
}
