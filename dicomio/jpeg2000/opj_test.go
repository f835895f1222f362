package jpeg2000

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// The corpus only holds single-tile LRCP codestreams with the default
// code-block style, so the features it does not reach are checked against
// OpenJPEG's own tools when they are installed (Debian libopenjp2-tools):
// opj_compress encodes synthetic images with each option, and lossless
// results must equal the source while lossy ones must be within a level
// of opj_decompress.

type rawImage struct {
	w, h, comps, bits int
	signed            bool
	planes            [][]int32
}

// synthetic makes a deterministic image with smooth gradients, edges and
// noise, so every sub-band has something to code.
func synthetic(w, h, comps, bits int, signed bool) rawImage {
	img := rawImage{w: w, h: h, comps: comps, bits: bits, signed: signed}
	lo, hi := 0, 1<<bits-1
	if signed {
		lo, hi = -(1 << (bits - 1)), 1<<(bits-1)-1
	}
	seed := uint32(12345)
	for c := range comps {
		pl := make([]int32, w*h)
		for y := range h {
			for x := range w {
				seed = seed*1664525 + 1013904223
				v := float64(hi-lo) * (0.5 + 0.35*math.Sin(float64(x*(c+1))/9)*math.Cos(float64(y)/13))
				if (x/16+y/16)%2 == 0 {
					v += float64(hi-lo) / 8
				}
				v += float64(seed>>24) / 255 * float64(hi-lo) / 20
				pl[y*w+x] = int32(max(lo, min(hi, lo+int(v))))
			}
		}
		img.planes = append(img.planes, pl)
	}
	return img
}

func (img rawImage) write(path string) error {
	var b []byte
	for _, pl := range img.planes {
		for _, v := range pl {
			if img.bits <= 8 {
				b = append(b, byte(v))
			} else {
				b = binary.LittleEndian.AppendUint16(b, uint16(v))
			}
		}
	}
	return os.WriteFile(path, b, 0o644)
}

// readRaw reads an opj_decompress .rawl output laid out like img.
func (img rawImage) readRaw(path string) ([][]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	size := 1
	if img.bits > 8 {
		size = 2
	}
	if len(b) != img.w*img.h*img.comps*size {
		return nil, fmt.Errorf("%d bytes of raw output", len(b))
	}
	var planes [][]int32
	for c := range img.comps {
		pl := make([]int32, img.w*img.h)
		for i := range pl {
			off := (c*len(pl) + i) * size
			switch {
			case size == 1 && img.signed:
				pl[i] = int32(int8(b[off]))
			case size == 1:
				pl[i] = int32(b[off])
			case img.signed:
				pl[i] = int32(int16(binary.LittleEndian.Uint16(b[off:])))
			default:
				pl[i] = int32(binary.LittleEndian.Uint16(b[off:]))
			}
		}
		planes = append(planes, pl)
	}
	return planes, nil
}

type featureCase struct {
	name  string
	img   rawImage
	args  string
	lossy bool
}

// featureCases lists one encoding per feature the corpus lacks.
func featureCases(gray, signed, rgb rawImage) []featureCase {
	return []featureCase{
		{"default", gray, "", false},
		{"tiles RLCP", gray, "-t 40,30 -n 5 -p RLCP", false},
		{"tiles offset RPCL", gray, "-t 50,40 -T 3,5 -d 7,11 -p RPCL", false},
		{"precincts PCRL", gray, "-c [32,32],[16,16],[8,8] -b 8,8 -p PCRL -n 4", false},
		{"precincts CPRL", rgb, "-n 3 -c [16,16],[16,16],[8,8] -b 4,4 -p CPRL", false},
		{"SOP EPH", gray, "-SOP -EPH -r 40,10,1", false},
		{"layers LRCP", gray, "-r 30,8,1 -p LRCP", false},
		{"POC", rgb, "-n 5 -POC T0=0,0,1,3,3,CPRL/T0=3,0,1,5,3,RLCP", false},
		{"tile-parts by resolution", gray, "-t 64,64 -TP R -p RLCP", false},
		{"tile-parts by component", rgb, "-t 32,32 -TP C -p CPRL", false},
		{"tile-parts by layer", gray, "-t 64,64 -TP L -r 20,5,1", false},
		{"bypass", gray, "-M 1", false},
		{"reset", gray, "-M 2", false},
		{"termall", gray, "-M 4", false},
		{"causal", gray, "-M 8", false},
		{"erterm", gray, "-M 16", false},
		{"segsym", gray, "-M 32", false},
		{"all styles", signed, "-M 63 -r 20,4,1", false},
		{"bypass termall layers", gray, "-M 5 -r 25,5,1", false},
		{"signed 16-bit", signed, "-n 6", false},
		{"one resolution", gray, "-n 1", false},
		{"ROI shift", gray, "-ROI c=0,U=5", false},
		{"RGB RCT", rgb, "-mct 1", false},
		{"RGB no MCT", rgb, "-mct 0", false},
		{"JP2 wrapper", gray, "jp2", false},
		{"9/7", gray, "-I", true},
		{"9/7 rate", gray, "-I -r 10", true},
		{"9/7 ICT layers", rgb, "-I -r 20,5 -p RPCL", true},
		{"9/7 signed tiles", signed, "-I -t 33,33 -n 4 -r 12", true},
		{"9/7 all styles", gray, "-I -M 63 -r 8", true},
		{"5/3 truncated", signed, "-r 8", true},
	}
}

// encodeOPJ runs opj_compress on img with args ("jp2" for a JP2 file).
func encodeOPJ(t testing.TB, dir string, i int, img rawImage, args string) []byte {
	t.Helper()
	sign := "u"
	if img.signed {
		sign = "s"
	}
	src := filepath.Join(dir, fmt.Sprintf("src%d.rawl", i))
	if err := img.write(src); err != nil {
		t.Fatal(err)
	}
	ext, fields := ".j2k", strings.Fields(args)
	if args == "jp2" {
		ext, fields = ".jp2", nil
	}
	out := filepath.Join(dir, fmt.Sprintf("c%d%s", i, ext))
	cmd := append([]string{"-i", src, "-o", out, "-F", fmt.Sprintf("%d,%d,%d,%d,%s", img.w, img.h, img.comps, img.bits, sign)}, fields...)
	if b, err := exec.Command("opj_compress", cmd...).CombinedOutput(); err != nil {
		t.Fatalf("opj_compress %v: %v\n%s", cmd, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func needOPJ(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("opj_compress"); err != nil {
		t.Skip("opj_compress not installed (Debian libopenjp2-tools): skipping the feature matrix")
	}
}

func TestOpenJPEGFeatures(t *testing.T) {
	needOPJ(t)
	cases := featureCases(synthetic(131, 97, 1, 12, false), synthetic(70, 66, 1, 16, true), synthetic(67, 45, 3, 8, false))
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img
			data := encodeOPJ(t, dir, i, img, tc.args)
			out := filepath.Join(dir, fmt.Sprintf("c%d.j2k", i))
			ba := 8
			if img.bits > 8 {
				ba = 16
			}
			f, err := Decode(data, codec.Params{Rows: img.h, Cols: img.w, Samples: img.comps, BitsAllocated: ba, BitsStored: img.bits, Signed: img.signed})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := img.planes
			if tc.lossy {
				dec := filepath.Join(dir, fmt.Sprintf("d%d.rawl", i))
				if b, err := exec.Command("opj_decompress", "-i", out, "-o", dec).CombinedOutput(); err != nil {
					t.Fatalf("opj_decompress: %v\n%s", err, b)
				}
				if want, err = img.readRaw(dec); err != nil {
					t.Fatal(err)
				}
			}
			var maxd, ndiff int64
			for c, pl := range want {
				for k, v := range pl {
					d := int64(f.Samples[k*img.comps+c]) - int64(v)
					d = max(d, -d)
					maxd = max(maxd, d)
					if d != 0 {
						ndiff++
					}
				}
			}
			if tc.lossy {
				t.Logf("vs opj_decompress: max |diff| %d, %d samples differ", maxd, ndiff)
				if maxd > lossyMaxAbsDiff {
					t.Errorf("lossy decode differs from OpenJPEG by %d", maxd)
				}
			} else if maxd != 0 {
				t.Errorf("lossless decode differs from the source: max |diff| %d, %d samples", maxd, ndiff)
			}
		})
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzDecode from tiny
// synthetic images, one per feature, when JPEG2000_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("JPEG2000_WRITE_SEEDS") != "1" {
		t.Skip("set JPEG2000_WRITE_SEEDS=1 to regenerate the fuzz seeds")
	}
	needOPJ(t)
	dir := t.TempDir()
	out := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := featureCases(synthetic(40, 36, 1, 12, false), synthetic(24, 20, 1, 16, true), synthetic(21, 17, 3, 8, false))
	gray := cases[0].img
	cases = append(cases,
		featureCase{name: "small tiles RLCP", img: gray, args: "-t 16,16 -p RLCP"},
		featureCase{name: "small tiles offset RPCL", img: gray, args: "-t 12,10 -T 3,5 -d 7,11 -p RPCL -n 2"},
		featureCase{name: "small tiles tile-parts", img: gray, args: "-t 16,16 -TP R -SOP -EPH"},
	)
	for i, tc := range cases {
		if strings.Contains(tc.args, "-t ") && !strings.HasPrefix(tc.name, "small") || strings.Contains(tc.args, "-n 5") {
			continue // too small for the tiling or resolutions of this case
		}
		var data []byte
		if tc.args == "jp2" {
			data = encodeOPJ(t, dir, i, tc.img, "jp2")
		} else {
			data = encodeOPJ(t, dir, i, tc.img, tc.args+" -n 3")
		}
		name := strings.NewReplacer(" ", "_", "/", "-").Replace(tc.name)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMissingTilePart drops the last tile-part of a codestream split into
// tile-parts: the decoder must notice from TNsot instead of returning a
// tile without its finest resolution.
func TestMissingTilePart(t *testing.T) {
	needOPJ(t)
	img := synthetic(131, 97, 1, 12, false)
	data := encodeOPJ(t, t.TempDir(), 0, img, "-t 64,64 -TP R -p RLCP")
	last := bytes.LastIndex(data, []byte{0xFF, 0x90, 0x00, 0x0A})
	if last < 0 {
		t.Fatal("no SOT")
	}
	cut := append(slices.Clone(data[:last]), 0xFF, 0xD9)
	p := codec.Params{Rows: img.h, Cols: img.w, Samples: 1, BitsAllocated: 16, BitsStored: 12}
	if _, err := Decode(data, p); err != nil {
		t.Fatalf("complete codestream: %v", err)
	}
	if _, err := Decode(cut, p); !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("got %v, want a corrupt codestream", err)
	}
}
