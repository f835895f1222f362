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
	f, inst, err := open(path, opt)
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

// Stored is pixel data after decompression and before any LUT: the values
// pydicom's pixel_array holds.
type Stored struct {
	// Frames is the number of frames held, Samples the samples per pixel.
	Rows, Columns, Frames, Samples int
	// Photometric is the interpretation of the values: RGB where a codec
	// converted the colour space, else the header's.
	Photometric string
	// Dtype is the numpy dtype pydicom gives these values: uint8 for 1 and
	// 8 bits allocated, (u)int16, (u)int32, float32 or float64.
	Dtype string
	// Values holds integer samples frame by frame, row by row, the
	// samples of a pixel adjacent; Floats holds float pixel data instead.
	//
	// Values are held in 32 bits, which every integer dtype fits except
	// uint32: an unsigned 32-bit value above 2^31-1 (BitsAllocated 32,
	// PixelRepresentation 0) is kept as its bit pattern, int32(uint32(v)),
	// and so looks negative. When Dtype is "uint32", read each value as
	// uint32(v) for its numeric value; values of every other dtype are the
	// numbers themselves. Either way, the low bytes of a value, least
	// significant first, are its bytes in the dtype in little endian.
	Values []int32
	Floats []float64
}

// DecodeStored decodes frame index of a DICOM file (every frame when index
// is negative) into its stored values.
func DecodeStored(path string, opt Options, index int) (s Stored, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = Stored{}, fmt.Errorf("dicomio: %s: %w: decoder panicked: %v", path, sentinel.ErrInvalid, r)
		}
	}()
	f, _, err := open(path, opt)
	if err != nil {
		return Stored{}, err
	}
	l := f.layout
	first, last := 0, l.frames
	if index >= 0 {
		if index >= l.frames {
			return Stored{}, fmt.Errorf("dicomio: %s: frame %d of %d", path, index, l.frames)
		}
		first, last = index, index+1
	}
	s = Stored{Rows: l.rows, Columns: l.cols, Frames: last - first, Samples: l.samples, Dtype: dtype(l)}
	for i := first; i < last; i++ {
		fr, err := f.codec(f.pixels, l, i)
		if err != nil {
			return Stored{}, fmt.Errorf("dicomio: %s: %w", path, err)
		}
		s.Photometric = fr.photometric
		if last-first == 1 { // the frame's own slices: a copy would double the memory touched
			s.Values, s.Floats = fr.samples, fr.floats
			break
		}
		if s.Values == nil && fr.samples != nil {
			s.Values = make([]int32, 0, len(fr.samples)*(last-first))
		}
		s.Values = append(s.Values, fr.samples...)
		s.Floats = append(s.Floats, fr.floats...)
	}
	return s, nil
}

// DisplayFrame returns frame index of a DICOM file through the display
// pipeline: the image the detector sees, at native resolution.
func DisplayFrame(path string, opt Options, index int) (img sentinel.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = sentinel.Image{}, fmt.Errorf("dicomio: %s: %w: decoder panicked: %v", path, sentinel.ErrInvalid, r)
		}
	}()
	f, _, err := open(path, opt)
	if err != nil {
		return sentinel.Image{}, err
	}
	if index < 0 || index >= f.layout.frames {
		return sentinel.Image{}, fmt.Errorf("dicomio: %s: frame %d of %d", path, index, f.layout.frames)
	}
	fr, err := f.codec(f.pixels, f.layout, index)
	if err == nil {
		img, err = render(fr, f.layout, f.header)
	}
	if err != nil {
		return sentinel.Image{}, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	return img, nil
}

// open reads a DICOM file up to its pixel data.
func open(path string, opt Options) (dicomFile, sentinel.Instance, error) {
	inst := sentinel.Instance{SourcePath: path}
	data, err := readFile(path, opt.maxFileBytes())
	if err != nil {
		return dicomFile{}, inst, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	if format, err := Sniff(data); err != nil || format != sentinel.FormatDICOM {
		return dicomFile{}, inst, fmt.Errorf("dicomio: %s: %w", path, errors.Join(sentinel.ErrNotDICOM, err))
	}
	f, err := openDICOM(data, &inst, opt)
	if err != nil {
		return f, inst, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	return f, inst, nil
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
