package jpegls

import (
	"os"
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
	_                         int // scratch for regularRunAsmV1, at offset 120
}

//go:noescape
func regularRunAsm(t *runArgs)

//go:noescape
func regularRunAsmV1(t *runArgs)

// regularLoop selects regularRun's loop: 0 regularRunGo, 1
// regularRunAsmV1 (any amd64 CPU), 2 regularRunAsm (BMI2 and LZCNT).
// SENTINEL_KERNELS=generic, which leaves out every hand-written loop,
// asks for the Go one; "avx" and "sse", which stand for CPUs older than
// BMI2, for V1.
var regularLoop = chooseRegularLoop(os.Getenv("SENTINEL_KERNELS"))

func chooseRegularLoop(kernels string) int {
	switch strings.ToLower(strings.TrimSpace(kernels)) {
	case "generic":
		return 0
	case "avx", "sse":
		return 1
	}
	if regularLoops()[len(regularLoops())-1] == 2 {
		return 2
	}
	return 1
}

// regularLoops lists the loops this CPU runs, for tests.
func regularLoops() []int {
	if cpu.X86.HasBMI2 && cpu.X86.HasLZCNT {
		return []int{0, 1, 2}
	}
	return []int{0, 1}
}

// regularRun is the loop regularLoop selects.
func (s *state) regularRun(r *bitReader, prev, cur []int32, x, width, ra, rb, rc int) (int, int, int, int) {
	if regularLoop == 0 {
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
	if regularLoop == 2 {
		regularRunAsm(&t)
	} else {
		regularRunAsmV1(&t)
	}
	r.acc, r.n, r.pos = t.acc, t.n, t.pos
	return t.x, t.ra, int(prev[t.x]), int(prev[t.x-1])
}
