package jpeg

import (
	"encoding/binary"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// initLossless prepares a lossless frame: the output holds the samples
// interleaved, and scans write into it directly.
func (d *decoder) initLossless() error {
	for _, c := range d.comps[1:] {
		if c.h != d.comps[0].h || c.v != d.comps[0].v {
			return codec.Unsupportedf("jpeg: lossless frame with subsampled components")
		}
	}
	d.out = d.p.SamplesToFill(d.width * d.height * len(d.comps)) // every component is scanned, every line of a scan reconstructed
	return nil
}

// decodeLosslessScan decodes one lossless scan (T.81 Annex H) of the
// components scan, with predictor psv and point transform pt. The
// differences of a whole line are decoded first, then the line is
// reconstructed with a loop specialised for its predictor.
func (d *decoder) decodeLosslessScan(scan []int, psv, pt int) error {
	if psv < 1 || psv > 7 {
		return codec.Corruptf("jpeg: lossless predictor %d", psv)
	}
	if pt >= d.precision {
		return codec.Corruptf("jpeg: point transform %d for precision %d", pt, d.precision)
	}
	if len(scan) > 1 && (d.comps[0].h != 1 || d.comps[0].v != 1) {
		return codec.Unsupportedf("jpeg: interleaved lossless scan with sampling factors %dx%d", d.comps[0].h, d.comps[0].v)
	}
	d.pt = pt
	ns := len(scan)
	var tables [maxComponents]*huffman
	for k, ci := range scan {
		h := &d.dc[d.comps[ci].td]
		if !h.set {
			return codec.Corruptf("jpeg: scan uses undefined Huffman table %d", d.comps[ci].td)
		}
		tables[k] = h
	}
	w := d.width
	diffs := make([]int32, w*ns)
	var fast [maxComponents]*[1 << fastBits]uint32
	for k := range ns {
		fast[k] = tables[k].fastTable()
	}
	br := &d.br
	toRestart := d.restart // MCUs left before the next restart marker
	for y := 0; y < d.height; y++ {
		for x := 0; x < w; x++ {
			if ns == 1 && d.restart == 0 && useFastDiffs {
				// Runs of samples whose code fits the fast table.
				if x = fastDiffs(br, fast[0], diffs[:w], x); x == w {
					break
				}
			}
			if d.restart > 0 {
				if toRestart == 0 {
					if err := br.restart(); err != nil {
						return err
					}
					toRestart = d.restart
				}
				toRestart--
			}
			for k := 0; k < ns; k++ {
				if br.n < 32 {
					br.refill()
				}
				// Most codes and their difference bits fit fastBits: one
				// table read gives both.
				e := fast[k][br.acc>>(64-fastBits)]
				if e&fastFull != 0 {
					l := uint(e>>16) & 0xFF
					br.acc <<= l
					br.n -= l
					diffs[x*ns+k] = int32(int16(e))
					continue
				}
				var s int
				if e != 0 {
					l := uint(e>>16) & 0xFF
					br.acc <<= l
					br.n -= l
					s = int(e & 0xFFFF)
				} else {
					var err error
					if s, err = br.decodeSlow(tables[k]); err != nil {
						return err
					}
				}
				var v int32
				switch {
				case s == 0:
				case s < 16:
					v = br.receiveExtend(uint(s))
				case s == 16:
					v = 32768
				default:
					return codec.Corruptf("jpeg: lossless difference category %d", s)
				}
				diffs[x*ns+k] = v
			}
		}
		if br.overrun() {
			return codec.Corruptf("jpeg: lossless scan truncated at line %d", y)
		}
		kind := d.lineKind(y)
		for k, ci := range scan {
			d.reconstructLine(y, ci, diffs[k:], ns, psv, pt, kind)
		}
	}
	return nil
}

// useFastDiffs selects fastDiffs for the scans it serves; a test turns it
// off to compare.
var useFastDiffs = true

// fastDiffs decodes the differences of a single-component scan without
// restart intervals from diffs[x] on, for as long as each code and its
// difference bits are in the fast table and each refill of the
// accumulator is eight bytes without a 0xFF, and returns the first x it
// did not decode. The bit reader's state is held in locals for the run,
// so that the loop calls nothing; the sample it stops at is decoded by
// the general path, which gives the same values.
func fastDiffs(br *bitReader, fast *[1 << fastBits]uint32, diffs []int32, x int) int {
	if br.marker {
		return x
	}
	acc, n, pos, data := br.acc, br.n, br.pos, br.data
	for ; x < len(diffs); x++ {
		if n < 32 {
			if pos+8 > len(data) {
				break
			}
			v := binary.BigEndian.Uint64(data[pos:])
			if y := ^v; (y-0x0101010101010101)&^y&0x8080808080808080 != 0 {
				break
			}
			k := (64 - n) / 8
			acc |= v >> (64 - 8*k) << (64 - n - 8*k)
			pos += int(k)
			n += 8 * k
		}
		e := fast[acc>>(64-fastBits)]
		if e&fastFull == 0 {
			break
		}
		l := uint(e>>16) & 0xFF
		acc <<= l
		n -= l
		diffs[x] = int32(int16(e))
	}
	br.acc, br.n, br.pos = acc, n, pos
	return x
}

// Kinds of line, by where restart intervals begin in them.
const (
	lineNormal  = iota // no interval begins in the line
	lineFirst          // an interval begins at the line's first sample and none later
	lineGeneric        // anything else: predictors chosen sample by sample
)

// lineKind classifies line y by where restart intervals start in it.
func (d *decoder) lineKind(y int) int {
	start := y * d.width
	r := d.restart
	if r == 0 {
		if y == 0 {
			return lineFirst
		}
		return lineNormal
	}
	next := (start + r - 1) / r * r // first interval start at or after start
	switch {
	case next >= start+d.width:
		return lineNormal
	case next == start && next+r >= start+d.width:
		return lineFirst
	}
	return lineGeneric
}

// reconstructLine adds predictions to the differences of component ci on
// line y (T.81 H.1.2.1). Samples are kept modulo 2^16 and without the
// point transform until finishLossless.
func (d *decoder) reconstructLine(y, ci int, diff []int32, dstep, psv, pt, kind int) {
	nc := len(d.comps)
	w := d.width
	cur := d.out[y*w*nc+ci:]
	initial := int32(1) << uint(d.precision-pt-1)
	switch kind {
	case lineFirst:
		v := (initial + diff[0]) & 0xFFFF
		cur[0] = v
		for x := 1; x < w; x++ {
			v = (v + diff[x*dstep]) & 0xFFFF
			cur[x*nc] = v
		}
		return
	case lineGeneric:
		d.reconstructGeneric(y, ci, diff, dstep, psv, initial)
		return
	}
	prev := d.out[(y-1)*w*nc+ci:]
	cur[0] = (prev[0] + diff[0]) & 0xFFFF
	n := (w - 1) * nc
	switch psv {
	case 1:
		for i, j := nc, dstep; i <= n; i, j = i+nc, j+dstep {
			cur[i] = (cur[i-nc] + diff[j]) & 0xFFFF
		}
	case 2:
		for i, j := nc, dstep; i <= n; i, j = i+nc, j+dstep {
			cur[i] = (prev[i] + diff[j]) & 0xFFFF
		}
	case 3:
		for i, j := nc, dstep; i <= n; i, j = i+nc, j+dstep {
			cur[i] = (prev[i-nc] + diff[j]) & 0xFFFF
		}
	case 4:
		for i, j := nc, dstep; i <= n; i, j = i+nc, j+dstep {
			cur[i] = (cur[i-nc] + prev[i] - prev[i-nc] + diff[j]) & 0xFFFF
		}
	case 5:
		for i, j := nc, dstep; i <= n; i, j = i+nc, j+dstep {
			cur[i] = (cur[i-nc] + (prev[i]-prev[i-nc])>>1 + diff[j]) & 0xFFFF
		}
	case 6:
		for i, j := nc, dstep; i <= n; i, j = i+nc, j+dstep {
			cur[i] = (prev[i] + (cur[i-nc]-prev[i-nc])>>1 + diff[j]) & 0xFFFF
		}
	case 7:
		for i, j := nc, dstep; i <= n; i, j = i+nc, j+dstep {
			cur[i] = ((cur[i-nc]+prev[i])>>1 + diff[j]) & 0xFFFF
		}
	}
}

// reconstructGeneric reconstructs a line in which restart intervals start
// at other places than its first sample: the first sample of an interval
// is predicted by the initial value, the rest of the interval's first
// line by the sample to the left, and later lines as usual.
func (d *decoder) reconstructGeneric(y, ci int, diff []int32, dstep, psv int, initial int32) {
	nc := len(d.comps)
	w := d.width
	cur := d.out[y*w*nc+ci:]
	var prev []int32
	if y > 0 {
		prev = d.out[(y-1)*w*nc+ci:]
	}
	r := d.restart
	for x := 0; x < w; x++ {
		idx := y*w + x
		start := idx - idx%r
		i := x * nc
		var pred int32
		switch {
		case idx == start:
			pred = initial
		case start > y*w-1 || prev == nil:
			pred = cur[i-nc]
		case x == 0:
			pred = prev[i]
		default:
			pred = predict(psv, cur[i-nc], prev[i], prev[i-nc])
		}
		cur[i] = (pred + diff[x*dstep]) & 0xFFFF
	}
}

// predict computes predictor psv from the samples to the left (a), above
// (b) and above left (c) (T.81 Table H.1).
func predict(psv int, a, b, c int32) int32 {
	switch psv {
	case 1:
		return a
	case 2:
		return b
	case 3:
		return c
	case 4:
		return a + b - c
	case 5:
		return a + (b-c)>>1
	case 6:
		return b + (a-c)>>1
	}
	return (a + b) >> 1
}

// finishLossless brings the samples to the frame's precision and undoes
// the point transform.
func (d *decoder) finishLossless() {
	// Pt is the same for all scans of a frame in practice; the last scan's
	// value is applied.
	if d.pt == 0 && d.precision == 16 {
		return
	}
	mask := int32(1)<<uint(d.precision-d.pt) - 1
	for i, v := range d.out {
		d.out[i] = (v & mask) << uint(d.pt)
	}
}
