#include "textflag.h"

// ---------------------------------------------------------------------------
// SSE: panels of 8 columns (two xmm registers per row), for amd64 CPUs
// without AVX2 and FMA (every amd64 CPU has SSE). The contract and the
// register use are sgemm_amd64.s's.
//
// With 16 xmm registers the main kernel holds 6 rows × 8 columns: 12
// accumulators, 2 registers for the row of b and 2 for the broadcast and
// its copy (SSE multiplies in place and has no fused multiply-add, so each
// product is a multiplication into a temporary and an addition). The
// smaller kernels have fewer rows and the same loop.
//
// Like the AVX2 kernels they handle whole panels only: the driver computes
// the last n mod 8 columns through a zero-padded copy.

// XMAC2 broadcasts one element of a and adds its products with a row of
// b into a row of the tile: x0 += a·b0, x1 += a·b1.
#define XMAC2(m, b0, b1, t, u, x0, x1) \
	MOVSS  m, t;        \
	SHUFPS $0x00, t, t; \
	MOVAPS t, u;        \
	MULPS  b0, t;       \
	MULPS  b1, u;       \
	ADDPS  t, x0;       \
	ADDPS  u, x1

#define XLOAD2(m0, m1, x0, x1) \
	MOVUPS m0, x0; \
	MOVUPS m1, x1

#define XSTORE2(x0, x1, m0, m1) \
	MOVUPS x0, m0; \
	MOVUPS x1, m1

#define XZERO2(x0, x1) \
	XORPS x0, x0; \
	XORPS x1, x1

// XPROLOGUE loads the arguments as sgemm_amd64.s's kernels do.
#define XPROLOGUE \
	MOVQ k+0(FP), CX;      \
	MOVQ a+8(FP), SI;      \
	MOVQ lda+16(FP), R8;   \
	MOVQ b+24(FP), DX;     \
	MOVQ ldb+32(FP), R10;  \
	MOVQ c+40(FP), DI;     \
	MOVQ ldc+48(FP), R11;  \
	MOVQ n+56(FP), BX;     \
	SHLQ $2, R8;           \
	SHLQ $2, R10;          \
	SHLQ $2, R11;          \
	LEAQ (SI)(CX*4), CX;   \
	LEAQ (R8)(R8*2), R9

// func sgemmSSEx6(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmSSEx6(SB), NOSPLIT, $0-72
	XPROLOGUE

panel:
	CMPQ BX, $8
	JLT  done

	// Rows 0–2 of c are addressed from DI, rows 3–5 from R13 = DI + 3·ldc.
	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	CMPQ beta+64(FP), $0
	JEQ  zero
	XLOAD2((DI), 16(DI), X0, X1)
	XLOAD2((DI)(R11*1), 16(DI)(R11*1), X2, X3)
	XLOAD2((DI)(R11*2), 16(DI)(R11*2), X4, X5)
	XLOAD2((R13), 16(R13), X6, X7)
	XLOAD2((R13)(R11*1), 16(R13)(R11*1), X8, X9)
	XLOAD2((R13)(R11*2), 16(R13)(R11*2), X10, X11)
	JMP  start

zero:
	XZERO2(X0, X1)
	XZERO2(X2, X3)
	XZERO2(X4, X5)
	XZERO2(X6, X7)
	XZERO2(X8, X9)
	XZERO2(X10, X11)

start:
	// Rows 0–2 of a are addressed from R13, rows 3–5 from R14 = R13 + 3·lda.
	MOVQ SI, R13
	LEAQ (SI)(R9*1), R14
	MOVQ DX, R12

loop:
	XLOAD2((R12), 16(R12), X12, X13)
	XMAC2((R13), X12, X13, X14, X15, X0, X1)
	XMAC2((R13)(R8*1), X12, X13, X14, X15, X2, X3)
	XMAC2((R13)(R8*2), X12, X13, X14, X15, X4, X5)
	XMAC2((R14), X12, X13, X14, X15, X6, X7)
	XMAC2((R14)(R8*1), X12, X13, X14, X15, X8, X9)
	XMAC2((R14)(R8*2), X12, X13, X14, X15, X10, X11)
	ADDQ $4, R13
	ADDQ $4, R14
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	XSTORE2(X0, X1, (DI), 16(DI))
	XSTORE2(X2, X3, (DI)(R11*1), 16(DI)(R11*1))
	XSTORE2(X4, X5, (DI)(R11*2), 16(DI)(R11*2))
	XSTORE2(X6, X7, (R13), 16(R13))
	XSTORE2(X8, X9, (R13)(R11*1), 16(R13)(R11*1))
	XSTORE2(X10, X11, (R13)(R11*2), 16(R13)(R11*2))

	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, BX
	JMP  panel

done:
	RET

// func sgemmSSEx4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmSSEx4(SB), NOSPLIT, $0-72
	XPROLOGUE

panel:
	CMPQ BX, $8
	JLT  done

	LEAQ (R11)(R11*2), R14
	CMPQ beta+64(FP), $0
	JEQ  zero
	XLOAD2((DI), 16(DI), X0, X1)
	XLOAD2((DI)(R11*1), 16(DI)(R11*1), X2, X3)
	XLOAD2((DI)(R11*2), 16(DI)(R11*2), X4, X5)
	XLOAD2((DI)(R14*1), 16(DI)(R14*1), X6, X7)
	JMP  start

zero:
	XZERO2(X0, X1)
	XZERO2(X2, X3)
	XZERO2(X4, X5)
	XZERO2(X6, X7)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	XLOAD2((R12), 16(R12), X12, X13)
	XMAC2((R13), X12, X13, X14, X15, X0, X1)
	XMAC2((R13)(R8*1), X12, X13, X8, X9, X2, X3)
	XMAC2((R13)(R8*2), X12, X13, X14, X15, X4, X5)
	XMAC2((R13)(R9*1), X12, X13, X8, X9, X6, X7)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	XSTORE2(X0, X1, (DI), 16(DI))
	XSTORE2(X2, X3, (DI)(R11*1), 16(DI)(R11*1))
	XSTORE2(X4, X5, (DI)(R11*2), 16(DI)(R11*2))
	XSTORE2(X6, X7, (DI)(R14*1), 16(DI)(R14*1))

	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, BX
	JMP  panel

done:
	RET

// func sgemmSSEx2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmSSEx2(SB), NOSPLIT, $0-72
	XPROLOGUE

panel:
	CMPQ BX, $8
	JLT  done

	CMPQ beta+64(FP), $0
	JEQ  zero
	XLOAD2((DI), 16(DI), X0, X1)
	XLOAD2((DI)(R11*1), 16(DI)(R11*1), X2, X3)
	JMP  start

zero:
	XZERO2(X0, X1)
	XZERO2(X2, X3)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	XLOAD2((R12), 16(R12), X12, X13)
	XMAC2((R13), X12, X13, X14, X15, X0, X1)
	XMAC2((R13)(R8*1), X12, X13, X8, X9, X2, X3)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	XSTORE2(X0, X1, (DI), 16(DI))
	XSTORE2(X2, X3, (DI)(R11*1), 16(DI)(R11*1))

	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, BX
	JMP  panel

done:
	RET

// func sgemmSSEx1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmSSEx1(SB), NOSPLIT, $0-72
	XPROLOGUE

panel:
	CMPQ BX, $8
	JLT  done

	CMPQ beta+64(FP), $0
	JEQ  zero
	XLOAD2((DI), 16(DI), X0, X1)
	JMP  start

zero:
	XZERO2(X0, X1)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	XLOAD2((R12), 16(R12), X12, X13)
	XMAC2((R13), X12, X13, X14, X15, X0, X1)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	XSTORE2(X0, X1, (DI), 16(DI))

	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, BX
	JMP  panel

done:
	RET
