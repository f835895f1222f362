package phantom

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// UIDs of the files WriteDICOM makes.
const (
	// secondaryCaptureUID is Secondary Capture Image Storage: its IOD asks
	// for little beyond the image, which suits a synthetic picture (the
	// Digital X-Ray IOD requires acquisition attributes a phantom does not
	// have).
	secondaryCaptureUID = "1.2.840.10008.5.1.4.1.1.7"
	explicitLittleUID   = "1.2.840.10008.1.2.1"
	// implementationUID identifies this writer in the file meta.
	implementationUID = "2.25.160938170725418130432735006374785040167"
)

// Meta is the identity written into a phantom DICOM file.
type Meta struct {
	PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, AccessionNumber string
	// Monochrome1 stores the pixels inverted (MaxValue - v) as MONOCHROME1,
	// which displays the same.
	Monochrome1 bool
}

// WriteDICOM writes pix as a real DICOM file (Secondary Capture, explicit
// VR little endian, 16 bits allocated, 12 stored, MONOCHROME2 or
// MONOCHROME1 stored inverted, with file meta, UIDs, Modality "DX", and a
// window centre and width that show values 0..4095 as black to white)
// using the dicom library's writer, elements sorted by tag. It writes to a
// hidden temporary file beside path and renames it, so that a folder
// watcher never sees a partial file.
func WriteDICOM(path string, pix []uint16, size int, meta Meta) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("phantom: write %s: %w", path, err)
		}
	}()
	switch {
	case size < 1 || size > 65535 || len(pix) != size*size:
		return fmt.Errorf("%d pixels for a %d×%d image", len(pix), size, size)
	case meta.SOPInstanceUID == "" || meta.StudyInstanceUID == "" || meta.SeriesInstanceUID == "":
		return errors.New("SOP, study and series instance UIDs are required")
	}
	ds, err := dataset(pix, size, meta)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp, ds); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// write runs the dicom library's writer, which can panic on data it does
// not expect.
func write(f *os.File, ds dicom.Dataset) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("dicom writer panicked: %v", r)
		}
	}()
	return dicom.Write(f, ds)
}

// dataset builds the data set of a phantom, sorted by tag.
func dataset(pix []uint16, size int, meta Meta) (dicom.Dataset, error) {
	photometric := "MONOCHROME2"
	nf := frame.NewNativeFrame[uint16](16, size, size, size*size, 1)
	copy(nf.RawData, pix)
	if meta.Monochrome1 {
		photometric = "MONOCHROME1"
		for i, v := range nf.RawData {
			nf.RawData[i] = MaxValue - min(v, MaxValue)
		}
	}
	str := func(v ...string) []string { return v }
	num := func(v int) []int { return []int{v} }
	values := []struct {
		t tag.Tag
		v any
	}{
		{tag.FileMetaInformationVersion, []byte{0, 1}},
		{tag.MediaStorageSOPClassUID, str(secondaryCaptureUID)},
		{tag.MediaStorageSOPInstanceUID, str(meta.SOPInstanceUID)},
		{tag.TransferSyntaxUID, str(explicitLittleUID)},
		{tag.ImplementationClassUID, str(implementationUID)},
		{tag.ImplementationVersionName, str("SENTINEL_PHANTOM")},
		{tag.ImageType, str("DERIVED", "SECONDARY")},
		{tag.SOPClassUID, str(secondaryCaptureUID)},
		{tag.SOPInstanceUID, str(meta.SOPInstanceUID)},
		{tag.StudyDate, str("")},
		{tag.StudyTime, str("")},
		{tag.AccessionNumber, str(meta.AccessionNumber)},
		{tag.Modality, str("DX")},
		{tag.ConversionType, str("SYN")}, // synthetic image
		{tag.ReferringPhysicianName, str("")},
		{tag.PatientName, str("Phantom^Synthetic")},
		{tag.PatientID, str(meta.PatientID)},
		{tag.PatientBirthDate, str("")},
		{tag.PatientSex, str("")},
		{tag.StudyInstanceUID, str(meta.StudyInstanceUID)},
		{tag.SeriesInstanceUID, str(meta.SeriesInstanceUID)},
		{tag.StudyID, str("")},
		{tag.SeriesNumber, str("1")},
		{tag.InstanceNumber, str("1")},
		{tag.PatientOrientation, str("L", "F")}, // drawn as a PA view
		{tag.SamplesPerPixel, num(1)},
		{tag.PhotometricInterpretation, str(photometric)},
		{tag.Rows, num(size)},
		{tag.Columns, num(size)},
		{tag.BitsAllocated, num(16)},
		{tag.BitsStored, num(12)},
		{tag.HighBit, num(11)},
		{tag.PixelRepresentation, num(0)},
		// Centre 2048, width 4096 maps stored 0..4095 linearly onto
		// black..white (PS3.3 C.11.2.1.2.1): y = x/4095.
		{tag.WindowCenter, str("2048")},
		{tag.WindowWidth, str("4096")},
		{tag.PixelData, dicom.PixelDataInfo{Frames: []*frame.Frame{{NativeData: nf}}}},
	}
	elems := make([]*dicom.Element, 0, len(values))
	for _, v := range values {
		e, err := dicom.NewElement(v.t, v.v)
		if err != nil {
			return dicom.Dataset{}, fmt.Errorf("element %v: %w", v.t, err)
		}
		elems = append(elems, e)
	}
	// The library writes elements in the order given; PS3.5 7.1 wants
	// ascending tags.
	slices.SortFunc(elems, func(a, b *dicom.Element) int { return cmp.Compare(a.Tag.Uint32(), b.Tag.Uint32()) })
	return dicom.Dataset{Elements: elems}, nil
}

// WriteStudies writes n phantom films of the given kind and side into dir,
// as <prefix><NNNNN>.dcm, twenty to a study (one series each), every film
// with a fresh SOP Instance UID drawn from rng: a burst as a PACS export
// folder receives it.
func WriteStudies(rng *rand.Rand, dir, prefix string, n, size int, kind Kind) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var study string
	for i := range n {
		if i%20 == 0 {
			study = NewUID(rng)
		}
		meta := Meta{StudyInstanceUID: study, SeriesInstanceUID: study + ".1", SOPInstanceUID: NewUID(rng), PatientID: "BURST"}
		if err := WriteDICOM(filepath.Join(dir, fmt.Sprintf("%s%05d.dcm", prefix, i)), Generate(rng, size, kind), size, meta); err != nil {
			return err
		}
	}
	return nil
}
