package jpegls

import (
	"bytes"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// Interleave modes (T.87 C.2.3).
const (
	ilvNone   = 0
	ilvLine   = 1
	ilvSample = 2
)

// useFastLine selects decodeLineLossless for lossless scans; tests turn
// it off to check the two line decoders agree.
var useFastLine = true

// scanHeader is a parsed SOS segment.
type scanHeader struct {
	comps []int // frame indices of the scan's components
	near  int
	ilv   int
}

// readScan parses an SOS segment (T.87 C.2.3) and decodes the scan that
// follows it.
func (d *decoder) readScan() error {
	if !d.sawFrame {
		return codec.Corruptf("jpegls: SOS before SOF55")
	}
	seg, err := d.segment()
	if err != nil {
		return err
	}
	h, err := d.parseScanHeader(seg)
	if err != nil {
		return err
	}
	if d.out == nil {
		if d.height == 0 {
			return codec.Unsupportedf("jpegls: image height defined by a DNL marker")
		}
		if err := d.p.Check(d.width, d.height, d.ncomp); err != nil {
			return err
		}
		d.out = d.p.SamplesToFill(d.width * d.height * d.ncomp) // every component is scanned, every row stored
		d.lineBufs = make([]int32, 2*(d.width+2)*d.ncomp)
	}
	cp, err := newCodingParams(d.precision, h.near, d.presets)
	if err != nil {
		return err
	}
	d.st.init(cp, len(h.comps))
	return d.decodeScan(h)
}

// parseScanHeader validates an SOS payload against the frame.
func (d *decoder) parseScanHeader(seg []byte) (scanHeader, error) {
	var h scanHeader
	if len(seg) < 1 {
		return h, codec.Corruptf("jpegls: empty SOS segment")
	}
	ns := int(seg[0])
	if ns < 1 || ns > d.ncomp || len(seg) != 4+2*ns {
		return h, codec.Corruptf("jpegls: SOS segment of %d bytes for %d components", len(seg), ns)
	}
	for i := 0; i < ns; i++ {
		id, tm := int(seg[1+2*i]), seg[2+2*i]
		fi := -1
		for c := 0; c < d.ncomp; c++ {
			if d.compID[c] == id {
				fi = c
			}
		}
		if fi < 0 {
			return h, codec.Corruptf("jpegls: scan component %d is not in the frame", id)
		}
		if d.done[fi] {
			return h, codec.Corruptf("jpegls: component %d coded twice", id)
		}
		for _, prev := range h.comps {
			if prev == fi {
				return h, codec.Corruptf("jpegls: component %d listed twice in a scan", id)
			}
		}
		if tm != 0 {
			return h, codec.Unsupportedf("jpegls: mapping table %d", tm)
		}
		h.comps = append(h.comps, fi)
	}
	h.near = int(seg[1+2*ns])
	h.ilv = int(seg[2+2*ns])
	if pt := seg[3+2*ns] & 0x0F; pt != 0 {
		return h, codec.Unsupportedf("jpegls: point transform %d", pt)
	}
	switch {
	case h.ilv > ilvSample:
		return h, codec.Corruptf("jpegls: interleave mode %d", h.ilv)
	case h.ilv == ilvNone && ns != 1:
		return h, codec.Corruptf("jpegls: %d components in a non-interleaved scan", ns)
	}
	if ns == 1 {
		h.ilv = ilvNone
	}
	return h, nil
}

// segmentEnd returns the offset of the marker that ends the entropy-coded
// data starting at pos: a 0xFF byte followed by a byte with its high bit
// set (T.87 A.1: a 0xFF followed by anything else is data). Without one
// the data runs to the end of the buffer.
func segmentEnd(data []byte, pos int) int {
	for {
		i := bytes.IndexByte(data[pos:], 0xFF)
		if i < 0 {
			return len(data)
		}
		pos += i
		if pos+1 < len(data) && data[pos+1] >= 0x80 {
			return pos
		}
		pos++
	}
}

// decodeScan decodes the entropy-coded data of one scan, restart interval
// by restart interval, into d.out.
func (d *decoder) decodeScan(h scanHeader) error {
	w := d.width
	var ls [maxComponents]lines
	for i := range h.comps {
		buf := d.lineBufs[2*i*(w+2) : 2*(i+1)*(w+2)]
		ls[i] = lines{prev: buf[:w+2], cur: buf[w+2:]}
		ls[i].clear()
	}
	scanLines := ls[:len(h.comps)]
	interval := d.height
	if d.restart > 0 {
		interval = d.restart
	}
	for y, rst := 0, 0; ; rst++ {
		end := segmentEnd(d.data, d.pos)
		d.br.reset(d.data[d.pos:end])
		for i := 0; i < interval && y < d.height; i, y = i+1, y+1 {
			if err := d.decodeRow(h, scanLines, y); err != nil {
				return err
			}
		}
		if err := d.br.checkTail(); err != nil {
			return err
		}
		d.pos = end
		if y == d.height {
			break
		}
		if err := d.readRestart(rst); err != nil {
			return err
		}
		d.st.resetContexts()
		for i := range scanLines {
			scanLines[i].clear()
		}
	}
	for _, c := range h.comps {
		d.done[c] = true
	}
	return nil
}

// decodeRow decodes image row y of every component of the scan and
// stores it in the output.
func (d *decoder) decodeRow(h scanHeader, ls []lines, y int) error {
	w := d.width
	for i := range ls {
		ls[i].startLine(w)
	}
	if h.ilv == ilvSample {
		if err := d.st.decodePixelLine(&d.br, ls, w); err != nil {
			return err
		}
	} else {
		for i := range ls {
			var err error
			if d.st.cp.near == 0 && useFastLine {
				err = d.st.decodeLineLossless(&d.br, &ls[i], w, i)
			} else {
				err = d.st.decodeLine(&d.br, &ls[i], w, i)
			}
			if err != nil {
				return err
			}
		}
	}
	nc := d.ncomp
	row := d.out[y*w*nc : (y+1)*w*nc]
	for i, c := range h.comps {
		src := ls[i].cur[1 : w+1]
		if nc == 1 {
			copy(row, src)
			continue
		}
		for x, v := range src {
			row[x*nc+c] = v
		}
	}
	return nil
}

// readRestart consumes the restart marker RSTm expected after interval
// number n (T.81 B.2.1), skipping fill bytes.
func (d *decoder) readRestart(n int) error {
	if d.pos >= len(d.data) || d.data[d.pos] != 0xFF {
		return codec.Corruptf("jpegls: restart marker missing at offset %d", d.pos)
	}
	for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
		d.pos++
	}
	if d.pos >= len(d.data) || d.data[d.pos] != byte(markerRST0+n%8) {
		return codec.Corruptf("jpegls: expected restart marker RST%d at offset %d", n%8, d.pos)
	}
	d.pos++
	return nil
}
