package dicomio

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
)

// owElem builds an OW element from raw bytes.
func owElem(tg tag.Tag, b []byte) *dicom.Element {
	v, _ := dicom.NewValue(b)
	return &dicom.Element{Tag: tg, ValueRepresentation: tag.VRBytes, RawValueRepresentation: "OW", Value: v}
}

// owWords builds an OW element from 16-bit words, little endian.
func owWords(tg tag.Tag, words ...int) *dicom.Element {
	b := make([]byte, 2*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(w))
	}
	return owElem(tg, b)
}

// palette returns the descriptors and data of a palette whose three
// channels are given; data builds each channel's data element.
func palette(t *testing.T, desc []int, data func(tg tag.Tag, ch []int) *dicom.Element, segmented bool, r, g, b []int) []*dicom.Element {
	var out []*dicom.Element
	for c, ch := range [][]int{r, g, b} {
		out = append(out, elem(t, paletteDescriptors[c], desc))
		if segmented {
			out = append(out, data(paletteSegmented[c], ch))
		} else {
			out = append(out, data(paletteData[c], ch))
		}
	}
	return out
}

func words16(tg tag.Tag, ch []int) *dicom.Element { return owWords(tg, ch...) }

func bytes8(tg tag.Tag, ch []int) *dicom.Element {
	b := make([]byte, len(ch))
	for i, v := range ch {
		b[i] = byte(v)
	}
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	return owElem(tg, b)
}

// same returns three copies of a grey channel.
func same(ch ...int) ([]int, []int, []int) { return ch, ch, ch }

// lutItem is one item of a Modality or VOI LUT Sequence with US data.
func lutItem(t *testing.T, seq tag.Tag, desc []int, data []int) *dicom.Element {
	return elem(t, seq, [][]*dicom.Element{{elem(t, tag.LUTDescriptor, desc), elem(t, tag.LUTData, data)}})
}

// TestDisplayLUTs checks the display values of palette colour, Modality
// and VOI LUT Sequences and Presentation LUT Shape on synthetic files.
func TestDisplayLUTs(t *testing.T) {
	neg := func(v int) int { return int(uint16(int16(v))) }
	r, g, b := same(0, 32768, 65535)
	segR, segG, segB := same(0, 1, 0, 1, 4, 4000, 2, 1, 0, 0, 1, 2, 100)
	seg8R, seg8G, seg8B := same(0, 1, 0, 1, 3, 255)
	tests := []struct {
		name string
		s    spec
		want []float64
	}{
		{name: "palette 8-bit entries packed, clamped above",
			s: spec{rows: 1, cols: 6, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1, 2, 3, 5, 255},
				extra: palette(t, []int{4, 0, 8}, bytes8, false, []int{0, 255, 0, 0}, []int{0, 0, 255, 0}, []int{0, 0, 0, 255})},
			want: []float64{0, 0.299, 0.587, 0.114, 0.114, 0.114}},
		{name: "palette 16-bit entries, first mapped 10",
			s: spec{rows: 1, cols: 5, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 10, 11, 12, 200},
				extra: palette(t, []int{3, 10, 16}, words16, false, r, g, b)},
			want: []float64{0, 0, 32768.0 / 65535, 1, 1}},
		{name: "palette 8-bit entries in 16-bit words",
			s: spec{rows: 1, cols: 3, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1, 2},
				extra: palette(t, []int{3, 0, 8}, words16, false, []int{0, 51, 255}, []int{0, 51, 255}, []int{0, 51, 255})},
			want: []float64{0, 0.2, 1}},
		{name: "palette 8-bit entries in the high byte of 16-bit words",
			s: spec{rows: 1, cols: 3, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1, 2},
				extra: palette(t, []int{3, 0, 8}, words16, false, []int{0, 0x3300, 0xFF00}, []int{0, 0x3300, 0xFF00}, []int{0, 0x3300, 0xFF00})},
			want: []float64{0, 0x3300 / 65535.0, 0xFF00 / 65535.0}},
		{name: "palette 16-bit signed indices, first mapped -2",
			s: spec{rows: 1, cols: 5, bitsAllocated: 16, signed: true, photometric: "PALETTE COLOR", pixels: []int{-5, -2, -1, 0, 7},
				extra: palette(t, []int{3, neg(-2), 16}, words16, false, r, g, b)},
			want: []float64{0, 0, 32768.0 / 65535, 1, 1}},
		{name: "segmented palette 16-bit: discrete, linear, indirect, linear",
			s: spec{rows: 1, cols: 9, bitsAllocated: 16, photometric: "PALETTE COLOR", pixels: []int{0, 1, 2, 3, 4, 5, 6, 7, 8},
				extra: palette(t, []int{8, 0, 16}, words16, true, segR, segG, segB)},
			want: []float64{0, 1000 / 65535.0, 2000 / 65535.0, 3000 / 65535.0, 4000 / 65535.0, 0, 50 / 65535.0, 100 / 65535.0, 100 / 65535.0}},
		{name: "segmented palette 8-bit",
			s: spec{rows: 1, cols: 4, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1, 2, 3},
				extra: palette(t, []int{4, 0, 8}, bytes8, true, seg8R, seg8G, seg8B)},
			want: []float64{0, 85 / 255.0, 170 / 255.0, 1}},
		{name: "modality LUT sequence instead of rescale",
			s: spec{rows: 1, cols: 5, pixels: []int{0, 1, 2, 3, 60000}, slope: "10", intercept: "-5",
				extra: []*dicom.Element{lutItem(t, tag.ModalityLUTSequence, []int{4, 0, 8}, []int{0, 100, 200, 255})}},
			want: []float64{0, 100 / 255.0, 200 / 255.0, 1, 1}},
		{name: "VOI LUT sequence on rescaled values",
			s: spec{rows: 1, cols: 5, bitsAllocated: 8, pixels: []int{0, 1, 2, 3, 9}, intercept: "1",
				extra: []*dicom.Element{lutItem(t, tag.VOILUTSequence, []int{4, 1, 12}, []int{0, 1000, 2000, 4095})}},
			want: []float64{0, 1000 / 4095.0, 2000 / 4095.0, 1, 1}},
		{name: "window preferred to VOI LUT sequence",
			s: spec{rows: 1, cols: 4, bitsAllocated: 8, pixels: []int{0, 1, 2, 3}, intercept: "1", center: "3", width: "4",
				extra: []*dicom.Element{lutItem(t, tag.VOILUTSequence, []int{4, 1, 12}, []int{0, 1000, 2000, 4095})}},
			want: []float64{0, 1.0 / 3, 2.0 / 3, 1}},
		{name: "presentation LUT shape INVERSE",
			s: spec{rows: 1, cols: 3, bitsAllocated: 8, pixels: []int{0, 51, 255},
				extra: []*dicom.Element{elem(t, tag.PresentationLUTShape, []string{"INVERSE"})}},
			want: []float64{1, 0.8, 0}},
		{name: "MONOCHROME1 with INVERSE inverts once",
			s: spec{rows: 1, cols: 3, bitsAllocated: 8, photometric: "MONOCHROME1", pixels: []int{0, 51, 255},
				extra: []*dicom.Element{elem(t, tag.PresentationLUTShape, []string{"INVERSE"})}},
			want: []float64{1, 0.8, 0}},
		{name: "presentation LUT shape IDENTITY",
			s: spec{rows: 1, cols: 3, bitsAllocated: 8, pixels: []int{0, 51, 255},
				extra: []*dicom.Element{elem(t, tag.PresentationLUTShape, []string{"IDENTITY"})}},
			want: []float64{0, 0.2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeDICOM(t, tc.s)
			_, img, err := Load(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Pix) != len(tc.want) {
				t.Fatalf("%d pixels, want %d", len(img.Pix), len(tc.want))
			}
			for i, w := range tc.want {
				if math.Abs(float64(img.Pix[i])-w) > 1e-6 {
					t.Errorf("pixel %d = %.7f, want %.7f (all %v)", i, img.Pix[i], w, img.Pix)
				}
			}
			// The stored values stay the indices (pydicom's pixel_array).
			s, err := DecodeStored(path, Options{}, -1)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float64, s.Len())
			for i := range got {
				got[i] = s.Value(i)
			}
			want := make([]float64, len(tc.s.pixels))
			for i, v := range tc.s.pixels {
				want[i] = float64(v)
			}
			if !slices.Equal(got, want) {
				t.Errorf("stored %v, want %v", got, want)
			}
		})
	}
}

// TestLUTErrors checks that unusable LUTs fail the display image cleanly.
func TestLUTErrors(t *testing.T) {
	r, g, b := same(0, 1, 2)
	tests := []struct {
		name string
		s    spec
		msg  string
	}{
		{name: "palette without LUTs", s: spec{rows: 1, cols: 2, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1}},
			msg: "palette colour without"},
		{name: "palette data shorter than the descriptor", s: spec{rows: 1, cols: 2, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1},
			extra: palette(t, []int{4, 0, 16}, words16, false, r, g, b)}, msg: "6 bytes for 4 entries"},
		{name: "palette of 12-bit entries", s: spec{rows: 1, cols: 2, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1},
			extra: palette(t, []int{3, 0, 12}, words16, false, r, g, b)}, msg: "12 bits per entry"},
		{name: "unknown segment type", s: spec{rows: 1, cols: 2, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1},
			extra: palette(t, []int{3, 0, 16}, words16, true, []int{7, 1, 0}, []int{7, 1, 0}, []int{7, 1, 0})}, msg: "unknown segment type 7"},
		{name: "linear segment first", s: spec{rows: 1, cols: 2, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1},
			extra: palette(t, []int{3, 0, 16}, words16, true, []int{1, 3, 9}, []int{1, 3, 9}, []int{1, 3, 9})}, msg: "linear segment without a start"},
		{name: "self-referencing indirect segment", s: spec{rows: 1, cols: 2, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1},
			extra: palette(t, []int{3, 0, 16}, words16, true, []int{0, 1, 5, 2, 1, 3, 0}, []int{0, 1, 5, 2, 1, 3, 0}, []int{0, 1, 5, 2, 1, 3, 0})},
			msg: "nested too deep"},
		{name: "modality LUT data shorter than the descriptor", s: spec{rows: 1, cols: 2, bitsAllocated: 8, pixels: []int{0, 1},
			extra: []*dicom.Element{lutItem(t, tag.ModalityLUTSequence, []int{4, 0, 8}, []int{0, 100, 200})}}, msg: "3 entries, descriptor says 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeDICOM(t, tc.s)
			_, _, err := Load(path, Options{})
			if !errors.Is(err, sentinel.ErrInvalid) {
				t.Fatalf("Load: %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Load: %v, want %q in it", err, tc.msg)
			}
			// The stored values still decode.
			if _, err := DecodeStored(path, Options{}, -1); err != nil {
				t.Errorf("DecodeStored: %v", err)
			}
		})
	}
}
