#include "textflag.h"

// SSE: panels of 8 columns, two xmm registers per row, for amd64 CPUs
// without AVX (every amd64 CPU has SSE). SSE multiplies in place, so a
// product is a copy of the broadcast multiplied, then added.

#define K6 ·sgemmSSEx6
#define K4 ·sgemmSSEx4
#define K2 ·sgemmSSEx2
#define K1 ·sgemmSSEx1
#define V0 X0
#define V1 X1
#define V2 X2
#define V3 X3
#define V4 X4
#define V5 X5
#define V6 X6
#define V7 X7
#define V8 X8
#define V9 X9
#define V10 X10
#define V11 X11
#define V12 X12
#define V13 X13
#define V14 X14
#define V15 X15
#define PANEL 8
#define PANELB 32
#define HALF 16

// MAC2 broadcasts one element of a and adds its products with a row of
// b into a row of the tile: x0 += a·b0, x1 += a·b1.
#define MAC2(m, b0, b1, t, u, x0, x1) \
	MOVSS  m, t;        \
	SHUFPS $0x00, t, t; \
	MOVAPS t, u;        \
	MULPS  b0, t;       \
	MULPS  b1, u;       \
	ADDPS  t, x0;       \
	ADDPS  u, x1

#define LOAD2(m0, m1, x0, x1) \
	MOVUPS m0, x0; \
	MOVUPS m1, x1

#define STORE2(x0, x1, m0, m1) \
	MOVUPS x0, m0; \
	MOVUPS x1, m1

#define ZERO2(x0, x1) \
	XORPS x0, x0; \
	XORPS x1, x1

#define EPILOGUE RET

#include "sgemm_mulacc_amd64.h"
