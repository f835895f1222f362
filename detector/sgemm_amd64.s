#include "textflag.h"

// Micro-kernels for sgemmNN. Every kernel computes a fixed number of rows
// of c = a·b (beta 0) or c += a·b (beta 1) across n columns, walking the
// columns one panel at a time and keeping the whole rows×panel tile of c in
// registers while it runs over all k. Rows of a are read in place, one
// broadcast per row and k step, and b is read in place too, one panel-wide
// row per k step: the driver decides whether b is worth copying first.
//
// All kernels share the Go signature
//
//	func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
//
// with k ≥ 1, strides in elements, and beta 0 (overwrite c) or 1 (add to
// c). With beta 0, c is never read, so whatever it held cannot leak into
// the result.
//
// Register use common to all kernels:
//
//	CX  end of row 0 of a (a + 4k): the k loop stops when the row pointer reaches it
//	SI  a
//	R8  lda in bytes; R9 three times lda, or three times ldb in the kernels that unroll k by four
//	DX  b at the current panel
//	R10 ldb in bytes
//	DI  c at the current panel
//	R11 ldc in bytes
//	BX  columns left
//	R12 b at the current k step; R13, R14 rows of a at the current k step
//	    (and rows of c while the tile is loaded or stored)
//	AX  scratch, then the end of the unrolled part of the k loop
//
// Accumulators are initialised from c when beta is 1 rather than added to
// c at the end, so that beta 1 costs one load per element and no extra
// pass.

// ---------------------------------------------------------------------------
// AVX-512: panels of 32 columns (two zmm registers per row).
//
// The main kernel holds 8 rows × 32 columns, 16 zmm accumulators: enough
// independent FMA chains to cover the FMA latency on two pipes (which needs
// at least 8), while each k step costs 2 vector loads of b and 8 broadcasts
// for 16 FMAs, well within the load ports. Eight rows divide the row counts
// the network uses (8, 16, 32, 256). Kernels with fewer rows would have too
// few chains, so they unroll k and keep one set of accumulators per
// unrolled step ("banks"), summed at the end.
//
// Columns are always loaded and stored under the masks K1 (columns 0–15 of
// the panel) and K2 (16–31). They are all ones except in a last, partial
// panel, where masked-off lanes are neither read nor written: the kernels
// never touch memory beyond column n-1 of any row, so a slice that ends at
// the last row's last element is safe. Masked loads of full panels cost the
// same as plain ones.

// FMA2 broadcasts one element of a and multiplies it into a row of the
// tile: z0 += a·b0, z1 += a·b1.
#define FMA2(m, b0, b1, t, z0, z1) \
	VBROADCASTSS m, t;     \
	VFMADD231PS  b0, t, z0; \
	VFMADD231PS  b1, t, z1

// LOADC2 and STOREC2 move one 32-column row of c under the panel masks.
#define LOADC2(m0, m1, z0, z1) \
	VMOVUPS.Z m0, K1, z0; \
	VMOVUPS.Z m1, K2, z1

#define STOREC2(z0, z1, m0, m1) \
	VMOVUPS z0, K1, m0; \
	VMOVUPS z1, K2, m1

// LOADB2 loads one 32-column row of b under the panel masks.
#define LOADB2(m0, m1, z0, z1) \
	VMOVUPS.Z m0, K1, z0; \
	VMOVUPS.Z m1, K2, z1

// PANELMASKS sets K1 and K2 for a panel of min(BX, 32) columns: the low
// BX bits of AX are set by BZHI when BX < 32 (BZHI looks only at the low
// byte of BX, hence the explicit comparison).
#define PANELMASKS \
	MOVL  $-1, AX;    \
	CMPQ  BX, $32;    \
	JGE   2(PC);      \
	BZHIL BX, AX, AX; \
	KMOVW AX, K1;     \
	SHRL  $16, AX;    \
	KMOVW AX, K2

#define ZERO4(z0, z1, z2, z3) \
	VPXORD z0, z0, z0; \
	VPXORD z1, z1, z1; \
	VPXORD z2, z2, z2; \
	VPXORD z3, z3, z3

// func sgemmAVX512x8(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmAVX512x8(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R11
	MOVQ n+56(FP), BX
	SHLQ $2, R8
	SHLQ $2, R10
	SHLQ $2, R11
	LEAQ (SI)(CX*4), CX
	LEAQ (R8)(R8*2), R9

panel:
	TESTQ BX, BX
	JLE   done
	PANELMASKS

	// Rows 0–3 of c are addressed from DI, rows 4–7 from R13 = DI + 4·ldc.
	LEAQ (DI)(R11*4), R13
	LEAQ (R11)(R11*2), R14
	CMPQ beta+64(FP), $0
	JEQ  zero
	LOADC2((DI), 64(DI), Z0, Z1)
	LOADC2((DI)(R11*1), 64(DI)(R11*1), Z2, Z3)
	LOADC2((DI)(R11*2), 64(DI)(R11*2), Z4, Z5)
	LOADC2((DI)(R14*1), 64(DI)(R14*1), Z6, Z7)
	LOADC2((R13), 64(R13), Z8, Z9)
	LOADC2((R13)(R11*1), 64(R13)(R11*1), Z10, Z11)
	LOADC2((R13)(R11*2), 64(R13)(R11*2), Z12, Z13)
	LOADC2((R13)(R14*1), 64(R13)(R14*1), Z14, Z15)
	JMP  start

zero:
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)

start:
	// Rows 0–3 of a are addressed from R13, rows 4–7 from R14 = R13 + 4·lda.
	MOVQ SI, R13
	LEAQ (SI)(R8*4), R14
	MOVQ DX, R12

loop:
	LOADB2((R12), 64(R12), Z16, Z17)
	FMA2((R13), Z16, Z17, Z18, Z0, Z1)
	FMA2((R13)(R8*1), Z16, Z17, Z19, Z2, Z3)
	FMA2((R13)(R8*2), Z16, Z17, Z18, Z4, Z5)
	FMA2((R13)(R9*1), Z16, Z17, Z19, Z6, Z7)
	FMA2((R14), Z16, Z17, Z18, Z8, Z9)
	FMA2((R14)(R8*1), Z16, Z17, Z19, Z10, Z11)
	FMA2((R14)(R8*2), Z16, Z17, Z18, Z12, Z13)
	FMA2((R14)(R9*1), Z16, Z17, Z19, Z14, Z15)
	ADDQ $4, R13
	ADDQ $4, R14
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	LEAQ (DI)(R11*4), R13
	LEAQ (R11)(R11*2), R14
	STOREC2(Z0, Z1, (DI), 64(DI))
	STOREC2(Z2, Z3, (DI)(R11*1), 64(DI)(R11*1))
	STOREC2(Z4, Z5, (DI)(R11*2), 64(DI)(R11*2))
	STOREC2(Z6, Z7, (DI)(R14*1), 64(DI)(R14*1))
	STOREC2(Z8, Z9, (R13), 64(R13))
	STOREC2(Z10, Z11, (R13)(R11*1), 64(R13)(R11*1))
	STOREC2(Z12, Z13, (R13)(R11*2), 64(R13)(R11*2))
	STOREC2(Z14, Z15, (R13)(R14*1), 64(R13)(R14*1))

	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVX512x4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
//
// Four rows, k unrolled by two into two banks of 8 accumulators
// (Z0–Z7 for even k, Z8–Z15 for odd k).
TEXT ·sgemmAVX512x4(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R11
	MOVQ n+56(FP), BX
	SHLQ $2, R8
	SHLQ $2, R10
	SHLQ $2, R11
	LEAQ (SI)(CX*4), CX
	LEAQ (R8)(R8*2), R9

panel:
	TESTQ BX, BX
	JLE   done
	PANELMASKS

	LEAQ (R11)(R11*2), R14
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	CMPQ beta+64(FP), $0
	JEQ  zero
	LOADC2((DI), 64(DI), Z0, Z1)
	LOADC2((DI)(R11*1), 64(DI)(R11*1), Z2, Z3)
	LOADC2((DI)(R11*2), 64(DI)(R11*2), Z4, Z5)
	LOADC2((DI)(R14*1), 64(DI)(R14*1), Z6, Z7)
	JMP  start

zero:
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)

start:
	MOVQ SI, R13
	MOVQ DX, R12
	LEAQ -4(CX), AX
	CMPQ R13, AX
	JAE  single

loop2:
	LOADB2((R12), 64(R12), Z16, Z17)
	LOADB2((R12)(R10*1), 64(R12)(R10*1), Z20, Z21)
	FMA2((R13), Z16, Z17, Z18, Z0, Z1)
	FMA2((R13)(R8*1), Z16, Z17, Z19, Z2, Z3)
	FMA2((R13)(R8*2), Z16, Z17, Z18, Z4, Z5)
	FMA2((R13)(R9*1), Z16, Z17, Z19, Z6, Z7)
	FMA2(4(R13), Z20, Z21, Z22, Z8, Z9)
	FMA2(4(R13)(R8*1), Z20, Z21, Z23, Z10, Z11)
	FMA2(4(R13)(R8*2), Z20, Z21, Z22, Z12, Z13)
	FMA2(4(R13)(R9*1), Z20, Z21, Z23, Z14, Z15)
	ADDQ $8, R13
	LEAQ (R12)(R10*2), R12
	CMPQ R13, AX
	JB   loop2

single:
	CMPQ R13, CX
	JAE  sum
	LOADB2((R12), 64(R12), Z16, Z17)
	FMA2((R13), Z16, Z17, Z18, Z0, Z1)
	FMA2((R13)(R8*1), Z16, Z17, Z19, Z2, Z3)
	FMA2((R13)(R8*2), Z16, Z17, Z18, Z4, Z5)
	FMA2((R13)(R9*1), Z16, Z17, Z19, Z6, Z7)

sum:
	VADDPS Z8, Z0, Z0
	VADDPS Z9, Z1, Z1
	VADDPS Z10, Z2, Z2
	VADDPS Z11, Z3, Z3
	VADDPS Z12, Z4, Z4
	VADDPS Z13, Z5, Z5
	VADDPS Z14, Z6, Z6
	VADDPS Z15, Z7, Z7
	STOREC2(Z0, Z1, (DI), 64(DI))
	STOREC2(Z2, Z3, (DI)(R11*1), 64(DI)(R11*1))
	STOREC2(Z4, Z5, (DI)(R11*2), 64(DI)(R11*2))
	STOREC2(Z6, Z7, (DI)(R14*1), 64(DI)(R14*1))

	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVX512x2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
//
// Two rows, k unrolled by four into four banks of 4 accumulators.
TEXT ·sgemmAVX512x2(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R11
	MOVQ n+56(FP), BX
	SHLQ $2, R8
	SHLQ $2, R10
	SHLQ $2, R11
	LEAQ (SI)(CX*4), CX
	LEAQ (R10)(R10*2), R9 // three rows of b

panel:
	TESTQ BX, BX
	JLE   done
	PANELMASKS

	ZERO4(Z4, Z5, Z6, Z7)
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	CMPQ beta+64(FP), $0
	JEQ  zero
	LOADC2((DI), 64(DI), Z0, Z1)
	LOADC2((DI)(R11*1), 64(DI)(R11*1), Z2, Z3)
	JMP  start

zero:
	ZERO4(Z0, Z1, Z2, Z3)

start:
	MOVQ SI, R13
	MOVQ DX, R12
	LEAQ -12(CX), AX
	CMPQ R13, AX
	JAE  single

loop4:
	LOADB2((R12), 64(R12), Z16, Z17)
	LOADB2((R12)(R10*1), 64(R12)(R10*1), Z20, Z21)
	LOADB2((R12)(R10*2), 64(R12)(R10*2), Z24, Z25)
	LOADB2((R12)(R9*1), 64(R12)(R9*1), Z28, Z29)
	FMA2((R13), Z16, Z17, Z18, Z0, Z1)
	FMA2((R13)(R8*1), Z16, Z17, Z19, Z2, Z3)
	FMA2(4(R13), Z20, Z21, Z22, Z4, Z5)
	FMA2(4(R13)(R8*1), Z20, Z21, Z23, Z6, Z7)
	FMA2(8(R13), Z24, Z25, Z26, Z8, Z9)
	FMA2(8(R13)(R8*1), Z24, Z25, Z27, Z10, Z11)
	FMA2(12(R13), Z28, Z29, Z30, Z12, Z13)
	FMA2(12(R13)(R8*1), Z28, Z29, Z31, Z14, Z15)
	ADDQ $16, R13
	LEAQ (R12)(R10*4), R12
	CMPQ R13, AX
	JB   loop4

single:
	CMPQ R13, CX
	JAE  sum
	LOADB2((R12), 64(R12), Z16, Z17)
	FMA2((R13), Z16, Z17, Z18, Z0, Z1)
	FMA2((R13)(R8*1), Z16, Z17, Z19, Z2, Z3)
	ADDQ $4, R13
	ADDQ R10, R12
	JMP  single

sum:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	VADDPS Z12, Z8, Z8
	VADDPS Z13, Z9, Z9
	VADDPS Z14, Z10, Z10
	VADDPS Z15, Z11, Z11
	VADDPS Z8, Z0, Z0
	VADDPS Z9, Z1, Z1
	VADDPS Z10, Z2, Z2
	VADDPS Z11, Z3, Z3
	STOREC2(Z0, Z1, (DI), 64(DI))
	STOREC2(Z2, Z3, (DI)(R11*1), 64(DI)(R11*1))

	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVX512x1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
//
// One row (a vector–matrix product), k unrolled by four into four banks of
// 2 accumulators. This kernel is bound by loading b, which every FMA needs
// afresh; the banks only keep the FMA latency out of the way.
TEXT ·sgemmAVX512x1(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ n+56(FP), BX
	SHLQ $2, R10
	LEAQ (SI)(CX*4), CX
	LEAQ (R10)(R10*2), R9 // three rows of b

panel:
	TESTQ BX, BX
	JLE   done
	PANELMASKS

	ZERO4(Z2, Z3, Z4, Z5)
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	CMPQ beta+64(FP), $0
	JEQ  zero
	LOADC2((DI), 64(DI), Z0, Z1)
	JMP  start

zero:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1

start:
	MOVQ SI, R13
	MOVQ DX, R12
	LEAQ -12(CX), AX
	CMPQ R13, AX
	JAE  single

loop4:
	LOADB2((R12), 64(R12), Z16, Z17)
	LOADB2((R12)(R10*1), 64(R12)(R10*1), Z20, Z21)
	LOADB2((R12)(R10*2), 64(R12)(R10*2), Z24, Z25)
	LOADB2((R12)(R9*1), 64(R12)(R9*1), Z28, Z29)
	FMA2((R13), Z16, Z17, Z18, Z0, Z1)
	FMA2(4(R13), Z20, Z21, Z22, Z2, Z3)
	FMA2(8(R13), Z24, Z25, Z26, Z4, Z5)
	FMA2(12(R13), Z28, Z29, Z30, Z6, Z7)
	ADDQ $16, R13
	LEAQ (R12)(R10*4), R12
	CMPQ R13, AX
	JB   loop4

single:
	CMPQ R13, CX
	JAE  sum
	LOADB2((R12), 64(R12), Z16, Z17)
	FMA2((R13), Z16, Z17, Z18, Z0, Z1)
	ADDQ $4, R13
	ADDQ R10, R12
	JMP  single

sum:
	VADDPS Z2, Z0, Z0
	VADDPS Z3, Z1, Z1
	VADDPS Z6, Z4, Z4
	VADDPS Z7, Z5, Z5
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	STOREC2(Z0, Z1, (DI), 64(DI))

	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// AVX2: panels of 16 columns (two ymm registers per row).
//
// With 16 ymm registers the main kernel holds 6 rows × 16 columns: 12
// accumulators, 2 registers for the row of b and 2 for broadcasts. That is
// the largest tile that fits, and 12 chains comfortably cover the FMA
// latency. The 4-row kernel has 8 accumulators, just enough; the 2- and
// 1-row kernels unroll k into banks like their AVX-512 counterparts.
//
// AVX2 has no cheap masked loads and stores, so these kernels only handle
// whole panels: they ignore the last n mod 16 columns, which the driver
// computes through a zero-padded copy.

#define YFMA2(m, b0, b1, t, y0, y1) \
	VBROADCASTSS m, t;     \
	VFMADD231PS  b0, t, y0; \
	VFMADD231PS  b1, t, y1

#define YLOAD2(m0, m1, y0, y1) \
	VMOVUPS m0, y0; \
	VMOVUPS m1, y1

#define YSTORE2(y0, y1, m0, m1) \
	VMOVUPS y0, m0; \
	VMOVUPS y1, m1

#define YZERO4(y0, y1, y2, y3) \
	VXORPS y0, y0, y0; \
	VXORPS y1, y1, y1; \
	VXORPS y2, y2, y2; \
	VXORPS y3, y3, y3

// func sgemmAVX2x6(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmAVX2x6(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R11
	MOVQ n+56(FP), BX
	SHLQ $2, R8
	SHLQ $2, R10
	SHLQ $2, R11
	LEAQ (SI)(CX*4), CX
	LEAQ (R8)(R8*2), R9

panel:
	CMPQ BX, $16
	JLT  done

	// Rows 0–2 of c are addressed from DI, rows 3–5 from R13 = DI + 3·ldc.
	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	CMPQ beta+64(FP), $0
	JEQ  zero
	YLOAD2((DI), 32(DI), Y0, Y1)
	YLOAD2((DI)(R11*1), 32(DI)(R11*1), Y2, Y3)
	YLOAD2((DI)(R11*2), 32(DI)(R11*2), Y4, Y5)
	YLOAD2((R13), 32(R13), Y6, Y7)
	YLOAD2((R13)(R11*1), 32(R13)(R11*1), Y8, Y9)
	YLOAD2((R13)(R11*2), 32(R13)(R11*2), Y10, Y11)
	JMP  start

zero:
	YZERO4(Y0, Y1, Y2, Y3)
	YZERO4(Y4, Y5, Y6, Y7)
	YZERO4(Y8, Y9, Y10, Y11)

start:
	// Rows 0–2 of a are addressed from R13, rows 3–5 from R14 = R13 + 3·lda.
	MOVQ SI, R13
	LEAQ (SI)(R9*1), R14
	MOVQ DX, R12

loop:
	YLOAD2((R12), 32(R12), Y12, Y13)
	YFMA2((R13), Y12, Y13, Y14, Y0, Y1)
	YFMA2((R13)(R8*1), Y12, Y13, Y15, Y2, Y3)
	YFMA2((R13)(R8*2), Y12, Y13, Y14, Y4, Y5)
	YFMA2((R14), Y12, Y13, Y15, Y6, Y7)
	YFMA2((R14)(R8*1), Y12, Y13, Y14, Y8, Y9)
	YFMA2((R14)(R8*2), Y12, Y13, Y15, Y10, Y11)
	ADDQ $4, R13
	ADDQ $4, R14
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	YSTORE2(Y0, Y1, (DI), 32(DI))
	YSTORE2(Y2, Y3, (DI)(R11*1), 32(DI)(R11*1))
	YSTORE2(Y4, Y5, (DI)(R11*2), 32(DI)(R11*2))
	YSTORE2(Y6, Y7, (R13), 32(R13))
	YSTORE2(Y8, Y9, (R13)(R11*1), 32(R13)(R11*1))
	YSTORE2(Y10, Y11, (R13)(R11*2), 32(R13)(R11*2))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVX2x4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmAVX2x4(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R11
	MOVQ n+56(FP), BX
	SHLQ $2, R8
	SHLQ $2, R10
	SHLQ $2, R11
	LEAQ (SI)(CX*4), CX
	LEAQ (R8)(R8*2), R9

panel:
	CMPQ BX, $16
	JLT  done

	LEAQ (R11)(R11*2), R14
	CMPQ beta+64(FP), $0
	JEQ  zero
	YLOAD2((DI), 32(DI), Y0, Y1)
	YLOAD2((DI)(R11*1), 32(DI)(R11*1), Y2, Y3)
	YLOAD2((DI)(R11*2), 32(DI)(R11*2), Y4, Y5)
	YLOAD2((DI)(R14*1), 32(DI)(R14*1), Y6, Y7)
	JMP  start

zero:
	YZERO4(Y0, Y1, Y2, Y3)
	YZERO4(Y4, Y5, Y6, Y7)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	YLOAD2((R12), 32(R12), Y12, Y13)
	YFMA2((R13), Y12, Y13, Y14, Y0, Y1)
	YFMA2((R13)(R8*1), Y12, Y13, Y15, Y2, Y3)
	YFMA2((R13)(R8*2), Y12, Y13, Y14, Y4, Y5)
	YFMA2((R13)(R9*1), Y12, Y13, Y15, Y6, Y7)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	YSTORE2(Y0, Y1, (DI), 32(DI))
	YSTORE2(Y2, Y3, (DI)(R11*1), 32(DI)(R11*1))
	YSTORE2(Y4, Y5, (DI)(R11*2), 32(DI)(R11*2))
	YSTORE2(Y6, Y7, (DI)(R14*1), 32(DI)(R14*1))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVX2x2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
//
// Two rows, k unrolled by two into two banks of 4 accumulators.
TEXT ·sgemmAVX2x2(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R11
	MOVQ n+56(FP), BX
	SHLQ $2, R8
	SHLQ $2, R10
	SHLQ $2, R11
	LEAQ (SI)(CX*4), CX

panel:
	CMPQ BX, $16
	JLT  done

	YZERO4(Y4, Y5, Y6, Y7)
	CMPQ beta+64(FP), $0
	JEQ  zero
	YLOAD2((DI), 32(DI), Y0, Y1)
	YLOAD2((DI)(R11*1), 32(DI)(R11*1), Y2, Y3)
	JMP  start

zero:
	YZERO4(Y0, Y1, Y2, Y3)

start:
	MOVQ SI, R13
	MOVQ DX, R12
	LEAQ -4(CX), AX
	CMPQ R13, AX
	JAE  single

loop2:
	YLOAD2((R12), 32(R12), Y8, Y9)
	YLOAD2((R12)(R10*1), 32(R12)(R10*1), Y10, Y11)
	YFMA2((R13), Y8, Y9, Y12, Y0, Y1)
	YFMA2((R13)(R8*1), Y8, Y9, Y13, Y2, Y3)
	YFMA2(4(R13), Y10, Y11, Y14, Y4, Y5)
	YFMA2(4(R13)(R8*1), Y10, Y11, Y15, Y6, Y7)
	ADDQ $8, R13
	LEAQ (R12)(R10*2), R12
	CMPQ R13, AX
	JB   loop2

single:
	CMPQ R13, CX
	JAE  sum
	YLOAD2((R12), 32(R12), Y8, Y9)
	YFMA2((R13), Y8, Y9, Y12, Y0, Y1)
	YFMA2((R13)(R8*1), Y8, Y9, Y13, Y2, Y3)

sum:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	YSTORE2(Y0, Y1, (DI), 32(DI))
	YSTORE2(Y2, Y3, (DI)(R11*1), 32(DI)(R11*1))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVX2x1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
//
// One row, k unrolled by four into four banks of 2 accumulators.
TEXT ·sgemmAVX2x1(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R10
	MOVQ c+40(FP), DI
	MOVQ n+56(FP), BX
	SHLQ $2, R10
	LEAQ (SI)(CX*4), CX
	LEAQ (R10)(R10*2), R9 // three rows of b

panel:
	CMPQ BX, $16
	JLT  done

	YZERO4(Y2, Y3, Y4, Y5)
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	CMPQ beta+64(FP), $0
	JEQ  zero
	YLOAD2((DI), 32(DI), Y0, Y1)
	JMP  start

zero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

start:
	MOVQ SI, R13
	MOVQ DX, R12
	LEAQ -12(CX), AX
	CMPQ R13, AX
	JAE  single

loop4:
	YLOAD2((R12), 32(R12), Y8, Y9)
	YLOAD2((R12)(R10*1), 32(R12)(R10*1), Y10, Y11)
	YFMA2((R13), Y8, Y9, Y12, Y0, Y1)
	YFMA2(4(R13), Y10, Y11, Y13, Y2, Y3)
	YLOAD2((R12)(R10*2), 32(R12)(R10*2), Y8, Y9)
	YLOAD2((R12)(R9*1), 32(R12)(R9*1), Y10, Y11)
	YFMA2(8(R13), Y8, Y9, Y14, Y4, Y5)
	YFMA2(12(R13), Y10, Y11, Y15, Y6, Y7)
	ADDQ $16, R13
	LEAQ (R12)(R10*4), R12
	CMPQ R13, AX
	JB   loop4

single:
	CMPQ R13, CX
	JAE  sum
	YLOAD2((R12), 32(R12), Y8, Y9)
	YFMA2((R13), Y8, Y9, Y12, Y0, Y1)
	ADDQ $4, R13
	ADDQ R10, R12
	JMP  single

sum:
	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VADDPS Y6, Y4, Y4
	VADDPS Y7, Y5, Y5
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	YSTORE2(Y0, Y1, (DI), 32(DI))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET
