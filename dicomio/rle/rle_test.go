package rle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// corpusDir is the shared conformance corpus, beside the repository.
const corpusDir = "../../../shared/data/dicom"

// packBits encodes b as one PackBits segment the way a simple encoder
// does: runs of three or more equal bytes replicate, the rest is literal.
func packBits(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		j := i + 1
		for j < len(b) && j-i < 128 && b[j] == b[i] {
			j++
		}
		if j-i >= 3 {
			out = append(out, byte(int8(1-(j-i))), b[i])
			i = j
			continue
		}
		j = i
		for j < len(b) && j-i < 128 && !(j+2 < len(b) && b[j] == b[j+1] && b[j] == b[j+2]) {
			j++
		}
		out = append(out, byte(j-i-1))
		out = append(out, b[i:j]...)
		i = j
	}
	if len(out)%2 == 1 {
		out = append(out, 0x80) // a no-op pads to an even length
	}
	return out
}

// Encode returns an RLE frame holding values (samples of a pixel
// adjacent) as words of bitsAllocated bits.
func Encode(values []int32, p codec.Params) []byte {
	bytesPer := p.BitsAllocated / 8
	n := p.Rows * p.Cols
	var segs [][]byte
	for s := range p.Samples {
		for b := range bytesPer {
			plane := make([]byte, n)
			for i := range n {
				plane[i] = byte(uint32(values[i*p.Samples+s]) >> (8 * (bytesPer - 1 - b)))
			}
			segs = append(segs, packBits(plane))
		}
	}
	head := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(head, uint32(len(segs)))
	off := headerSize
	for i, s := range segs {
		binary.LittleEndian.PutUint32(head[4+4*i:], uint32(off))
		off += len(s)
	}
	return append(head, bytes.Join(segs, nil)...)
}

// synthetic returns values covering the range of p and its RLE frame.
func synthetic(p codec.Params) ([]int32, []byte) {
	vals := make([]int32, p.Rows*p.Cols*p.Samples)
	for i := range vals {
		v := int64(i*2654435761) >> 3 // mixes runs and noise
		if i%7 < 3 {
			v = int64(i / 7)
		}
		bits := uint(p.BitsStored)
		v &= 1<<bits - 1
		if p.Signed && v >= 1<<(bits-1) {
			v -= 1 << bits
		}
		vals[i] = int32(v)
	}
	return vals, Encode(vals, p)
}

func TestRoundTrip(t *testing.T) {
	for _, p := range []codec.Params{
		{Rows: 3, Cols: 5, Samples: 1, BitsAllocated: 8, BitsStored: 8},
		{Rows: 17, Cols: 9, Samples: 3, BitsAllocated: 8, BitsStored: 8},
		{Rows: 20, Cols: 31, Samples: 1, BitsAllocated: 16, BitsStored: 12},
		{Rows: 20, Cols: 31, Samples: 1, BitsAllocated: 16, BitsStored: 16, Signed: true},
		{Rows: 8, Cols: 8, Samples: 1, BitsAllocated: 16, BitsStored: 12, Signed: true},
		{Rows: 4, Cols: 6, Samples: 3, BitsAllocated: 16, BitsStored: 16},
		{Rows: 4, Cols: 6, Samples: 1, BitsAllocated: 32, BitsStored: 32, Signed: true},
		{Rows: 4, Cols: 6, Samples: 3, BitsAllocated: 32, BitsStored: 24},
		{Rows: 300, Cols: 1, Samples: 1, BitsAllocated: 8, BitsStored: 8},
	} {
		name := strconv.Itoa(p.Rows) + "x" + strconv.Itoa(p.Cols) + "x" + strconv.Itoa(p.Samples) + "_" + strconv.Itoa(p.BitsAllocated) + "_" + strconv.Itoa(p.BitsStored)
		t.Run(name, func(t *testing.T) {
			want, data := synthetic(p)
			f, err := Decode(data, p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Width != p.Cols || f.Height != p.Rows || f.Components != p.Samples || f.Precision != p.BitsStored {
				t.Fatalf("frame %dx%dx%d precision %d", f.Width, f.Height, f.Components, f.Precision)
			}
			for i := range want {
				if f.Samples[i] != want[i] {
					t.Fatalf("sample %d = %d, want %d", i, f.Samples[i], want[i])
				}
			}
		})
	}
}

// TestInvalid checks that broken frames fail as corrupt or unsupported.
func TestInvalid(t *testing.T) {
	p := codec.Params{Rows: 16, Cols: 16, Samples: 1, BitsAllocated: 16, BitsStored: 16}
	_, good := synthetic(p)
	seg2 := int(binary.LittleEndian.Uint32(good[8:]))
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	put := func(off int, v uint32) []byte {
		return edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b })
	}
	for _, c := range []struct {
		name string
		data []byte
		p    codec.Params
		want error
	}{
		{"empty", nil, p, codec.ErrCorrupt},
		{"header only", good[:headerSize], p, codec.ErrCorrupt},
		{"short header", good[:40], p, codec.ErrCorrupt},
		{"truncated last segment", good[:len(good)-10], p, codec.ErrCorrupt},
		{"truncated first segment", good[:seg2-1], p, codec.ErrCorrupt},
		{"one segment for 16 bits", put(0, 1), p, codec.ErrCorrupt},
		{"three segments for 16 bits", put(0, 3), p, codec.ErrCorrupt},
		{"sixteen segments", put(0, 16), p, codec.ErrCorrupt},
		{"first offset not 64", put(4, 60), p, codec.ErrCorrupt},
		{"decreasing offsets", put(8, 32), p, codec.ErrCorrupt},
		{"offset past end", put(8, uint32(len(good)+5)), p, codec.ErrCorrupt},
		{"offset at end", put(8, uint32(len(good))), p, codec.ErrCorrupt},
		{"huge offset", put(8, 0xFFFFFFF0), p, codec.ErrCorrupt},
		{"literal run past plane", edit(func(b []byte) []byte {
			// A plane of 256 bytes: literal runs of 100 and 128
			// bytes, then a third of 128 that cannot fit.
			run := append([]byte{127}, make([]byte, 128)...)
			seg := append(append(append([]byte{99}, make([]byte, 100)...), run...), run...)
			out := append(b[:headerSize], seg...)
			binary.LittleEndian.PutUint32(out[8:], uint32(len(out)))
			return append(out, seg...)
		}), p, codec.ErrCorrupt},
		{"1 bit allocated", good, codec.Params{Rows: 16, Cols: 16, Samples: 1, BitsAllocated: 1, BitsStored: 1}, codec.ErrUnsupported},
		{"4 samples", good, codec.Params{Rows: 16, Cols: 16, Samples: 4, BitsAllocated: 8, BitsStored: 8}, codec.ErrUnsupported},
		{"over the limit", good, codec.Params{Rows: 16, Cols: 16, Samples: 1, BitsAllocated: 16, BitsStored: 16, MaxSamples: 100}, codec.ErrUnsupported},
		{"bits stored over allocated", good, codec.Params{Rows: 16, Cols: 16, Samples: 1, BitsAllocated: 16, BitsStored: 17}, codec.ErrCorrupt},
		{"empty image", good, codec.Params{Samples: 1, BitsAllocated: 16, BitsStored: 16}, codec.ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data, c.p)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Every single bit flipped in the header and a sample of the
	// segments: an error or a frame, never a panic.
	for i := 0; i < len(good)*8; i += 1 + 7*(i/512) {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		if _, err := Decode(b, p); err != nil && !errors.Is(err, codec.ErrCorrupt) {
			t.Fatalf("bit %d: %v", i, err)
		}
	}
}

// TestPadding checks that bytes after a complete plane are ignored.
func TestPadding(t *testing.T) {
	p := codec.Params{Rows: 2, Cols: 2, Samples: 1, BitsAllocated: 8, BitsStored: 8}
	data := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(data, 1)
	binary.LittleEndian.PutUint32(data[4:], headerSize)
	data = append(data, 0xFD, 7, 0x80, 0, 0, 0) // run of 4, no-op, padding
	f, err := Decode(data, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Samples {
		if v != 7 {
			t.Fatalf("samples %v", f.Samples)
		}
	}
}

// corpusFile is one RLE file of the conformance corpus with its reference.
type corpusFile struct {
	path   string
	p      codec.Params
	frames int
	dtype  string
	sha    string
	expect string
}

// rleCorpus reads the RLE rows of INVENTORY.tsv and their reference.tsv
// sha256.
func rleCorpus(t testing.TB) []corpusFile {
	t.Helper()
	inv, err := os.ReadFile(filepath.Join(corpusDir, "INVENTORY.tsv"))
	if err != nil {
		t.Skipf("../shared/data/dicom not found: skipping RLE corpus test (%v)", err)
	}
	ref, err := os.ReadFile(filepath.Join(corpusDir, "reference.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string][]string{}
	for _, line := range strings.Split(string(ref), "\n") {
		f := strings.Split(line, "\t")
		if len(f) > 13 {
			refs[f[0]] = f
		}
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	var files []corpusFile
	for _, line := range strings.Split(string(inv), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 23 || f[3] != "1.2.840.10008.1.2.5" {
			continue
		}
		c := corpusFile{path: f[0], expect: f[22], frames: max(1, atoi(f[14])), p: codec.Params{
			Samples: atoi(f[8]), BitsAllocated: atoi(f[9]), BitsStored: atoi(f[10]),
			Signed: f[11] == "1", Rows: atoi(f[12]), Cols: atoi(f[13]),
		}}
		if r, ok := refs[c.path]; ok {
			c.dtype, c.sha = r[10], r[12]
		}
		files = append(files, c)
	}
	return files
}

// rleFrames returns the fragments of a file's encapsulated pixel data
// after the Basic Offset Table. Every corpus RLE file has one fragment per
// frame.
func rleFrames(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, path))
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.LastIndex(data, []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	if ow := bytes.LastIndex(data, []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}); ow > start {
		start = ow
	}
	if start < 0 {
		t.Fatalf("%s: no encapsulated pixel data", path)
	}
	var frags [][]byte
	for off := start + 12; off+8 <= len(data); {
		tag := binary.LittleEndian.Uint32(data[off:])
		n := int(binary.LittleEndian.Uint32(data[off+4:]))
		if tag == 0xE0DDFFFE {
			break
		}
		if tag != 0xE000FFFE {
			t.Fatalf("%s: item tag %08x", path, tag)
		}
		end := min(off+8+n, len(data)) // a cut file ends inside its last fragment
		frags = append(frags, data[off+8:end])
		off = end
	}
	return frags[1:]
}

// hashValues hashes samples the way numpy lays out the reference array.
func hashValues(frames []codec.Frame, dtype string) string {
	h := sha256.New()
	var buf []byte
	for _, f := range frames {
		buf = buf[:0]
		for _, v := range f.Samples {
			switch dtype {
			case "uint8", "int8":
				buf = append(buf, byte(v))
			case "uint16", "int16":
				buf = binary.LittleEndian.AppendUint16(buf, uint16(v))
			default:
				buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
			}
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestCorpus decodes every RLE file of the conformance corpus and compares
// the stored values with the pydicom + GDCM reference, bit for bit.
func TestCorpus(t *testing.T) {
	var matched int
	for _, c := range rleCorpus(t) {
		t.Run(c.path, func(t *testing.T) {
			frags := rleFrames(t, c.path)
			var frames []codec.Frame
			var err error
			for i := range c.frames {
				if i >= len(frags) {
					err = codec.Corruptf("missing frame %d", i)
					break
				}
				var f codec.Frame
				if f, err = Decode(frags[i], c.p); err != nil {
					break
				}
				frames = append(frames, f)
			}
			switch {
			case c.expect == "fail":
				if !errors.Is(err, codec.ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				t.Logf("fails as it must: %v", err)
			case c.expect == "either" && err != nil:
				if !errors.Is(err, codec.ErrUnsupported) {
					t.Fatalf("err = %v, want ErrUnsupported", err)
				}
				t.Logf("unsupported: %v", err)
			case err != nil:
				t.Fatal(err)
			case c.sha == "":
				t.Fatal("no reference")
			default:
				if got := hashValues(frames, c.dtype); got != c.sha {
					t.Fatalf("sha256 %s, reference %s", got, c.sha)
				}
				matched++
			}
		})
	}
	t.Logf("%d RLE files identical to the reference", matched)
}

// TestCXR8 decodes the RLE chest radiographs of cxr8 (8-bit 1024×1024).
func TestCXR8(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "..", "cxr8", "dicom", "*_rle.dcm"))
	if len(files) == 0 {
		t.Skip("../shared/data/cxr8 not found: skipping RLE cxr8 test")
	}
	p := codec.Params{Rows: 1024, Cols: 1024, Samples: 1, BitsAllocated: 8, BitsStored: 8}
	for _, path := range files {
		rel, _ := filepath.Rel(corpusDir, path)
		frags := rleFrames(t, rel)
		if len(frags) != 1 {
			t.Fatalf("%s: %d fragments", path, len(frags))
		}
		f, err := Decode(frags[0], p)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(f.Samples) != 1024*1024 {
			t.Fatalf("%s: %d samples", path, len(f.Samples))
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, path := range []string{
		"img2dcm/No_findings_00001280_004_rle.dcm",
		"nema-wg04-and-pydicom/data/WG04/RLE/CT1_RLE",
	} {
		var c corpusFile
		for _, f := range rleCorpus(b) {
			if f.path == path {
				c = f
			}
		}
		frag := rleFrames(b, path)[0]
		b.Run(filepath.Base(path), func(b *testing.B) {
			b.SetBytes(int64(c.p.Rows * c.p.Cols * c.p.Samples * c.p.BitsAllocated / 8))
			for b.Loop() {
				if _, err := Decode(frag, c.p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzDecode decodes arbitrary frames with a few layouts: no panic, and a
// frame exactly the promised size when there is no error.
func FuzzDecode(f *testing.F) {
	layouts := []codec.Params{
		{Rows: 8, Cols: 8, Samples: 1, BitsAllocated: 8, BitsStored: 8},
		{Rows: 8, Cols: 4, Samples: 1, BitsAllocated: 16, BitsStored: 12, Signed: true},
		{Rows: 4, Cols: 4, Samples: 3, BitsAllocated: 8, BitsStored: 8},
		{Rows: 3, Cols: 5, Samples: 3, BitsAllocated: 16, BitsStored: 16},
		{Rows: 2, Cols: 3, Samples: 1, BitsAllocated: 32, BitsStored: 32},
	}
	for i, p := range layouts {
		_, data := synthetic(p)
		f.Add(uint8(i), data)
	}
	if files := rleCorpusQuiet(); len(files) > 0 {
		f.Add(uint8(0), files[0])
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		p := layouts[int(which)%len(layouts)]
		p.MaxSamples = 1 << 16
		fr, err := Decode(data, p)
		if err != nil {
			if !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrUnsupported) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		if len(fr.Samples) != p.Rows*p.Cols*p.Samples {
			t.Fatalf("%d samples", len(fr.Samples))
		}
	})
}

// rleCorpusQuiet returns the first fragment of a small corpus RLE file, if
// the corpus is there, as an extra fuzz seed.
func rleCorpusQuiet() [][]byte {
	data, err := os.ReadFile(filepath.Join(corpusDir, "nema-wg04-and-pydicom/data/pydicom/MR_small_RLE.dcm"))
	if err != nil {
		return nil
	}
	i := bytes.LastIndex(data, []byte{0xFE, 0xFF, 0x00, 0xE0})
	if i < 0 || i+8 > len(data) {
		return nil
	}
	return [][]byte{data[i+8:]}
}
