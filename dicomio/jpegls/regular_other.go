//go:build !amd64

package jpegls

// Only amd64 has the loop by hand.
const haveRegularAsm = false

var regularAsm = false

// regularRun is regularRunGo.
func (s *state) regularRun(r *bitReader, prev, cur []int32, x, width, ra, rb, rc int) (int, int, int, int) {
	return s.regularRunGo(r, prev, cur, x, width, ra, rb, rc)
}
