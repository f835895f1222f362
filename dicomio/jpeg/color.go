package jpeg

// finishDCT upsamples the component planes to full size, interleaves them
// and, for YCbCr frames, converts them to RGB. It reports whether it
// converted.
func (d *decoder) finishDCT() ([]int32, bool) {
	n := len(d.comps)
	out := d.p.SampleSlice(d.width * d.height * n)
	var row []int32
	for ci := range d.comps {
		c := &d.comps[ci]
		fx, fy := d.hmax/c.h, d.vmax/c.v
		if fx == 1 && fy == 1 {
			stride := c.bw * 8
			for y := 0; y < d.height; y++ {
				src := c.plane[y*stride : y*stride+d.width]
				o := out[y*d.width*n+ci:]
				for x, v := range src {
					o[x*n] = int32(v)
				}
			}
			continue
		}
		if row == nil {
			row = make([]int32, d.mcusX*d.hmax*8)
		}
		for y := 0; y < d.height; y++ {
			d.upsampleRow(c, fx, fy, y, row)
			o := out[y*d.width*n+ci:]
			for x, v := range row[:d.width] {
				o[x*n] = v
			}
		}
	}
	if !d.isYCbCr() {
		return out, false
	}
	ycbcrToRGB(out, d.precision)
	return out, true
}

// isYCbCr tells whether a three-component DCT frame is to be converted
// from YCbCr to RGB: it says it holds YCbCr (a JFIF marker, or an Adobe
// marker with transform 1) and the DICOM header does not say YBR_FULL or
// YBR_FULL_422. Those two keep their samples YCbCr whatever the markers,
// as pydicom 2.3's pixel_array does, so that the same photometric
// interpretation always gives the same colour space. Without a marker the
// codestream is ambiguous (libjpeg guesses YCbCr from component ids 1, 2,
// 3, yet DICOM encoders write such streams for RGB data, e.g. GDCM's
// SC_rgb_jpeg_lossy_gdcm.dcm): it is returned as stored and the DICOM
// photometric interpretation decides, as it does in dcmtk and GDCM.
func (d *decoder) isYCbCr() bool {
	if len(d.comps) != 3 {
		return false
	}
	if ph := d.p.Photometric; ph == "YBR_FULL" || ph == "YBR_FULL_422" {
		return false
	}
	if d.adobe {
		return d.adobeTransform == 1
	}
	return d.jfif
}

// upsampleRow writes row y of component c, upsampled by fx × fy, into
// row. Like libjpeg, 2×1 and 2×2 use the triangle ("fancy") filter and
// other integral factors replicate samples; the edges replicate the last
// real sample row and column of the component.
func (d *decoder) upsampleRow(c *component, fx, fy, y int, row []int32) {
	stride := c.bw * 8
	cw := (d.width*c.h + d.hmax - 1) / d.hmax
	chgt := (d.height*c.v + d.vmax - 1) / d.vmax
	sy := y / fy
	in := c.plane[sy*stride : sy*stride+cw]
	if fx != 2 || fy > 2 || cw < 2 {
		for x := range row[:d.width] {
			row[x] = int32(in[x/fx])
		}
		return
	}
	if fy == 1 {
		row[0] = int32(in[0])
		row[1] = (int32(in[0])*3 + int32(in[1]) + 2) >> 2
		for i := 1; i < cw-1; i++ {
			v := int32(in[i]) * 3
			row[2*i] = (v + int32(in[i-1]) + 1) >> 2
			row[2*i+1] = (v + int32(in[i+1]) + 2) >> 2
		}
		last := cw - 1
		row[2*last] = (int32(in[last])*3 + int32(in[last-1]) + 1) >> 2
		row[2*last+1] = int32(in[last])
		return
	}
	// 2×2: the nearer source row weighs 3, the other 1; then the same
	// along the row.
	ny := sy - 1
	if y%2 == 1 {
		ny = sy + 1
	}
	ny = min(max(ny, 0), chgt-1)
	near := in
	far := c.plane[ny*stride : ny*stride+cw]
	sum := func(i int) int32 { return int32(near[i])*3 + int32(far[i]) }
	this, next := sum(0), sum(1)
	row[0] = (this*4 + 8) >> 4
	row[1] = (this*3 + next + 7) >> 4
	last := this
	this = next
	for i := 1; i < cw-1; i++ {
		next = sum(i + 1)
		row[2*i] = (this*3 + last + 8) >> 4
		row[2*i+1] = (this*3 + next + 7) >> 4
		last, this = this, next
	}
	i := cw - 1
	row[2*i] = (this*3 + last + 8) >> 4
	row[2*i+1] = (this*4 + 7) >> 4
}

// ycbcrToRGB converts interleaved YCbCr samples to RGB in place with
// libjpeg's 16-bit fixed-point arithmetic (T.871 / JFIF equations).
func ycbcrToRGB(s []int32, precision int) {
	const (
		half   = 1 << 15
		crR    = 91881  // 1.40200 × 2^16
		cbB    = 116130 // 1.77200 × 2^16
		crG    = 46802  // 0.71414 × 2^16
		cbG    = 22554  // 0.34414 × 2^16
		scaleB = 16
	)
	center := int32(1) << uint(precision-1)
	maxv := int32(1)<<uint(precision) - 1
	clamp := func(v int32) int32 {
		if v < 0 {
			return 0
		}
		if v > maxv {
			return maxv
		}
		return v
	}
	for i := 0; i+2 < len(s); i += 3 {
		y, cb, cr := s[i], s[i+1]-center, s[i+2]-center
		s[i] = clamp(y + (crR*cr+half)>>scaleB)
		s[i+1] = clamp(y + (-cbG*cb-crG*cr+half)>>scaleB)
		s[i+2] = clamp(y + (cbB*cb+half)>>scaleB)
	}
}
