package dicomio

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/sentinel-pacs/sentinel"
	pxcodec "github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// layout describes how the pixel data of an image is stored, as its header
// says (PS3.3 C.7.6.3).
type layout struct {
	rows, cols, samples, frames        int
	bitsAllocated, bitsStored, highBit int
	signed                             bool
	// planar is PlanarConfiguration: 0 = R1G1B1 R2G2B2..., 1 = RR.. GG.. BB..
	planar      int
	photometric string
	// float is set for Float and Double Float Pixel Data.
	float bool
	// encapsulated is set for compressed pixel data, which codecs return
	// one full sample per component and pixel whatever the planar
	// configuration or chroma subsampling of the codestream.
	encapsulated bool
}

// frame is one decoded frame: stored sample values (before any LUT), pixel
// by pixel with the samples of a pixel adjacent whatever the planar
// configuration, or, for float pixel data, the values themselves.
//
// Samples are held in 32 bits, the width codecs return, so that a frame
// needs neither a widened copy nor twice the memory: decoding is bound by
// the memory it touches. The value of a sample is layout.value of it,
// which reads the samples of an unsigned layout as uint32 so that 32-bit
// values above 2^31-1 keep their value.
type frame struct {
	samples []int32
	floats  []float64
	// photometric is the interpretation of samples. A codec that converts
	// colour spaces (a JPEG decoder returning RGB for YBR_FULL_422) says so
	// here.
	photometric string
}

// samplePool holds the sample buffers of frames that are rendered and
// then dropped (Load, LoadFrame): a chest radiograph's samples are 4 MiB,
// and a new buffer for each film costs its clearing, page faults and a
// share of the garbage collector's work. Buffers above maxPooledBuffer are
// not kept.
var samplePool sync.Pool

// pooledSamples returns a buffer for a frame's samples, nil when the pool
// has none.
func pooledSamples() []int32 {
	if p, ok := samplePool.Get().(*[]int32); ok {
		return *p
	}
	return nil
}

// releaseSamples hands back the buffer a frame was decoded into, once
// nothing refers to its samples any more: used, the samples of that frame
// (a codec that kept to buf returns them in it), or buf when the codec
// needed a larger one.
func releaseSamples(buf, used []int32) {
	b := buf
	if cap(used) > cap(b) {
		b = used
	}
	if b == nil || 4*cap(b) > maxPooledBuffer {
		return
	}
	b = b[:0]
	samplePool.Put(&b)
}

// value returns the numeric value of a stored sample of this layout. A
// signed sample is its int32 value. An unsigned sample is read as uint32:
// samples of fewer than 32 bits are never negative, so this changes
// nothing for them, and unsigned 32-bit samples above 2^31-1, held as
// their bit pattern, regain their value.
func (l layout) value(s int32) int64 {
	if l.signed {
		return int64(s)
	}
	return int64(uint32(s))
}

// interpretation is the photometric interpretation of the layout's
// stored samples: the header's, MONOCHROME2 when it has none.
func (l layout) interpretation() string {
	if l.photometric == "" {
		return "MONOCHROME2"
	}
	return l.photometric
}

// storedPerPixel is how many samples each pixel occupies in native pixel
// data: YBR_FULL_422 stores two Y values then Cb and Cr for each pair of
// pixels (PS3.3 C.7.6.3.1.2).
func (l layout) storedPerPixel() int {
	if l.photometric == "YBR_FULL_422" && l.samples == 3 && !l.encapsulated {
		return 2
	}
	return l.samples
}

// maxFrames bounds Number of Frames, so that sizes computed from it fit
// an int64.
const maxFrames = 1<<31 - 1

// check validates the layout and refuses, before anything is allocated,
// more than maxPixels samples in the frames that will be decoded: one
// frame (Load and DisplayFrame decode one), or more (see checkDecoded).
// The limit bounds what decoding allocates; the frames of a file that are
// not decoded cost nothing but the file's bytes, which
// Options.MaxFileBytes bounds.
func (l *layout) check(maxPixels int64) error {
	if l.frames > maxFrames {
		return fmt.Errorf("%w: number of frames is %d", sentinel.ErrInvalid, l.frames)
	}
	return l.checkDecoded(maxPixels, 1)
}

// checkDecoded is check for decoding the given number of frames at once.
func (l *layout) checkDecoded(maxPixels int64, frames int) error {
	switch {
	case l.rows < 1 || l.cols < 1:
		return fmt.Errorf("%w: image is %d rows by %d columns", sentinel.ErrInvalid, l.rows, l.cols)
	case l.frames < 1:
		return fmt.Errorf("%w: number of frames is %d", sentinel.ErrInvalid, l.frames)
	case l.bitsAllocated < 1 || l.bitsAllocated > 64:
		return fmt.Errorf("%w: bits allocated is %d", sentinel.ErrInvalid, l.bitsAllocated)
	case l.bitsStored < 1 || l.bitsStored > l.bitsAllocated:
		return fmt.Errorf("%w: bits stored is %d with %d bits allocated", sentinel.ErrInvalid, l.bitsStored, l.bitsAllocated)
	case l.samples < 1:
		return fmt.Errorf("%w: samples per pixel is %d", sentinel.ErrInvalid, l.samples)
	}
	total := int64(1)
	for _, n := range []int{l.rows, l.cols, frames, l.samples} {
		if total > maxPixels/int64(n) {
			return fmt.Errorf("%w: %d rows × %d columns × %d frames decoded × %d samples exceeds %d",
				sentinel.ErrTooLarge, l.rows, l.cols, frames, l.samples, maxPixels)
		}
		total *= int64(n)
	}
	if total > maxPixels {
		return fmt.Errorf("%w: %d samples exceeds %d", sentinel.ErrTooLarge, total, maxPixels)
	}
	if l.highBit < l.bitsStored-1 || l.highBit >= l.bitsAllocated {
		// An impossible HighBit is ignored rather than refused: the data
		// is then read as if stored from bit 0, as most readers do.
		l.highBit = l.bitsStored - 1
	}
	return l.checkSupported()
}

// checkSupported refuses well-formed layouts this package does not render.
func (l layout) checkSupported() error {
	if l.float {
		if l.samples != 1 || (l.bitsAllocated != 32 && l.bitsAllocated != 64) {
			return fmt.Errorf("%w: float pixel data with %d samples of %d bits", sentinel.ErrUnsupported, l.samples, l.bitsAllocated)
		}
	}
	switch l.bitsAllocated {
	case 1, 8, 16, 32:
	case 64:
		if !l.float {
			return fmt.Errorf("%w: %d bits allocated", sentinel.ErrUnsupported, l.bitsAllocated)
		}
	default:
		return fmt.Errorf("%w: %d bits allocated", sentinel.ErrUnsupported, l.bitsAllocated)
	}
	switch l.samples {
	case 1:
		switch l.photometric {
		case "", "MONOCHROME1", "MONOCHROME2":
			return nil
		case "PALETTE COLOR":
			// Indices of 8 or 16 bits (PS3.3 C.7.6.3.1.5).
			if l.bitsAllocated == 8 || l.bitsAllocated == 16 {
				return nil
			}
			return fmt.Errorf("%w: palette colour with %d bits allocated", sentinel.ErrUnsupported, l.bitsAllocated)
		}
	case 3:
		switch l.photometric {
		case "RGB", "YBR_FULL", "YBR_FULL_422":
			if l.bitsAllocated == 1 {
				return fmt.Errorf("%w: 1-bit colour", sentinel.ErrUnsupported)
			}
			if l.photometric == "YBR_FULL_422" && !l.encapsulated && (l.cols%2 != 0 || l.planar != 0) {
				return fmt.Errorf("%w: native YBR_FULL_422 with odd width or planar configuration", sentinel.ErrInvalid)
			}
			return nil
		case "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420":
			// Only in compressed transfer syntaxes, whose codecs
			// return RGB.
			if l.encapsulated && l.bitsAllocated != 1 {
				return nil
			}
		}
	default:
		return fmt.Errorf("%w: %d samples per pixel", sentinel.ErrUnsupported, l.samples)
	}
	return fmt.Errorf("%w: photometric interpretation %q with %d samples per pixel",
		sentinel.ErrUnsupported, l.photometric, l.samples)
}

// decodeNative is the codec of the native (uncompressed) transfer
// syntaxes: it unpacks frame index from the bytes, masking each sample to
// BitsStored below HighBit and sign-extending it when PixelRepresentation
// is 1.
func decodeNative(px pixelData, l layout, index int, dst []int32) (frame, error) {
	if px.encapsulated {
		return frame{}, fmt.Errorf("%w: encapsulated pixel data in a native transfer syntax", sentinel.ErrInvalid)
	}
	if px.tag != tagPixelData {
		return decodeFloat(px, l, index)
	}
	if l.bitsAllocated == 1 {
		perFrame := l.rows * l.cols * l.storedPerPixel() // bounded by check
		need := (int64(perFrame)*int64(l.frames) + 7) / 8
		if int64(len(px.native)) < need {
			return frame{}, shortPixels(len(px.native), need, l)
		}
		out := make([]int32, perFrame)
		start := index * perFrame
		for i := range out {
			bit := start + i
			out[i] = int32(px.native[bit/8]>>(bit%8)) & 1
		}
		return arrange(out, l), nil
	}
	frameBytes, err := nativeFrameBytes(px, l)
	if err != nil {
		return frame{}, err
	}
	raw := px.native[index*frameBytes : (index+1)*frameBytes]
	if l.bitsAllocated == 8 && px.vr == "OW" && px.bo == binary.BigEndian {
		// 8-bit samples in OW words are byte-swapped in big endian.
		raw = swapPairs(raw)
	}
	size := l.bitsAllocated / 8
	out := pxcodec.Params{Buffer: dst}.SamplesToFill(frameBytes / size) // unpack writes every sample
	unpack(out, raw, size, px.bo, newSampleFormat(l))
	return arrange(out, l), nil
}

// nativeFrameBytes returns the size in bytes of one frame of native pixel
// data of whole-byte samples, after checking that the data holds every
// frame the header promises.
func nativeFrameBytes(px pixelData, l layout) (int, error) {
	frameBytes := l.rows * l.cols * l.storedPerPixel() * (l.bitsAllocated / 8) // bounded by check
	if need := int64(frameBytes) * int64(l.frames); int64(len(px.native)) < need {
		return 0, shortPixels(len(px.native), need, l)
	}
	return frameBytes, nil
}

// sampleFormat says how to turn a stored word into a sample value.
type sampleFormat struct {
	shift  uint // bits below the lowest stored bit
	mask   uint64
	extend uint // 64 − BitsStored when signed, 0 when not
}

func newSampleFormat(l layout) sampleFormat {
	sf := sampleFormat{
		shift: uint(l.highBit + 1 - l.bitsStored),
		mask:  uint64(1)<<uint(l.bitsStored) - 1,
	}
	if l.signed {
		sf.extend = uint(64 - l.bitsStored)
	}
	return sf
}

// value masks a stored word to BitsStored bits below HighBit and
// sign-extends it when the pixel representation is signed, without a
// branch: shifting the value's top bit to bit 63 and back copies it into
// the bits above (a shift of 0 leaves unsigned values as they are). The
// shift counts are always below 64; taking them modulo 64 says so to the
// compiler, which otherwise adds code for shifts past the word's width.
func (s sampleFormat) value(w uint64) int64 {
	return int64(((w>>(s.shift&63))&s.mask)<<(s.extend&63)) >> (s.extend & 63)
}

// unpack reads len(out) words of size bytes from raw. A sample has at
// most 32 bits, so its value fits an int32, except that unsigned 32-bit
// values above 2^31-1 are kept as their bit pattern (see layout.value).
func unpack(out []int32, raw []byte, size int, bo binary.ByteOrder, sf sampleFormat) {
	if sf.shift == 0 && sf.extend == 0 {
		unpackLow(out, raw, size, bo, uint32(sf.mask))
		return
	}
	big := bo == binary.BigEndian
	switch {
	case size == 1:
		raw = raw[:len(out)]
		for i, b := range raw {
			out[i] = int32(sf.value(uint64(b)))
		}
	case size == 2 && big:
		raw = raw[:2*len(out)]
		for i := range out {
			out[i] = int32(sf.value(uint64(raw[2*i])<<8 | uint64(raw[2*i+1])))
		}
	case size == 2:
		raw = raw[:2*len(out)]
		for i := range out {
			out[i] = int32(sf.value(uint64(raw[2*i]) | uint64(raw[2*i+1])<<8))
		}
	case big:
		for i := range out {
			out[i] = int32(sf.value(uint64(binary.BigEndian.Uint32(raw[4*i:]))))
		}
	default:
		for i := range out {
			out[i] = int32(sf.value(uint64(binary.LittleEndian.Uint32(raw[4*i:]))))
		}
	}
}

// unpackLow is unpack for unsigned samples stored from bit 0 (HighBit is
// BitsStored-1, as in nearly every file), whose value is the word masked
// to BitsStored bits. It is the common case, and the shifts of
// sampleFormat.value would take most of the time of its loops.
func unpackLow(out []int32, raw []byte, size int, bo binary.ByteOrder, mask uint32) {
	big := bo == binary.BigEndian
	switch {
	case size == 1:
		raw = raw[:len(out)]
		for i, b := range raw {
			out[i] = int32(uint32(b) & mask)
		}
	case size == 2 && big:
		raw = raw[:2*len(out)]
		for i := range out {
			out[i] = int32((uint32(raw[2*i])<<8 | uint32(raw[2*i+1])) & mask)
		}
	case size == 2:
		raw = raw[:2*len(out)]
		for i := range out {
			out[i] = int32((uint32(raw[2*i]) | uint32(raw[2*i+1])<<8) & mask)
		}
	case big:
		for i := range out {
			out[i] = int32(binary.BigEndian.Uint32(raw[4*i:]) & mask)
		}
	default:
		for i := range out {
			out[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]) & mask)
		}
	}
}

// shortPixels is the error for pixel data shorter than the header says.
func shortPixels(have int, need int64, l layout) error {
	return fmt.Errorf("%w: pixel data has %d bytes but %d rows × %d columns × %d frames × %d samples of %d bits need %d",
		sentinel.ErrInvalid, have, l.rows, l.cols, l.frames, l.samples, l.bitsAllocated, need)
}

// swapPairs returns b with each pair of bytes swapped.
func swapPairs(b []byte) []byte {
	out := make([]byte, len(b))
	for i := 0; i+1 < len(b); i += 2 {
		out[i], out[i+1] = b[i+1], b[i]
	}
	if len(b)%2 == 1 {
		out[len(b)-1] = b[len(b)-1]
	}
	return out
}

// arrange turns samples as stored into one frame with the samples of each
// pixel adjacent: planar colour is interleaved, and YBR_FULL_422 pairs are
// expanded to Y Cb Cr for each pixel.
func arrange(stored []int32, l layout) frame {
	f := frame{samples: stored, photometric: l.interpretation()}
	if l.samples != 3 {
		return f
	}
	n := l.rows * l.cols
	switch {
	case l.storedPerPixel() == 2:
		out := make([]int32, 3*n)
		for p := 0; p+1 < n; p += 2 {
			q := 2 * p // 4 stored samples per 2 pixels
			y1, y2, cb, cr := stored[q], stored[q+1], stored[q+2], stored[q+3]
			copy(out[3*p:], []int32{y1, cb, cr, y2, cb, cr})
		}
		f.samples = out
	case l.planar == 1:
		out := make([]int32, 3*n)
		for p := 0; p < n; p++ {
			out[3*p], out[3*p+1], out[3*p+2] = stored[p], stored[n+p], stored[2*n+p]
		}
		f.samples = out
	}
	return f
}

// decodeFloat reads frame index of Float Pixel Data (32-bit) or Double
// Float Pixel Data (64-bit), whose values need no Modality LUT.
func decodeFloat(px pixelData, l layout, index int) (frame, error) {
	size := 4
	if px.tag == tagDoublePixelData {
		size = 8
	}
	if l.samples != 1 {
		return frame{}, fmt.Errorf("%w: float pixel data with %d samples per pixel", sentinel.ErrUnsupported, l.samples)
	}
	perFrame := l.rows * l.cols
	frameBytes := perFrame * size
	if need := int64(frameBytes) * int64(l.frames); int64(len(px.native)) < need {
		return frame{}, shortPixels(len(px.native), need, l)
	}
	raw := px.native[index*frameBytes:]
	out := make([]float64, perFrame)
	for i := range out {
		var v float64
		if size == 4 {
			v = float64(math.Float32frombits(px.bo.Uint32(raw[4*i:])))
		} else {
			v = math.Float64frombits(px.bo.Uint64(raw[8*i:]))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		out[i] = v
	}
	return frame{floats: out, photometric: l.interpretation()}, nil
}
