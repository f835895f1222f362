#include "textflag.h"

// ---------------------------------------------------------------------------
// AVX without AVX2 and FMA (Sandy Bridge and Ivy Bridge servers, and
// virtual CPUs that expose no more): panels of 16 columns in ymm
// registers, as the AVX2 kernels, with a multiplication and an addition
// for each product. The contract and the register use are
// sgemm_amd64.s's; the tiles are sgemm_sse_amd64.s's at twice the width.
// They handle whole panels only: the driver computes the last n mod 16
// columns through a zero-padded copy.

// AMAC2 broadcasts one element of a and adds its products with a row of
// b into a row of the tile: y0 += a·b0, y1 += a·b1.
#define AMAC2(m, b0, b1, t, u, y0, y1) \
	VBROADCASTSS m, t;   \
	VMULPS       b1, t, u; \
	VMULPS       b0, t, t; \
	VADDPS       t, y0, y0; \
	VADDPS       u, y1, y1

#define ALOAD2(m0, m1, y0, y1) \
	VMOVUPS m0, y0; \
	VMOVUPS m1, y1

#define ASTORE2(y0, y1, m0, m1) \
	VMOVUPS y0, m0; \
	VMOVUPS y1, m1

#define AZERO2(y0, y1) \
	VXORPS y0, y0, y0; \
	VXORPS y1, y1, y1

// APROLOGUE loads the arguments as sgemm_amd64.s's kernels do.
#define APROLOGUE \
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

// func sgemmAVXx6(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmAVXx6(SB), NOSPLIT, $0-72
	APROLOGUE

panel:
	CMPQ BX, $16
	JLT  done

	// Rows 0–2 of c are addressed from DI, rows 3–5 from R13 = DI + 3·ldc.
	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	CMPQ beta+64(FP), $0
	JEQ  zero
	ALOAD2((DI), 32(DI), Y0, Y1)
	ALOAD2((DI)(R11*1), 32(DI)(R11*1), Y2, Y3)
	ALOAD2((DI)(R11*2), 32(DI)(R11*2), Y4, Y5)
	ALOAD2((R13), 32(R13), Y6, Y7)
	ALOAD2((R13)(R11*1), 32(R13)(R11*1), Y8, Y9)
	ALOAD2((R13)(R11*2), 32(R13)(R11*2), Y10, Y11)
	JMP  start

zero:
	AZERO2(Y0, Y1)
	AZERO2(Y2, Y3)
	AZERO2(Y4, Y5)
	AZERO2(Y6, Y7)
	AZERO2(Y8, Y9)
	AZERO2(Y10, Y11)

start:
	// Rows 0–2 of a are addressed from R13, rows 3–5 from R14 = R13 + 3·lda.
	MOVQ SI, R13
	LEAQ (SI)(R9*1), R14
	MOVQ DX, R12

loop:
	ALOAD2((R12), 32(R12), Y12, Y13)
	AMAC2((R13), Y12, Y13, Y14, Y15, Y0, Y1)
	AMAC2((R13)(R8*1), Y12, Y13, Y14, Y15, Y2, Y3)
	AMAC2((R13)(R8*2), Y12, Y13, Y14, Y15, Y4, Y5)
	AMAC2((R14), Y12, Y13, Y14, Y15, Y6, Y7)
	AMAC2((R14)(R8*1), Y12, Y13, Y14, Y15, Y8, Y9)
	AMAC2((R14)(R8*2), Y12, Y13, Y14, Y15, Y10, Y11)
	ADDQ $4, R13
	ADDQ $4, R14
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	ASTORE2(Y0, Y1, (DI), 32(DI))
	ASTORE2(Y2, Y3, (DI)(R11*1), 32(DI)(R11*1))
	ASTORE2(Y4, Y5, (DI)(R11*2), 32(DI)(R11*2))
	ASTORE2(Y6, Y7, (R13), 32(R13))
	ASTORE2(Y8, Y9, (R13)(R11*1), 32(R13)(R11*1))
	ASTORE2(Y10, Y11, (R13)(R11*2), 32(R13)(R11*2))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVXx4(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmAVXx4(SB), NOSPLIT, $0-72
	APROLOGUE

panel:
	CMPQ BX, $16
	JLT  done

	LEAQ (R11)(R11*2), R14
	CMPQ beta+64(FP), $0
	JEQ  zero
	ALOAD2((DI), 32(DI), Y0, Y1)
	ALOAD2((DI)(R11*1), 32(DI)(R11*1), Y2, Y3)
	ALOAD2((DI)(R11*2), 32(DI)(R11*2), Y4, Y5)
	ALOAD2((DI)(R14*1), 32(DI)(R14*1), Y6, Y7)
	JMP  start

zero:
	AZERO2(Y0, Y1)
	AZERO2(Y2, Y3)
	AZERO2(Y4, Y5)
	AZERO2(Y6, Y7)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	ALOAD2((R12), 32(R12), Y12, Y13)
	AMAC2((R13), Y12, Y13, Y14, Y15, Y0, Y1)
	AMAC2((R13)(R8*1), Y12, Y13, Y8, Y9, Y2, Y3)
	AMAC2((R13)(R8*2), Y12, Y13, Y14, Y15, Y4, Y5)
	AMAC2((R13)(R9*1), Y12, Y13, Y8, Y9, Y6, Y7)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	ASTORE2(Y0, Y1, (DI), 32(DI))
	ASTORE2(Y2, Y3, (DI)(R11*1), 32(DI)(R11*1))
	ASTORE2(Y4, Y5, (DI)(R11*2), 32(DI)(R11*2))
	ASTORE2(Y6, Y7, (DI)(R14*1), 32(DI)(R14*1))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVXx2(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmAVXx2(SB), NOSPLIT, $0-72
	APROLOGUE

panel:
	CMPQ BX, $16
	JLT  done

	CMPQ beta+64(FP), $0
	JEQ  zero
	ALOAD2((DI), 32(DI), Y0, Y1)
	ALOAD2((DI)(R11*1), 32(DI)(R11*1), Y2, Y3)
	JMP  start

zero:
	AZERO2(Y0, Y1)
	AZERO2(Y2, Y3)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	ALOAD2((R12), 32(R12), Y12, Y13)
	AMAC2((R13), Y12, Y13, Y14, Y15, Y0, Y1)
	AMAC2((R13)(R8*1), Y12, Y13, Y8, Y9, Y2, Y3)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	ASTORE2(Y0, Y1, (DI), 32(DI))
	ASTORE2(Y2, Y3, (DI)(R11*1), 32(DI)(R11*1))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET

// func sgemmAVXx1(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, n int, beta int)
TEXT ·sgemmAVXx1(SB), NOSPLIT, $0-72
	APROLOGUE

panel:
	CMPQ BX, $16
	JLT  done

	CMPQ beta+64(FP), $0
	JEQ  zero
	ALOAD2((DI), 32(DI), Y0, Y1)
	JMP  start

zero:
	AZERO2(Y0, Y1)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	ALOAD2((R12), 32(R12), Y12, Y13)
	AMAC2((R13), Y12, Y13, Y14, Y15, Y0, Y1)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	ASTORE2(Y0, Y1, (DI), 32(DI))

	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, BX
	JMP  panel

done:
	VZEROUPPER
	RET
