// Package jpeg decodes the JPEG processes DICOM uses for pixel data, as
// ITU-T T.81 (ISO/IEC 10918-1) defines them:
//
//   - lossless, process 14 (SOF3), Huffman coded, every predictor 1–7 and
//     point transform, precision 2–16 bits, 1 to 4 components in
//     interleaved or separate scans (transfer syntaxes
//     1.2.840.10008.1.2.4.57 and .70, Selection Value 1);
//   - sequential DCT, baseline 8-bit (SOF0, .50) and extended 8 or 12-bit
//     Huffman (SOF1, .51), any sampling factors, with an integer IDCT of
//     the accuracy of libjpeg's "islow".
//
// The progressive processes (spectral selection and full progression,
// 8 and 12 bits: DICOM's retired transfer syntaxes .53 and .55) are
// decoded too (progressive.go). Hierarchical and arithmetic-coded
// processes are well formed but not decoded: they return
// codec.ErrUnsupported naming the process.
//
// The package owns only the codestream of one frame: it knows nothing of
// DICOM headers or fragments (dicomio assembles frames) and applies no LUT.
// Three-component DCT frames that declare YCbCr (JFIF, or Adobe
// transform 1) are converted to RGB with libjpeg's arithmetic and reported
// with Frame.ColorTransformed, unless codec.Params.Photometric is YBR_FULL
// or YBR_FULL_422, which keep YCbCr as pydicom 2.3 does; all other frames,
// lossless ones included, are returned as stored, for the DICOM
// photometric interpretation to decide. Decode never panics
// and allocates no more than the frame the codec.Params allow, plus small
// tables.
package jpeg

import (
	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// Markers (T.81 Table B.1).
const (
	mSOF0 = 0xC0 // baseline DCT
	mSOF1 = 0xC1 // extended sequential DCT, Huffman
	mSOF2 = 0xC2 // progressive DCT, Huffman
	mSOF3 = 0xC3 // lossless, Huffman
	mDHT  = 0xC4
	mDAC  = 0xCC
	mRST0 = 0xD0
	mRST7 = 0xD7
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mDQT  = 0xDB
	mDNL  = 0xDC
	mDRI  = 0xDD
	mAPP0 = 0xE0
	mAPPE = 0xEE
	mTEM  = 0x01
)

// maxComponents bounds the components of a frame. DICOM uses 1 or 3; the
// codec.Params check refuses anything else anyway.
const maxComponents = 4

// component is one frame component (T.81 B.2.2) and what a scan says
// about it.
type component struct {
	id   byte
	h, v int // sampling factors
	tq   int // quantization table
	td   int // DC (or lossless) Huffman table of the current scan
	ta   int // AC Huffman table of the current scan

	// Sequential DCT only: the component's sample plane, padded to whole
	// MCUs, and its size in blocks.
	bw, bh int
	plane  []int16
	pred   int32 // DC predictor

	// Progressive DCT only: the coefficients of every block, in zig-zag
	// order, and the quantization table latched at the component's first
	// scan.
	coef    []int16
	qt      [64]int32
	latched bool
}

// decoder holds the state of one Decode call.
type decoder struct {
	data []byte
	pos  int
	p    codec.Params

	sof       int // 0, 1 or 3 once a frame header was read; -1 before
	precision int
	width     int
	height    int
	comps     []component
	hmax      int
	vmax      int
	mcusX     int
	mcusY     int

	dc, ac  [4]huffman
	quant   [4][64]int32
	qset    [4]bool
	restart int

	jfif           bool
	adobe          bool
	adobeTransform int

	out []int32
	pt  int // point transform of the last lossless scan
	// scans counts the scans of a progressive frame; eobrun is the
	// end-of-band run left of its current scan.
	scans, eobrun int
	// scanned marks the components some scan has coded.
	scanned [maxComponents]bool
	br      bitReader
}

// Decode decodes one JPEG frame (from SOI to EOI) that the DICOM header
// describes with p. The codestream's size and component count must match
// p; its precision must not exceed p.BitsAllocated. Samples of signed
// frames (p.Signed) are sign-extended from the precision or
// p.BitsStored, whichever is smaller.
func Decode(data []byte, p codec.Params) (codec.Frame, error) {
	d := &decoder{data: data, p: p, sof: -1}
	if err := d.decode(); err != nil {
		return codec.Frame{}, err
	}
	f := codec.Frame{
		Width:      d.width,
		Height:     d.height,
		Components: len(d.comps),
		Precision:  d.precision,
	}
	if d.sof == 3 {
		d.finishLossless()
		f.Samples = d.out
	} else {
		f.Samples, f.ColorTransformed = d.finishDCT()
	}
	d.signExtend(f.Samples)
	return f, nil
}

// decode walks the markers from SOI to EOI, decoding each scan as it
// comes.
func (d *decoder) decode() error {
	if len(d.data) < 4 || d.data[0] != 0xFF || d.data[1] != mSOI {
		return codec.Corruptf("jpeg: missing SOI marker")
	}
	d.pos = 2
	for {
		m, err := d.nextMarker()
		if err != nil {
			return err
		}
		switch {
		case m == mEOI:
			for i := range d.comps {
				if !d.scanned[i] {
					return codec.Corruptf("jpeg: EOI before component %d was coded", i)
				}
			}
			if d.sof < 0 {
				return codec.Corruptf("jpeg: EOI before any frame header")
			}
			if d.sof == 2 {
				d.finishProgressive()
			}
			return nil
		case m == mSOF0 || m == mSOF1 || m == mSOF2 || m == mSOF3:
			if err := d.readSOF(m); err != nil {
				return err
			}
		case m == 0xC5 || m == 0xC6 || m == 0xC7:
			return codec.Unsupportedf("jpeg: hierarchical process (SOF%d) is not supported", m-mSOF0)
		case m >= 0xC9 && m <= 0xCF && m != mDAC:
			return codec.Unsupportedf("jpeg: arithmetic coding (SOF%d) is not supported", m-mSOF0)
		case m == mDAC:
			return codec.Unsupportedf("jpeg: arithmetic coding conditioning (DAC) is not supported")
		case m == mDHT:
			err = d.readDHT()
		case m == mDQT:
			err = d.readDQT()
		case m == mDRI:
			err = d.readDRI()
		case m == mSOS:
			err = d.readSOS()
		case m == mDNL:
			return codec.Unsupportedf("jpeg: DNL marker (height defined after the scan) is not supported")
		case m >= mRST0 && m <= mRST7:
			// A stray restart marker after the last interval of a scan
			// carries nothing; some encoders write one.
		case m == mAPP0 || m == mAPPE:
			err = d.readAPP(m)
		case m == mTEM:
			// TEM has no length.
		case m >= 0xC0:
			// APPn, COM, JPGn, EXP and the rest: skip.
			_, err = d.segment()
		default:
			return codec.Corruptf("jpeg: invalid marker 0x%02X at byte %d", m, d.pos-1)
		}
		if err != nil {
			return err
		}
	}
}

// nextMarker returns the next marker code, skipping fill bytes (0xFF).
func (d *decoder) nextMarker() (byte, error) {
	if d.pos >= len(d.data) {
		return 0, codec.Corruptf("jpeg: codestream truncated (no EOI)")
	}
	if d.data[d.pos] != 0xFF {
		return 0, codec.Corruptf("jpeg: expected a marker at byte %d, found 0x%02X", d.pos, d.data[d.pos])
	}
	for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
		d.pos++
	}
	if d.pos >= len(d.data) {
		return 0, codec.Corruptf("jpeg: codestream truncated in a marker")
	}
	m := d.data[d.pos]
	d.pos++
	if m == 0 {
		return 0, codec.Corruptf("jpeg: stuffed zero where a marker was expected at byte %d", d.pos-1)
	}
	return m, nil
}

// segment returns the payload of a marker segment (after its length) and
// moves past it.
func (d *decoder) segment() ([]byte, error) {
	if d.pos+2 > len(d.data) {
		return nil, codec.Corruptf("jpeg: codestream truncated in a segment length")
	}
	n := int(d.data[d.pos])<<8 | int(d.data[d.pos+1])
	if n < 2 {
		return nil, codec.Corruptf("jpeg: segment length %d", n)
	}
	if d.pos+n > len(d.data) {
		return nil, codec.Corruptf("jpeg: codestream truncated in a %d-byte segment", n)
	}
	b := d.data[d.pos+2 : d.pos+n]
	d.pos += n
	return b, nil
}

// readSOF reads a frame header (T.81 B.2.2).
func (d *decoder) readSOF(m byte) error {
	if d.sof >= 0 {
		return codec.Corruptf("jpeg: more than one frame header")
	}
	b, err := d.segment()
	if err != nil {
		return err
	}
	if len(b) < 6 {
		return codec.Corruptf("jpeg: frame header too short")
	}
	d.sof = int(m - mSOF0)
	d.precision = int(b[0])
	d.height = int(b[1])<<8 | int(b[2])
	d.width = int(b[3])<<8 | int(b[4])
	n := int(b[5])
	if len(b) != 6+3*n {
		return codec.Corruptf("jpeg: frame header of %d bytes for %d components", len(b), n)
	}
	switch {
	case d.sof == 3 && (d.precision < 2 || d.precision > 16):
		return codec.Corruptf("jpeg: lossless precision %d outside 2–16", d.precision)
	case d.sof < 3 && d.precision != 8 && d.precision != 12:
		// Baseline is 8-bit only, but a 12-bit frame marked SOF0 is
		// unambiguous and libjpeg (so dcmtk) decodes it: so does this.
		return codec.Corruptf("jpeg: DCT precision %d, must be 8 or 12", d.precision)
	}
	if d.height == 0 {
		return codec.Unsupportedf("jpeg: frame height defined by a DNL marker is not supported")
	}
	if n < 1 || n > maxComponents {
		return codec.Unsupportedf("jpeg: %d components", n)
	}
	if err := d.p.Check(d.width, d.height, n); err != nil {
		return err
	}
	if d.p.BitsAllocated > 0 && d.precision > d.p.BitsAllocated {
		return codec.Corruptf("jpeg: precision %d exceeds bits allocated %d", d.precision, d.p.BitsAllocated)
	}
	d.comps = make([]component, n)
	d.hmax, d.vmax = 1, 1
	for i := range d.comps {
		c := &d.comps[i]
		c.id = b[6+3*i]
		c.h, c.v = int(b[7+3*i]>>4), int(b[7+3*i]&15)
		c.tq = int(b[8+3*i])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return codec.Corruptf("jpeg: component %d sampling factors %dx%d", i, c.h, c.v)
		}
		if c.tq > 3 {
			return codec.Corruptf("jpeg: component %d quantization table %d", i, c.tq)
		}
		for j := 0; j < i; j++ {
			if d.comps[j].id == c.id {
				return codec.Corruptf("jpeg: two components with id %d", c.id)
			}
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	if d.sof == 3 {
		return d.initLossless()
	}
	if err := d.initDCT(); err != nil {
		return err
	}
	if d.sof == 2 {
		d.initProgressive()
	}
	return nil
}

// readDQT reads quantization tables (T.81 B.2.4.1).
func (d *decoder) readDQT() error {
	b, err := d.segment()
	if err != nil {
		return err
	}
	for len(b) > 0 {
		pq, tq := b[0]>>4, int(b[0]&15)
		if pq > 1 || tq > 3 {
			return codec.Corruptf("jpeg: quantization table precision %d, id %d", pq, tq)
		}
		b = b[1:]
		size := 64 << pq
		if len(b) < size {
			return codec.Corruptf("jpeg: quantization table truncated")
		}
		for k := 0; k < 64; k++ {
			if pq == 0 {
				d.quant[tq][k] = int32(b[k])
			} else {
				d.quant[tq][k] = int32(b[2*k])<<8 | int32(b[2*k+1])
			}
		}
		d.qset[tq] = true
		b = b[size:]
	}
	return nil
}

// readDRI reads the restart interval (T.81 B.2.4.4).
func (d *decoder) readDRI() error {
	b, err := d.segment()
	if err != nil {
		return err
	}
	if len(b) != 2 {
		return codec.Corruptf("jpeg: DRI segment of %d bytes", len(b))
	}
	d.restart = int(b[0])<<8 | int(b[1])
	return nil
}

// readAPP notes the JFIF and Adobe markers, which say how three
// components are to be interpreted.
func (d *decoder) readAPP(m byte) error {
	b, err := d.segment()
	if err != nil {
		return err
	}
	switch {
	case m == mAPP0 && len(b) >= 5 && string(b[:5]) == "JFIF\x00":
		d.jfif = true
	case m == mAPPE && len(b) >= 12 && string(b[:5]) == "Adobe":
		d.adobe = true
		d.adobeTransform = int(b[11])
	}
	return nil
}

// readSOS reads a scan header (T.81 B.2.3) and decodes the scan.
func (d *decoder) readSOS() error {
	if d.sof < 0 {
		return codec.Corruptf("jpeg: scan before the frame header")
	}
	b, err := d.segment()
	if err != nil {
		return err
	}
	if len(b) < 1 {
		return codec.Corruptf("jpeg: empty scan header")
	}
	ns := int(b[0])
	if ns < 1 || ns > len(d.comps) || len(b) != 4+2*ns {
		return codec.Corruptf("jpeg: scan header of %d bytes for %d components", len(b), ns)
	}
	var scan [maxComponents]int
	for i := 0; i < ns; i++ {
		id := b[1+2*i]
		k := -1
		for j := range d.comps {
			if d.comps[j].id == id {
				k = j
			}
		}
		if k < 0 {
			return codec.Corruptf("jpeg: scan names unknown component %d", id)
		}
		for j := 0; j < i; j++ {
			if scan[j] == k {
				return codec.Corruptf("jpeg: scan names component %d twice", id)
			}
		}
		if d.scanned[k] && d.sof != 2 {
			// Sequential and lossless frames code each component once;
			// refusing a repeat also bounds the work a hostile stream of
			// many short scans can cause.
			return codec.Corruptf("jpeg: component %d coded in two scans", id)
		}
		scan[i] = k
		d.scanned[k] = true
		c := &d.comps[k]
		c.td, c.ta = int(b[2+2*i]>>4), int(b[2+2*i]&15)
		if c.td > 3 || c.ta > 3 {
			return codec.Corruptf("jpeg: scan Huffman table ids %d/%d", c.td, c.ta)
		}
	}
	ss, se, ah, al := int(b[1+2*ns]), int(b[2+2*ns]), int(b[3+2*ns]>>4), int(b[3+2*ns]&15)
	d.br = bitReader{data: d.data, pos: d.pos}
	switch d.sof {
	case 3:
		err = d.decodeLosslessScan(scan[:ns], ss, al)
	case 2:
		err = d.decodeProgressiveScan(scan[:ns], ss, se, ah, al)
	default:
		// Ss, Se, Ah and Al mean nothing in a sequential scan; some
		// encoders (the WG04 lossy images) write Se = 0, which libjpeg
		// accepts with a warning, and so does this decoder.
		err = d.decodeDCTScan(scan[:ns])
	}
	if err != nil {
		return err
	}
	d.pos = d.br.markerPos()
	return nil
}

// signExtend sign-extends signed samples in place.
func (d *decoder) signExtend(s []int32) {
	if !d.p.Signed {
		return
	}
	bits := d.precision
	if d.p.BitsStored > 0 && d.p.BitsStored < bits {
		bits = d.p.BitsStored
	}
	shift := 32 - uint(bits)
	for i, v := range s {
		s[i] = v << shift >> shift
	}
}
