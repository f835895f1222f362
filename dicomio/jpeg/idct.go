package jpeg

// The inverse DCT is the Loeffler–Ligtenberg–Moschytz factorisation in
// 13-bit fixed point that libjpeg calls "islow" (its default, and what
// dcmtk and GDCM use), so that decodes agree with theirs to the last level
// in nearly every sample. The intermediate precision follows libjpeg: two
// extra bits after the column pass for 8-bit samples, one for 12-bit.

const (
	constBits = 13

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// idct1D computes one 8-point inverse DCT of in0 … in7, scaling the
// result down by shift bits with rounding.
func idct1D(in0, in1, in2, in3, in4, in5, in6, in7 int, shift uint) (o0, o1, o2, o3, o4, o5, o6, o7 int) {
	// Even part.
	z1 := (in2 + in6) * fix0_541196100
	tmp2 := z1 - in6*fix1_847759065
	tmp3 := z1 + in2*fix0_765366865
	tmp0 := (in0 + in4) << constBits
	tmp1 := (in0 - in4) << constBits
	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

	// Odd part.
	t0, t1, t2, t3 := in7, in5, in3, in1
	z1 = t0 + t3
	z2 := t1 + t2
	z3 := t0 + t2
	z4 := t1 + t3
	z5 := (z3 + z4) * fix1_175875602
	t0 *= fix0_298631336
	t1 *= fix2_053119869
	t2 *= fix3_072711026
	t3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 = z3*-fix1_961570560 + z5
	z4 = z4*-fix0_390180644 + z5
	t0 += z1 + z3
	t1 += z2 + z4
	t2 += z2 + z3
	t3 += z1 + z4

	round := 1 << (shift - 1)
	o0 = (tmp10 + t3 + round) >> shift
	o7 = (tmp10 - t3 + round) >> shift
	o1 = (tmp11 + t2 + round) >> shift
	o6 = (tmp11 - t2 + round) >> shift
	o2 = (tmp12 + t1 + round) >> shift
	o5 = (tmp12 - t1 + round) >> shift
	o3 = (tmp13 + t0 + round) >> shift
	o4 = (tmp13 - t0 + round) >> shift
	return
}

// idct transforms the dequantized block blk and stores it, level-shifted
// and clamped to the sample range, in c's plane at (x0, y0).
func (d *decoder) idct(blk *[64]int32, c *component, x0, y0 int) {
	pass1 := uint(2)
	if d.precision > 8 {
		pass1 = 1
	}
	var ws [64]int
	for col := 0; col < 8; col++ {
		if blk[8+col] == 0 && blk[16+col] == 0 && blk[24+col] == 0 && blk[32+col] == 0 &&
			blk[40+col] == 0 && blk[48+col] == 0 && blk[56+col] == 0 {
			v := int(blk[col]) << pass1
			for r := 0; r < 8; r++ {
				ws[r*8+col] = v
			}
			continue
		}
		ws[col], ws[8+col], ws[16+col], ws[24+col], ws[32+col], ws[40+col], ws[48+col], ws[56+col] = idct1D(
			int(blk[col]), int(blk[8+col]), int(blk[16+col]), int(blk[24+col]),
			int(blk[32+col]), int(blk[40+col]), int(blk[48+col]), int(blk[56+col]), constBits-pass1)
	}
	center := 1 << uint(d.precision-1)
	maxv := 1<<uint(d.precision) - 1
	stride := c.bw * 8
	base := y0*stride + x0
	if base < 0 || base+7*stride+8 > len(c.plane) {
		return
	}
	shift := constBits + pass1 + 3
	for r := 0; r < 8; r++ {
		w := ws[r*8 : r*8+8 : r*8+8]
		dst := c.plane[base+r*stride : base+r*stride+8 : base+r*stride+8]
		var o [8]int
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := (w[0] + 1<<(pass1+2)) >> (pass1 + 3)
			o = [8]int{v, v, v, v, v, v, v, v}
		} else {
			o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7] = idct1D(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], shift)
		}
		for i, v := range o {
			v += center
			if v < 0 {
				v = 0
			} else if v > maxv {
				v = maxv
			}
			dst[i] = int16(v)
		}
	}
}
