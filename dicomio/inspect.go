package dicomio

import (
	"errors"
	"fmt"

	"github.com/sentinel-pacs/sentinel"
)

// Header summarises how a DICOM file stores its pixel data, as its header
// says. It is what `sentinel decode FILE` prints.
type Header struct {
	TransferSyntaxUID  string
	TransferSyntaxName string
	Photometric        string
	Rows, Columns      int
	Frames             int
	SamplesPerPixel    int
	BitsAllocated      int
	BitsStored         int
	HighBit            int
	Signed             bool
	// Planar is the Planar Configuration of colour data.
	Planar int
	// Encapsulated is set for compressed pixel data, Fragments is then
	// the number of its fragments.
	Encapsulated bool
	Fragments    int
	// Float is set for Float or Double Float Pixel Data.
	Float bool
	// Problem says why the pixel data cannot be decoded (an unsupported
	// transfer syntax, no pixel data, an impossible layout), or is nil.
	Problem error
}

// ReadHeader reads the header of a DICOM file without decoding its pixel
// data. The error is for a file whose header cannot be read at all; a
// header read from a file whose pixels cannot be decoded comes back with
// Problem set.
func ReadHeader(path string, opt Options) (Header, error) {
	f, inst, release, err := open(path, opt)
	defer release()
	if !f.parsed {
		if err == nil {
			err = fmt.Errorf("%w: no header", sentinel.ErrInvalid)
		}
		return Header{}, err
	}
	l := f.header.layout
	if err == nil {
		l = f.layout
	}
	return Header{
		TransferSyntaxUID:  inst.TransferSyntaxUID,
		TransferSyntaxName: syntaxName(inst.TransferSyntaxUID),
		Photometric:        l.photometric,
		Rows:               l.rows, Columns: l.cols, Frames: l.frames,
		SamplesPerPixel: l.samples,
		BitsAllocated:   l.bitsAllocated, BitsStored: l.bitsStored, HighBit: l.highBit,
		Signed: l.signed, Planar: l.planar,
		Encapsulated: f.pixels.encapsulated, Fragments: len(f.pixels.fragments),
		Float:   f.pixels.tag == tagFloatPixelData || f.pixels.tag == tagDoublePixelData,
		Problem: err,
	}, nil
}

// DisplayFrame returns frame index of a DICOM file through the display
// pipeline: the image the detector sees, at native resolution.
func DisplayFrame(path string, opt Options, index int) (img sentinel.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = sentinel.Image{}, fmt.Errorf("dicomio: %s: %w: decoder panicked: %v", path, sentinel.ErrInvalid, r)
		}
	}()
	f, _, release, err := open(path, opt)
	defer release()
	if err != nil {
		return sentinel.Image{}, err
	}
	if index < 0 || index >= f.layout.frames {
		return sentinel.Image{}, fmt.Errorf("dicomio: %s: frame %d of %d", path, index, f.layout.frames)
	}
	buf := pooledSamples()
	fr, err := f.codec(f.pixels, f.layout, index, buf)
	if err == nil {
		img, err = render(fr, f.layout, f.header)
	}
	releaseSamples(buf, fr.samples)
	if err != nil {
		return sentinel.Image{}, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	return img, nil
}

// open reads a DICOM file up to its pixel data. The file's bytes are in a
// reused buffer that f refers to: the caller must call release (always
// non-nil) once it has what it needs from f, and must return nothing that
// aliases them.
func open(path string, opt Options) (f dicomFile, inst sentinel.Instance, release func(), err error) {
	inst = sentinel.Instance{SourcePath: path}
	data, release, err := readPooled(path, opt.maxFileBytes(), opt.NoFollow)
	if err != nil {
		return dicomFile{}, inst, release, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	if format, err := Sniff(data); err != nil || format != sentinel.FormatDICOM {
		return dicomFile{}, inst, release, fmt.Errorf("dicomio: %s: %w", path, errors.Join(sentinel.ErrNotDICOM, err))
	}
	f, err = openDICOM(data, &inst, opt)
	if err != nil {
		return f, inst, release, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	return f, inst, release, nil
}

// dtype is the numpy dtype of pydicom's pixel_array for a layout.
func dtype(l layout) string {
	switch {
	case l.float && l.bitsAllocated == 64:
		return "float64"
	case l.float:
		return "float32"
	case l.bitsAllocated == 8 && l.signed:
		return "int8"
	case l.bitsAllocated <= 8:
		return "uint8"
	case l.bitsAllocated <= 16 && l.signed:
		return "int16"
	case l.bitsAllocated <= 16:
		return "uint16"
	case l.signed:
		return "int32"
	}
	return "uint32"
}
