// Package codec holds what the pixel data codecs under dicomio/ share: the
// parameters a frame is decoded with, the decoded frame, and the two kinds
// of failure. Each codec lives in its own package (rle, jpeg, jpegls,
// jpeg2000) with one entry point:
//
//	func Decode(data []byte, p codec.Params) (codec.Frame, error)
//
// Codecs see only the bytes of one frame; dicomio assembles frames from
// encapsulated fragments and turns frames into images.
package codec

import (
	"errors"
	"fmt"
)

// Params describes the frame the DICOM header promises. A codec checks its
// codestream against it and refuses a mismatch rather than return pixels
// of another shape.
type Params struct {
	Rows, Cols int
	// Samples is samples per pixel (1 or 3).
	Samples int
	// BitsAllocated and BitsStored are from the DICOM header; codecs whose
	// codestream carries its own precision check it is at most BitsStored
	// (or BitsAllocated where encoders are known to write that).
	BitsAllocated int
	BitsStored    int
	// Signed is PixelRepresentation = 1.
	Signed bool
	// Photometric is the header's Photometric Interpretation. A codec
	// whose codestream may or may not ask for a colour transform (JPEG's
	// JFIF and Adobe markers) returns the samples in this interpretation
	// when it names a YCbCr one, as pydicom's pixel_array does.
	Photometric string
	// MaxSamples bounds Rows × Cols × Samples; a codestream claiming more is
	// refused before anything is allocated.
	MaxSamples int64
	// Buffer, when it is large enough, is where the codec puts the frame's
	// samples (through SampleSlice) instead of a new allocation; the
	// returned Frame then refers to it. Its contents on entry do not
	// matter.
	Buffer []int32
}

// SampleSlice returns n zeroed samples for a frame: the start of
// p.Buffer when it holds n, a new slice otherwise.
func (p Params) SampleSlice(n int) []int32 {
	if cap(p.Buffer) < n {
		return make([]int32, n)
	}
	s := p.Buffer[:n]
	clear(s)
	return s
}

// SamplesToFill is SampleSlice for a codec that writes every one of the n
// samples before it returns the frame: a reused buffer is not cleared,
// and holds whatever it held.
func (p Params) SamplesToFill(n int) []int32 {
	if cap(p.Buffer) < n {
		return make([]int32, n)
	}
	return p.Buffer[:n]
}

// Frame is one decoded frame: stored sample values before any LUT,
// pixel by pixel with the samples of a pixel adjacent (R G B R G B …),
// whatever the planar configuration of the source.
type Frame struct {
	Width, Height, Components int
	// Precision is the sample precision the codestream declares, in bits.
	Precision int
	// Samples holds Width × Height × Components values. Unsigned data is
	// 0 … 2^Precision−1; signed data is already sign-extended.
	Samples []int32
	// ColorTransformed is set when the codec converted the samples to RGB
	// (e.g. a baseline JPEG stored as YCbCr, or JPEG 2000's RCT/ICT), so
	// dicomio treats them as RGB whatever the header's photometric
	// interpretation says.
	ColorTransformed bool
}

// ErrCorrupt means the codestream is malformed or truncated: the file is
// invalid.
var ErrCorrupt = errors.New("corrupt codestream")

// ErrUnsupported means the codestream is well formed but uses a feature
// this codec does not decode.
var ErrUnsupported = errors.New("unsupported codestream feature")

// Corruptf returns an error wrapping ErrCorrupt.
func Corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Unsupportedf returns an error wrapping ErrUnsupported.
func Unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// Check validates p and the size a codestream declares against it, before
// a codec allocates the frame.
func (p Params) Check(width, height, components int) error {
	if width != p.Cols || height != p.Rows {
		return Corruptf("codestream is %dx%d, header says %dx%d", width, height, p.Cols, p.Rows)
	}
	if components != p.Samples {
		return Corruptf("codestream has %d components, header says %d samples per pixel", components, p.Samples)
	}
	if width < 1 || height < 1 || components < 1 {
		return Corruptf("empty frame %dx%dx%d", width, height, components)
	}
	if p.MaxSamples > 0 && int64(width)*int64(height)*int64(components) > p.MaxSamples {
		return Unsupportedf("frame of %dx%dx%d samples exceeds the limit of %d", width, height, components, p.MaxSamples)
	}
	return nil
}
