package jpeg

import (
	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// Progressive DCT (T.81 Annex G, Huffman coding): DICOM's retired
// transfer syntaxes 1.2.840.10008.1.2.4.53 (spectral selection, processes
// 6 and 8) and .55 (full progression, processes 10 and 12). Scans add
// bands of coefficients, or bits of them, to every block; the blocks are
// dequantised and transformed once the last scan is read, with the same
// IDCT as the sequential processes. The decoding follows libjpeg's
// (jdphuff.c), whose results dcmtk returns.

// maxScans bounds the scans of a progressive frame: an encoder needs a
// handful per component (libjpeg's default script has 10 for colour), and
// each scan costs a pass over the component's blocks.
const maxScans = 256

// initProgressive gives each component room for the coefficients of its
// blocks, in zig-zag order, 64 to a block.
func (d *decoder) initProgressive() {
	for i := range d.comps {
		c := &d.comps[i]
		c.coef = make([]int16, c.bw*c.bh*64)
	}
}

// decodeProgressiveScan decodes one scan of a progressive frame: DC or a
// band Ss..Se of AC coefficients, first (Ah = 0) or refining (bit Al).
func (d *decoder) decodeProgressiveScan(scan []int, ss, se, ah, al int) error {
	if d.scans++; d.scans > maxScans {
		return codec.Corruptf("jpeg: more than %d progressive scans", maxScans)
	}
	switch {
	case ss == 0 && se != 0:
		return codec.Corruptf("jpeg: progressive DC scan with Se %d", se)
	case ss > 0 && (len(scan) != 1 || se < ss || se > 63):
		return codec.Corruptf("jpeg: progressive AC scan %d..%d over %d components", ss, se, len(scan))
	case ah != 0 && al != ah-1, al > 13:
		return codec.Corruptf("jpeg: successive approximation Ah %d, Al %d", ah, al)
	}
	for _, ci := range scan {
		c := &d.comps[ci]
		switch {
		case ss == 0 && ah == 0 && !d.dc[c.td].set:
			return codec.Corruptf("jpeg: scan uses undefined DC Huffman table %d", c.td)
		case ss > 0 && !d.ac[c.ta].set:
			return codec.Corruptf("jpeg: scan uses undefined AC Huffman table %d", c.ta)
		}
		if !c.latched {
			// Like libjpeg, a component keeps the quantization table it
			// had in its first scan.
			if !d.qset[c.tq] {
				return codec.Corruptf("jpeg: component uses undefined quantization table %d", c.tq)
			}
			c.qt, c.latched = d.quant[c.tq], true
		}
		c.pred = 0
	}
	d.eobrun = 0
	decodeBlock := func(c *component, blk []int16) error {
		switch {
		case ss == 0 && ah == 0:
			return d.dcFirst(c, blk, al)
		case ss == 0:
			if d.br.bits(1) != 0 {
				blk[0] |= 1 << al
			}
			return nil
		case ah == 0:
			return d.acFirst(c, blk, ss, se, al)
		}
		return d.acRefine(c, blk, ss, se, al)
	}
	restart := func(mcu int, c *component) error {
		if d.restart > 0 && mcu > 0 && mcu%d.restart == 0 {
			d.eobrun = 0
		}
		return d.restartIfDue(mcu, c)
	}
	if len(scan) > 1 {
		// Interleaved, so DC only: MCU by MCU, as sequential scans.
		mcu := 0
		for my := 0; my < d.mcusY; my++ {
			for mx := 0; mx < d.mcusX; mx++ {
				if err := restart(mcu, nil); err != nil {
					return err
				}
				mcu++
				for _, ci := range scan {
					c := &d.comps[ci]
					for by := 0; by < c.v; by++ {
						for bx := 0; bx < c.h; bx++ {
							if err := decodeBlock(c, c.block(mx*c.h+bx, my*c.v+by)); err != nil {
								return err
							}
						}
					}
				}
			}
			if d.br.overrun() {
				return codec.Corruptf("jpeg: progressive scan truncated in MCU row %d", my)
			}
		}
		return nil
	}
	// One component: its blocks that hold samples (T.81 A.2.2).
	c := &d.comps[scan[0]]
	cw := (d.width*c.h + d.hmax - 1) / d.hmax
	ch := (d.height*c.v + d.vmax - 1) / d.vmax
	bw, bh := (cw+7)/8, (ch+7)/8
	mcu := 0
	for by := 0; by < bh; by++ {
		for bx := 0; bx < bw; bx++ {
			if err := restart(mcu, c); err != nil {
				return err
			}
			mcu++
			if err := decodeBlock(c, c.block(bx, by)); err != nil {
				return err
			}
		}
		if d.br.overrun() {
			return codec.Corruptf("jpeg: progressive scan truncated in block row %d", by)
		}
	}
	return nil
}

// block returns the coefficients of block (bx, by) of the component.
func (c *component) block(bx, by int) []int16 {
	i := (by*c.bw + bx) * 64
	return c.coef[i : i+64 : i+64]
}

// dcFirst decodes the first scan of a DC coefficient (G.1.2.1).
func (d *decoder) dcFirst(c *component, blk []int16, al int) error {
	if err := d.decodeDC(c); err != nil {
		return err
	}
	blk[0] = int16(c.pred << al)
	return nil
}

// acFirst decodes the first scan of the AC band ss..se of a block
// (G.1.2.2), with end-of-band runs.
func (d *decoder) acFirst(c *component, blk []int16, ss, se, al int) error {
	if d.eobrun > 0 {
		d.eobrun--
		return nil
	}
	br := &d.br
	ac := &d.ac[c.ta]
	for k := ss; k <= se; k++ {
		if br.n < 32 {
			br.refill()
		}
		rs, err := br.decode(ac)
		if err != nil {
			return err
		}
		r, s := rs>>4, rs&15
		if s == 0 {
			if r < 15 {
				d.eobrun = 1<<r - 1
				if r > 0 {
					d.eobrun += int(br.bits(uint(r)))
				}
				break
			}
			k += 15
			continue
		}
		if k += r; k > 63 {
			return codec.Corruptf("jpeg: AC coefficient index %d beyond the block", k)
		}
		blk[k] = int16(br.receiveExtend(uint(s)) << al)
	}
	return nil
}

// acRefine decodes a refinement scan of the AC band ss..se of a block
// (G.1.2.3): one more bit of each coefficient already non-zero, and the
// coefficients that become non-zero at this bit.
func (d *decoder) acRefine(c *component, blk []int16, ss, se, al int) error {
	br := &d.br
	p1, m1 := int16(1)<<al, int16(-1)<<al
	refine := func(k int) {
		if v := blk[k]; v != 0 && br.bits(1) != 0 && v&p1 == 0 {
			if v >= 0 {
				blk[k] += p1
			} else {
				blk[k] += m1
			}
		}
	}
	k := ss
	if d.eobrun == 0 {
		ac := &d.ac[c.ta]
		for ; k <= se; k++ {
			if br.n < 32 {
				br.refill()
			}
			rs, err := br.decode(ac)
			if err != nil {
				return err
			}
			r, s := rs>>4, rs&15
			var val int16
			if s != 0 {
				if s != 1 {
					return codec.Corruptf("jpeg: refinement scan with a coefficient of category %d", s)
				}
				val = m1
				if br.bits(1) != 0 {
					val = p1
				}
			} else if r != 15 {
				d.eobrun = 1 << r
				if r > 0 {
					d.eobrun += int(br.bits(uint(r)))
				}
				break
			}
			// Skip r zero coefficients, refining the non-zero ones on
			// the way, to the one that becomes non-zero.
			for ; k <= se; k++ {
				if blk[k] != 0 {
					refine(k)
				} else {
					if r == 0 {
						break
					}
					r--
				}
			}
			if s != 0 {
				if k > 63 {
					return codec.Corruptf("jpeg: AC coefficient index %d beyond the block", k)
				}
				blk[k] = val
			}
		}
	}
	if d.eobrun > 0 {
		for ; k <= se; k++ {
			refine(k)
		}
		d.eobrun--
	}
	return nil
}

// finishProgressive dequantises and transforms every block of every
// component into its sample plane, once the last scan is read.
func (d *decoder) finishProgressive() {
	var blk [64]int32
	for i := range d.comps {
		c := &d.comps[i]
		for by := 0; by < c.bh; by++ {
			for bx := 0; bx < c.bw; bx++ {
				coef := c.block(bx, by)
				for k, v := range coef {
					blk[zigzag[k]] = int32(v) * c.qt[k]
				}
				d.idct(&blk, c, bx*8, by*8)
			}
		}
	}
}

// bits reads n bits (1 ≤ n ≤ 16) as an unsigned value.
func (br *bitReader) bits(n uint) int32 {
	if br.n < n {
		br.refill()
	}
	v := int32(br.acc >> (64 - n))
	br.acc <<= n
	br.n -= n
	return v
}
