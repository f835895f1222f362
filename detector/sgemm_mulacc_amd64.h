// Kernels with a multiplication and an addition for each product, for
// CPUs without FMA; sgemm_sse_amd64.s (xmm, 8-column panels) and
// sgemm_avx_amd64.s (ymm, 16-column panels) define, then include this:
//
//	K6, K4, K2, K1          the kernels' symbols (6, 4, 2 and 1 rows)
//	V0 … V15                the vector registers
//	PANEL, PANELB, HALF     a panel's columns and bytes, and the byte offset
//	                        of its second register
//	MAC2, LOAD2, STORE2, ZERO2, PROLOGUE, EPILOGUE
//
// The contract and the register use are sgemm_amd64.s's. The main kernel
// holds 6 rows × 2 registers: 12 accumulators, 2 registers for the row of
// b and 2 for the broadcast and a product. The smaller kernels have fewer
// rows and the same loop. They handle whole panels only: the driver
// computes the last n mod PANEL columns through a zero-padded copy.

// PROLOGUE loads the arguments as sgemm_amd64.s's kernels do.
#define PROLOGUE \
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

// K6: 6 rows.
TEXT K6(SB), NOSPLIT, $0-72
	PROLOGUE

panel:
	CMPQ BX, $PANEL
	JLT  done

	// Rows 0–2 of c are addressed from DI, rows 3–5 from R13 = DI + 3·ldc.
	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	CMPQ beta+64(FP), $0
	JEQ  zero
	LOAD2((DI), HALF(DI), V0, V1)
	LOAD2((DI)(R11*1), HALF(DI)(R11*1), V2, V3)
	LOAD2((DI)(R11*2), HALF(DI)(R11*2), V4, V5)
	LOAD2((R13), HALF(R13), V6, V7)
	LOAD2((R13)(R11*1), HALF(R13)(R11*1), V8, V9)
	LOAD2((R13)(R11*2), HALF(R13)(R11*2), V10, V11)
	JMP  start

zero:
	ZERO2(V0, V1)
	ZERO2(V2, V3)
	ZERO2(V4, V5)
	ZERO2(V6, V7)
	ZERO2(V8, V9)
	ZERO2(V10, V11)

start:
	// Rows 0–2 of a are addressed from R13, rows 3–5 from R14 = R13 + 3·lda.
	MOVQ SI, R13
	LEAQ (SI)(R9*1), R14
	MOVQ DX, R12

loop:
	LOAD2((R12), HALF(R12), V12, V13)
	MAC2((R13), V12, V13, V14, V15, V0, V1)
	MAC2((R13)(R8*1), V12, V13, V14, V15, V2, V3)
	MAC2((R13)(R8*2), V12, V13, V14, V15, V4, V5)
	MAC2((R14), V12, V13, V14, V15, V6, V7)
	MAC2((R14)(R8*1), V12, V13, V14, V15, V8, V9)
	MAC2((R14)(R8*2), V12, V13, V14, V15, V10, V11)
	ADDQ $4, R13
	ADDQ $4, R14
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	LEAQ (R11)(R11*2), R13
	ADDQ DI, R13
	STORE2(V0, V1, (DI), HALF(DI))
	STORE2(V2, V3, (DI)(R11*1), HALF(DI)(R11*1))
	STORE2(V4, V5, (DI)(R11*2), HALF(DI)(R11*2))
	STORE2(V6, V7, (R13), HALF(R13))
	STORE2(V8, V9, (R13)(R11*1), HALF(R13)(R11*1))
	STORE2(V10, V11, (R13)(R11*2), HALF(R13)(R11*2))

	ADDQ $PANELB, DX
	ADDQ $PANELB, DI
	SUBQ $PANEL, BX
	JMP  panel

done:
	EPILOGUE

// K4: 4 rows.
TEXT K4(SB), NOSPLIT, $0-72
	PROLOGUE

panel:
	CMPQ BX, $PANEL
	JLT  done

	LEAQ (R11)(R11*2), R14
	CMPQ beta+64(FP), $0
	JEQ  zero
	LOAD2((DI), HALF(DI), V0, V1)
	LOAD2((DI)(R11*1), HALF(DI)(R11*1), V2, V3)
	LOAD2((DI)(R11*2), HALF(DI)(R11*2), V4, V5)
	LOAD2((DI)(R14*1), HALF(DI)(R14*1), V6, V7)
	JMP  start

zero:
	ZERO2(V0, V1)
	ZERO2(V2, V3)
	ZERO2(V4, V5)
	ZERO2(V6, V7)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	LOAD2((R12), HALF(R12), V12, V13)
	MAC2((R13), V12, V13, V14, V15, V0, V1)
	MAC2((R13)(R8*1), V12, V13, V8, V9, V2, V3)
	MAC2((R13)(R8*2), V12, V13, V14, V15, V4, V5)
	MAC2((R13)(R9*1), V12, V13, V8, V9, V6, V7)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	STORE2(V0, V1, (DI), HALF(DI))
	STORE2(V2, V3, (DI)(R11*1), HALF(DI)(R11*1))
	STORE2(V4, V5, (DI)(R11*2), HALF(DI)(R11*2))
	STORE2(V6, V7, (DI)(R14*1), HALF(DI)(R14*1))

	ADDQ $PANELB, DX
	ADDQ $PANELB, DI
	SUBQ $PANEL, BX
	JMP  panel

done:
	EPILOGUE

// K2: 2 rows.
TEXT K2(SB), NOSPLIT, $0-72
	PROLOGUE

panel:
	CMPQ BX, $PANEL
	JLT  done

	CMPQ beta+64(FP), $0
	JEQ  zero
	LOAD2((DI), HALF(DI), V0, V1)
	LOAD2((DI)(R11*1), HALF(DI)(R11*1), V2, V3)
	JMP  start

zero:
	ZERO2(V0, V1)
	ZERO2(V2, V3)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	LOAD2((R12), HALF(R12), V12, V13)
	MAC2((R13), V12, V13, V14, V15, V0, V1)
	MAC2((R13)(R8*1), V12, V13, V8, V9, V2, V3)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	STORE2(V0, V1, (DI), HALF(DI))
	STORE2(V2, V3, (DI)(R11*1), HALF(DI)(R11*1))

	ADDQ $PANELB, DX
	ADDQ $PANELB, DI
	SUBQ $PANEL, BX
	JMP  panel

done:
	EPILOGUE

// K1: 1 rows.
TEXT K1(SB), NOSPLIT, $0-72
	PROLOGUE

panel:
	CMPQ BX, $PANEL
	JLT  done

	CMPQ beta+64(FP), $0
	JEQ  zero
	LOAD2((DI), HALF(DI), V0, V1)
	JMP  start

zero:
	ZERO2(V0, V1)

start:
	MOVQ SI, R13
	MOVQ DX, R12

loop:
	LOAD2((R12), HALF(R12), V12, V13)
	MAC2((R13), V12, V13, V14, V15, V0, V1)
	ADDQ $4, R13
	ADDQ R10, R12
	CMPQ R13, CX
	JNE  loop

	STORE2(V0, V1, (DI), HALF(DI))

	ADDQ $PANELB, DX
	ADDQ $PANELB, DI
	SUBQ $PANEL, BX
	JMP  panel

done:
	EPILOGUE
