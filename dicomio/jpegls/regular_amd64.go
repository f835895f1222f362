package jpegls

import (
	"os"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// runArgs is what regularRunAsm reads and, for x to pos, writes back.
// The offsets are fixed by regular_amd64.s.
type runArgs struct {
	prev, cur, qlut, ctx, buf unsafe.Pointer // qlut points at qlut[MAXVAL]
	x, width, ra              int
	acc                       uint64
	n                         uint
	pos, maxPos, mv           int
	escape                    uint
	reset                     int
}

//go:noescape
func regularRunAsm(t *runArgs)

// regularAsm tells whether regularRun runs regularRunAsm: the CPU has
// the BMI2 shifts and LZCNT, and SENTINEL_KERNELS does not ask for the
// generic kernels (which leave out every hand-written loop) or the AVX or
// SSE ones (which stand for a CPU older than BMI2).
var regularAsm = cpu.X86.HasBMI2 && cpu.X86.HasLZCNT && !slices.Contains([]string{"generic", "sse", "avx"}, strings.ToLower(strings.TrimSpace(os.Getenv("SENTINEL_KERNELS"))))

// regularRun is regularRunGo or, where the CPU allows, the same loop by
// hand.
func (s *state) regularRun(r *bitReader, prev, cur []int32, x, width, ra, rb, rc int) (int, int, int, int) {
	if !regularAsm {
		return s.regularRunGo(r, prev, cur, x, width, ra, rb, rc)
	}
	_ = prev[width+1]
	_ = cur[width+1]
	mv := s.cp.maxVal
	_ = s.qlut[2*mv]
	t := runArgs{
		prev: unsafe.Pointer(unsafe.SliceData(prev)), cur: unsafe.Pointer(unsafe.SliceData(cur)),
		qlut: unsafe.Pointer(&s.qlut[mv]), ctx: unsafe.Pointer(&s.ctx[0]), buf: unsafe.Pointer(unsafe.SliceData(r.buf)),
		x: x, width: width, ra: ra,
		acc: r.acc, n: r.n, pos: r.pos, maxPos: r.maxPos,
		mv: mv, escape: uint(s.cp.limit - s.cp.qbpp - 1), reset: s.cp.reset,
	}
	regularRunAsm(&t)
	r.acc, r.n, r.pos = t.acc, t.n, t.pos
	return t.x, t.ra, int(prev[t.x]), int(prev[t.x-1])
}
