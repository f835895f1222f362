package jpegls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// testFile is what the tests need from a DICOM file with encapsulated
// pixel data: the transfer syntax, the frame parameters and the frames.
// It is a deliberately small reader (explicit VR little endian only, as
// every encapsulated transfer syntax is) so that the codec's tests do not
// depend on dicomio.
type testFile struct {
	syntax string
	params codec.Params
	frames [][]byte
}

var (
	errNoPixels        = errors.New("no encapsulated pixel data")
	errTruncatedPixels = errors.New("encapsulated pixel data cut short")
)

// readTestFile reads path and splits its encapsulated pixel data into
// frames.
func readTestFile(path string) (*testFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pos := 132
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		// Some pydicom-data files start right at the meta group.
		pos = 0
	}
	tf := &testFile{params: codec.Params{Samples: 1}}
	nframes := 1
	var frags [][]byte
	var bot []byte
	le := binary.LittleEndian
	for pos+8 <= len(b) {
		group, elem := le.Uint16(b[pos:]), le.Uint16(b[pos+2:])
		vr := string(b[pos+4 : pos+6])
		var length, hdr int
		switch vr {
		case "OB", "OW", "OF", "SQ", "UT", "UN", "OD", "OL", "OV", "UC", "UR", "SV", "UV":
			if pos+12 > len(b) {
				return nil, fmt.Errorf("%s: truncated element header", path)
			}
			length, hdr = int(le.Uint32(b[pos+8:])), 12
		default:
			length, hdr = int(le.Uint16(b[pos+6:])), 8
		}
		pos += hdr
		tag := uint32(group)<<16 | uint32(elem)
		if tag == 0x7FE00010 {
			if uint32(length) != 0xFFFFFFFF {
				return nil, errNoPixels
			}
			frags, bot, err = readFragments(b[pos:])
			if err != nil && !(errors.Is(err, errTruncatedPixels) && len(frags) > 0) {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			break
		}
		if uint32(length) == 0xFFFFFFFF {
			// An undefined-length sequence: skip to its delimiter.
			end := bytes.Index(b[pos:], []byte{0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0})
			if end < 0 {
				return nil, fmt.Errorf("%s: unterminated sequence", path)
			}
			pos += end + 8
			continue
		}
		if length < 0 || pos+length > len(b) {
			return nil, fmt.Errorf("%s: element (%04X,%04X) overruns the file", path, group, elem)
		}
		v := b[pos : pos+length]
		pos += length
		str := strings.TrimRight(string(v), " \x00")
		u16 := func() int {
			if len(v) < 2 {
				return 0
			}
			return int(le.Uint16(v))
		}
		switch tag {
		case 0x00020010:
			tf.syntax = str
		case 0x00280002:
			tf.params.Samples = u16()
		case 0x00280008:
			nframes, _ = strconv.Atoi(strings.TrimSpace(str))
		case 0x00280010:
			tf.params.Rows = u16()
		case 0x00280011:
			tf.params.Cols = u16()
		case 0x00280100:
			tf.params.BitsAllocated = u16()
		case 0x00280101:
			tf.params.BitsStored = u16()
		case 0x00280103:
			tf.params.Signed = u16() == 1
		}
	}
	if frags == nil {
		return nil, errNoPixels
	}
	tf.params.MaxSamples = 1 << 26
	tf.frames = splitFrames(frags, bot, nframes)
	return tf, nil
}

// readFragments reads the items of encapsulated pixel data: the Basic
// Offset Table and the fragments.
func readFragments(b []byte) (frags [][]byte, bot []byte, err error) {
	le := binary.LittleEndian
	pos, first := 0, true
	for pos+8 <= len(b) {
		tag := le.Uint32(b[pos:])
		n := int(le.Uint32(b[pos+4:]))
		pos += 8
		if tag == 0xE0DDFFFE {
			return frags, bot, nil
		}
		if tag != 0xE000FFFE || n < 0 {
			return nil, nil, fmt.Errorf("bad item at pixel data offset %d", pos-8)
		}
		if pos+n > len(b) {
			// A cut file: keep what there is, so that the codec sees the
			// truncated code stream the way dicomio would hand it over.
			return append(frags, b[pos:]), bot, errTruncatedPixels
		}
		if first {
			bot, first = b[pos:pos+n], false
		} else {
			frags = append(frags, b[pos:pos+n])
		}
		pos += n
	}
	return frags, bot, errTruncatedPixels
}

// splitFrames assembles frames from fragments: by the Basic Offset Table
// when there is one, one fragment per frame when the counts agree, and
// otherwise by starting a frame at every fragment that begins with SOI.
func splitFrames(frags [][]byte, bot []byte, nframes int) [][]byte {
	if nframes <= 1 {
		return [][]byte{bytes.Join(frags, nil)}
	}
	if len(frags) == nframes {
		return frags
	}
	var frames [][]byte
	if len(bot) >= 4*nframes {
		offsets := make([]int, nframes)
		for i := range offsets {
			offsets[i] = int(binary.LittleEndian.Uint32(bot[4*i:]))
		}
		cur, fi, off := []byte(nil), 0, 0
		for _, f := range frags {
			if fi+1 < nframes && off == offsets[fi+1] {
				frames = append(frames, cur)
				cur, fi = nil, fi+1
			}
			cur = append(cur, f...)
			off += len(f) + 8
		}
		return append(frames, cur)
	}
	for _, f := range frags {
		if len(f) >= 2 && f[0] == 0xFF && f[1] == 0xD8 || len(frames) == 0 {
			frames = append(frames, append([]byte(nil), f...))
			continue
		}
		frames[len(frames)-1] = append(frames[len(frames)-1], f...)
	}
	return frames
}
