package dicomio

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/suyashkumar/dicom"
	dicomframe "github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Test UIDs.
const (
	testSOPClass = "1.2.840.10008.5.1.4.1.1.1.1" // Digital X-Ray Image Storage - For Presentation
	testInstance = "1.2.826.0.1.3680043.8.498.1"
	testStudy    = "1.2.826.0.1.3680043.8.498.2"
	testSeries   = "1.2.826.0.1.3680043.8.498.3"
)

// spec describes a DICOM file for writeDICOM. Zero values mean: explicit VR
// little endian, one frame, one sample, MONOCHROME2, 16 bits allocated and
// stored, unsigned.
type spec struct {
	ts                        string
	rows, cols, frames        int
	samples, planar           int
	bitsAllocated, bitsStored int
	signed                    bool
	photometric               string
	// pixels holds the stored values of all frames, samples interleaved
	// (or planar when planar is 1); negative values are written in two's
	// complement.
	pixels []int
	// raw, when set, is written as the pixel data value instead of pixels.
	raw []byte
	// pixelData, when set, is written as the pixel data element.
	pixelData *dicom.Element
	// window, rescale: DS strings, written when not empty.
	center, width, slope, intercept string
	// extra elements are added; omit removes elements by tag.
	extra []*dicom.Element
	omit  []tag.Tag
}

func (s *spec) defaults() {
	if s.ts == "" {
		s.ts = uidExplicitLE
	}
	if s.frames == 0 {
		s.frames = 1
	}
	if s.samples == 0 {
		s.samples = 1
	}
	if s.bitsAllocated == 0 {
		s.bitsAllocated = 16
	}
	if s.bitsStored == 0 {
		s.bitsStored = s.bitsAllocated
	}
	if s.photometric == "" {
		s.photometric = "MONOCHROME2"
	}
}

// elem builds an element or fails the test.
func elem(t testing.TB, tg tag.Tag, v any) *dicom.Element {
	t.Helper()
	e, err := dicom.NewElement(tg, v)
	if err != nil {
		t.Fatalf("element %v: %v", tg, err)
	}
	return e
}

// nativePixelData builds a native PixelData element from stored values.
func nativePixelData(t testing.TB, s spec) *dicom.Element {
	t.Helper()
	if s.raw != nil {
		return elem(t, tag.PixelData, dicom.PixelDataInfo{IntentionallyUnprocessed: true, UnprocessedValueData: s.raw})
	}
	n := s.rows * s.cols
	per := n * s.samples
	if len(s.pixels) != per*s.frames {
		t.Fatalf("spec has %d pixels, want %d", len(s.pixels), per*s.frames)
	}
	var frames []*dicomframe.Frame
	for f := 0; f < s.frames; f++ {
		vals := s.pixels[f*per : (f+1)*per]
		switch s.bitsAllocated {
		case 8:
			nf := dicomframe.NewNativeFrame[uint8](8, s.rows, s.cols, n, s.samples)
			for i, v := range vals {
				nf.RawData[i] = uint8(v)
			}
			frames = append(frames, &dicomframe.Frame{NativeData: nf})
		case 16:
			nf := dicomframe.NewNativeFrame[uint16](16, s.rows, s.cols, n, s.samples)
			for i, v := range vals {
				nf.RawData[i] = uint16(v)
			}
			frames = append(frames, &dicomframe.Frame{NativeData: nf})
		default:
			t.Fatalf("bits allocated %d not supported by the test writer", s.bitsAllocated)
		}
	}
	return elem(t, tag.PixelData, dicom.PixelDataInfo{Frames: frames})
}

// datasetOf builds the data set for s, sorted by tag.
func datasetOf(t testing.TB, s spec) dicom.Dataset {
	t.Helper()
	s.defaults()
	ints := func(v int) []int { return []int{v} }
	strs := func(v string) []string { return []string{v} }
	elems := []*dicom.Element{
		elem(t, tag.FileMetaInformationVersion, []byte{0, 1}),
		elem(t, tag.MediaStorageSOPClassUID, strs(testSOPClass)),
		elem(t, tag.MediaStorageSOPInstanceUID, strs(testInstance)),
		elem(t, tag.TransferSyntaxUID, strs(s.ts)),
		elem(t, tag.ImplementationClassUID, strs("1.2.826.0.1.3680043.8.498.99")),
		elem(t, tag.SOPClassUID, strs(testSOPClass)),
		elem(t, tag.SOPInstanceUID, strs(testInstance)),
		elem(t, tag.StudyInstanceUID, strs(testStudy)),
		elem(t, tag.SeriesInstanceUID, strs(testSeries)),
		elem(t, tag.Modality, strs("DX")),
		elem(t, tag.AccessionNumber, strs("ACC0001")),
		elem(t, tag.PatientName, strs("Doe^Jane")),
		elem(t, tag.PatientID, strs("PID-0001")),
		elem(t, tag.PatientBirthDate, strs("19700101")),
		elem(t, tag.SamplesPerPixel, ints(s.samples)),
		elem(t, tag.PhotometricInterpretation, strs(s.photometric)),
		elem(t, tag.Rows, ints(s.rows)),
		elem(t, tag.Columns, ints(s.cols)),
		elem(t, tag.BitsAllocated, ints(s.bitsAllocated)),
		elem(t, tag.BitsStored, ints(s.bitsStored)),
		elem(t, tag.HighBit, ints(s.bitsStored-1)),
		elem(t, tag.PixelRepresentation, ints(map[bool]int{false: 0, true: 1}[s.signed])),
	}
	if s.samples > 1 {
		elems = append(elems, elem(t, tag.PlanarConfiguration, ints(s.planar)))
	}
	if s.frames > 1 {
		elems = append(elems, elem(t, tag.NumberOfFrames, strs(strconv.Itoa(s.frames))))
	}
	for tg, v := range map[tag.Tag]string{
		tag.WindowCenter: s.center, tag.WindowWidth: s.width,
		tag.RescaleSlope: s.slope, tag.RescaleIntercept: s.intercept,
	} {
		if v != "" {
			elems = append(elems, elem(t, tg, strs(v)))
		}
	}
	elems = append(elems, s.extra...)
	switch {
	case s.pixelData != nil:
		elems = append(elems, s.pixelData)
	case s.rows > 0:
		elems = append(elems, nativePixelData(t, s))
	}
	elems = slices.DeleteFunc(elems, func(e *dicom.Element) bool { return slices.Contains(s.omit, e.Tag) })
	slices.SortStableFunc(elems, func(a, b *dicom.Element) int { return cmp.Compare(a.Tag.Uint32(), b.Tag.Uint32()) })
	return dicom.Dataset{Elements: elems}
}

// encodeDICOM returns the bytes of the file described by s.
func encodeDICOM(t testing.TB, s spec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := dicom.Write(&buf, datasetOf(t, s)); err != nil {
		t.Fatalf("dicom.Write: %v", err)
	}
	return buf.Bytes()
}

// writeFile writes data to name in a fresh temporary folder.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeDICOM writes the file described by s and returns its path.
func writeDICOM(t testing.TB, s spec) string {
	t.Helper()
	return writeFile(t, "test.dcm", encodeDICOM(t, s))
}
