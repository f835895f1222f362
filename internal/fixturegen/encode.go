package fixturegen

import (
	"bytes"
	"cmp"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"slices"
)

// Transfer syntax UIDs (PS3.6 Annex A) of the fixtures.
const (
	ImplicitLE   = "1.2.840.10008.1.2"
	ExplicitLE   = "1.2.840.10008.1.2.1"
	DeflatedLE   = "1.2.840.10008.1.2.1.99"
	ExplicitBE   = "1.2.840.10008.1.2.2"
	JPEGLossless = "1.2.840.10008.1.2.4.70" // JPEG Lossless SV1
	JPEGLS       = "1.2.840.10008.1.2.4.80" // JPEG-LS Lossless
	JPEG2000     = "1.2.840.10008.1.2.4.90" // JPEG 2000 Lossless
	RLE          = "1.2.840.10008.1.2.5"
)

// implementationUID identifies this writer in the file meta.
const implementationUID = "2.25.201537196326152302939393496744640120977"

// byteOrder is the byte order of a data set.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// element is one data element before encoding. Exactly one of the value
// fields is used, by VR: text for the string VRs, us for US, ul for UL,
// ob for OB, ow for OW (16-bit words, swapped for big endian) and frags for
// encapsulated pixel data.
type element struct {
	tag   uint32
	vr    string
	text  string
	us    []uint16
	ul    []uint32
	ob    []byte
	ow    []uint16
	frags [][]byte
}

func str(tag uint32, vr, v string) element { return element{tag: tag, vr: vr, text: v} }
func us(tag uint32, v ...uint16) element   { return element{tag: tag, vr: "US", us: v} }

// longVR lists the VRs whose explicit encoding has a 4-byte length
// (PS3.5 7.1.2).
var longVR = map[string]bool{"OB": true, "OD": true, "OF": true, "OL": true, "OV": true, "OW": true,
	"SQ": true, "SV": true, "UC": true, "UN": true, "UR": true, "UT": true, "UV": true}

// value returns the element's value in the byte order given, padded to an
// even length (UI with a NUL, other text with a space, OB with a zero).
func (e element) value(order byteOrder) []byte {
	var b []byte
	switch {
	case e.us != nil:
		for _, v := range e.us {
			b = order.AppendUint16(b, v)
		}
	case e.ul != nil:
		for _, v := range e.ul {
			b = order.AppendUint32(b, v)
		}
	case e.ow != nil:
		b = make([]byte, 0, 2*len(e.ow))
		for _, v := range e.ow {
			b = order.AppendUint16(b, v)
		}
	case e.ob != nil:
		b = append(b, e.ob...)
	default:
		b = []byte(e.text)
	}
	if len(b)%2 == 1 {
		pad := byte(' ')
		if e.vr == "UI" || e.vr == "OB" {
			pad = 0
		}
		b = append(b, pad)
	}
	return b
}

// encodeElements writes elements, sorted by tag, in the given encoding.
func encodeElements(elems []element, explicit bool, order byteOrder) []byte {
	elems = slices.Clone(elems)
	slices.SortFunc(elems, func(a, b element) int { return cmp.Compare(a.tag, b.tag) })
	var buf []byte
	header := func(tag uint32, vr string, length uint32) {
		buf = order.AppendUint16(buf, uint16(tag>>16))
		buf = order.AppendUint16(buf, uint16(tag))
		switch {
		case !explicit:
			buf = order.AppendUint32(buf, length)
		case longVR[vr]:
			buf = append(buf, vr[0], vr[1], 0, 0)
			buf = order.AppendUint32(buf, length)
		default:
			buf = append(buf, vr[0], vr[1])
			buf = order.AppendUint16(buf, uint16(length))
		}
	}
	item := func(tag uint32, v []byte) {
		buf = order.AppendUint16(buf, 0xFFFE)
		buf = order.AppendUint16(buf, uint16(tag))
		buf = order.AppendUint32(buf, uint32(len(v)))
		buf = append(buf, v...)
	}
	for _, e := range elems {
		if e.frags != nil {
			// Encapsulated pixel data (PS3.5 A.4): undefined length, an
			// empty Basic Offset Table, one item a fragment, then the
			// sequence delimiter.
			header(e.tag, "OB", 0xFFFFFFFF)
			item(0xE000, nil)
			for _, f := range e.frags {
				if len(f)%2 == 1 {
					f = append(slices.Clone(f), 0)
				}
				item(0xE000, f)
			}
			item(0xE0DD, nil)
			continue
		}
		v := e.value(order)
		header(e.tag, e.vr, uint32(len(v)))
		buf = append(buf, v...)
	}
	return buf
}

// encodeFile returns a DICOM file: preamble, "DICM", the file meta in
// explicit VR little endian, then the data set in transfer syntax ts.
// Deflated data sets are raw deflate (RFC 1951) of explicit VR little
// endian, as PS3.5 A.5 asks.
func encodeFile(sopClass, sopInstance, ts string, elems []element) ([]byte, error) {
	meta := []element{
		{tag: 0x00020001, vr: "OB", ob: []byte{0, 1}},
		str(0x00020002, "UI", sopClass),
		str(0x00020003, "UI", sopInstance),
		str(0x00020010, "UI", ts),
		str(0x00020012, "UI", implementationUID),
		str(0x00020013, "SH", "SENTINEL_FIXTURE"),
	}
	metaBytes := encodeElements(meta, true, binary.LittleEndian)
	group := encodeElements([]element{{tag: 0x00020000, vr: "UL", ul: []uint32{uint32(len(metaBytes))}}}, true, binary.LittleEndian)

	var body []byte
	switch ts {
	case ImplicitLE:
		body = encodeElements(elems, false, binary.LittleEndian)
	case ExplicitBE:
		body = encodeElements(elems, true, binary.BigEndian)
	case DeflatedLE:
		var b bytes.Buffer
		w, err := flate.NewWriter(&b, flate.BestCompression)
		if err != nil {
			return nil, fmt.Errorf("deflate: %w", err)
		}
		if _, err := w.Write(encodeElements(elems, true, binary.LittleEndian)); err != nil {
			return nil, fmt.Errorf("deflate: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("deflate: %w", err)
		}
		body = b.Bytes()
	default:
		// Explicit VR little endian, and every encapsulated syntax.
		body = encodeElements(elems, true, binary.LittleEndian)
	}
	out := make([]byte, 128, 128+4+len(group)+len(metaBytes)+len(body))
	out = append(out, "DICM"...)
	out = append(out, group...)
	out = append(out, metaBytes...)
	return append(out, body...), nil
}
