package phantom

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/dicomio"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// TestGenerateDeterministic checks that a seed gives the same phantom and
// that another seed gives another.
func TestGenerateDeterministic(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			a := Generate(newRand(1), 128, kind)
			b := Generate(newRand(1), 128, kind)
			c := Generate(newRand(2), 128, kind)
			if !slices.Equal(a, b) {
				t.Error("same seed, different phantoms")
			}
			if slices.Equal(a, c) {
				t.Error("different seeds, same phantom")
			}
		})
	}
	u1, u2, u3 := NewUID(newRand(3)), NewUID(newRand(3)), NewUID(newRand(4))
	if u1 != u2 || u1 == u3 || !strings.HasPrefix(u1, "2.25.") || len(u1) > 64 {
		t.Error("NewUID is not deterministic per seed")
	}
}

// TestGenerateRange checks sizes and the 12-bit range, and that the images
// use a good part of it (neither black nor saturated).
func TestGenerateRange(t *testing.T) {
	for _, size := range []int{1, 7, 64, 256, 512} {
		for _, kind := range Kinds {
			pix := Generate(newRand(uint64(size)), size, kind)
			if len(pix) != size*size {
				t.Fatalf("%s %d: %d pixels", kind, size, len(pix))
			}
			if m := slices.Max(pix); m > MaxValue {
				t.Errorf("%s %d: value %d over %d", kind, size, m, MaxValue)
			}
			if size >= 64 {
				lo, hi := slices.Min(pix), slices.Max(pix)
				if lo > 600 || hi < 2500 {
					t.Errorf("%s %d: range %d..%d is too narrow", kind, size, lo, hi)
				}
			}
		}
	}
	if Generate(newRand(1), 0, Normal) != nil {
		t.Error("size 0 gave pixels")
	}
}

// TestAbnormalInLungs draws each abnormal kind and the normal phantom of
// the same seed (the same patient) and checks that they differ clearly,
// and only in and around the lungs.
func TestAbnormalInLungs(t *testing.T) {
	const size = 256
	for _, kind := range Kinds[1:] {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("%s/%d", kind, seed), func(t *testing.T) {
				normal, g := draw(newRand(seed), size, Normal)
				abnormal, _ := draw(newRand(seed), size, kind)
				var inSum, inMax, outMax float64
				var inCount int
				for i := range normal {
					x, y := float64(i%size)+0.5, float64(i/size)+0.5
					d := math.Abs(float64(abnormal[i]) - float64(normal[i]))
					inLung := g.lungs[0].r(x, y) < 1.05 || g.lungs[1].r(x, y) < 1.05
					if inLung {
						inSum += d
						inCount++
						inMax = max(inMax, d)
					} else {
						outMax = max(outMax, d)
					}
				}
				if inMax < 300 || inSum/float64(inCount) < 3 {
					t.Errorf("difference in the lungs: mean %.1f, max %.0f; want a visible lesion", inSum/float64(inCount), inMax)
				}
				if outMax > 0 {
					t.Errorf("difference outside the lungs up to %.0f", outMax)
				}
			})
		}
	}
}

// TestToImage checks the scaling to [0, 1].
func TestToImage(t *testing.T) {
	img := ToImage([]uint16{0, 4095, 1365, 2730}, 2)
	want := []float32{0, 1, float32(1365.0 / 4095), float32(2730.0 / 4095)}
	if img.Width != 2 || img.Height != 2 || !slices.Equal(img.Pix, want) {
		t.Errorf("ToImage = %+v", img)
	}
}

// TestWriteDICOMRoundTrip writes phantoms and reads them back with dicomio:
// the display values must be the phantom's, in both photometric
// interpretations, and the identity must be what was written.
func TestWriteDICOMRoundTrip(t *testing.T) {
	for _, mono1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("monochrome1=%v", mono1), func(t *testing.T) {
			rng := newRand(9)
			const size = 96
			pix := Generate(rng, size, Nodule)
			meta := Meta{
				PatientID: "PHANTOM-0009", StudyInstanceUID: NewUID(rng), SeriesInstanceUID: NewUID(rng),
				SOPInstanceUID: NewUID(rng), AccessionNumber: "PH0009", Monochrome1: mono1,
			}
			path := filepath.Join(t.TempDir(), "phantom.dcm")
			if err := WriteDICOM(path, pix, size, meta); err != nil {
				t.Fatal(err)
			}
			inst, img, err := dicomio.Load(path, dicomio.Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			photometric := map[bool]string{false: "MONOCHROME2", true: "MONOCHROME1"}[mono1]
			if inst.ID != meta.SOPInstanceUID || inst.StudyInstanceUID != meta.StudyInstanceUID ||
				inst.SeriesInstanceUID != meta.SeriesInstanceUID || inst.AccessionNumber != meta.AccessionNumber ||
				inst.Modality != "DX" || inst.Photometric != photometric || inst.Format != sentinel.FormatDICOM ||
				inst.Rows != size || inst.Columns != size || inst.SOPClassUID != secondaryCaptureUID {
				t.Errorf("instance %+v", inst)
			}
			want := ToImage(pix, size)
			for i := range want.Pix {
				if d := math.Abs(float64(img.Pix[i] - want.Pix[i])); d > 1e-6 {
					t.Fatalf("pixel %d: %v, want %v", i, img.Pix[i], want.Pix[i])
				}
			}
		})
	}
}

// TestWriteDICOMConformance has dcmdump, when it is installed, read a
// written file: it must parse without warnings (in particular not "Dataset
// not in ascending tag order").
func TestWriteDICOMConformance(t *testing.T) {
	dcmdump, err := exec.LookPath("dcmdump")
	if err != nil {
		t.Skip("dcmdump not on PATH (dcmtk not installed): skipping")
	}
	rng := newRand(11)
	path := filepath.Join(t.TempDir(), "phantom.dcm")
	meta := Meta{PatientID: "P", StudyInstanceUID: NewUID(rng), SeriesInstanceUID: NewUID(rng), SOPInstanceUID: NewUID(rng)}
	if err := WriteDICOM(path, Generate(rng, 64, Normal), 64, meta); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(dcmdump, "-M", path).CombinedOutput()
	if err != nil {
		t.Fatalf("dcmdump: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "W:") || strings.HasPrefix(line, "E:") || strings.Contains(line, "ascending tag order") {
			t.Errorf("dcmdump: %s", line)
		}
	}
	for _, want := range []string{"(0028,0101) US 12", "(0008,0060) CS [DX]", "(0002,0010) UI =LittleEndianExplicit", meta.SOPInstanceUID} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dcmdump output lacks %q", want)
		}
	}
}

// TestWriteDICOMErrors checks the argument checks.
func TestWriteDICOMErrors(t *testing.T) {
	dir := t.TempDir()
	ok := Meta{StudyInstanceUID: "1.2", SeriesInstanceUID: "1.3", SOPInstanceUID: "1.4"}
	if err := WriteDICOM(filepath.Join(dir, "a.dcm"), make([]uint16, 3), 2, ok); err == nil {
		t.Error("wrong pixel count accepted")
	}
	if err := WriteDICOM(filepath.Join(dir, "b.dcm"), make([]uint16, 4), 2, Meta{}); err == nil {
		t.Error("missing UIDs accepted")
	}
	if err := WriteDICOM(filepath.Join(dir, "missing", "c.dcm"), make([]uint16, 4), 2, ok); err == nil {
		t.Error("missing folder accepted")
	}
	entries, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, size := range []int{64, 256, 512} {
		for _, kind := range Kinds {
			b.Run(fmt.Sprintf("%s/%d", kind, size), func(b *testing.B) {
				rng := newRand(1)
				for b.Loop() {
					Generate(rng, size, kind)
				}
			})
		}
	}
}
