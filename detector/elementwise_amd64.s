#include "textflag.h"

// SSE loops; see elementwise.go for what each computes. A value is
// positive when 0 < it as a float (CMPPS's less-than, false for NaNs),
// which is reluKeep's test.
//
// Every loop has the same frame: AX counts the elements done, CX the
// elements in all, and STREAM runs BODY on AX while step elements remain,
// then BODY1 on each remaining one. Each function defines BODY and BODY1
// for its own registers before STREAM, and undefines them after.
#define STREAM(step) \
loop:                 \
	LEAQ step(AX), R8;  \
	CMPQ R8, CX;        \
	JGT  tail;          \
	BODY;               \
	MOVQ R8, AX;        \
	JMP  loop;          \
tail:                 \
	CMPQ AX, CX;        \
	JGE  done;          \
	BODY1;              \
	INCQ AX;            \
	JMP  tail;          \
done:

// MASK sets x to all ones in each lane where y > 0 (X7 holds zeros).
#define MASK(y, x) MOVAPS X7, x; CMPPS y, x, $1
#define MASK1(y, x) MOVAPS X7, x; CMPSS y, x, $1

// MASKED1 stores at d the value at m where the value at ym is positive,
// and 0 elsewhere.
#define MASKED1(ym, m, d) \
	MOVSS ym, X1;   \
	MASK1(X1, X0);  \
	MOVSS m, X2;    \
	ANDPS X2, X0;   \
	MOVSS X0, d

// func maskPositiveSSE(dst, src, y *uint32, n int)
#define BODY \
	MOVUPS (DX)(AX*4), X1; \
	MASK(X1, X0);          \
	MOVUPS (SI)(AX*4), X2; \
	ANDPS  X2, X0;         \
	MOVUPS X0, (DI)(AX*4)
#define BODY1 MASKED1((DX)(AX*4), (SI)(AX*4), (DI)(AX*4))

TEXT ·maskPositiveSSE(SB), NOSPLIT, $0-32
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  y+16(FP), DX
	MOVQ  n+24(FP), CX
	XORQ  AX, AX
	XORPS X7, X7
	STREAM(4)
	RET

#undef BODY
#undef BODY1

// SPLIT loads eight values from m and leaves the even ones in e and the
// odd ones in o.
#define SPLIT(m0, m1, e, o) \
	MOVUPS m0, e;         \
	MOVUPS m1, X6;        \
	MOVAPS e, o;          \
	SHUFPS $0x88, X6, e;  \
	SHUFPS $0xDD, X6, o

// func splitPositiveSSE(d0, d1, src, y *uint32, n int)
#define BODY \
	SPLIT((SI)(AX*8), 16(SI)(AX*8), X0, X2); \
	SPLIT((DX)(AX*8), 16(DX)(AX*8), X3, X5); \
	MASK(X3, X4);                             \
	ANDPS  X0, X4;                            \
	MOVUPS X4, (DI)(AX*4);                    \
	MASK(X5, X1);                             \
	ANDPS  X2, X1;                            \
	MOVUPS X1, (R9)(AX*4)
#define BODY1 \
	MASKED1((DX)(AX*8), (SI)(AX*8), (DI)(AX*4)); \
	MASKED1(4(DX)(AX*8), 4(SI)(AX*8), (R9)(AX*4))

TEXT ·splitPositiveSSE(SB), NOSPLIT, $0-40
	MOVQ  d0+0(FP), DI
	MOVQ  d1+8(FP), R9
	MOVQ  src+16(FP), SI
	MOVQ  y+24(FP), DX
	MOVQ  n+32(FP), CX
	XORQ  AX, AX
	XORPS X7, X7
	STREAM(4)
	RET

#undef BODY
#undef BODY1

// func splitPairsSSE(d0, d1, src *uint32, n int)
#define BODY \
	SPLIT((SI)(AX*8), 16(SI)(AX*8), X0, X2); \
	MOVUPS X0, (DI)(AX*4);                    \
	MOVUPS X2, (R9)(AX*4)
#define BODY1 \
	MOVL (SI)(AX*8), R10;  \
	MOVL R10, (DI)(AX*4);  \
	MOVL 4(SI)(AX*8), R10; \
	MOVL R10, (R9)(AX*4)

TEXT ·splitPairsSSE(SB), NOSPLIT, $0-32
	MOVQ d0+0(FP), DI
	MOVQ d1+8(FP), R9
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	XORQ AX, AX
	STREAM(4)
	RET

#undef BODY
#undef BODY1

// func biasReluSSE(dst, src *float32, n int, b float32, relu int)
//
// dst = max(src + b, lo) + z, which is Go's max(src + b, 0) with lo = z
// = +0 (MAXPS with lo first returns the sum for a NaN and for −0, and
// adding +0 turns −0 into +0 and changes nothing else), and the sum alone
// with lo = −Inf and z = −0 (no sum is below −Inf, and adding −0 changes
// nothing, −0 included).
#define BODY \
	MOVUPS (SI)(AX*4), X0; \
	ADDPS  X6, X0;         \
	MOVAPS X7, X1;         \
	MAXPS  X0, X1;         \
	ADDPS  X5, X1;         \
	MOVUPS X1, (DI)(AX*4)
#define BODY1 \
	MOVSS  (SI)(AX*4), X0; \
	ADDSS  X6, X0;         \
	MOVAPS X7, X1;         \
	MAXSS  X0, X1;         \
	ADDSS  X5, X1;         \
	MOVSS  X1, (DI)(AX*4)

TEXT ·biasReluSSE(SB), NOSPLIT, $0-40
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVQ   n+16(FP), CX
	MOVSS  b+24(FP), X6
	SHUFPS $0x00, X6, X6
	XORPS  X7, X7             // lo = +0
	XORPS  X5, X5             // z = +0
	CMPQ   relu+32(FP), $0
	JNE    start
	MOVL   $0xFF800000, R10   // lo = −Inf
	MOVL   R10, X7
	SHUFPS $0x00, X7, X7
	MOVL   $0x80000000, R10   // z = −0
	MOVL   R10, X5
	SHUFPS $0x00, X5, X5

start:
	XORQ AX, AX
	STREAM(4)
	RET

#undef BODY
#undef BODY1

// HSUM adds the lanes of X0 and X1 and stores the sum at m.
#define HSUM(m) \
	ADDPS   X1, X0;        \
	MOVHLPS X0, X1;        \
	ADDPS   X1, X0;        \
	MOVAPS  X0, X1;        \
	SHUFPS  $0x55, X1, X1; \
	ADDSS   X1, X0;        \
	MOVSS   X0, m

// func sumPositiveSSE(v, y *float32, n int) float32
//
// Eight values at a time into two vectors of running sums, then one at a
// time.
#define BODY \
	MOVUPS (DX)(AX*4), X2;   \
	MASK(X2, X4);            \
	MOVUPS (SI)(AX*4), X5;   \
	ANDPS  X5, X4;           \
	ADDPS  X4, X0;           \
	MOVUPS 16(DX)(AX*4), X3; \
	MASK(X3, X6);            \
	MOVUPS 16(SI)(AX*4), X5; \
	ANDPS  X5, X6;           \
	ADDPS  X6, X1
#define BODY1 \
	MOVSS (DX)(AX*4), X2; \
	MASK1(X2, X4);        \
	MOVSS (SI)(AX*4), X5; \
	ANDPS X5, X4;         \
	ADDSS X4, X0

TEXT ·sumPositiveSSE(SB), NOSPLIT, $0-28
	MOVQ  v+0(FP), SI
	MOVQ  y+8(FP), DX
	MOVQ  n+16(FP), CX
	XORQ  AX, AX
	XORPS X0, X0
	XORPS X1, X1
	XORPS X7, X7
	STREAM(8)
	HSUM(ret+24(FP))
	RET

#undef BODY
#undef BODY1

// func sumSSE(v *float32, n int) float32
#define BODY \
	MOVUPS (SI)(AX*4), X2;   \
	ADDPS  X2, X0;           \
	MOVUPS 16(SI)(AX*4), X3; \
	ADDPS  X3, X1
#define BODY1 \
	MOVSS (SI)(AX*4), X2; \
	ADDSS X2, X0

TEXT ·sumSSE(SB), NOSPLIT, $0-20
	MOVQ  v+0(FP), SI
	MOVQ  n+8(FP), CX
	XORQ  AX, AX
	XORPS X0, X0
	XORPS X1, X1
	STREAM(8)
	HSUM(ret+16(FP))
	RET

#undef BODY
#undef BODY1

// func mulAddSSE(dst, src *float64, n int, k float64)
//
// dst[i] += k·src[i], two lanes to a register: MULPD and ADDPD round each
// lane as MULSD and ADDSD do.
#define BODY \
	MOVUPD (SI)(AX*8), X0;   \
	MOVUPD 16(SI)(AX*8), X1; \
	MULPD  X7, X0;           \
	MULPD  X7, X1;           \
	MOVUPD (DI)(AX*8), X2;   \
	MOVUPD 16(DI)(AX*8), X3; \
	ADDPD  X0, X2;           \
	ADDPD  X1, X3;           \
	MOVUPD X2, (DI)(AX*8);   \
	MOVUPD X3, 16(DI)(AX*8)
#define BODY1 \
	MOVSD (SI)(AX*8), X0; \
	MULSD X7, X0;         \
	MOVSD (DI)(AX*8), X2; \
	ADDSD X0, X2;         \
	MOVSD X2, (DI)(AX*8)

TEXT ·mulAddSSE(SB), NOSPLIT, $0-32
	MOVQ     dst+0(FP), DI
	MOVQ     src+8(FP), SI
	MOVQ     n+16(FP), CX
	MOVSD    k+24(FP), X7
	UNPCKLPD X7, X7
	XORQ     AX, AX
	STREAM(4)
	RET

#undef BODY
#undef BODY1

// func divideSSE(dst *float64, n int, w float64)
#define BODY \
	MOVUPD (DI)(AX*8), X0; \
	DIVPD  X7, X0;         \
	MOVUPD X0, (DI)(AX*8)
#define BODY1 \
	MOVSD (DI)(AX*8), X0; \
	DIVSD X7, X0;         \
	MOVSD X0, (DI)(AX*8)

TEXT ·divideSSE(SB), NOSPLIT, $0-24
	MOVQ     dst+0(FP), DI
	MOVQ     n+8(FP), CX
	MOVSD    w+16(FP), X7
	UNPCKLPD X7, X7
	XORQ     AX, AX
	STREAM(2)
	RET

#undef BODY
#undef BODY1
