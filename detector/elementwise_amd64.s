#include "textflag.h"

// SSE loops, four values at a time and then one; see elementwise.go for
// what each computes. A value is positive when 0 < it as a float
// (CMPPS's less-than, false for NaNs), which is reluKeep's test.

// func maskPositiveSSE(dst, src, y *uint32, n int)
TEXT ·maskPositiveSSE(SB), NOSPLIT, $0-32
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  y+16(FP), DX
	MOVQ  n+24(FP), CX
	XORQ  AX, AX
	XORPS X7, X7

loop4:
	LEAQ   4(AX), R8
	CMPQ   R8, CX
	JGT    tail
	MOVUPS (DX)(AX*4), X1
	MOVAPS X7, X0
	CMPPS  X1, X0, $1      // X0 = 0 < y
	MOVUPS (SI)(AX*4), X2
	ANDPS  X2, X0
	MOVUPS X0, (DI)(AX*4)
	MOVQ   R8, AX
	JMP    loop4

tail:
	CMPQ  AX, CX
	JGE   done
	MOVSS (DX)(AX*4), X1
	MOVAPS X7, X0
	CMPSS X1, X0, $1
	MOVSS (SI)(AX*4), X2
	ANDPS X2, X0
	MOVSS X0, (DI)(AX*4)
	INCQ  AX
	JMP   tail

done:
	RET

// func splitPositiveSSE(d0, d1, src, y *uint32, n int)
TEXT ·splitPositiveSSE(SB), NOSPLIT, $0-40
	MOVQ  d0+0(FP), DI
	MOVQ  d1+8(FP), R9
	MOVQ  src+16(FP), SI
	MOVQ  y+24(FP), DX
	MOVQ  n+32(FP), CX
	XORQ  AX, AX
	XORPS X7, X7

loop4:
	LEAQ   4(AX), R8
	CMPQ   R8, CX
	JGT    tail
	MOVUPS (SI)(AX*8), X0
	MOVUPS 16(SI)(AX*8), X1
	MOVAPS X0, X2
	SHUFPS $0x88, X1, X0   // src's even values
	SHUFPS $0xDD, X1, X2   // its odd values
	MOVUPS (DX)(AX*8), X3
	MOVUPS 16(DX)(AX*8), X4
	MOVAPS X3, X5
	SHUFPS $0x88, X4, X3
	SHUFPS $0xDD, X4, X5
	MOVAPS X7, X4
	CMPPS  X3, X4, $1
	ANDPS  X0, X4
	MOVUPS X4, (DI)(AX*4)
	MOVAPS X7, X6
	CMPPS  X5, X6, $1
	ANDPS  X2, X6
	MOVUPS X6, (R9)(AX*4)
	MOVQ   R8, AX
	JMP    loop4

tail:
	CMPQ   AX, CX
	JGE    done
	MOVSS  (DX)(AX*8), X1
	MOVAPS X7, X0
	CMPSS  X1, X0, $1
	MOVSS  (SI)(AX*8), X2
	ANDPS  X2, X0
	MOVSS  X0, (DI)(AX*4)
	MOVSS  4(DX)(AX*8), X1
	MOVAPS X7, X0
	CMPSS  X1, X0, $1
	MOVSS  4(SI)(AX*8), X2
	ANDPS  X2, X0
	MOVSS  X0, (R9)(AX*4)
	INCQ   AX
	JMP    tail

done:
	RET

// func splitPairsSSE(d0, d1, src *uint32, n int)
TEXT ·splitPairsSSE(SB), NOSPLIT, $0-32
	MOVQ d0+0(FP), DI
	MOVQ d1+8(FP), R9
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	XORQ AX, AX

loop4:
	LEAQ   4(AX), R8
	CMPQ   R8, CX
	JGT    tail
	MOVUPS (SI)(AX*8), X0
	MOVUPS 16(SI)(AX*8), X1
	MOVAPS X0, X2
	SHUFPS $0x88, X1, X0
	SHUFPS $0xDD, X1, X2
	MOVUPS X0, (DI)(AX*4)
	MOVUPS X2, (R9)(AX*4)
	MOVQ   R8, AX
	JMP    loop4

tail:
	CMPQ AX, CX
	JGE  done
	MOVL (SI)(AX*8), R10
	MOVL R10, (DI)(AX*4)
	MOVL 4(SI)(AX*8), R10
	MOVL R10, (R9)(AX*4)
	INCQ AX
	JMP  tail

done:
	RET

// func biasSSE(dst, src *float32, n int, b float32)
TEXT ·biasSSE(SB), NOSPLIT, $0-28
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVQ   n+16(FP), CX
	MOVSS  b+24(FP), X6
	SHUFPS $0x00, X6, X6
	XORQ   AX, AX

loop4:
	LEAQ   4(AX), R8
	CMPQ   R8, CX
	JGT    tail
	MOVUPS (SI)(AX*4), X0
	ADDPS  X6, X0
	MOVUPS X0, (DI)(AX*4)
	MOVQ   R8, AX
	JMP    loop4

tail:
	CMPQ  AX, CX
	JGE   done
	MOVSS (SI)(AX*4), X0
	ADDSS X6, X0
	MOVSS X0, (DI)(AX*4)
	INCQ  AX
	JMP   tail

done:
	RET

// func biasReluSSE(dst, src *float32, n int, b float32)
//
// max(v, 0) as Go defines it: a NaN stays a NaN and −0 gives +0. MAXPS
// with 0 as its first operand returns v for a NaN and for −0, and adding
// +0 then turns −0 into +0 and changes nothing else.
TEXT ·biasReluSSE(SB), NOSPLIT, $0-28
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVQ   n+16(FP), CX
	MOVSS  b+24(FP), X6
	SHUFPS $0x00, X6, X6
	XORPS  X7, X7
	XORQ   AX, AX

loop4:
	LEAQ   4(AX), R8
	CMPQ   R8, CX
	JGT    tail
	MOVUPS (SI)(AX*4), X0
	ADDPS  X6, X0
	MOVAPS X7, X1
	MAXPS  X0, X1          // X1 = 0 > v ? 0 : v
	ADDPS  X7, X1
	MOVUPS X1, (DI)(AX*4)
	MOVQ   R8, AX
	JMP    loop4

tail:
	CMPQ   AX, CX
	JGE    done
	MOVSS  (SI)(AX*4), X0
	ADDSS  X6, X0
	MOVAPS X7, X1
	MAXSS  X0, X1
	ADDSS  X7, X1
	MOVSS  X1, (DI)(AX*4)
	INCQ   AX
	JMP    tail

done:
	RET

// func sumPositiveSSE(v, y *float32, n int) float32
//
// Eight values at a time into two vectors of running sums, then one at a
// time; a nil y sums every value.
TEXT ·sumPositiveSSE(SB), NOSPLIT, $0-28
	MOVQ  v+0(FP), SI
	MOVQ  y+8(FP), DX
	MOVQ  n+16(FP), CX
	XORQ  AX, AX
	XORPS X0, X0
	XORPS X1, X1
	XORPS X7, X7
	TESTQ DX, DX
	JZ    plain8

masked8:
	LEAQ   8(AX), R8
	CMPQ   R8, CX
	JGT    masked1
	MOVUPS (DX)(AX*4), X2
	MOVAPS X7, X4
	CMPPS  X2, X4, $1      // 0 < y
	MOVUPS (SI)(AX*4), X5
	ANDPS  X5, X4
	ADDPS  X4, X0
	MOVUPS 16(DX)(AX*4), X3
	MOVAPS X7, X6
	CMPPS  X3, X6, $1
	MOVUPS 16(SI)(AX*4), X5
	ANDPS  X5, X6
	ADDPS  X6, X1
	MOVQ   R8, AX
	JMP    masked8

masked1:
	CMPQ   AX, CX
	JGE    sum
	MOVSS  (DX)(AX*4), X2
	MOVAPS X7, X4
	CMPSS  X2, X4, $1
	MOVSS  (SI)(AX*4), X5
	ANDPS  X5, X4
	ADDSS  X4, X0
	INCQ   AX
	JMP    masked1

plain8:
	LEAQ   8(AX), R8
	CMPQ   R8, CX
	JGT    plain1
	MOVUPS (SI)(AX*4), X2
	ADDPS  X2, X0
	MOVUPS 16(SI)(AX*4), X3
	ADDPS  X3, X1
	MOVQ   R8, AX
	JMP    plain8

plain1:
	CMPQ  AX, CX
	JGE   sum
	MOVSS (SI)(AX*4), X2
	ADDSS X2, X0
	INCQ  AX
	JMP   plain1

sum:
	ADDPS   X1, X0
	MOVHLPS X0, X1
	ADDPS   X1, X0         // lanes 0 + 2, 1 + 3
	MOVAPS  X0, X1
	SHUFPS  $0x55, X1, X1
	ADDSS   X1, X0
	MOVSS   X0, ret+24(FP)
	RET

// func mulAddSSE(dst, src *float64, n int, k float64)
//
// dst[i] += k·src[i], two lanes at a time (four per round), then one:
// MULPD and ADDPD round each lane as MULSD and ADDSD do.
TEXT ·mulAddSSE(SB), NOSPLIT, $0-32
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVQ   n+16(FP), CX
	MOVSD  k+24(FP), X7
	UNPCKLPD X7, X7
	XORQ   AX, AX

loop4:
	LEAQ   4(AX), R8
	CMPQ   R8, CX
	JGT    tail
	MOVUPD (SI)(AX*8), X0
	MOVUPD 16(SI)(AX*8), X1
	MULPD  X7, X0
	MULPD  X7, X1
	MOVUPD (DI)(AX*8), X2
	MOVUPD 16(DI)(AX*8), X3
	ADDPD  X0, X2
	ADDPD  X1, X3
	MOVUPD X2, (DI)(AX*8)
	MOVUPD X3, 16(DI)(AX*8)
	MOVQ   R8, AX
	JMP    loop4

tail:
	CMPQ  AX, CX
	JGE   done
	MOVSD (SI)(AX*8), X0
	MULSD X7, X0
	MOVSD (DI)(AX*8), X2
	ADDSD X0, X2
	MOVSD X2, (DI)(AX*8)
	INCQ  AX
	JMP   tail

done:
	RET

// func divideSSE(dst *float64, n int, w float64)
TEXT ·divideSSE(SB), NOSPLIT, $0-24
	MOVQ   dst+0(FP), DI
	MOVQ   n+8(FP), CX
	MOVSD  w+16(FP), X7
	UNPCKLPD X7, X7
	XORQ   AX, AX

loop2:
	LEAQ   2(AX), R8
	CMPQ   R8, CX
	JGT    tail
	MOVUPD (DI)(AX*8), X0
	DIVPD  X7, X0
	MOVUPD X0, (DI)(AX*8)
	MOVQ   R8, AX
	JMP    loop2

tail:
	CMPQ  AX, CX
	JGE   done
	MOVSD (DI)(AX*8), X0
	DIVSD X7, X0
	MOVSD X0, (DI)(AX*8)

done:
	RET
