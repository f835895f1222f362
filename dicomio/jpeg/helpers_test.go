package jpeg

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// corpusDir is the shared conformance corpus, read in place (never copied).
const corpusDir = "../../../shared/data/dicom"

// cxrDir holds the full-resolution chest radiographs.
const cxrDir = "../../../shared/data/cxr8/dicom"

// needCorpus skips the test when the shared corpus is absent.
func needCorpus(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(corpusDir, "INVENTORY.tsv")); err != nil {
		tb.Skipf("../shared/data/dicom not found: skipping JPEG corpus test")
	}
}

// readTSV reads a tab-separated file with a header into maps keyed by
// column name.
func readTSV(tb testing.TB, path string) []map[string]string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	head := strings.Split(lines[0], "\t")
	var rows []map[string]string
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		r := map[string]string{}
		for i, h := range head {
			if i < len(f) {
				r[h] = f[i]
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// atoi parses an inventory number; empty is def.
func atoi(s string, def int) int {
	if v, err := strconv.Atoi(s); err == nil {
		return v
	}
	return def
}

// paramsOf builds codec parameters from an INVENTORY.tsv row.
func paramsOf(r map[string]string) codec.Params {
	return codec.Params{
		Rows:          atoi(r["rows"], 0),
		Cols:          atoi(r["cols"], 0),
		Samples:       atoi(r["spp"], 1),
		BitsAllocated: atoi(r["bits_alloc"], 16),
		BitsStored:    atoi(r["bits_stored"], 16),
		Signed:        r["pixel_rep"] == "1",
		MaxSamples:    1 << 26,
	}
}

// pixelElement finds the last top-level-looking Pixel Data element
// (7FE0,0010) in a little-endian file and returns the offset of its value
// and its length (0xFFFFFFFF when encapsulated). It is a test helper for
// well-formed corpus files, not a DICOM parser.
func pixelElement(b []byte) (int, uint32, bool) {
	tag := []byte{0xE0, 0x7F, 0x10, 0x00}
	for end := len(b); ; {
		i := bytes.LastIndex(b[:end], tag)
		if i < 0 {
			return 0, 0, false
		}
		end = i
		if i+12 > len(b) {
			continue
		}
		vr := string(b[i+4 : i+6])
		if vr == "OB" || vr == "OW" || vr == "UN" {
			return i + 12, binary.LittleEndian.Uint32(b[i+8:]), true
		}
		// Implicit VR.
		return i + 8, binary.LittleEndian.Uint32(b[i+4:]), true
	}
}

// jpegFrames returns the JPEG codestream of each frame of an encapsulated
// file: by the Basic Offset Table when there is one, else one fragment
// per frame when the counts agree, else by fragments that start with SOI.
func jpegFrames(tb testing.TB, path string, frames int) [][]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	off, vl, ok := pixelElement(b)
	if !ok || vl != 0xFFFFFFFF {
		tb.Fatalf("%s: no encapsulated pixel data", path)
	}
	var items [][]byte
	var starts []int
	for off+8 <= len(b) {
		t := binary.LittleEndian.Uint32(b[off:])
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		if t == 0xE0DDFFFE || t != 0xE000FFFE || off+8+n > len(b) {
			break
		}
		items = append(items, b[off+8:off+8+n])
		starts = append(starts, off)
		off += 8 + n
	}
	if len(items) < 2 {
		tb.Fatalf("%s: no fragments", path)
	}
	bot, frags := items[0], items[1:]
	var out [][]byte
	switch {
	case len(bot) >= 4*frames && frames > 1:
		first := starts[1]
		for f := 0; f < frames; f++ {
			lo := int(binary.LittleEndian.Uint32(bot[4*f:]))
			hi := 1 << 62
			if f+1 < frames {
				hi = int(binary.LittleEndian.Uint32(bot[4*f+4:]))
			}
			var fr []byte
			for k, s := range starts[1:] {
				if s-first >= lo && s-first < hi {
					fr = append(fr, frags[k]...)
				}
			}
			out = append(out, fr)
		}
	case len(frags) == frames:
		out = frags
	case frames == 1:
		out = [][]byte{bytes.Join(frags, nil)}
	default:
		for _, fr := range frags {
			if len(out) == 0 || bytes.HasPrefix(fr, []byte{0xFF, 0xD8}) {
				out = append(out, nil)
			}
			out[len(out)-1] = append(out[len(out)-1], fr...)
		}
	}
	if len(out) != frames {
		tb.Fatalf("%s: %d frames found, header says %d", path, len(out), frames)
	}
	return out
}

// nativePixels returns the uncompressed pixel data of a little-endian
// file, e.g. one written by dcmdjpeg.
func nativePixels(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	off, vl, ok := pixelElement(b)
	if !ok || vl == 0xFFFFFFFF || off+int(vl) > len(b) {
		tb.Fatalf("%s: no native pixel data", path)
	}
	return b[off : off+int(vl)]
}

// storedBytes lays samples out as numpy would for dtype: one or two
// little-endian bytes per sample.
func storedBytes(dst []byte, s []int32, dtype string) []byte {
	for _, v := range s {
		if dtype == "uint8" || dtype == "int8" {
			dst = append(dst, byte(v))
		} else {
			dst = append(dst, byte(v), byte(v>>8))
		}
	}
	return dst
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
