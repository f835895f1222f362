package dicomio

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/sentinel-pacs/sentinel"
)

// itemHeaderSize is the size of an item tag and its length, which the
// offsets of the Basic and Extended Offset Tables count.
const itemHeaderSize = 8

// Codestream start markers, by which frames are told apart in fragmented
// multi-frame pixel data that has no offset table.
var (
	markerJPEG     = []byte{0xFF, 0xD8} // SOI: JPEG and JPEG-LS
	markerJPEG2000 = []byte{0xFF, 0x4F} // SOC
)

// frameData returns the bytes of frame index of encapsulated pixel data
// holding frames frames (PS3.5 A.4). The fragments of a frame are found,
// in order of preference, through the Extended Offset Table, the Basic
// Offset Table, one fragment per frame when the counts agree, all
// fragments when there is one frame, or the codestream start marker that
// begins each frame's first fragment. A frame held in one fragment is
// returned without copying.
func (px pixelData) frameData(index, frames int, marker []byte) ([]byte, error) {
	if !px.encapsulated {
		return nil, fmt.Errorf("%w: native pixel data in an encapsulated transfer syntax", sentinel.ErrInvalid)
	}
	if index < 0 || index >= frames {
		return nil, fmt.Errorf("%w: frame %d of %d", sentinel.ErrInvalid, index, frames)
	}
	n := len(px.fragments)
	if n == 0 {
		return nil, fmt.Errorf("%w: encapsulated pixel data without fragments", sentinel.ErrInvalid)
	}
	var first, last int // fragments [first, last) hold the frame
	var length = -1     // the frame's length when a table gives it
	var err error
	switch {
	case px.extOffsets != nil:
		first, last, length, err = px.extendedRange(index, frames)
	case len(px.offsetTable) > 0:
		first, last, err = px.basicRange(index, frames)
	case n == frames:
		first, last = index, index+1
	case frames == 1:
		first, last = 0, n
	case n < frames:
		err = fmt.Errorf("%w: %d fragments for %d frames", sentinel.ErrInvalid, n, frames)
	default:
		first, last, err = px.markerRange(index, frames, marker)
	}
	if err != nil {
		return nil, err
	}
	data := px.fragments[first]
	if last-first > 1 {
		data = bytes.Join(px.fragments[first:last], nil)
	}
	if length >= 0 {
		if length > len(data) {
			return nil, fmt.Errorf("%w: frame %d is %d bytes, the extended offset table says %d",
				sentinel.ErrInvalid, index, len(data), length)
		}
		data = data[:length]
	}
	return data, nil
}

// fragmentStarts returns the offset of each fragment's item from the
// first fragment's, as the offset tables count them.
func (px pixelData) fragmentStarts() []uint64 {
	starts := make([]uint64, len(px.fragments))
	var off uint64
	for i, f := range px.fragments {
		starts[i] = off
		off += itemHeaderSize + uint64(len(f))
	}
	return starts
}

// rangeAt returns the fragments from the one starting at offset start up
// to the one starting at end (or the last fragment when end is the end).
func (px pixelData) rangeAt(starts []uint64, index int, start, end uint64, lastFrame bool) (int, int, error) {
	first, ok := findStart(starts, start)
	if !ok {
		return 0, 0, fmt.Errorf("%w: frame %d offset %d is not the start of a fragment", sentinel.ErrInvalid, index, start)
	}
	if lastFrame {
		return first, len(starts), nil
	}
	last, ok := findStart(starts, end)
	if !ok {
		return 0, 0, fmt.Errorf("%w: frame %d offset %d is not the start of a fragment", sentinel.ErrInvalid, index+1, end)
	}
	if last <= first {
		return 0, 0, fmt.Errorf("%w: frame offsets %d and %d are not increasing", sentinel.ErrInvalid, start, end)
	}
	return first, last, nil
}

// findStart returns the index of the fragment starting at off.
func findStart(starts []uint64, off uint64) (int, bool) {
	lo, hi := 0, len(starts)
	for lo < hi {
		mid := (lo + hi) / 2
		if starts[mid] < off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(starts) && starts[lo] == off
}

// basicRange locates frame index through the Basic Offset Table: one
// 32-bit offset per frame, the first 0, each the start of a fragment.
func (px pixelData) basicRange(index, frames int) (int, int, error) {
	t := px.offsetTable
	if len(t)%4 != 0 || len(t)/4 != frames {
		return 0, 0, fmt.Errorf("%w: basic offset table of %d bytes for %d frames", sentinel.ErrInvalid, len(t), frames)
	}
	at := func(i int) uint64 { return uint64(binary.LittleEndian.Uint32(t[4*i:])) }
	if at(0) != 0 {
		return 0, 0, fmt.Errorf("%w: basic offset table starts at %d, not 0", sentinel.ErrInvalid, at(0))
	}
	var end uint64
	if index+1 < frames {
		end = at(index + 1)
	}
	return px.rangeAt(px.fragmentStarts(), index, at(index), end, index+1 == frames)
}

// extendedRange locates frame index through the Extended Offset Table (64-bit
// offsets, PS3.3 C.7.6.3.1.8) and returns the frame's length from the
// Extended Offset Table Lengths, or -1 when they are absent.
func (px pixelData) extendedRange(index, frames int) (int, int, int, error) {
	t, lens := px.extOffsets, px.extLengths
	if len(t)%8 != 0 || len(t)/8 != frames {
		return 0, 0, 0, fmt.Errorf("%w: extended offset table of %d bytes for %d frames", sentinel.ErrInvalid, len(t), frames)
	}
	if lens != nil && len(lens) != len(t) {
		return 0, 0, 0, fmt.Errorf("%w: extended offset table lengths of %d bytes for %d frames", sentinel.ErrInvalid, len(lens), frames)
	}
	if len(px.offsetTable) > 0 {
		return 0, 0, 0, fmt.Errorf("%w: both a basic and an extended offset table", sentinel.ErrInvalid)
	}
	at := func(i int) uint64 { return binary.LittleEndian.Uint64(t[8*i:]) }
	var end uint64
	if index+1 < frames {
		end = at(index + 1)
	}
	first, last, err := px.rangeAt(px.fragmentStarts(), index, at(index), end, index+1 == frames)
	if err != nil || lens == nil {
		return first, last, -1, err
	}
	length := binary.LittleEndian.Uint64(lens[8*index:])
	if length > 1<<62 {
		return 0, 0, 0, fmt.Errorf("%w: frame %d length %d", sentinel.ErrInvalid, index, length)
	}
	return first, last, int(length), nil
}

// markerRange splits fragments into frames where a fragment begins with a
// codestream start marker, which every frame's first fragment does and no
// continuation fragment should. The split must give exactly frames frames.
func (px pixelData) markerRange(index, frames int, marker []byte) (int, int, error) {
	if marker == nil {
		return 0, 0, fmt.Errorf("%w: %d fragments for %d frames and no offset table", sentinel.ErrInvalid, len(px.fragments), frames)
	}
	var firsts []int
	for i, f := range px.fragments {
		if bytes.HasPrefix(f, marker) {
			firsts = append(firsts, i)
		}
	}
	if len(firsts) != frames || firsts[0] != 0 {
		return 0, 0, fmt.Errorf("%w: %d fragments hold %d codestreams for %d frames", sentinel.ErrInvalid, len(px.fragments), len(firsts), frames)
	}
	last := len(px.fragments)
	if index+1 < frames {
		last = firsts[index+1]
	}
	return firsts[index], last, nil
}
