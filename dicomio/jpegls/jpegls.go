// Package jpegls decodes JPEG-LS code streams (ITU-T T.87 | ISO/IEC
// 14495-1), the DICOM transfer syntaxes JPEG-LS Lossless
// (1.2.840.10008.1.2.4.80) and JPEG-LS Near-Lossless (…4.81).
//
// It owns one thing: turning the bytes of one encapsulated frame into
// stored sample values. It decodes regular and run mode, lossless and
// near-lossless (NEAR > 0) scans, precisions of 2 to 16 bits, one to four
// components in any of the three interleave modes, preset coding
// parameters (LSE type 1) and restart intervals. Mapping tables (LSE
// types 2 and 3, palettised images), point transforms and the HP colour
// transforms of CharLS are well-formed features it does not decode; they
// give codec.ErrUnsupported. Everything else it cannot make sense of is
// codec.ErrCorrupt. It never panics and allocates nothing larger than the
// frame that codec.Params.Check has allowed.
//
// The specification is https://www.itu.int/rec/T-REC-T.87.
package jpegls

import (
	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// maxComponents bounds the components of a frame. DICOM uses 1 or 3;
// T.87 allows up to 255, which no DICOM file needs.
const maxComponents = 4

// Marker codes (T.87 Table C.1 and T.81 Table B.1).
const (
	markerSOF55 = 0xF7 // start of frame, JPEG-LS
	markerLSE   = 0xF8 // JPEG-LS preset parameters
	markerSOI   = 0xD8
	markerEOI   = 0xD9
	markerSOS   = 0xDA
	markerDNL   = 0xDC
	markerDRI   = 0xDD
	markerRST0  = 0xD0
	markerAPP8  = 0xE8
	markerCOM   = 0xFE
)

// decoder holds the state of decoding one code stream.
type decoder struct {
	data []byte
	pos  int
	p    codec.Params

	sawFrame                 bool
	width, height, precision int
	ncomp                    int
	compID                   [maxComponents]int
	done                     [maxComponents]bool

	presets  presets
	restart  int
	out      []int32
	lineBufs []int32
	st       state
	br       bitReader
}

// Decode decodes the JPEG-LS code stream of one frame. The frame must
// match p (size and samples per pixel); samples are returned pixel by
// pixel, and sign-extended from the code stream's precision when p.Signed.
func Decode(data []byte, p codec.Params) (codec.Frame, error) {
	d := &decoder{data: data, p: p}
	if err := d.run(); err != nil {
		return codec.Frame{}, err
	}
	if p.Signed && d.precision < 32 {
		half := int32(1) << (d.precision - 1)
		for i, v := range d.out {
			if v >= half {
				d.out[i] = v - 2*half
			}
		}
	}
	return codec.Frame{
		Width:      d.width,
		Height:     d.height,
		Components: d.ncomp,
		Precision:  d.precision,
		Samples:    d.out,
	}, nil
}

// run walks the marker segments of the code stream and decodes its scans.
func (d *decoder) run() error {
	if len(d.data) < 2 || d.data[0] != 0xFF || d.data[1] != markerSOI {
		return codec.Corruptf("jpegls: missing SOI marker")
	}
	d.pos = 2
	for {
		m, err := d.nextMarker()
		if err != nil {
			if d.complete() {
				// A missing EOI after a complete image is a harmless quirk.
				return nil
			}
			return err
		}
		switch {
		case m == markerEOI:
			if !d.complete() {
				return codec.Corruptf("jpegls: EOI before every component was decoded")
			}
			return nil
		case m == markerSOF55:
			err = d.readFrame()
		case m == markerLSE:
			err = d.readLSE()
		case m == markerDRI:
			err = d.readDRI()
		case m == markerSOS:
			err = d.readScan()
		case m == markerAPP8:
			err = d.readAPP8()
		case m >= 0xE0 && m <= 0xEF, m == markerCOM, m == markerDNL:
			_, err = d.segment()
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC:
			return codec.Unsupportedf("jpegls: SOF%d marker: a JPEG process other than JPEG-LS", m-0xC0)
		default:
			return codec.Corruptf("jpegls: unexpected marker 0xFF%02X at offset %d", m, d.pos-2)
		}
		if err != nil {
			return err
		}
	}
}

// complete reports whether every component of the frame has been decoded.
func (d *decoder) complete() bool {
	if !d.sawFrame || d.out == nil {
		return false
	}
	for c := 0; c < d.ncomp; c++ {
		if !d.done[c] {
			return false
		}
	}
	return true
}

// nextMarker reads the next marker code, skipping fill bytes (0xFF).
func (d *decoder) nextMarker() (byte, error) {
	if d.pos >= len(d.data) {
		return 0, codec.Corruptf("jpegls: code stream ends without EOI")
	}
	if d.data[d.pos] != 0xFF {
		return 0, codec.Corruptf("jpegls: expected a marker at offset %d, found 0x%02X", d.pos, d.data[d.pos])
	}
	for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
		d.pos++
	}
	if d.pos >= len(d.data) {
		return 0, codec.Corruptf("jpegls: code stream ends inside a marker")
	}
	m := d.data[d.pos]
	d.pos++
	return m, nil
}

// segment returns the payload of the marker segment at d.pos (after its
// two-byte length) and moves past it.
func (d *decoder) segment() ([]byte, error) {
	if d.pos+2 > len(d.data) {
		return nil, codec.Corruptf("jpegls: truncated marker segment length")
	}
	n := int(d.data[d.pos])<<8 | int(d.data[d.pos+1])
	if n < 2 || d.pos+n > len(d.data) {
		return nil, codec.Corruptf("jpegls: marker segment length %d at offset %d is invalid", n, d.pos)
	}
	seg := d.data[d.pos+2 : d.pos+n]
	d.pos += n
	return seg, nil
}

// be16 reads a big-endian 16-bit value.
func be16(b []byte) int { return int(b[0])<<8 | int(b[1]) }

// readFrame parses the SOF55 segment (T.87 C.2.2).
func (d *decoder) readFrame() error {
	if d.sawFrame {
		return codec.Corruptf("jpegls: second SOF55 marker")
	}
	seg, err := d.segment()
	if err != nil {
		return err
	}
	if len(seg) < 6 {
		return codec.Corruptf("jpegls: SOF55 segment of %d bytes is too short", len(seg))
	}
	d.precision = int(seg[0])
	d.height = be16(seg[1:])
	d.width = be16(seg[3:])
	d.ncomp = int(seg[5])
	if d.precision < 2 || d.precision > 16 {
		return codec.Corruptf("jpegls: sample precision %d outside 2…16", d.precision)
	}
	if limit := max(d.p.BitsAllocated, d.p.BitsStored); limit > 0 && d.precision > limit {
		return codec.Corruptf("jpegls: sample precision %d exceeds the header's %d bits allocated", d.precision, d.p.BitsAllocated)
	}
	if d.ncomp < 1 {
		return codec.Corruptf("jpegls: frame without components")
	}
	if d.ncomp > maxComponents {
		return codec.Unsupportedf("jpegls: %d components", d.ncomp)
	}
	if len(seg) != 6+3*d.ncomp {
		return codec.Corruptf("jpegls: SOF55 segment of %d bytes for %d components", len(seg), d.ncomp)
	}
	for c := 0; c < d.ncomp; c++ {
		id, hv := int(seg[6+3*c]), seg[7+3*c]
		for j := 0; j < c; j++ {
			if d.compID[j] == id {
				return codec.Corruptf("jpegls: component identifier %d used twice", id)
			}
		}
		d.compID[c] = id
		if hv != 0x11 {
			return codec.Unsupportedf("jpegls: subsampled component (sampling factors 0x%02X)", hv)
		}
	}
	d.sawFrame = true
	return nil
}

// readLSE parses a JPEG-LS preset parameters segment (T.87 C.2.4.1).
func (d *decoder) readLSE() error {
	seg, err := d.segment()
	if err != nil {
		return err
	}
	if len(seg) < 1 {
		return codec.Corruptf("jpegls: empty LSE segment")
	}
	switch seg[0] {
	case 1:
		if len(seg) != 11 {
			return codec.Corruptf("jpegls: LSE preset parameters segment of %d bytes", len(seg))
		}
		d.presets = presets{
			maxVal: be16(seg[1:]), t1: be16(seg[3:]), t2: be16(seg[5:]),
			t3: be16(seg[7:]), reset: be16(seg[9:]),
		}
		return nil
	case 2, 3:
		return codec.Unsupportedf("jpegls: mapping table (LSE type %d)", seg[0])
	case 4:
		return d.readOversize(seg[1:])
	default:
		return codec.Corruptf("jpegls: unknown LSE type %d", seg[0])
	}
}

// readOversize parses an LSE type 4 segment, which gives image sizes that
// do not fit the 16-bit fields of SOF55 (T.87 C.2.4.1.4).
func (d *decoder) readOversize(b []byte) error {
	if !d.sawFrame {
		return codec.Corruptf("jpegls: oversize dimensions before SOF55")
	}
	if d.out != nil {
		// The frame is allocated at the first scan; its size is fixed.
		return codec.Corruptf("jpegls: oversize dimensions after the first scan")
	}
	if len(b) < 1 {
		return codec.Corruptf("jpegls: truncated oversize dimensions")
	}
	w := int(b[0])
	if w < 2 || w > 4 || len(b) != 1+2*w {
		return codec.Corruptf("jpegls: oversize dimensions of %d-byte fields", w)
	}
	get := func(o int) int {
		v := 0
		for i := 0; i < w; i++ {
			v = v<<8 | int(b[o+i])
		}
		return v
	}
	d.height, d.width = get(1), get(1+w)
	return nil
}

// readDRI parses a restart interval definition (T.87 C.2.5).
func (d *decoder) readDRI() error {
	seg, err := d.segment()
	if err != nil {
		return err
	}
	if len(seg) < 1 || len(seg) > 4 {
		return codec.Corruptf("jpegls: DRI segment of %d bytes", len(seg))
	}
	d.restart = 0
	for _, b := range seg {
		d.restart = d.restart<<8 | int(b)
	}
	return nil
}

// readAPP8 refuses the HP colour transforms CharLS signals in an APP8
// "mrfx" segment: DICOM does not allow them, and decoding without
// undoing them would give wrong colours.
func (d *decoder) readAPP8() error {
	seg, err := d.segment()
	if err != nil {
		return err
	}
	if len(seg) >= 5 && string(seg[:4]) == "mrfx" && seg[4] != 0 {
		return codec.Unsupportedf("jpegls: HP colour transform %d", seg[4])
	}
	return nil
}
