package dicomio

import (
	"encoding/binary"
	"fmt"

	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
)

// Tags and limits of the structural scan.
const (
	tagItem                 = 0xFFFEE000
	tagItemDelim            = 0xFFFEE00D
	tagSeqDelim             = 0xFFFEE0DD
	tagExtendedOffsetTable  = 0x7FE00001
	tagExtendedOffsetLength = 0x7FE00002
	tagFloatPixelData       = 0x7FE00008
	tagDoublePixelData      = 0x7FE00009
	tagPixelData            = 0x7FE00010
	tagOverlayData          = 0x60003000
	tagSpecificCharacterSet = 0x00080005
	undefinedLength         = 0xFFFFFFFF

	// maxDepth bounds sequence nesting. Real files nest a handful of levels
	// (structured reports a few dozen at most); the bound exists because the
	// dicom library recurses once per level and a stack overflow is a fatal
	// error that recover cannot catch.
	maxDepth = 64
	// maxElements bounds the elements of one data set, nested ones
	// included. Real headers hold a few thousand (the largest in the
	// conformance corpus, a structured report, 3982); the dicom library
	// takes about a microsecond and 190 bytes for each, so the bound caps a
	// hostile header at about a quarter of a second and 50 MB.
	maxElements = 1 << 18
)

// isVR reports whether s looks like a value representation: two upper-case
// letters.
func isVR(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// longVR reports whether an explicit VR has a 4-byte length after two
// reserved bytes. The list is the dicom library's (read.go readVL), not the
// current standard's (which adds OV, SV and UV), because the scanner must
// walk the bytes exactly as the library will.
func longVR(vr string) bool {
	switch vr {
	case "NA", "OB", "OD", "OF", "OL", "OW", "SQ", "UN", "UC", "UR", "UT":
		return true
	}
	return false
}

// isExtendedOffsets reports whether t is the Extended Offset Table or its
// lengths, whose VR OV has a 4-byte length in explicit VR.
func isExtendedOffsets(t uint32) bool {
	return t == tagExtendedOffsetTable || t == tagExtendedOffsetLength
}

// dictVR is the VR the library assumes for t in an implicit VR data set.
func dictVR(t uint32) string {
	if t == tagPixelData || t == tagOverlayData {
		return "OW"
	}
	info, err := tag.Find(tag.Tag{Group: uint16(t >> 16), Element: uint16(t)})
	if err != nil || len(info.VRs) == 0 {
		return "UN"
	}
	return info.VRs[0]
}

// elemHeader is the decoded header of one element.
type elemHeader struct {
	tag   uint32
	vr    string // "" for items and delimiters
	vl    uint32
	value int // offset of the value
}

func (h elemHeader) String() string {
	return fmt.Sprintf("(%04x,%04x)", h.tag>>16, h.tag&0xffff)
}

// pixelData is where the top-level pixel data lies in the data set bytes.
type pixelData struct {
	tag uint32
	bo  binary.ByteOrder
	vr  string
	// native holds the value of a defined-length element.
	native []byte
	// encapsulated pixel data: the Basic Offset Table and the fragments
	// that follow it, in order.
	encapsulated bool
	offsetTable  []byte
	fragments    [][]byte
	// extOffsets and extLengths are the values of the Extended Offset
	// Table (7FE0,0001) and its lengths (7FE0,0002), nil when absent.
	extOffsets, extLengths []byte
}

// scanResult is what a structural scan of a data set found.
type scanResult struct {
	// headerEnd is the length of the prefix of the data set that was
	// validated and lies before the top-level pixel data: the only bytes the
	// dicom library is ever given (see headerParts).
	headerEnd int
	// pixel is nil when the data set has no top-level pixel data.
	pixel *pixelData
	// omit lists, in order, the byte ranges of top-level elements left
	// out of what the library sees (see headerParts): the Specific
	// Character Set, and every element holding a sequence of VR UN and
	// undefined length.
	omit [][2]int
	// extOffsets and extLengths are the values of the top-level Extended
	// Offset Table elements, handed on to the pixel data.
	extOffsets, extLengths []byte
}

// scanner validates the structure of a data set before the dicom library
// parses it. The library allocates a value's length before checking that
// the bytes exist, recurses without bound into nested sequences, and panics
// on some inconsistent structures; the scanner walks the bytes the same way
// the library will and refuses, as sentinel.ErrInvalid, any length that
// overruns its parent, any nesting deeper than maxDepth, any structure the
// library would misread. It also locates the top-level pixel data, which the
// library then never sees: this package decodes it directly from the bytes.
type scanner struct {
	buf      []byte
	bo       binary.ByteOrder
	implicit bool
	elements int
	// unSequence is set when an element of VR UN and undefined length
	// was walked in an explicit VR data set.
	unSequence bool
}

// invalid returns an ErrInvalid error about the data set.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel.ErrInvalid, fmt.Sprintf(format, args...))
}

// header decodes the element header at off, which must end by limit.
func (s *scanner) header(off, limit int) (elemHeader, error) {
	if limit-off < 8 {
		return elemHeader{}, invalid("data set truncated at byte %d", off)
	}
	b := s.buf[off:limit]
	h := elemHeader{tag: uint32(s.bo.Uint16(b))<<16 | uint32(s.bo.Uint16(b[2:]))}
	switch {
	case h.tag>>16 == 0xFFFE:
		h.vl, h.value = s.bo.Uint32(b[4:]), off+8
	case s.implicit:
		h.vr, h.vl, h.value = dictVR(h.tag), s.bo.Uint32(b[4:]), off+8
	default:
		h.vr = string(b[4:6])
		if longVR(h.vr) || (h.vr == "OV" && isExtendedOffsets(h.tag)) {
			if len(b) < 12 {
				return h, invalid("data set truncated in element %s", h)
			}
			h.vl, h.value = s.bo.Uint32(b[8:]), off+12
		} else {
			h.vl, h.value = uint32(s.bo.Uint16(b[6:])), off+8
			if h.vl == 0xFFFF {
				// The library reads a 16-bit 0xFFFF as undefined length.
				h.vl = undefinedLength
			}
		}
	}
	s.elements++
	if s.elements > maxElements {
		return h, invalid("data set has more than %d elements", maxElements)
	}
	return h, nil
}

// end returns where a defined-length value of h ends, checking that it fits
// before limit.
func (s *scanner) end(h elemHeader, limit int) (int, error) {
	if int64(h.vl) > int64(limit-h.value) {
		return 0, invalid("element %s length %d exceeds the %d bytes left", h, h.vl, limit-h.value)
	}
	return h.value + int(h.vl), nil
}

// dataset scans the top level of the data set up to its pixel data.
func (s *scanner) dataset() (scanResult, error) {
	var res scanResult
	limit := len(s.buf)
	for off := 0; limit-off >= 8; {
		h, err := s.header(off, limit)
		if err != nil {
			return res, err
		}
		switch h.tag {
		case tagPixelData, tagFloatPixelData, tagDoublePixelData:
			px, err := s.pixelData(h, limit)
			if err != nil {
				return res, err
			}
			px.extOffsets, px.extLengths = res.extOffsets, res.extLengths
			res.pixel = px
			return res, nil
		}
		if h.tag>>16 == 0xFFFE {
			return res, invalid("item tag %s outside a sequence at byte %d", h, off)
		}
		s.unSequence = false
		next, err := s.element(h, limit, 0)
		if err != nil {
			return res, err
		}
		switch {
		case h.tag == tagSpecificCharacterSet || s.unSequence:
			res.omit = append(res.omit, [2]int{off, next})
		case h.tag == tagExtendedOffsetTable && h.vl != undefinedLength:
			res.extOffsets = s.buf[h.value:next]
		case h.tag == tagExtendedOffsetLength && h.vl != undefinedLength:
			res.extLengths = s.buf[h.value:next]
		}
		off = next
		if !isExtendedOffsets(h.tag) {
			// The library does not know VR OV: the Extended Offset
			// Table, which lies just before the pixel data, is kept
			// from it.
			res.headerEnd = off
		}
	}
	if res.headerEnd == 0 && len(s.buf) > 0 {
		return res, invalid("data set truncated: %d bytes", len(s.buf))
	}
	// Fewer than 8 trailing bytes cannot hold an element: padding, ignored.
	return res, nil
}

// element validates the value of the element whose header is h and returns
// the offset just past it.
func (s *scanner) element(h elemHeader, limit, depth int) (int, error) {
	if depth > maxDepth {
		return 0, invalid("sequences nested deeper than %d", maxDepth)
	}
	if h.vl != undefinedLength {
		end, err := s.end(h, limit)
		if err != nil {
			return 0, err
		}
		if h.vr == "SQ" && h.tag != tagPixelData {
			if err := s.definedSequence(h.value, end, depth+1); err != nil {
				return 0, err
			}
		}
		return end, nil
	}
	switch {
	case h.tag == tagPixelData || h.vr == "OB" || h.vr == "OW":
		end, _, _, err := s.fragments(h.value, limit, false)
		return end, err
	case h.vr == "UN" && !s.implicit:
		return s.unSequenceOf(h, limit, depth+1)
	case h.vr == "SQ" || h.vr == "UN":
		return s.undefinedSequence(h.value, limit, depth+1)
	}
	return 0, invalid("element %s with VR %q has undefined length", h, h.vr)
}

// unSequenceOf validates a value of VR UN and undefined length in an
// explicit VR data set: a sequence whose VR the writer did not know (a
// private one, typically), which PS3.5 6.2.2 and CP-246 encode in
// implicit VR little endian whatever the transfer syntax. A writer that
// kept the data set's explicit VR instead is accepted too. The dicom
// library reads such a value in the data set's encoding and fails, so
// the top-level element holding it is left out of what it sees (see
// scanResult.omit).
func (s *scanner) unSequenceOf(h elemHeader, limit, depth int) (int, error) {
	s.unSequence = true
	bo := s.bo
	s.bo, s.implicit = binary.LittleEndian, true
	end, err := s.undefinedSequence(h.value, limit, depth)
	s.bo, s.implicit = bo, false
	if err == nil {
		return end, nil
	}
	// The elements of both walks count against maxElements, so that
	// nested sequences tried both ways stay bounded.
	if end, explicitErr := s.undefinedSequence(h.value, limit, depth); explicitErr == nil {
		return end, nil
	}
	return 0, fmt.Errorf("sequence %s of VR UN: %w", h, err)
}

// definedSequence validates the items of a sequence of defined length.
func (s *scanner) definedSequence(off, end, depth int) error {
	for off < end {
		h, err := s.header(off, end)
		if err != nil {
			return err
		}
		if h.tag != tagItem {
			return invalid("sequence holds %s where an item belongs", h)
		}
		if off, err = s.item(h, end, depth); err != nil {
			return err
		}
	}
	return nil
}

// undefinedSequence validates the items of a sequence of undefined length
// and returns the offset past its delimiter.
func (s *scanner) undefinedSequence(off, limit, depth int) (int, error) {
	for {
		h, err := s.header(off, limit)
		if err != nil {
			return 0, err
		}
		switch h.tag {
		case tagSeqDelim:
			if h.vl != 0 {
				return 0, invalid("sequence delimiter with length %d", h.vl)
			}
			return h.value, nil
		case tagItem:
			if off, err = s.item(h, limit, depth); err != nil {
				return 0, err
			}
		default:
			return 0, invalid("sequence holds %s where an item belongs", h)
		}
	}
}

// item validates the elements of one sequence item and returns the offset
// just past it.
func (s *scanner) item(h elemHeader, limit, depth int) (int, error) {
	if depth > maxDepth {
		return 0, invalid("sequences nested deeper than %d", maxDepth)
	}
	defined := h.vl != undefinedLength
	end := limit
	if defined {
		var err error
		if end, err = s.end(h, limit); err != nil {
			return 0, err
		}
	}
	off := h.value
	for !defined || off < end {
		e, err := s.header(off, end)
		if err != nil {
			return 0, err
		}
		if e.tag == tagItemDelim && !defined {
			if e.vl != 0 {
				return 0, invalid("item delimiter with length %d", e.vl)
			}
			return e.value, nil
		}
		if e.tag>>16 == 0xFFFE {
			return 0, invalid("item holds %s", e)
		}
		if off, err = s.element(e, end, depth); err != nil {
			return 0, err
		}
	}
	return end, nil
}

// fragments walks the items of an encapsulated value up to its sequence
// delimiter. With collect it returns the first item (the Basic Offset Table
// of pixel data) and the others.
func (s *scanner) fragments(off, limit int, collect bool) (int, []byte, [][]byte, error) {
	var table []byte
	var frags [][]byte
	for n := 0; ; n++ {
		h, err := s.header(off, limit)
		if err != nil {
			return 0, nil, nil, err
		}
		switch {
		case h.tag == tagSeqDelim:
			if h.vl != 0 {
				return 0, nil, nil, invalid("sequence delimiter with length %d", h.vl)
			}
			return h.value, table, frags, nil
		case h.tag != tagItem:
			return 0, nil, nil, invalid("encapsulated value holds %s where an item belongs", h)
		case h.vl == undefinedLength:
			return 0, nil, nil, invalid("encapsulated item of undefined length")
		}
		end, err := s.end(h, limit)
		if err != nil {
			return 0, nil, nil, err
		}
		if collect {
			if n == 0 {
				table = s.buf[h.value:end]
			} else {
				frags = append(frags, s.buf[h.value:end])
			}
		}
		off = end
	}
}

// pixelData validates the top-level pixel data element h and returns where
// its value lies.
func (s *scanner) pixelData(h elemHeader, limit int) (*pixelData, error) {
	px := &pixelData{tag: h.tag, bo: s.bo, vr: h.vr}
	if h.vl == undefinedLength {
		if h.tag != tagPixelData {
			return nil, invalid("float pixel data %s of undefined length", h)
		}
		_, table, frags, err := s.fragments(h.value, limit, true)
		if err != nil {
			return nil, fmt.Errorf("pixel data: %w", err)
		}
		px.encapsulated, px.offsetTable, px.fragments = true, table, frags
		return px, nil
	}
	end, err := s.end(h, limit)
	if err != nil {
		return nil, fmt.Errorf("pixel data: %w", err)
	}
	px.native = s.buf[h.value:end]
	return px, nil
}

// headerParts returns the bytes the dicom library parses: the validated
// prefix of the data set, less the elements in omit. Sequences of VR UN
// and undefined length are left out because the library misreads them
// (see unSequenceOf); the Specific Character Set element because the
// library decodes text in the character set it names, and fails
// the whole parse on a name it does not know or on bytes the decoder
// rejects (it panics when the element is not text at all). This package
// reads only ASCII values (UIDs, code strings, numbers, the accession
// number), so without the element every string simply reads as its bytes.
func (r scanResult) headerParts(body []byte) [][]byte {
	var parts [][]byte
	from := 0
	for _, o := range r.omit {
		if o[1] > r.headerEnd {
			break
		}
		if o[0] > from {
			parts = append(parts, body[from:o[0]])
		}
		from = o[1]
	}
	return append(parts, body[from:r.headerEnd])
}
