package jpeg2000

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// A minimal reader of DICOM files for tests: just enough of explicit VR
// little endian (with nested sequences, and undefined-length UN in
// implicit VR) to find the image attributes and the encapsulated frames.

type dicomImage struct {
	params codec.Params
	frames [][]byte
	cut    bool // the last fragment overran the file and was cut short
}

const (
	tagRows      = 0x00280010
	tagCols      = 0x00280011
	tagSamples   = 0x00280002
	tagAllocated = 0x00280100
	tagStored    = 0x00280101
	tagPixelRep  = 0x00280103
	tagFrames    = 0x00280008
	tagPixelData = 0x7FE00010
)

var longVR = map[string]bool{"OB": true, "OW": true, "OF": true, "SQ": true, "UT": true, "UN": true,
	"OD": true, "OL": true, "UC": true, "UR": true, "OV": true, "SV": true, "UV": true}

type dcmReader struct {
	b   []byte
	pos int
}

var errShort = errors.New("dicom data truncated")

func (r *dcmReader) u16() (uint16, error) {
	if r.pos+2 > len(r.b) {
		return 0, errShort
	}
	v := binary.LittleEndian.Uint16(r.b[r.pos:])
	r.pos += 2
	return v, nil
}

func (r *dcmReader) u32() (uint32, error) {
	if r.pos+4 > len(r.b) {
		return 0, errShort
	}
	v := binary.LittleEndian.Uint32(r.b[r.pos:])
	r.pos += 4
	return v, nil
}

// element reads one element header: tag, VR ("" in implicit VR) and length.
func (r *dcmReader) element(explicit bool) (uint32, string, uint32, error) {
	g, err := r.u16()
	if err != nil {
		return 0, "", 0, err
	}
	e, err := r.u16()
	if err != nil {
		return 0, "", 0, err
	}
	tag := uint32(g)<<16 | uint32(e)
	if g == 0xFFFE || !explicit {
		n, err := r.u32()
		return tag, "", n, err
	}
	if r.pos+2 > len(r.b) {
		return 0, "", 0, errShort
	}
	vr := string(r.b[r.pos : r.pos+2])
	r.pos += 2
	if longVR[vr] {
		r.pos += 2
		n, err := r.u32()
		return tag, vr, n, err
	}
	n, err := r.u16()
	return tag, vr, uint32(n), err
}

// skipUndefined skips the items of an undefined-length sequence.
func (r *dcmReader) skipUndefined(explicit bool) error {
	for {
		tag, _, n, err := r.element(false)
		if err != nil {
			return err
		}
		switch tag {
		case 0xFFFEE0DD:
			return nil
		case 0xFFFEE000:
			if n != 0xFFFFFFFF {
				r.pos += int(n)
				continue
			}
			if err := r.dataset(explicit, nil, true); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected tag %08x in sequence", tag)
		}
	}
}

// dataset walks elements, calling visit for top-level ones, until the end
// of data or an item delimiter when nested.
func (r *dcmReader) dataset(explicit bool, visit func(tag uint32, vr string, n uint32) error, nested bool) error {
	for r.pos < len(r.b) {
		tag, vr, n, err := r.element(explicit)
		if err != nil {
			return err
		}
		if tag == 0xFFFEE00D && nested {
			return nil
		}
		if visit != nil {
			start := r.pos
			if err := visit(tag, vr, n); err != nil {
				return err
			}
			if r.pos != start {
				continue
			}
		}
		if n == 0xFFFFFFFF {
			if err := r.skipUndefined(explicit && vr != "UN"); err != nil {
				return err
			}
			continue
		}
		if r.pos+int(n) > len(r.b) {
			return errShort
		}
		r.pos += int(n)
	}
	if nested {
		return errShort
	}
	return nil
}

// readDICOM reads the image attributes and frames of an encapsulated
// explicit VR little endian file.
func readDICOM(path string) (*dicomImage, error) {
	return readDICOMMode(path, false)
}

// readDICOMMode is readDICOM; when cut is set, a last item that overruns
// the file is returned as far as it goes, so tests can hand the codec the
// truncated codestream of a truncated file.
func readDICOMMode(path string, cut bool) (*dicomImage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 132 || string(data[128:132]) != "DICM" {
		return nil, errors.New("not a DICOM file")
	}
	img := &dicomImage{params: codec.Params{Samples: 1}}
	nframes := 1
	var fragments [][]byte
	var bot []byte
	r := &dcmReader{b: data, pos: 132}
	us := func(n uint32) int {
		if n == 2 && r.pos+2 <= len(r.b) {
			return int(binary.LittleEndian.Uint16(r.b[r.pos:]))
		}
		return 0
	}
	err = r.dataset(true, func(tag uint32, vr string, n uint32) error {
		switch tag {
		case tagRows:
			img.params.Rows = us(n)
		case tagCols:
			img.params.Cols = us(n)
		case tagSamples:
			img.params.Samples = us(n)
		case tagAllocated:
			img.params.BitsAllocated = us(n)
		case tagStored:
			img.params.BitsStored = us(n)
		case tagPixelRep:
			img.params.Signed = us(n) == 1
		case tagFrames:
			if r.pos+int(n) <= len(r.b) {
				v, err := strconv.Atoi(string(bytes.Trim(r.b[r.pos:r.pos+int(n)], " \x00")))
				if err == nil && v > 0 {
					nframes = v
				}
			}
		case tagPixelData:
			if n != 0xFFFFFFFF {
				return errors.New("pixel data is not encapsulated")
			}
			for first := true; ; first = false {
				tag, _, n, err := r.element(false)
				if err != nil {
					if cut {
						return nil
					}
					return err
				}
				if tag == 0xFFFEE0DD || (cut && r.pos >= len(r.b)) {
					return nil
				}
				if tag != 0xFFFEE000 {
					return errShort
				}
				if r.pos+int(n) > len(r.b) {
					if !cut {
						return errShort
					}
					n = uint32(len(r.b) - r.pos)
					img.cut = true
				}
				item := r.b[r.pos : r.pos+int(n)]
				r.pos += int(n)
				if first {
					bot = item
				} else {
					fragments = append(fragments, item)
				}
			}
		}
		return nil
	}, false)
	if err != nil {
		return nil, err
	}
	if len(fragments) == 0 {
		return nil, errors.New("no encapsulated pixel data")
	}
	img.frames = splitFrames(fragments, bot, nframes)
	if len(img.frames) != nframes && !cut {
		return nil, fmt.Errorf("%d frames found, %d expected", len(img.frames), nframes)
	}
	return img, nil
}

// splitFrames groups fragments into frames: one each if the counts agree,
// else a new frame at every fragment that starts with SOC.
func splitFrames(fragments [][]byte, _ []byte, n int) [][]byte {
	if len(fragments) == n {
		return fragments
	}
	var frames [][]byte
	for _, f := range fragments {
		if len(frames) == 0 || bytes.HasPrefix(f, []byte{0xFF, 0x4F, 0xFF, 0x51}) {
			frames = append(frames, nil)
		}
		frames[len(frames)-1] = append(frames[len(frames)-1], f...)
	}
	return frames
}
