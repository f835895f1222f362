//go:build !amd64

package jpegls

// regularLoop is 0, the Go loop: only amd64 has the loop by hand.
var regularLoop = 0

// regularLoops lists the loops this CPU runs, for tests.
func regularLoops() []int { return []int{0} }

// regularRun is regularRunGo.
func (s *state) regularRun(r *bitReader, prev, cur []int32, x, width, ra, rb, rc int) (int, int, int, int) {
	return s.regularRunGo(r, prev, cur, x, width, ra, rb, rc)
}
