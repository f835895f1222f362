package dicomio

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sentinel-pacs/sentinel"
)

// Stored is pixel data after decompression and before any LUT: the values
// pydicom's pixel_array holds, in the bytes numpy holds them in.
type Stored struct {
	// Frames is the number of frames held, Samples the samples per pixel.
	Rows, Columns, Frames, Samples int
	// Photometric is the interpretation of the values: RGB where a codec
	// converted the colour space, else the header's.
	Photometric string
	// Dtype is the numpy dtype pydicom gives these values: uint8 for 1 and
	// 8 bits allocated, int8, (u)int16, (u)int32, float32 or float64.
	Dtype string
	// Data holds the samples frame by frame, row by row, the samples of a
	// pixel adjacent, each in Dtype's width in little endian: the data of
	// a C-ordered numpy array of shape (frames, rows, columns[, samples]).
	Data []byte
}

// Len returns the number of samples held.
func (s Stored) Len() int { return len(s.Data) / itemSize(s.Dtype) }

// Value returns sample i as a number (every dtype's values are exact in a
// float64).
func (s Stored) Value(i int) float64 {
	le := binary.LittleEndian
	switch s.Dtype {
	case "uint8":
		return float64(s.Data[i])
	case "int8":
		return float64(int8(s.Data[i]))
	case "uint16":
		return float64(le.Uint16(s.Data[2*i:]))
	case "int16":
		return float64(int16(le.Uint16(s.Data[2*i:])))
	case "uint32":
		return float64(le.Uint32(s.Data[4*i:]))
	case "int32":
		return float64(int32(le.Uint32(s.Data[4*i:])))
	case "float32":
		return float64(math.Float32frombits(le.Uint32(s.Data[4*i:])))
	}
	return math.Float64frombits(le.Uint64(s.Data[8*i:]))
}

// itemSize is the width in bytes of a dtype's values.
func itemSize(dtype string) int {
	switch dtype {
	case "uint8", "int8":
		return 1
	case "uint16", "int16":
		return 2
	case "float64":
		return 8
	}
	return 4
}

// DecodeStored decodes frame index of a DICOM file (every frame when index
// is negative) into its stored values.
func DecodeStored(path string, opt Options, index int) (s Stored, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = Stored{}, fmt.Errorf("dicomio: %s: %w: decoder panicked: %v", path, sentinel.ErrInvalid, r)
		}
	}()
	f, _, release, err := open(path, opt)
	defer release()
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
	if err := l.checkDecoded(opt.maxPixels(), last-first); err != nil {
		return Stored{}, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	s = Stored{Rows: l.rows, Columns: l.cols, Frames: last - first, Samples: l.samples, Dtype: dtype(l)}
	if f.nativeDirect() {
		if s.Data, err = nativeFrames(f.pixels, l, first, last); err != nil {
			return Stored{}, fmt.Errorf("dicomio: %s: %w", path, err)
		}
		s.Photometric = l.interpretation()
		return s, nil
	}
	// The size is bounded by layout.check.
	s.Data = make([]byte, 0, (last-first)*l.rows*l.cols*l.samples*itemSize(s.Dtype))
	var buf []int32 // the samples of one frame, copied out before the next
	for i := first; i < last; i++ {
		fr, err := f.codec(f.pixels, l, i, buf)
		if err != nil {
			return Stored{}, fmt.Errorf("dicomio: %s: %w", path, err)
		}
		s.Photometric = fr.photometric
		s.Data = appendFrame(s.Data, fr, s.Dtype)
		buf = fr.samples
	}
	return s, nil
}

// nativeDirect reports whether the file's native pixel data is laid out
// sample for sample as Stored holds it, so that its frames need only
// their samples masked and put in little endian, without a frame of
// 32-bit samples in between: the common uncompressed radiograph, whose
// decoding is bound by the memory it touches.
func (f dicomFile) nativeDirect() bool {
	l, px := f.layout, f.pixels
	switch {
	case !f.native || px.encapsulated || px.tag != tagPixelData:
		return false
	case l.bitsAllocated != 8 && l.bitsAllocated != 16 && l.bitsAllocated != 32:
		return false
	case l.storedPerPixel() != l.samples || (l.samples > 1 && l.planar != 0):
		return false
	case l.bitsAllocated == 8 && px.vr == "OW" && px.bo == binary.BigEndian:
		return false // byte-swapped words (see decodeNative)
	}
	return true
}

// nativeFrames returns frames first to last-1 of native pixel data as
// decodeNative would return them, in the dtype's bytes: a copy of the
// stored words (which an append from nil makes without first clearing the
// new memory) recoded in place.
func nativeFrames(px pixelData, l layout, first, last int) ([]byte, error) {
	frameBytes, err := nativeFrameBytes(px, l)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), px.native[first*frameBytes:last*frameBytes]...)
	recode(out, l.bitsAllocated/8, px.bo == binary.BigEndian, newSampleFormat(l))
	return out, nil
}

// recode rewrites, in place, words of size bytes in the given byte order
// as their sample values in little endian (see sampleFormat.value).
func recode(b []byte, size int, big bool, sf sampleFormat) {
	plain := sf.shift == 0 && sf.extend == 0
	switch {
	case plain && !big && sf.mask == 1<<(8*size)-1:
		// Every bit is a sample bit: the bytes are the values already.
	case size == 1:
		for i, w := range b {
			b[i] = byte(sf.value(uint64(w)))
		}
	case size == 2 && plain && !big:
		// Four words at a time.
		m := sf.mask * 0x0001_0001_0001_0001
		i := 0
		for ; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])&m)
		}
		for ; i+1 < len(b); i += 2 {
			binary.LittleEndian.PutUint16(b[i:], binary.LittleEndian.Uint16(b[i:])&uint16(sf.mask))
		}
	case size == 2:
		for i := 0; i+1 < len(b); i += 2 {
			w := uint64(b[i]) | uint64(b[i+1])<<8
			if big {
				w = uint64(b[i])<<8 | uint64(b[i+1])
			}
			binary.LittleEndian.PutUint16(b[i:], uint16(sf.value(w)))
		}
	default:
		for i := 0; i+3 < len(b); i += 4 {
			w := uint64(binary.LittleEndian.Uint32(b[i:]))
			if big {
				w = uint64(binary.BigEndian.Uint32(b[i:]))
			}
			binary.LittleEndian.PutUint32(b[i:], uint32(sf.value(w)))
		}
	}
}

// appendFrame appends a decoded frame to dst in dtype's bytes: the low
// bytes of each sample, least significant first (an unsigned 32-bit
// sample above 2^31-1 is held as its bit pattern, whose bytes are those of
// the uint32), or the float value.
func appendFrame(dst []byte, fr frame, dtype string) []byte {
	le := binary.LittleEndian
	switch itemSize(dtype) {
	case 1:
		for _, v := range fr.samples {
			dst = append(dst, byte(v))
		}
	case 2:
		for _, v := range fr.samples {
			dst = le.AppendUint16(dst, uint16(v))
		}
	case 4:
		if dtype == "float32" {
			for _, v := range fr.floats {
				dst = le.AppendUint32(dst, math.Float32bits(float32(v)))
			}
			break
		}
		for _, v := range fr.samples {
			dst = le.AppendUint32(dst, uint32(v))
		}
	default:
		for _, v := range fr.floats {
			dst = le.AppendUint64(dst, math.Float64bits(v))
		}
	}
	return dst
}
