#include "textflag.h"

// func regularRunAsm(t *runArgs)
//
// regularRun's loop (fastline.go) by hand, for any amd64 CPU: shifts by
// CL and leading zeros from BSR (LZCNT and BMI2's shifts measured no
// faster). runArgs (regular_amd64.go) holds its inputs and, on return,
// the column reached, Ra and the bit reader's state; its last word
// (offset 120) holds a code word's length while CX serves the shifts.
// Registers:
//   BX  t          SI  prev       DI  cur
//   R8  x          R9  Ra         R12 acc    R10 n    R11 pos
//   R13 the context, AX CX DX R14 R15 scratch.
// Rb and Rc are read again from the line above for each sample: they do
// not depend on the previous sample's decode.
TEXT ·regularRunAsm(SB), NOSPLIT, $0-8
	MOVQ t+0(FP), BX
	MOVQ 0(BX), SI
	MOVQ 8(BX), DI
	MOVQ 40(BX), R8
	MOVQ 56(BX), R9
	MOVQ 64(BX), R12
	MOVQ 72(BX), R10
	MOVQ 80(BX), R11

loop:
	CMPQ R8, 48(BX)
	JGT  done

	// q = 81·Q(Rd−Rb) + 9·Q(Rb−Rc) + Q(Rc−Ra)
	MOVLQSX 4(SI)(R8*4), AX
	MOVLQSX (SI)(R8*4), CX
	MOVLQSX -4(SI)(R8*4), DX
	MOVQ    16(BX), R13
	SUBQ    CX, AX
	MOVBQSX (R13)(AX*1), AX
	MOVQ    CX, R14
	SUBQ    DX, R14
	MOVBQSX (R13)(R14*1), R14
	SUBQ    R9, DX
	MOVBQSX (R13)(DX*1), DX
	LEAQ    (AX)(AX*8), AX
	ADDQ    R14, AX
	LEAQ    (AX)(AX*8), AX
	ADDQ    DX, AX
	JEQ     done               // run mode

	// sign (DX) and the context |q| (R13)
	MOVQ AX, DX
	SARQ $63, DX
	XORQ DX, AX
	SUBQ DX, AX
	LEAQ (AX)(AX*2), AX
	MOVQ 24(BX), R13
	LEAQ (R13)(AX*8), R13

	// fill: acc |= BE64(buf[pos:]) >> n; pos = min(pos + (63−n)/8, maxPos); n |= 56
	MOVQ    32(BX), R14
	MOVQ    (R14)(R11*1), R14
	BSWAPQ  R14
	MOVQ    R10, CX
	SHRQ    CX, R14
	ORQ     R14, R12
	MOVQ    $63, R14
	SUBQ    R10, R14
	SHRQ    $3, R14
	ADDQ    R14, R11
	CMPQ    R11, 88(BX)
	CMOVQGT 88(BX), R11
	ORQ     $56, R10

	// the code word: lz (AX) zeros, a 1, k (R14) bits; CX = its length
	MOVLQSX 16(R13), R14
	BSRQ    R12, AX
	JEQ     done               // acc = 0
	XORQ    $63, AX            // lz = 63 − bsr(acc)
	CMPQ    AX, 104(BX)
	JCC     done               // lz ≥ escape
	LEAQ    1(AX)(R14*1), CX
	CMPQ    CX, R10
	JHI     done               // not all in acc
	MOVQ    CX, 120(BX)        // the code word's length, for later

	// m = (lz−1)<<k + (acc<<lz)>>(63−k)
	MOVQ  R12, R15
	MOVQ  AX, CX
	SHLQ  CX, R15
	DECQ  AX
	MOVQ  R14, CX
	SHLQ  CX, AX
	NOTQ  CX
	SHRQ  CX, R15
	ADDQ  R15, AX
	MOVQ  96(BX), R15
	ADDQ  R15, R15
	CMPQ  AX, R15
	JGT   done                 // m > 2·MAXVAL: the general decoder takes it
	MOVQ  120(BX), CX
	SHLQ  CX, R12
	SUBQ  CX, R10

	// px − sign (CX), from Ra, Rb, Rc and C, off the chain through m:
	// px = clamp(median(Ra, Rb, Ra+Rb−Rc) + (C^sign) − sign, 0, MAXVAL)
	MOVLQSX (SI)(R8*4), R14
	MOVLQSX -4(SI)(R8*4), R15
	LEAQ    (R9)(R14*1), CX
	SUBQ    R15, CX
	MOVQ    R9, R15
	CMPQ    R14, R15
	CMOVQLT R14, R15           // min(Ra, Rb)
	CMPQ    R9, R14
	CMOVQGT R9, R14            // max(Ra, Rb)
	CMPQ    R14, CX
	CMOVQLT R14, CX
	CMPQ    R15, CX
	CMOVQGT R15, CX
	MOVLQSX 8(R13), R14
	XORQ    DX, R14
	SUBQ    DX, R14
	ADDQ    R14, CX
	XORL    R14, R14
	TESTQ   CX, CX
	CMOVQLT R14, CX
	CMPQ    CX, 96(BX)
	CMOVQGT 96(BX), CX
	SUBQ    DX, CX

	// e^sign (R15) = m>>1 ^ (−(m&1) ^ flip ^ sign); e (AX) for the update
	MOVQ    AX, R14
	ANDQ    $1, R14
	NEGQ    R14
	MOVLQSX 20(R13), R15
	XORQ    DX, R15
	XORQ    R15, R14
	MOVQ    AX, R15
	SHRQ    $1, R15
	XORQ    R14, R15
	MOVQ    R15, AX
	XORQ    DX, AX

	// Rx = px + e·sign reduced modulo RANGE: with m ≤ 2·MAXVAL it lies
	// in −RANGE … MAXVAL+RANGE, so one correction brings it into range.
	ADDQ    CX, R15
	MOVQ    96(BX), R14
	LEAQ    1(R15)(R14*1), R14 // Rx + RANGE
	MOVQ    96(BX), CX
	NOTQ    CX
	ADDQ    R15, CX            // Rx − RANGE
	CMPQ    R15, 96(BX)
	CMOVQGT CX, R15
	TESTQ   R15, R15
	CMOVQLT R14, R15
	MOVL    R15, (DI)(R8*4)
	MOVQ    R15, R9

	// A += |e|, B += e, N, halved at RESET, then N++ (32-bit, as regularCtx)
	MOVL AX, CX
	SARL $31, CX
	MOVL AX, R15
	XORL CX, R15
	SUBL CX, R15
	ADDL 0(R13), R15           // A
	MOVL 4(R13), CX
	ADDL AX, CX                // B
	MOVL 12(R13), DX           // N
	CMPL DX, 112(BX)
	JNE  counted
	SARL $1, R15
	SARL $1, CX
	SARL $1, DX

counted:
	INCL DX
	MOVL R15, 0(R13)

	// bias: neg (AX) = −1 if B ≤ −N, pos (R14) = −1 if B > 0
	LEAL -1(CX)(DX*1), AX
	SARL $31, AX
	MOVL CX, R14
	NEGL R14
	SARL $31, R14
	MOVL DX, R15
	ANDL AX, R15
	ADDL R15, CX
	MOVL DX, R15
	ANDL R14, R15
	SUBL R15, CX
	MOVL $1, R15
	SUBL DX, R15
	CMPL CX, R15
	CMOVLLT R15, CX            // B ≥ 1−N
	XORL R15, R15
	CMPL CX, R15
	CMOVLGT R15, CX            // B ≤ 0
	MOVL CX, 4(R13)
	MOVL DX, 12(R13)
	MOVL 8(R13), R15
	ADDL AX, R15
	SUBL R14, R15
	MOVL $-128, AX
	CMPL R15, AX
	CMOVLLT AX, R15
	MOVL $127, AX
	CMPL R15, AX
	CMOVLGT AX, R15
	MOVL R15, 8(R13)

	// k = golombK(N, A): lz(N) − lz(A), at least 0, plus 1 if N<<k < A
	MOVL    0(R13), R15
	MOVL    R15, R14
	ORL     $1, R14
	BSRL    R14, AX            // bsr(A|1): A = 0 gives k = 0 as lz(0) = 32 did
	BSRL    DX, R14
	SUBL    R14, AX
	XORL    R14, R14
	CMPL    AX, R14
	CMOVLLT R14, AX
	MOVL    DX, R14
	MOVL    AX, CX
	SHLL    CX, R14
	CMPL    R14, R15
	ADCL    $0, AX
	MOVL    AX, 16(R13)
	MOVL    4(R13), CX         // B again: CX held the shift

	// flip = −1 if k = 0 and 2B + N ≤ 0
	LEAL -1(AX), R14
	SARL $31, R14
	LEAL -1(DX)(CX*2), R15
	SARL $31, R15
	ANDL R15, R14
	MOVL R14, 20(R13)

	INCQ R8
	JMP  loop

done:
	MOVQ R8, 40(BX)
	MOVQ R9, 56(BX)
	MOVQ R12, 64(BX)
	MOVQ R10, 72(BX)
	MOVQ R11, 80(BX)
	RET
