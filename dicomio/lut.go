package dicomio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
)

// Attributes of the LUTs that the dicom library's tag package names but
// this package reads through its own helpers.
var (
	paletteDescriptors = [3]tag.Tag{tag.RedPaletteColorLookupTableDescriptor,
		tag.GreenPaletteColorLookupTableDescriptor, tag.BluePaletteColorLookupTableDescriptor}
	paletteData = [3]tag.Tag{tag.RedPaletteColorLookupTableData,
		tag.GreenPaletteColorLookupTableData, tag.BluePaletteColorLookupTableData}
	paletteSegmented = [3]tag.Tag{tag.SegmentedRedPaletteColorLookupTableData,
		tag.SegmentedGreenPaletteColorLookupTableData, tag.SegmentedBluePaletteColorLookupTableData}
)

// maxLUTEntries is the most entries a LUT descriptor can declare (0 means
// 2^16, PS3.3 C.11.1.1.1), and so the most a segmented LUT may expand to.
const maxLUTEntries = 1 << 16

// lut is a lookup table of PS3.3 C.11.1.1 (Modality and VOI LUT) or
// C.7.6.3.1.5 (palette colour): entries[i] is the output for input
// first+i; inputs outside the table take its first or last entry.
type lut struct {
	first   int64
	entries []int64
	// bits is the nominal bits per entry of the descriptor.
	bits int
}

// at looks input x up, clamping it to the table.
func (t *lut) at(x int64) int64 {
	i := x - t.first
	if i < 0 {
		i = 0
	}
	if i >= int64(len(t.entries)) {
		i = int64(len(t.entries)) - 1
	}
	return t.entries[i]
}

// outputMax is the largest output the table's entries can hold: 2^bits-1
// for the descriptor's bits, except that 8-bit entries stored one per
// 16-bit word and using the high byte (as some writers do) count as 16-bit,
// which is what pydicom's actual_depth makes of them.
func (t *lut) outputMax() float64 {
	bits := t.bits
	if bits < 1 || bits > 16 {
		bits = 16
	}
	if bits <= 8 {
		for _, e := range t.entries {
			if e > 255 {
				bits = 16
				break
			}
		}
	}
	return math.Exp2(float64(bits)) - 1
}

// descriptor is a LUT Descriptor: number of entries, first stored value
// mapped, bits per entry.
type descriptor struct {
	entries int
	first   int64
	bits    int
}

// readDescriptor reads a three-valued LUT Descriptor. Its first mapped
// value is signed when the pixel representation is (the VR is US or SS by
// Pixel Representation, and implicit VR files give no clue), so it is
// reinterpreted from its 16 bits here.
func (a attrs) readDescriptor(e *dicom.Element, signed bool) (descriptor, error) {
	v := a.words(e)
	if len(v) != 3 {
		return descriptor{}, fmt.Errorf("%w: LUT descriptor %v has %d values, want 3", sentinel.ErrInvalid, tagOf(e), len(v))
	}
	d := descriptor{entries: int(uint16(v[0])), bits: int(uint16(v[2]))}
	if d.entries == 0 {
		d.entries = maxLUTEntries
	}
	d.first = int64(uint16(v[1]))
	if signed {
		d.first = int64(int16(uint16(v[1])))
	}
	return d, nil
}

// tagOf returns e's tag, or the zero tag for a missing element.
func tagOf(e *dicom.Element) tag.Tag {
	if e == nil {
		return tag.Tag{}
	}
	return e.Tag
}

// words returns the values of a US/SS element, or of one stored as OW or
// UN, as 16-bit words.
func (a attrs) words(e *dicom.Element) []int64 {
	if e == nil || e.Value == nil {
		return nil
	}
	switch e.Value.ValueType() {
	case dicom.Ints:
		v, _ := e.Value.GetValue().([]int)
		out := make([]int64, len(v))
		for i, x := range v {
			out[i] = int64(uint16(x))
		}
		return out
	case dicom.Bytes:
		b := a.rawBytes(e)
		out := make([]int64, len(b)/2)
		for i := range out {
			out[i] = int64(a.bo.Uint16(b[2*i:]))
		}
		return out
	}
	return nil
}

// rawBytes returns the bytes of an OB, OW or UN element as the file
// stores them: the dicom library rewrites OW values in little endian
// whatever the transfer syntax, so big endian OW is swapped back.
func (a attrs) rawBytes(e *dicom.Element) []byte {
	if e == nil || e.Value == nil || e.Value.ValueType() != dicom.Bytes {
		return nil
	}
	b, _ := e.Value.GetValue().([]byte)
	if e.RawValueRepresentation == "OW" && a.bo == binary.BigEndian {
		return swapPairs(b)
	}
	return b
}

// readLUTData reads LUT Data of d.entries entries: US values, or OW (or
// UN) words; 8-bit entries packed two to a word are unpacked, and 8-bit
// entries stored one to a word are kept as words (the layout pydicom and
// GDCM accept).
func (a attrs) readLUTData(e *dicom.Element, d descriptor) (*lut, error) {
	t := &lut{first: d.first, bits: d.bits}
	if e != nil && e.Value != nil && e.Value.ValueType() == dicom.Bytes {
		b := a.rawBytes(e)
		switch {
		case len(b) == 2*d.entries:
			t.entries = a.words(e)
		case d.bits <= 8 && (len(b) == d.entries || len(b) == d.entries+1):
			// Packed 8-bit entries, in file order as pydicom reads them.
			t.entries = make([]int64, d.entries)
			for i := range t.entries {
				t.entries[i] = int64(b[i])
			}
		default:
			return nil, fmt.Errorf("%w: LUT data %v has %d bytes for %d entries of %d bits",
				sentinel.ErrInvalid, e.Tag, len(b), d.entries, d.bits)
		}
		return t, nil
	}
	t.entries = a.words(e)
	if d.bits <= 8 && len(t.entries) == (d.entries+1)/2 && d.entries > 1 {
		// 8-bit entries packed two to a US value, low byte first.
		packed := t.entries
		t.entries = make([]int64, d.entries)
		for i := range t.entries {
			t.entries[i] = packed[i/2] >> (8 * uint(i%2)) & 0xFF
		}
	}
	if len(t.entries) != d.entries {
		return nil, fmt.Errorf("%w: LUT data %v has %d entries, descriptor says %d", sentinel.ErrInvalid, tagOf(e), len(t.entries), d.entries)
	}
	return t, nil
}

// readSegmented reads Segmented Palette Color LUT Data (PS3.3 C.7.9.2):
// 16-bit words for 16-bit entries, bytes for 8-bit ones.
func (a attrs) readSegmented(e *dicom.Element, d descriptor) (*lut, error) {
	var data []int64
	if d.bits == 8 {
		b := a.rawBytes(e)
		data = make([]int64, len(b))
		for i, x := range b {
			data[i] = int64(x)
		}
	} else {
		data = a.words(e)
	}
	entries, err := expandSegments(data, 0, -1, -1, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: segmented LUT %v: %w", sentinel.ErrInvalid, tagOf(e), err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: segmented LUT %v is empty", sentinel.ErrInvalid, tagOf(e))
	}
	return &lut{first: d.first, entries: entries, bits: d.bits}, nil
}

var errSegments = errors.New("malformed segments")

// expandSegments expands segmented LUT data from data[offset:] (PS3.3
// C.7.9.2): at most count segments when count >= 0 (an indirect segment's
// copy), continuing from the value last when it is not negative. depth
// bounds indirect segments that point at indirect segments.
func expandSegments(data []int64, offset, count int, last int64, depth int) ([]int64, error) {
	if depth > 2 {
		return nil, fmt.Errorf("%w: indirect segments nested too deep", errSegments)
	}
	var out []int64
	prev := func() (int64, bool) {
		if len(out) > 0 {
			return out[len(out)-1], true
		}
		return last, last >= 0
	}
	for n := 0; (count < 0 || n < count) && offset+1 < len(data); n++ {
		op, length := data[offset], int(data[offset+1])
		offset += 2
		if len(out)+length > maxLUTEntries {
			return nil, fmt.Errorf("%w: expands beyond %d entries", errSegments, maxLUTEntries)
		}
		switch op {
		case 0: // discrete
			if offset+length > len(data) {
				return nil, fmt.Errorf("%w: discrete segment past the end", errSegments)
			}
			out = append(out, data[offset:offset+length]...)
			offset += length
		case 1: // linear, from the previous value to y1 in length steps
			y0, ok := prev()
			if !ok || offset >= len(data) {
				return nil, fmt.Errorf("%w: linear segment without a start or an end", errSegments)
			}
			y1 := data[offset]
			offset++
			for i := 1; i <= length; i++ {
				out = append(out, int64(math.RoundToEven(float64(y0)+float64(y1-y0)*float64(i)/float64(length))))
			}
		case 2: // indirect: copy length segments from a word offset
			if _, ok := prev(); !ok || offset+1 >= len(data) {
				return nil, fmt.Errorf("%w: indirect segment without a start or an offset", errSegments)
			}
			// The 32-bit offset, least significant word first, counts
			// words into the data, as pydicom and GDCM read it.
			at := int(data[offset] | data[offset+1]<<16)
			offset += 2
			if at >= len(data) {
				return nil, fmt.Errorf("%w: indirect segment offset %d past the end", errSegments, at)
			}
			p, _ := prev()
			more, err := expandSegments(data, at, length, p, depth+1)
			if err != nil {
				return nil, err
			}
			if len(out)+len(more) > maxLUTEntries {
				return nil, fmt.Errorf("%w: expands beyond %d entries", errSegments, maxLUTEntries)
			}
			out = append(out, more...)
		default:
			return nil, fmt.Errorf("%w: unknown segment type %d", errSegments, op)
		}
	}
	return out, nil
}

// readPalette reads the red, green and blue Palette Color LUTs (PS3.3
// C.7.6.3.1.5-6), from LUT Data or Segmented LUT Data.
func (a attrs) readPalette(signed bool) ([3]*lut, error) {
	var p [3]*lut
	for c := range p {
		e := a.find(paletteDescriptors[c])
		if e == nil {
			return p, fmt.Errorf("%w: palette colour without a %v LUT descriptor", sentinel.ErrInvalid, paletteDescriptors[c])
		}
		d, err := a.readDescriptor(e, signed)
		if err != nil {
			return p, err
		}
		if d.bits != 8 && d.bits != 16 {
			return p, fmt.Errorf("%w: palette colour LUT of %d bits per entry", sentinel.ErrInvalid, d.bits)
		}
		switch {
		case a.find(paletteData[c]) != nil:
			p[c], err = a.readLUTData(a.find(paletteData[c]), d)
		case a.find(paletteSegmented[c]) != nil:
			p[c], err = a.readSegmented(a.find(paletteSegmented[c]), d)
		default:
			err = fmt.Errorf("%w: palette colour without %v LUT data", sentinel.ErrInvalid, paletteData[c])
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

// readSequenceLUT reads the LUT of the first item of a Modality LUT or VOI
// LUT Sequence, or returns nil when the sequence is absent.
func (a attrs) readSequenceLUT(seq tag.Tag, signed bool) (*lut, error) {
	item := firstItem(a.find(seq))
	if item == nil {
		return nil, nil
	}
	in := attrs{ds: &dicom.Dataset{Elements: item}, bo: a.bo}
	d, err := in.readDescriptor(in.find(tag.LUTDescriptor), signed)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", seq, err)
	}
	t, err := in.readLUTData(in.find(tag.LUTData), d)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", seq, err)
	}
	return t, nil
}

// paletteLuminance returns, for every palette index from the tables'
// first mapped value, the luminance of its colour in [0, 1].
func paletteLuminance(p [3]*lut) []float32 {
	n := min(len(p[0].entries), len(p[1].entries), len(p[2].entries))
	scale := max(p[0].outputMax(), p[1].outputMax(), p[2].outputMax())
	out := make([]float32, n)
	for i := range out {
		r, g, b := float64(p[0].entries[i]), float64(p[1].entries[i]), float64(p[2].entries[i])
		out[i] = float32(min(max(luminance(r, g, b)/scale, 0), 1))
	}
	return out
}
