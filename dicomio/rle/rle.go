// Package rle decodes one frame of DICOM RLE Lossless pixel data
// (transfer syntax 1.2.840.10008.1.2.5, PS3.5 Annex G) into stored sample
// values. It owns the RLE header, PackBits decoding of the segments and
// their recombination into samples; it does not know about fragments,
// offset tables or display (dicomio assembles frames and renders them).
//
// A frame is a 64-byte header (the number of segments and up to 15
// segment offsets, little endian) followed by the segments. Each segment
// holds one byte plane of one sample: for every sample in turn, its most
// significant byte first. Each segment decodes to exactly Rows × Columns
// bytes; a shorter segment is corrupt, a longer one is tolerated as
// padding, as encoders pad segments to an even length.
package rle

import (
	"encoding/binary"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// headerSize is the size of the RLE header: 16 little-endian uint32s.
const headerSize = 64

// maxSegments is the most segments the header can locate.
const maxSegments = 15

// Decode decodes the RLE frame in data into stored sample values, samples
// of a pixel adjacent. Values are masked to BitsStored and sign-extended
// when p.Signed. Malformed or truncated data fails with codec.ErrCorrupt;
// bit depths other than 8, 16 and 32 with codec.ErrUnsupported.
func Decode(data []byte, p codec.Params) (codec.Frame, error) {
	var f codec.Frame
	bytesPer, err := sampleBytes(p)
	if err != nil {
		return f, err
	}
	if err := p.Check(p.Cols, p.Rows, p.Samples); err != nil {
		return f, err
	}
	offsets, err := segmentOffsets(data, p.Samples*bytesPer)
	if err != nil {
		return f, err
	}
	n := p.Rows * p.Cols
	samples := p.SamplesToFill(n * p.Samples) // the first byte plane of each sample sets it
	plane := make([]byte, n)
	for s := range p.Samples {
		for b := range bytesPer {
			seg := s*bytesPer + b
			if err := unpackBits(plane, data[offsets[seg]:offsets[seg+1]]); err != nil {
				return f, codec.Corruptf("rle: segment %d: %v", seg+1, err)
			}
			merge(samples, plane, s, p.Samples, uint(8*(bytesPer-1-b)), b == 0)
		}
	}
	finish(samples, p)
	return codec.Frame{
		Width: p.Cols, Height: p.Rows, Components: p.Samples,
		Precision: p.BitsStored, Samples: samples,
	}, nil
}

// sampleBytes returns the bytes per sample of p, refusing what RLE frames
// in DICOM cannot or this package does not hold.
func sampleBytes(p codec.Params) (int, error) {
	switch {
	case p.Samples != 1 && p.Samples != 3:
		return 0, codec.Unsupportedf("rle: %d samples per pixel", p.Samples)
	case p.BitsStored < 1 || p.BitsStored > p.BitsAllocated:
		return 0, codec.Corruptf("rle: %d bits stored in %d allocated", p.BitsStored, p.BitsAllocated)
	}
	switch p.BitsAllocated {
	case 8, 16, 32:
		return p.BitsAllocated / 8, nil
	}
	return 0, codec.Unsupportedf("rle: %d bits allocated", p.BitsAllocated)
}

// segmentOffsets reads the header and returns want+1 offsets: where each
// segment starts, then the end of the data. Offsets must be increasing and
// inside the data, and the first must follow the header.
func segmentOffsets(data []byte, want int) ([]int, error) {
	if len(data) < headerSize {
		return nil, codec.Corruptf("rle: frame of %d bytes is shorter than the %d-byte header", len(data), headerSize)
	}
	count := binary.LittleEndian.Uint32(data)
	if count != uint32(want) {
		return nil, codec.Corruptf("rle: header has %d segments, the image needs %d", count, want)
	}
	if want > maxSegments {
		return nil, codec.Unsupportedf("rle: %d segments", want)
	}
	offsets := make([]int, want+1)
	prev := uint32(headerSize)
	for i := range want {
		off := binary.LittleEndian.Uint32(data[4+4*i:])
		switch {
		case i == 0 && off != headerSize:
			return nil, codec.Corruptf("rle: first segment at %d, not %d", off, headerSize)
		case off < prev:
			return nil, codec.Corruptf("rle: segment %d at %d before segment %d", i+1, off, i)
		case uint64(off) >= uint64(len(data)):
			return nil, codec.Corruptf("rle: segment %d at %d past the end of the %d-byte frame", i+1, off, len(data))
		}
		offsets[i], prev = int(off), off
	}
	offsets[want] = len(data)
	return offsets, nil
}

// errShort and errOverrun are the ways a segment can fail to fill its
// plane.
type segmentError string

func (e segmentError) Error() string { return string(e) }

const (
	errShort   segmentError = "decodes to fewer bytes than rows × columns"
	errOverrun segmentError = "run ends past the end of the segment"
)

// unpackBits decodes a PackBits segment into out, which it must fill
// exactly. Bytes left in the segment once out is full are padding.
func unpackBits(out, seg []byte) error {
	o, i := 0, 0
	for o < len(out) {
		if i >= len(seg) {
			return errShort
		}
		h := int(int8(seg[i]))
		i++
		switch {
		case h >= 0: // copy the next h+1 bytes
			n := h + 1
			if i+n > len(seg) {
				return errOverrun
			}
			if o+n > len(out) {
				// A literal run past the plane is corrupt: padding
				// only follows a complete plane.
				return segmentError("literal run past the end of the plane")
			}
			copy(out[o:], seg[i:i+n])
			o += n
			i += n
		case h != -128: // repeat the next byte 1-h times
			if i >= len(seg) {
				return errOverrun
			}
			n := 1 - h
			if o+n > len(out) {
				return segmentError("replicate run past the end of the plane")
			}
			v := seg[i]
			i++
			run := out[o : o+n]
			for k := range run {
				run[k] = v
			}
			o += n
		}
	}
	return nil
}

// merge ORs one byte plane into the samples of component s, shifted into
// place. The first (most significant) plane assigns instead, so samples
// need no clearing.
func merge(samples []int32, plane []byte, s, comps int, shift uint, first bool) {
	if comps == 1 {
		if first {
			for i, v := range plane {
				samples[i] = int32(uint32(v) << shift)
			}
			return
		}
		for i, v := range plane {
			samples[i] |= int32(uint32(v) << shift)
		}
		return
	}
	for i, v := range plane {
		if first {
			samples[i*comps+s] = int32(uint32(v) << shift)
		} else {
			samples[i*comps+s] |= int32(uint32(v) << shift)
		}
	}
}

// finish masks the assembled words to BitsStored and sign-extends them
// when the pixel representation is signed. 32-bit unsigned words above
// 2^31-1 cannot be held in an int32 and keep their bit pattern.
func finish(samples []int32, p codec.Params) {
	bits := uint(p.BitsStored)
	if bits >= 32 {
		return
	}
	if p.Signed {
		shift := 32 - bits
		for i, v := range samples {
			samples[i] = v << shift >> shift
		}
		return
	}
	if bits == uint(p.BitsAllocated) {
		return // 8 or 16 bits: already in range
	}
	mask := int32(1)<<bits - 1
	for i, v := range samples {
		samples[i] = v & mask
	}
}
