package jpeg2000

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// htTestdata holds HTJ2K codestreams made with OpenJPH's ojph_compress
// (see its README).
const htTestdata = "../../testdata/dicomio/htj2k"

// htCase is one HTJ2K codestream of htTestdata and the image it encodes.
type htCase struct {
	file string
	img  rawImage
	// lossless is set when the codestream must decode to img exactly.
	lossless bool
}

// htCases are the codestreams of htTestdata. Their sources are the
// synthetic images below; make_htj2k.sh encodes them.
func htCases() []htCase {
	return []htCase{
		{"gray12_rev.j2c", synthetic(97, 61, 1, 12, false), true},
		{"gray12_rev_b16x8_lrcp.j2c", synthetic(97, 61, 1, 12, false), true},
		{"gray16_rev.j2c", synthetic(130, 70, 1, 16, false), true},
		// ojph_compress reads negative raw samples as large positive
		// ones and clamps them, so this one is only compared with
		// OpenJPEG.
		{"signed16_rev.j2c", synthetic(70, 66, 1, 16, true), false},
		{"rgb8_rev.j2c", synthetic(67, 45, 3, 8, false), true},
		{"rgb8_rev_nomct.j2c", synthetic(67, 45, 3, 8, false), true},
		{"tiny_rev.j2c", synthetic(5, 3, 1, 8, false), true},
		{"row_rev.j2c", synthetic(33, 1, 1, 8, false), true},
		{"column_rev.j2c", synthetic(1, 29, 1, 8, false), true},
		{"tiles_rev.j2c", synthetic(97, 61, 1, 12, false), true},
		{"gray12_lossy.j2c", synthetic(97, 61, 1, 12, false), false},
		{"rgb8_lossy.j2c", synthetic(67, 45, 3, 8, false), false},
	}
}

// params returns the codec parameters of a DICOM frame holding img.
func (img rawImage) params() codec.Params {
	ba := 8
	if img.bits > 8 {
		ba = 16
	}
	return codec.Params{Rows: img.h, Cols: img.w, Samples: img.comps, BitsAllocated: ba, BitsStored: img.bits, Signed: img.signed}
}

// opjDecompress decodes a codestream with OpenJPEG's opj_decompress and
// returns its components, read from the PGX files it writes.
func opjDecompress(t testing.TB, data []byte, comps int) [][]int32 {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.j2c")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("opj_decompress", "-i", in, "-o", filepath.Join(dir, "out.pgx")).CombinedOutput(); err != nil {
		t.Fatalf("opj_decompress: %v\n%s", err, b)
	}
	var planes [][]int32
	for c := range comps {
		pl, err := readPGX(filepath.Join(dir, fmt.Sprintf("out_%d.pgx", c)))
		if err != nil {
			t.Fatal(err)
		}
		planes = append(planes, pl)
	}
	return planes
}

// readPGX reads a PGX file ("PG ML|LM +|- depth width height", then the
// samples in one or two bytes, or four above 16 bits).
func readPGX(path string) ([]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%s: no header", path)
	}
	f := strings.Fields(strings.NewReplacer("+", " + ", "-", " - ").Replace(string(b[:nl])))
	if len(f) != 6 || f[0] != "PG" {
		return nil, fmt.Errorf("%s: header %q", path, b[:nl])
	}
	var bo binary.ByteOrder = binary.BigEndian
	if f[1] == "LM" {
		bo = binary.LittleEndian
	}
	signed := f[2] == "-"
	depth, _ := strconv.Atoi(f[3])
	w, _ := strconv.Atoi(f[4])
	h, _ := strconv.Atoi(f[5])
	size := 1
	switch {
	case depth > 16:
		size = 4
	case depth > 8:
		size = 2
	}
	body := b[nl+1:]
	if len(body) < w*h*size {
		return nil, fmt.Errorf("%s: %d bytes for %dx%d", path, len(body), w, h)
	}
	out := make([]int32, w*h)
	for i := range out {
		switch {
		case size == 1 && signed:
			out[i] = int32(int8(body[i]))
		case size == 1:
			out[i] = int32(body[i])
		case size == 2 && signed:
			out[i] = int32(int16(bo.Uint16(body[2*i:])))
		case size == 2:
			out[i] = int32(bo.Uint16(body[2*i:]))
		default:
			out[i] = int32(bo.Uint32(body[4*i:]))
		}
	}
	return out, nil
}

// interleaved returns planes as one slice with the samples of a pixel
// adjacent, as codec.Frame holds them.
func interleaved(planes [][]int32) []int32 {
	n := len(planes[0])
	out := make([]int32, n*len(planes))
	for c, pl := range planes {
		for i, v := range pl {
			out[i*len(planes)+c] = v
		}
	}
	return out
}

// firstDiff returns the index of the first sample where a and b differ,
// or -1.
func firstDiff(a, b []int32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestHTJ2K decodes the HTJ2K codestreams of htTestdata: lossless ones
// must give their source image exactly, and every one must equal
// OpenJPEG's decode sample for sample when opj_decompress is installed.
func TestHTJ2K(t *testing.T) {
	_, opjErr := exec.LookPath("opj_decompress")
	for _, tc := range htCases() {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(htTestdata, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Decode(data, tc.img.params())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tc.lossless {
				if i := firstDiff(f.Samples, interleaved(tc.img.planes)); i >= 0 {
					t.Errorf("sample %d is %d, the source has %d", i, f.Samples[i], interleaved(tc.img.planes)[i])
				}
			}
			if opjErr != nil {
				t.Skip("opj_decompress not installed (Debian libopenjp2-tools): not compared with OpenJPEG")
			}
			want := interleaved(opjDecompress(t, data, tc.img.comps))
			if i := firstDiff(f.Samples, want); i >= 0 {
				t.Errorf("sample %d (of %d) is %d, OpenJPEG gives %d", i, len(want), f.Samples[i], want[i])
			}
		})
	}
}

// htMake rewrites the codestreams of htTestdata with ojph_compress.
var htMake = flag.Bool("htmake", false, "rewrite the HTJ2K test codestreams with ojph_compress (OpenJPH)")

// htArgs are the ojph_compress options of each codestream of htCases.
var htArgs = map[string]string{
	"gray12_rev.j2c":            "-reversible true -num_decomps 3 -block_size {32,32}",
	"gray12_rev_b16x8_lrcp.j2c": "-reversible true -num_decomps 4 -block_size {8,16} -prog_order LRCP -precincts {16,16},{32,32}",
	"gray16_rev.j2c":            "-reversible true",
	"signed16_rev.j2c":          "-reversible true -num_decomps 4",
	"rgb8_rev.j2c":              "-reversible true -num_decomps 3",
	"rgb8_rev_nomct.j2c":        "-reversible true -num_decomps 3 -colour_trans false -prog_order CPRL",
	"tiny_rev.j2c":              "-reversible true -num_decomps 1",
	"row_rev.j2c":               "-reversible true -num_decomps 2",
	"column_rev.j2c":            "-reversible true -num_decomps 2",
	"tiles_rev.j2c":             "-reversible true -num_decomps 2 -tile_size {40,32} -prog_order RLCP",
	"gray12_lossy.j2c":          "-num_decomps 3 -qstep 0.001",
	"rgb8_lossy.j2c":            "-num_decomps 3 -qstep 0.01",
}

// TestMakeHTJ2K writes the codestreams of htTestdata when -htmake is
// given: each source is written raw (planar, little endian) and encoded
// with ojph_compress.
func TestMakeHTJ2K(t *testing.T) {
	if !*htMake {
		t.Skip("-htmake not given: the HTJ2K test codestreams are kept")
	}
	dir := t.TempDir()
	for _, tc := range htCases() {
		img := tc.img
		if img.comps == 3 {
			// ojph_compress transforms colour from PPM input only.
			src := filepath.Join(dir, strings.TrimSuffix(tc.file, ".j2c")+".ppm")
			ppm := fmt.Appendf(nil, "P6\n%d %d\n255\n", img.w, img.h)
			for _, v := range interleaved(img.planes) {
				ppm = append(ppm, byte(v))
			}
			if err := os.WriteFile(src, ppm, 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"-i", src, "-o", filepath.Join(htTestdata, tc.file)}, strings.Fields(htArgs[tc.file])...)
			if b, err := exec.Command("ojph_compress", args...).CombinedOutput(); err != nil {
				t.Fatalf("ojph_compress %v: %v\n%s", args, err, b)
			}
			continue
		}
		src := filepath.Join(dir, strings.TrimSuffix(tc.file, ".j2c")+".yuv")
		if err := img.write(src); err != nil {
			t.Fatal(err)
		}
		signed, depth, down := "false", strconv.Itoa(img.bits), "{1,1}"
		for range img.comps - 1 {
			signed += "," + strconv.FormatBool(img.signed)
			depth += "," + strconv.Itoa(img.bits)
			down += ",{1,1}"
		}
		if img.signed {
			signed = strings.ReplaceAll(signed, "false", "true")
		}
		args := append([]string{"-i", src, "-o", filepath.Join(htTestdata, tc.file),
			"-dims", fmt.Sprintf("{%d,%d}", img.w, img.h), "-num_comps", strconv.Itoa(img.comps),
			"-signed", signed, "-bit_depth", depth, "-downsamp", down}, strings.Fields(htArgs[tc.file])...)
		if b, err := exec.Command("ojph_compress", args...).CombinedOutput(); err != nil {
			t.Fatalf("ojph_compress %v: %v\n%s", args, err, b)
		}
	}
}

// TestParallelPanic checks that a panic in a worker of the parallel
// wavelet reaches the caller, where Decode turns it into an error instead
// of the process dying.
func TestParallelPanic(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("the worker's panic did not reach the caller")
		}
	}()
	parallel(100, 2, func(w, lo, hi int) {
		if w == 1 {
			panic("worker failed")
		}
	})
}
