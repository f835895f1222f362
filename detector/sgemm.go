package detector

import (
	"fmt"
	"sync"
	"unsafe"
)

// sgemmNN sets c = a·b (beta 0) or c += a·b (beta 1); row-major, a is m×k with
// row stride lda, b is k×n with row stride ldb, c is m×n with row stride ldc.
// It runs on the calling goroutine only (callers parallelise).
//
// If m, n or k is 0 it returns at once, leaving c as it was even with beta
// 0. Other sizes and strides that do not fit the slices panic, as does a
// beta other than 0 or 1.
func sgemmNN(m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmWith(sgemmBest, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// A kernel computes a fixed number of rows of c = a·b (beta 0) or
// c += a·b (beta 1) over n columns, for k ≥ 1, with the signature
//
//	func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
//
// Strides are in elements. Pointers rather than slices let the assembly
// kernels share the signature; the driver checks every bound before
// calling one. sgemmCall runs a kernel by its identifier: a switch of
// direct calls, rather than func values, lets escape analysis see that
// the kernels keep no pointers, so that the callers' slices need not live
// on the heap.
type sgemmKernelID uint8

const (
	sgemmGo4ID sgemmKernelID = iota
	sgemmGo1ID
	sgemmAVX512x8ID
	sgemmAVX512x4ID
	sgemmAVX512x2ID
	sgemmAVX512x1ID
	sgemmAVX2x6ID
	sgemmAVX2x4ID
	sgemmAVX2x2ID
	sgemmAVX2x1ID
	sgemmSSEx6ID
	sgemmSSEx4ID
	sgemmSSEx2ID
	sgemmSSEx1ID
	sgemmAVXx6ID
	sgemmAVXx4ID
	sgemmAVXx2ID
	sgemmAVXx1ID
)

type sgemmRowKernel struct {
	rows int
	id   sgemmKernelID
}

// sgemmCallGo runs the generic kernels.
func sgemmCallGo(id sgemmKernelID, k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int) {
	switch id {
	case sgemmGo4ID:
		sgemmGo4(k, a, lda, b, ldb, c, ldc, n, beta)
	case sgemmGo1ID:
		sgemmGo1(k, a, lda, b, ldb, c, ldc, n, beta)
	default:
		panic(fmt.Sprintf("sgemm: no kernel %d", id))
	}
}

// sgemmImpl is one family of kernels: the architecture-specific files
// provide the assembly ones and pick the best the CPU supports.
type sgemmImpl struct {
	name string
	// nr is the kernels' panel width in columns.
	nr int
	// partial tells whether the kernels handle a last panel narrower than
	// nr themselves; if not, they ignore it and the driver computes it
	// through a zero-padded copy.
	partial bool
	// kernels lists the kernels by decreasing rows; the last one has one
	// row, so any row count can be covered.
	kernels []sgemmRowKernel
}

// sgemmPackFloats bounds the part of b that the driver keeps hot while the
// kernels sweep it once per block of rows: 128K floats is 512 KiB, half of
// a typical per-core second-level cache. When the rows of b that a sweep
// reads span more than that (a long stride, or a large b), the driver
// copies b a block of columns at a time into a buffer of this size.
// Without the copy, rows of b a power-of-two number of bytes apart fall
// into the same few cache sets, and the second and later row blocks read b
// from memory again; the copy's stride avoids that.
const sgemmPackFloats = 128 << 10

// sgemmStreamFloats is the span of b beyond which even a single block of
// rows, which reads b only once, goes through the copy: the kernels read
// b in panel-wide pieces of k rows at once, and when those rows are far
// apart in a large b (4 MiB here) that pattern defeats the hardware
// prefetchers and the TLB, while the copy reads b row by row. Measured on
// 8×32768×144, the copy more than doubles the speed; on a b of a few
// hundred KiB it would halve it.
const sgemmStreamFloats = 1 << 20

// sgemmManyRows is the number of row blocks from which b is always
// copied, in blocks of sgemmPackL1Floats (32 KiB, a first-level cache):
// with that many sweeps over each block the copy costs next to nothing,
// and reading b from the first-level cache rather than the second gains
// about 7% on 256×2048×48. With fewer row blocks it does not pay.
const (
	sgemmManyRows     = 16
	sgemmPackL1Floats = 8 << 10
)

// sgemmKC is the depth of the k blocks into which products with fewer rows
// than the main kernel are split when the rows of b fall into few cache
// sets (see sgemmSetConflict). Such a product does too little work per
// element of b to hide a cache miss, and a panel of k rows of b that keep
// evicting each other, with their neighbouring columns that the next panel
// needs, misses on nearly every load: with 16 rows at a time, a panel's
// rows fit the cache's ways, at the price of reading and writing c once
// per block. Measured on 1×4096×72 with b 4096 wide, this doubles the
// speed; with unconflicted strides it costs 10–20%, so it is not the
// default.
const sgemmKC = 16

// sgemmSetConflict reports whether k rows of b, ldb floats apart, crowd
// into so few sets of a first-level data cache (64 sets of 64-byte lines,
// 4 KiB per way, as on every current x86 core) that the two lines per row
// a 32-column panel reads cannot all stay cached, allowing 8 ways.
func sgemmSetConflict(ldb, k int) bool {
	off := ldb * 4 % 4096
	if off == 0 {
		off = 4096
	}
	g := 4096
	for off != 0 { // g = gcd(ldb·4 mod 4096, 4096)
		g, off = off, g%off
	}
	sets := min(64, 4096/g) // distinct set positions the rows start at
	return sets*8 < 2*k
}

var sgemmPool sync.Pool // of *[]float32 scratch buffers

func sgemmScratch(n int) *[]float32 {
	if p, ok := sgemmPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// sgemmWith is sgemmNN with a given family of kernels.
func sgemmWith(impl *sgemmImpl, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("sgemm: negative size %d×%d×%d", m, n, k))
	}
	if m == 0 || n == 0 || k == 0 {
		return
	}
	var acc int
	switch beta {
	case 0:
	case 1:
		acc = 1
	default:
		panic(fmt.Sprintf("sgemm: beta %v is neither 0 nor 1", beta))
	}
	if lda < k || ldb < n || ldc < n {
		panic(fmt.Sprintf("sgemm: stride too short: lda %d (k %d), ldb %d, ldc %d (n %d)", lda, k, ldb, ldc, n))
	}
	// The kernels take raw pointers, so these checks are what keeps every
	// access in bounds.
	if len(a) < (m-1)*lda+k || len(b) < (k-1)*ldb+n || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("sgemm: slice too short for %d×%d×%d: len a %d, b %d, c %d", m, n, k, len(a), len(b), len(c)))
	}

	mr := impl.kernels[0].rows
	if m < mr && k > sgemmKC && sgemmSetConflict(ldb, k) {
		for p0 := 0; p0 < k; p0 += sgemmKC {
			kc := min(sgemmKC, k-p0)
			sgemmRows(impl, m, n, kc, a[p0:], lda, b[p0*ldb:], ldb, c, ldc, acc)
			acc = 1
		}
		return
	}
	// Decide whether to copy b, and in blocks of how many columns.
	budget := 0
	switch span := k * ldb; {
	case m >= sgemmManyRows*mr:
		budget = sgemmPackL1Floats
	case span > sgemmPackFloats && (m > mr || span > sgemmStreamFloats):
		budget = sgemmPackFloats
	}
	if budget == 0 {
		// A b that fits the cache budget stays there between row blocks,
		// and a single block of rows reads b only once: no copy needed.
		sgemmRows(impl, m, n, k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	nr := impl.nr
	nc := max(nr, budget/k/nr*nr)
	nc = min(nc, (n+nr-1)/nr*nr)
	// The copy's row stride is an odd number of 64-byte lines, so that its
	// rows start in every cache set in turn.
	ldp := (nc + 15) / 16 * 16
	if ldp/16%2 == 0 {
		ldp += 16
	}
	buf := sgemmScratch(k * ldp)
	pb := *buf
	for j0 := 0; j0 < n; j0 += nc {
		w := min(nc, n-j0)
		for p := range k {
			copy(pb[p*ldp:p*ldp+w], b[p*ldb+j0:p*ldb+j0+w])
		}
		sgemmRows(impl, m, w, k, a, lda, pb, ldp, c[j0:], ldc, acc)
	}
	sgemmPool.Put(buf)
}

// sgemmRows runs the kernels over all m rows, largest kernels first.
func sgemmRows(impl *sgemmImpl, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc int) {
	full := n
	if !impl.partial {
		full -= n % impl.nr
	}
	if full > 0 {
		for i := 0; i < m; {
			rk := sgemmPick(impl, m-i)
			sgemmCall(rk.id, k, &a[i*lda], lda, &b[0], ldb, &c[i*ldc], ldc, full, acc)
			i += rk.rows
		}
	}
	if full < n {
		sgemmTail(impl, m, n-full, k, a, lda, b[full:], ldb, c[full:], ldc, acc)
	}
}

// sgemmPick returns the largest kernel with at most rows rows.
func sgemmPick(impl *sgemmImpl, rows int) sgemmRowKernel {
	for _, rk := range impl.kernels {
		if rk.rows <= rows {
			return rk
		}
	}
	panic("sgemm: no one-row kernel")
}

// sgemmTail computes the last w < nr columns for kernels that only handle
// whole panels: b's columns are copied into a zero-padded panel, and each
// block of rows of c goes through a panel-wide scratch tile.
func sgemmTail(impl *sgemmImpl, m, w, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc int) {
	nr := impl.nr
	mr := impl.kernels[0].rows
	buf := sgemmScratch(k*nr + mr*nr)
	bt, ct := (*buf)[:k*nr], (*buf)[k*nr:]
	for p := range k {
		row := bt[p*nr : (p+1)*nr]
		copy(row, b[p*ldb:p*ldb+w])
		clear(row[w:])
	}
	for i := 0; i < m; {
		rk := sgemmPick(impl, m-i)
		if acc != 0 {
			for r := range rk.rows {
				copy(ct[r*nr:r*nr+w], c[(i+r)*ldc:(i+r)*ldc+w])
			}
		}
		sgemmCall(rk.id, k, &a[i*lda], lda, &bt[0], nr, &ct[0], nr, nr, acc)
		for r := range rk.rows {
			copy(c[(i+r)*ldc:(i+r)*ldc+w], ct[r*nr:r*nr+w])
		}
		i += rk.rows
	}
	sgemmPool.Put(buf)
}

// sgemmGeneric is the portable family: plain Go, four rows by two columns
// at a time, with the 8 sums in local variables that the compiler keeps in
// registers across the k loop (a 4×4 tile would need more than amd64's 15
// usable float registers and spill). It handles any n.
var sgemmGeneric = &sgemmImpl{
	name:    "generic",
	nr:      4,
	partial: true,
	kernels: []sgemmRowKernel{{4, sgemmGo4ID}, {1, sgemmGo1ID}},
}

func sgemmGo4(k int, ap *float32, lda int, bp *float32, ldb int, cp *float32, ldc int, n int, beta int) {
	a := unsafe.Slice(ap, 3*lda+k)
	b := unsafe.Slice(bp, (k-1)*ldb+n)
	c := unsafe.Slice(cp, 3*ldc+n)
	a0 := a[:k]
	a1 := a[lda:][:len(a0)]
	a2 := a[2*lda:][:len(a0)]
	a3 := a[3*lda:][:len(a0)]
	j := 0
	for ; j+2 <= n; j += 2 {
		var c00, c01, c10, c11, c20, c21, c30, c31 float32
		for p, x0 := range a0 {
			bb := b[p*ldb+j:][:2:2]
			b0, b1 := bb[0], bb[1]
			x1, x2, x3 := a1[p], a2[p], a3[p]
			c00 += x0 * b0
			c01 += x0 * b1
			c10 += x1 * b0
			c11 += x1 * b1
			c20 += x2 * b0
			c21 += x2 * b1
			c30 += x3 * b0
			c31 += x3 * b1
		}
		sgemmGoStore2(c[j:][:2:2], beta, c00, c01)
		sgemmGoStore2(c[ldc+j:][:2:2], beta, c10, c11)
		sgemmGoStore2(c[2*ldc+j:][:2:2], beta, c20, c21)
		sgemmGoStore2(c[3*ldc+j:][:2:2], beta, c30, c31)
	}
	for ; j < n; j++ {
		var s0, s1, s2, s3 float32
		for p, x0 := range a0 {
			y := b[p*ldb+j]
			s0 += x0 * y
			s1 += a1[p] * y
			s2 += a2[p] * y
			s3 += a3[p] * y
		}
		if beta != 0 {
			s0 += c[j]
			s1 += c[ldc+j]
			s2 += c[2*ldc+j]
			s3 += c[3*ldc+j]
		}
		c[j], c[ldc+j], c[2*ldc+j], c[3*ldc+j] = s0, s1, s2, s3
	}
}

func sgemmGoStore2(c []float32, beta int, s0, s1 float32) {
	if beta != 0 {
		s0 += c[0]
		s1 += c[1]
	}
	c[0], c[1] = s0, s1
}

func sgemmGo1(k int, ap *float32, lda int, bp *float32, ldb int, cp *float32, ldc int, n int, beta int) {
	a := unsafe.Slice(ap, k)
	b := unsafe.Slice(bp, (k-1)*ldb+n)
	c := unsafe.Slice(cp, n)
	j := 0
	for ; j+4 <= n; j += 4 {
		var s0, s1, s2, s3 float32
		for p, x := range a {
			bb := b[p*ldb+j:][:4:4]
			s0 += x * bb[0]
			s1 += x * bb[1]
			s2 += x * bb[2]
			s3 += x * bb[3]
		}
		sgemmGoStore2(c[j:][:2:2], beta, s0, s1)
		sgemmGoStore2(c[j+2:][:2:2], beta, s2, s3)
	}
	for ; j < n; j++ {
		var s float32
		for p, x := range a {
			s += x * b[p*ldb+j]
		}
		if beta != 0 {
			s += c[j]
		}
		c[j] = s
	}
}
