#include "textflag.h"

// func knnScreenAVX2(c float32, row, bound *float32, n int, idx *int32) int
//
// Writes to idx, in increasing order, every i < n for which
// c − 2·row[i] ≥ bound[i] does not hold (including when either side is a
// NaN), and returns how many it wrote. Eight lanes at a time, then one.
TEXT ·knnScreenAVX2(SB), NOSPLIT, $0-48
	VBROADCASTSS c+0(FP), Y0
	MOVQ row+8(FP), SI
	MOVQ bound+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ idx+32(FP), R8
	XORQ AX, AX // i
	XORQ DX, DX // count

loop8:
	MOVQ CX, R9
	SUBQ AX, R9
	CMPQ R9, $8
	JLT  tail
	VMOVUPS (SI)(AX*4), Y1
	VADDPS  Y1, Y1, Y1     // 2·row, exact
	VSUBPS  Y1, Y0, Y2     // c − 2·row
	VMOVUPS (DI)(AX*4), Y3
	VCMPPS  $0x09, Y3, Y2, Y4 // not (c − 2·row ≥ bound), true when unordered
	VMOVMSKPS Y4, R10
	TESTL   R10, R10
	JZ      next8

bits:
	BSFL R10, R11
	LEAQ (AX)(R11*1), R12
	MOVL R12, (R8)(DX*4)
	INCQ DX
	LEAL -1(R10), R13
	ANDL R13, R10
	JNZ  bits

next8:
	ADDQ $8, AX
	JMP  loop8

tail:
	CMPQ    AX, CX
	JGE     done
	VMOVSS  (SI)(AX*4), X1
	VADDSS  X1, X1, X1
	VSUBSS  X1, X0, X2
	VMOVSS  (DI)(AX*4), X3
	VUCOMISS X3, X2        // CF set when X2 < X3 or unordered
	JCC     skip
	MOVL    AX, (R8)(DX*4)
	INCQ    DX

skip:
	INCQ AX
	JMP  tail

done:
	VZEROUPPER
	MOVQ DX, ret+40(FP)
	RET

// func knnScreenSSE(c float32, row, bound *float32, n int, idx *int32) int
//
// knnScreenAVX2 with SSE, four lanes at a time. SSE's comparisons lack
// "not greater or equal", so it asks "not (bound ≤ c − 2·row)" (NLE with
// the operands swapped), which is the same test and also true when either
// side is a NaN.
TEXT ·knnScreenSSE(SB), NOSPLIT, $0-48
	MOVSS  c+0(FP), X0
	SHUFPS $0x00, X0, X0
	MOVQ   row+8(FP), SI
	MOVQ   bound+16(FP), DI
	MOVQ   n+24(FP), CX
	MOVQ   idx+32(FP), R8
	XORQ   AX, AX // i
	XORQ   DX, DX // count

loop4:
	MOVQ     CX, R9
	SUBQ     AX, R9
	CMPQ     R9, $4
	JLT      tail
	MOVUPS   (SI)(AX*4), X1
	ADDPS    X1, X1             // 2·row, exact
	MOVAPS   X0, X2
	SUBPS    X1, X2             // c − 2·row
	MOVUPS   (DI)(AX*4), X3
	CMPPS    X2, X3, $6         // X3 = not (bound ≤ c − 2·row)
	MOVMSKPS X3, R10
	TESTL    R10, R10
	JZ       next4

bits:
	BSFL R10, R11
	LEAQ (AX)(R11*1), R12
	MOVL R12, (R8)(DX*4)
	INCQ DX
	LEAL -1(R10), R13
	ANDL R13, R10
	JNZ  bits

next4:
	ADDQ $4, AX
	JMP  loop4

tail:
	CMPQ    AX, CX
	JGE     done
	MOVSS   (SI)(AX*4), X1
	ADDSS   X1, X1
	MOVSS   X0, X2
	SUBSS   X1, X2
	MOVSS   (DI)(AX*4), X3
	UCOMISS X3, X2          // CF set when X2 < X3 or unordered
	JCC     skip
	MOVL    AX, (R8)(DX*4)
	INCQ    DX

skip:
	INCQ AX
	JMP  tail

done:
	MOVQ DX, ret+40(FP)
	RET
