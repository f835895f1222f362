package jpegls

import (
	"os"
	"strings"
	"unsafe"
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
	_                         int // regularRunAsm's scratch, at offset 120
}

//go:noescape
func regularRunAsm(t *runArgs)

// haveRegularAsm tells that this architecture has regularRunAsm.
const haveRegularAsm = true

// regularAsm tells whether regularRun runs regularRunAsm:
// SENTINEL_KERNELS=generic leaves out every hand-written loop.
var regularAsm = strings.ToLower(strings.TrimSpace(os.Getenv("SENTINEL_KERNELS"))) != "generic"

// regularRun is regularRunAsm, or regularRunGo where regularAsm is off.
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
