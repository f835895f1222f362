package jpegls

import "testing"

// golombK gives what counting k up from 0 gives, over every A a context
// can hold with small N, and at large A.
func TestGolombKMatchesLoop(t *testing.T) {
	loop := func(n, a int32) int {
		k := 0
		for n<<uint(k) < a && k < 31 {
			k++
		}
		return k
	}
	for n := int32(1); n <= 300; n++ {
		for a := int32(0); a <= 70000; a += 1 + a/512 {
			if got, want := golombK(n, a), loop(n, a); got != want {
				t.Fatalf("golombK(%d, %d) = %d, want %d", n, a, got, want)
			}
		}
		for _, a := range []int32{1 << 20, 1<<24 + 3, 1<<29 - 1} {
			if got, want := golombK(n, a), loop(n, a); got != want {
				t.Fatalf("golombK(%d, %d) = %d, want %d", n, a, got, want)
			}
		}
	}
}
