package jpeg

import (
	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// zigzag maps the zig-zag index of a coefficient to its position in
// row-major order (T.81 Figure A.6).
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// initDCT prepares a sequential DCT frame: one sample plane per
// component, padded to whole MCUs, which scans fill block by block.
func (d *decoder) initDCT() error {
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	for i := range d.comps {
		c := &d.comps[i]
		if d.hmax%c.h != 0 || d.vmax%c.v != 0 {
			return codec.Unsupportedf("jpeg: fractional sampling factors %dx%d of %dx%d", c.h, c.v, d.hmax, d.vmax)
		}
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
		c.plane = make([]int16, c.bw*8*c.bh*8)
	}
	return nil
}

// decodeDCTScan decodes one sequential DCT scan (T.81 Annex F) of the
// components scan into their planes.
func (d *decoder) decodeDCTScan(scan []int) error {
	for _, ci := range scan {
		c := &d.comps[ci]
		if !d.dc[c.td].set || !d.ac[c.ta].set {
			return codec.Corruptf("jpeg: scan uses undefined Huffman tables %d/%d", c.td, c.ta)
		}
		if !d.qset[c.tq] {
			return codec.Corruptf("jpeg: component uses undefined quantization table %d", c.tq)
		}
		c.pred = 0
	}
	if len(scan) == 1 {
		return d.decodeSingle(&d.comps[scan[0]])
	}
	var blk [64]int32
	mcu := 0
	for my := 0; my < d.mcusY; my++ {
		for mx := 0; mx < d.mcusX; mx++ {
			if err := d.restartIfDue(mcu, nil); err != nil {
				return err
			}
			mcu++
			for _, ci := range scan {
				c := &d.comps[ci]
				for by := 0; by < c.v; by++ {
					for bx := 0; bx < c.h; bx++ {
						if err := d.decodeBlock(c, &blk); err != nil {
							return err
						}
						d.idct(&blk, c, (mx*c.h+bx)*8, (my*c.v+by)*8)
					}
				}
			}
		}
		if d.br.overrun() {
			return codec.Corruptf("jpeg: DCT scan truncated in MCU row %d", my)
		}
	}
	return nil
}

// decodeSingle decodes a non-interleaved scan: one block per MCU, over
// the blocks that hold the component's samples (T.81 A.2.2).
func (d *decoder) decodeSingle(c *component) error {
	cw := (d.width*c.h + d.hmax - 1) / d.hmax
	ch := (d.height*c.v + d.vmax - 1) / d.vmax
	bw, bh := (cw+7)/8, (ch+7)/8
	var blk [64]int32
	mcu := 0
	for by := 0; by < bh; by++ {
		for bx := 0; bx < bw; bx++ {
			if err := d.restartIfDue(mcu, c); err != nil {
				return err
			}
			mcu++
			if err := d.decodeBlock(c, &blk); err != nil {
				return err
			}
			d.idct(&blk, c, bx*8, by*8)
		}
		if d.br.overrun() {
			return codec.Corruptf("jpeg: DCT scan truncated in block row %d", by)
		}
	}
	return nil
}

// restartIfDue reads a restart marker before MCU number mcu when one is
// due, and resets the DC predictor of c, or of every component when c is
// nil (an interleaved scan; predictors of components outside the scan are
// reset when their own scan starts anyway).
func (d *decoder) restartIfDue(mcu int, c *component) error {
	if d.restart == 0 || mcu == 0 || mcu%d.restart != 0 {
		return nil
	}
	if err := d.br.restart(); err != nil {
		return err
	}
	if c != nil {
		c.pred = 0
		return nil
	}
	for i := range d.comps {
		d.comps[i].pred = 0
	}
	return nil
}

// decodeBlock decodes the Huffman-coded coefficients of one block and
// dequantizes them into blk, in natural order (T.81 F.2.2).
func (d *decoder) decodeBlock(c *component, blk *[64]int32) error {
	*blk = [64]int32{}
	br := &d.br
	q := &d.quant[c.tq]
	if err := d.decodeDC(c); err != nil {
		return err
	}
	blk[0] = c.pred * q[0]
	ac := &d.ac[c.ta]
	for k := 1; k < 64; {
		if br.n < 32 {
			br.refill()
		}
		rs, err := br.decode(ac)
		if err != nil {
			return err
		}
		r, s := rs>>4, rs&15
		if s == 0 {
			if r != 15 {
				break
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return codec.Corruptf("jpeg: AC coefficient index %d beyond the block", k)
		}
		blk[zigzag[k]] = br.receiveExtend(uint(s)) * q[k]
		k++
	}
	return nil
}

// decodeDC decodes one DC difference (T.81 F.2.2.1) and adds it to the
// component's predictor.
func (d *decoder) decodeDC(c *component) error {
	br := &d.br
	if br.n < 32 {
		br.refill()
	}
	s, err := br.decode(&d.dc[c.td])
	if err != nil {
		return err
	}
	if s > 15 {
		return codec.Corruptf("jpeg: DC difference category %d", s)
	}
	if s > 0 {
		c.pred += br.receiveExtend(uint(s))
	}
	return nil
}
