package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
)

// Functional group sequences of enhanced multi-frame images (PS3.3
// C.7.6.16), where rescale and window attributes live instead of the top
// level.
var (
	sharedFunctionalGroups   = tag.Tag{Group: 0x5200, Element: 0x9229}
	perFrameFunctionalGroups = tag.Tag{Group: 0x5200, Element: 0x9230}
)

// parseHeader has the dicom library parse the data set bytes that the
// scanner validated (everything before the top-level pixel data), given in
// parts. The library panics on some inputs, so the call is fenced by
// recover.
func parseHeader(parts [][]byte, enc encoding) (ds dicom.Dataset, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: dicom parser panicked: %v", sentinel.ErrInvalid, r)
		}
	}()
	meta := syntheticMeta(enc.libraryUID())
	readers := []io.Reader{bytes.NewReader(meta)}
	size := int64(len(meta))
	for _, p := range parts {
		readers = append(readers, bytes.NewReader(p))
		size += int64(len(p))
	}
	ds, err = dicom.Parse(io.MultiReader(readers...), size, nil,
		dicom.SkipPixelData(),
		// Specific Character Set is left out (see headerParts); this
		// covers a file that holds a second one.
		dicom.AllowUnknownSpecificCharacterSet())
	if err != nil {
		return dicom.Dataset{}, fmt.Errorf("%w: data set: %w", sentinel.ErrInvalid, err)
	}
	return ds, nil
}

// attrs reads attribute values from a parsed data set. It never uses the
// library's Must* helpers, which panic on unexpected value types: a value of
// the wrong type reads as absent.
type attrs struct {
	ds *dicom.Dataset
	// bo is the data set's byte order, for values stored as UN.
	bo binary.ByteOrder
}

// find returns the top-level element with tag t, or nil.
func (a attrs) find(t tag.Tag) *dicom.Element {
	e, err := a.ds.FindElementByTag(t)
	if err != nil {
		return nil
	}
	return e
}

// findFunctional returns the element with tag t from the top level, or
// else from the shared functional groups, or else from the first frame's
// functional groups of an enhanced multi-frame image.
func (a attrs) findFunctional(t tag.Tag) *dicom.Element {
	if e := a.find(t); e != nil {
		return e
	}
	for _, g := range []tag.Tag{sharedFunctionalGroups, perFrameFunctionalGroups} {
		item := firstItem(a.find(g))
		for _, macro := range item {
			for _, e := range firstItem(macro) {
				if e.Tag == t {
					return e
				}
			}
		}
	}
	return nil
}

// firstItem returns the elements of the first item of a sequence element.
func firstItem(e *dicom.Element) []*dicom.Element {
	if e == nil || e.Value == nil || e.Value.ValueType() != dicom.Sequences {
		return nil
	}
	items, ok := e.Value.GetValue().([]*dicom.SequenceItemValue)
	if !ok || len(items) == 0 || items[0] == nil {
		return nil
	}
	elems, _ := items[0].GetValue().([]*dicom.Element)
	return elems
}

// stringValues returns the string values of e. A value stored with VR UN
// (bytes) is read as text, as its real VR would have it.
func stringValues(e *dicom.Element) []string {
	if e == nil || e.Value == nil {
		return nil
	}
	switch e.Value.ValueType() {
	case dicom.Strings:
		v, _ := e.Value.GetValue().([]string)
		return v
	case dicom.Bytes:
		if b, _ := e.Value.GetValue().([]byte); len(b) > 0 {
			return strings.Split(strings.Trim(string(b), " \x00"), "\\")
		}
	}
	return nil
}

// str returns the first string value of t, trimmed.
func (a attrs) str(t tag.Tag) string {
	v := stringValues(a.find(t))
	if len(v) == 0 {
		return ""
	}
	return strings.Trim(v[0], " \x00")
}

// integer returns the first value of t, whether stored as a binary integer
// (US, SS, UL, SL) or as a string (IS).
func (a attrs) integer(t tag.Tag) (int, bool) {
	e := a.find(t)
	if e == nil || e.Value == nil {
		return 0, false
	}
	switch e.Value.ValueType() {
	case dicom.Ints:
		v, _ := e.Value.GetValue().([]int)
		if len(v) > 0 {
			return v[0], true
		}
	case dicom.Strings:
		v := stringValues(e)
		if len(v) > 0 {
			n, err := strconv.Atoi(strings.Trim(v[0], " \x00"))
			return n, err == nil
		}
	case dicom.Bytes:
		// A US or UL value stored with VR UN.
		b, _ := e.Value.GetValue().([]byte)
		switch {
		case len(b) == 2:
			return int(a.bo.Uint16(b)), true
		case len(b) == 4:
			return int(a.bo.Uint32(b)), true
		}
	}
	return 0, false
}

// decimals returns the values of e, whether stored as strings (DS) or as
// binary floats (FL, FD). Values that do not parse, or are not finite, are
// dropped.
func decimals(e *dicom.Element) []float64 {
	if e == nil || e.Value == nil {
		return nil
	}
	var out []float64
	switch e.Value.ValueType() {
	case dicom.Floats:
		v, _ := e.Value.GetValue().([]float64)
		out = slices.Clone(v)
	case dicom.Strings:
		for _, s := range stringValues(e) {
			f, err := strconv.ParseFloat(strings.Trim(s, " \x00"), 64)
			if err == nil {
				out = append(out, f)
			}
		}
	}
	return slices.DeleteFunc(out, func(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) })
}

// header is what this package reads from a data set.
type header struct {
	sopClassUID, sopInstanceUID   string
	studyUID, seriesUID, modality string
	accessionNumber               string
	placement                     sentinel.Placement

	layout layout
	// hasRows etc. record which required attributes were present.
	hasRows, hasColumns, hasBitsAllocated bool
	framesOK                              bool

	slope, intercept float64
	windowCenter     []float64
	windowWidth      []float64
	voiFunction      string

	// modalityLUT and voiLUT are the first items of the Modality LUT and
	// VOI LUT Sequences, or nil; lutErr says why one could not be read.
	modalityLUT, voiLUT *lut
	lutErr              error
	// inverse is set by Presentation LUT Shape INVERSE.
	inverse bool
	// palette holds the red, green and blue LUTs of PALETTE COLOR;
	// paletteErr says why they could not be read.
	palette    [3]*lut
	paletteErr error
}

// readHeader extracts the attributes this package uses. It never reads
// patient name, ID or birth date.
func readHeader(ds *dicom.Dataset, bo binary.ByteOrder) header {
	a := attrs{ds: ds, bo: bo}
	h := header{
		sopClassUID:     a.str(tag.SOPClassUID),
		sopInstanceUID:  a.str(tag.SOPInstanceUID),
		studyUID:        a.str(tag.StudyInstanceUID),
		seriesUID:       a.str(tag.SeriesInstanceUID),
		modality:        a.str(tag.Modality),
		accessionNumber: a.str(tag.AccessionNumber),
		slope:           1,
	}
	h.placement = sentinel.Placement{
		AccessionNumber:  h.accessionNumber,
		StudyDate:        a.str(tag.StudyDate),
		StudyTime:        a.str(tag.StudyTime),
		ViewPosition:     strings.ToUpper(a.str(tag.ViewPosition)),
		Laterality:       strings.ToUpper(a.str(tag.ImageLaterality)),
		BodyPartExamined: strings.ToUpper(a.str(tag.BodyPartExamined)),
		SeriesNumber:     a.str(tag.SeriesNumber),
		InstanceNumber:   a.str(tag.InstanceNumber),
	}
	if h.placement.Laterality == "" {
		h.placement.Laterality = strings.ToUpper(a.str(tag.Laterality))
	}
	l := &h.layout
	l.rows, h.hasRows = a.integer(tag.Rows)
	l.cols, h.hasColumns = a.integer(tag.Columns)
	l.bitsAllocated, h.hasBitsAllocated = a.integer(tag.BitsAllocated)
	var ok bool
	if l.samples, ok = a.integer(tag.SamplesPerPixel); !ok {
		l.samples = 1
	}
	if l.bitsStored, ok = a.integer(tag.BitsStored); !ok {
		l.bitsStored = l.bitsAllocated
	}
	if l.highBit, ok = a.integer(tag.HighBit); !ok {
		l.highBit = l.bitsStored - 1
	}
	rep, _ := a.integer(tag.PixelRepresentation)
	l.signed = rep == 1
	l.planar, _ = a.integer(tag.PlanarConfiguration)
	l.photometric = strings.ToUpper(a.str(tag.PhotometricInterpretation))

	// NumberOfFrames is absent (or empty) for single-frame images.
	l.frames, h.framesOK = 1, true
	if n, ok := a.integer(tag.NumberOfFrames); ok {
		l.frames = n
	} else if a.str(tag.NumberOfFrames) != "" {
		h.framesOK = false
	}

	if v := decimals(a.findFunctional(tag.RescaleSlope)); len(v) > 0 && v[0] != 0 {
		h.slope = v[0]
	}
	if v := decimals(a.findFunctional(tag.RescaleIntercept)); len(v) > 0 {
		h.intercept = v[0]
	}
	h.windowCenter = decimals(a.findFunctional(tag.WindowCenter))
	h.windowWidth = decimals(a.findFunctional(tag.WindowWidth))
	if v := stringValues(a.findFunctional(tag.VOILUTFunction)); len(v) > 0 {
		h.voiFunction = strings.ToUpper(strings.Trim(v[0], " \x00"))
	}
	readLUTs(a, &h)
	return h
}

// readLUTs reads the lookup tables of the display pipeline: palette
// colour, Modality and VOI LUT Sequences, Presentation LUT Shape. A table
// that cannot be read is an error only for the display image, not for the
// stored values.
func readLUTs(a attrs, h *header) {
	l := h.layout
	if l.photometric == "PALETTE COLOR" {
		h.palette, h.paletteErr = a.readPalette(l.signed)
	}
	var err1, err2 error
	h.modalityLUT, err1 = a.readSequenceLUT(tag.ModalityLUTSequence, l.signed)
	// VOI LUT inputs are modality values: signed unless a Modality LUT
	// (whose outputs are unsigned) came first.
	h.voiLUT, err2 = a.readSequenceLUT(tag.VOILUTSequence, l.signed && h.modalityLUT == nil)
	h.lutErr = errors.Join(err1, err2)
	h.inverse = strings.ToUpper(a.str(tag.PresentationLUTShape)) == "INVERSE"
}
