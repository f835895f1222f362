#include "textflag.h"

// AVX without AVX2 and FMA (Sandy Bridge and Ivy Bridge servers, and
// virtual CPUs that expose no more): panels of 16 columns, two ymm
// registers per row, as the AVX2 kernels.

#define K6 ·sgemmAVXx6
#define K4 ·sgemmAVXx4
#define K2 ·sgemmAVXx2
#define K1 ·sgemmAVXx1
#define V0 Y0
#define V1 Y1
#define V2 Y2
#define V3 Y3
#define V4 Y4
#define V5 Y5
#define V6 Y6
#define V7 Y7
#define V8 Y8
#define V9 Y9
#define V10 Y10
#define V11 Y11
#define V12 Y12
#define V13 Y13
#define V14 Y14
#define V15 Y15
#define PANEL 16
#define PANELB 64
#define HALF 32

// MAC2 broadcasts one element of a and adds its products with a row of
// b into a row of the tile: y0 += a·b0, y1 += a·b1.
#define MAC2(m, b0, b1, t, u, y0, y1) \
	VBROADCASTSS m, t;      \
	VMULPS       b1, t, u;  \
	VMULPS       b0, t, t;  \
	VADDPS       t, y0, y0; \
	VADDPS       u, y1, y1

#define LOAD2(m0, m1, y0, y1) \
	VMOVUPS m0, y0; \
	VMOVUPS m1, y1

#define STORE2(y0, y1, m0, m1) \
	VMOVUPS y0, m0; \
	VMOVUPS y1, m1

#define ZERO2(y0, y1) \
	VXORPS y0, y0, y0; \
	VXORPS y1, y1, y1

#define EPILOGUE VZEROUPPER; RET

#include "sgemm_mulacc_amd64.h"
