package dicomio

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// update rewrites docs/conformance.md from TestConformance (also when the
// environment variable SENTINEL_UPDATE_DOCS is set).
var update = flag.Bool("update", false, "rewrite docs/conformance.md")

// conformanceDoc is where TestConformance writes its tables.
const conformanceDoc = "../docs/conformance.md"

// twin is an independent reference for a file whose pydicom + GDCM decode
// is wrong (trusted=no in reference.tsv): another corpus file holding the
// same image, decoded by this package.
type twin struct {
	path  string
	lossy bool // the file (or the twin) is lossy: compare within twinTolerance
	why   string
}

// twins lists the twin of every trusted=no reference.
var twins = map[string]twin{
	"nema-wg04-and-pydicom/data/WG04/JLSL/MR1_JLSL": {"nema-wg04-and-pydicom/data/WG04/REF/MR1_UNC", false,
		"GDCM returns all zeros; compared with WG04's uncompressed original REF/MR1_UNC (as dcmtk, which equals it)"},
	"cornerstone/testImages/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.80.dcm": {
		"cornerstone/testImages/encapsulated/multi-frame/CT0012.not_fragmented_bot_jpeg_ls.80.dcm", false,
		"GDCM returns all zeros for fragmented frames without a Basic Offset Table; compared with the same frames unfragmented with a BOT (as dcmtk)"},
	"cornerstone/testImages/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.81.dcm": {
		"cornerstone/testImages/encapsulated/multi-frame/CT0012.explicit_little_endian.dcm", true,
		"GDCM returns all zeros for fragmented frames without a Basic Offset Table; near-lossless, compared with the uncompressed original within the twin tolerance"},
	"nema-wg04-and-pydicom/data/WG04/JPLY/RG3_JPLY": {"nema-wg04-and-pydicom/data/WG04/REF/RG3_UNC", true,
		"GDCM wraps 8 pixels from 1024 to 0; compared with WG04's uncompressed original within the twin tolerance"},
}

// lossyTolerance bounds how far a lossy decode may be from the reference
// decoder's on the same codestream, pixel by pixel (the largest and the
// mean absolute difference) or, without the reference decoder, in min,
// max and mean: IDCT and wavelet rounding differ between decoders by a
// level or two, a little more at the extremes that clamping decides. It
// scales with the sample range.
func lossyTolerance(bitsStored int) (levels, mean float64) {
	r := math.Exp2(float64(bitsStored))
	return 4 + r/1024, 0.5 + r/8192
}

// twinTolerance bounds the difference between a lossy decode and the
// uncompressed original, pixel by pixel: the compression error itself.
func twinTolerance(bitsStored int) (maxAbs, meanAbs float64) {
	r := math.Exp2(float64(bitsStored))
	return r / 16, r / 256
}

// fileResult is what the conformance test found for one corpus file.
type fileResult struct {
	inv     inventoryRow
	outcome string // corpusOutcome of Load, or "panic"
	err     error
	// verdict is pass, fail or unsupported (refused as unsupported where
	// the inventory expects a decode).
	verdict string
	// check says how the decode was compared; note explains a mismatch
	// or a refusal.
	check, note string
	// lossless is set for trusted lossless references, lossy for lossy
	// ones; identical when their hash (or OpenJPEG's decode) matched.
	lossless, lossy, identical bool
}

// decodeAll decodes every frame of a DICOM file, never panicking.
func decodeAll(path string) (f dicomFile, frames []frame, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic: %v", errPanic, r)
		}
	}()
	data, err := os.ReadFile(path)
	if err != nil {
		return f, nil, err
	}
	var inst sentinel.Instance
	if f, err = openDICOM(data, &inst, Options{}); err != nil {
		return f, nil, err
	}
	for i := range f.layout.frames {
		fr, err := f.codec(f.pixels, f.layout, i, nil)
		if err != nil {
			return f, nil, err
		}
		frames = append(frames, fr)
	}
	return f, frames, nil
}

var errPanic = errors.New("panic")

// loadSafely runs Load, reporting a panic (which Load must never let out).
func loadSafely(path string) (err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			err, panicked = fmt.Errorf("panic: %v", r), true
		}
	}()
	_, _, err = Load(path, Options{})
	return err, false
}

// TestConformance runs every file of the conformance corpus through Load
// and checks it against INVENTORY.tsv, then compares every decode with its
// reference in reference.tsv: identical SHA-256 of the stored values for
// lossless syntaxes, pixel by pixel within lossyTolerance for lossy ones
// (decoded with pydicom and GDCM here; min/max/mean when they are absent),
// and the twin of each trusted=no reference instead of the reference. No
// panic may escape. With -update it rewrites docs/conformance.md.
func TestConformance(t *testing.T) {
	needDir(t, corpusDir)
	if testing.Short() {
		t.Skip("-short: skipping the conformance test (every frame of 335 files)")
	}
	refs := readReference(t)
	var results []fileResult
	for _, inv := range readInventory(t) {
		r := checkFile(t, inv, refs)
		if r.verdict == "fail" {
			t.Errorf("%s: %s (%v) %s %s", inv.path, r.outcome, r.err, r.check, r.note)
		} else if testing.Verbose() {
			t.Logf("%-11s %-11s %s %s %s", r.verdict, r.outcome, inv.path, r.check, r.note)
		}
		results = append(results, r)
	}
	var panics, lossless, identical int
	for _, r := range results {
		if r.outcome == "panic" {
			panics++
		}
		if r.lossless {
			lossless++
			if r.identical {
				identical++
			}
		}
	}
	if panics > 0 {
		t.Errorf("%d panics", panics)
	}
	if lossless > 0 && float64(identical) < 0.98*float64(lossless) {
		t.Errorf("%d of %d lossless references identical, want at least 98%%", identical, lossless)
	}
	t.Logf("lossless references identical: %d of %d; panics: %d", identical, lossless, panics)
	cx := checkCXR8(t)
	if *update || os.Getenv("SENTINEL_UPDATE_DOCS") != "" {
		if err := os.WriteFile(conformanceDoc, []byte(conformanceMarkdown(results, cx)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", conformanceDoc)
	}
}

// checkFile loads one corpus file and judges it.
func checkFile(t *testing.T, inv inventoryRow, refs map[string]referenceRow) fileResult {
	r := fileResult{inv: inv}
	path := filepath.Join(corpusDir, inv.path)
	err, panicked := loadSafely(path)
	r.err, r.outcome = err, corpusOutcome(err)
	if panicked {
		r.outcome, r.verdict = "panic", "fail"
		return r
	}
	if r.outcome == "other" {
		r.verdict, r.note = "fail", "error without a sentinel"
		return r
	}
	if !slices.Contains(inventoryAllowed[inv.expect], r.outcome) {
		if reason, ok := byDesign[inv.path]; ok {
			r.verdict, r.note = "pass", reason
		} else {
			r.verdict, r.note = "fail", "inventory says "+inv.expect
		}
		return r
	}
	r.verdict = "pass"
	if r.outcome == "unsupported" && inv.expect != "fail" {
		r.verdict = "unsupported"
		r.note = err.Error()
		return r
	}
	ref, ok := refs[inv.path]
	if r.outcome == "ok" && !ok && htj2kSyntaxes[inv.syntax] {
		compareOpenJPEG(&r)
		return r
	}
	if r.outcome != "ok" || !ok {
		return r
	}
	compareReference(t, &r, ref)
	return r
}

// htj2kSyntaxes are the HTJ2K transfer syntaxes, which neither pydicom 2.3
// with GDCM nor dcmtk decode: OpenJPEG's opj_decompress is their reference.
var htj2kSyntaxes = map[string]bool{uidHTJ2KLossless: true, uidHTJ2KLosslessRP: true, uidHTJ2K: true}

// compareOpenJPEG compares every frame of an HTJ2K file with OpenJPEG's
// decode of the same codestream, sample for sample.
func compareOpenJPEG(r *fileResult) {
	if _, err := exec.LookPath("opj_decompress"); err != nil {
		r.check = "no reference decoder here (opj_decompress not installed)"
		return
	}
	r.lossless = r.inv.syntax != uidHTJ2K
	r.lossy = !r.lossless
	f, frames, err := decodeAll(filepath.Join(corpusDir, r.inv.path))
	if err != nil {
		r.verdict, r.check, r.note = "fail", "frames", err.Error()
		return
	}
	for i, fr := range frames {
		cs, err := f.pixels.frameData(i, f.layout.frames, markerJPEG2000)
		if err != nil {
			r.verdict, r.check = "fail", err.Error()
			return
		}
		want, err := openJPEGDecode(cs, f.layout.samples, f.layout.bitsAllocated)
		if err == nil && len(want) != len(fr.samples) {
			err = fmt.Errorf("%d samples, OpenJPEG gives %d", len(fr.samples), len(want))
		}
		if err != nil {
			r.verdict, r.check = "fail", "OpenJPEG: "+err.Error()
			return
		}
		for k, v := range fr.samples {
			if int64(want[k]) != f.layout.value(v) {
				r.verdict, r.check = "fail", fmt.Sprintf("frame %d sample %d is %d, OpenJPEG gives %d", i, k, v, want[k])
				return
			}
		}
	}
	r.identical = true
	r.check = "identical to OpenJPEG 2.5 opj_decompress, sample for sample"
	r.note = "no pydicom 2.3 + GDCM reference (neither decodes HTJ2K, nor dcmtk 3.6.7); OpenJPEG is the reference"
}

// openJPEGDecode decodes a codestream with opj_decompress into raw little
// endian planes and returns them interleaved.
func openJPEGDecode(cs []byte, comps, bitsAllocated int) ([]int32, error) {
	dir, err := os.MkdirTemp("", "sentinel-opj-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "in.j2c"), filepath.Join(dir, "out.rawl")
	if err := os.WriteFile(in, cs, 0o644); err != nil {
		return nil, err
	}
	if msg, err := exec.Command("opj_decompress", "-i", in, "-o", out).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, bytes.TrimSpace(msg))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	size := (bitsAllocated + 7) / 8
	n := len(b) / size / comps
	vals := make([]int32, n*comps)
	for c := range comps {
		for i := range n {
			off := (c*n + i) * size
			v := int32(b[off])
			if size == 2 {
				v = int32(binary.LittleEndian.Uint16(b[off:]))
			}
			vals[i*comps+c] = v
		}
	}
	return vals, nil
}

// compareReference compares the stored values of every frame with the
// reference decode, or with the file's twin.
func compareReference(t *testing.T, r *fileResult, ref referenceRow) {
	f, frames, err := decodeAll(filepath.Join(corpusDir, ref.path))
	if err != nil {
		r.verdict, r.check, r.note = "fail", "frames", err.Error()
		if errors.Is(err, errPanic) {
			r.outcome = "panic"
		}
		return
	}
	r.lossless = ref.trusted && !ref.lossy
	r.lossy = ref.trusted && ref.lossy
	if reason, ok := unmaskedReference[ref.path]; ok {
		// The reference keeps the sign bits unextended: masking this
		// package's values to BitsStored (or, for native data, the raw
		// words) must give it exactly.
		mask := int64(1)<<f.layout.bitsStored - 1
		var masked []frame
		for _, fr := range frames {
			m := frame{samples: make([]int32, len(fr.samples))}
			for i, v := range fr.samples {
				m.samples[i] = int32(f.layout.value(v) & mask)
			}
			masked = append(masked, m)
		}
		r.check, r.note = "differs by design", reason
		got := storedBytes(t, masked, ref.dtype)
		if !f.pixels.encapsulated {
			// Native data: the reference is the raw words.
			l := f.layout
			got = f.pixels.native[:l.frames*l.rows*l.cols*l.samples*l.bitsAllocated/8]
		}
		if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != ref.sha {
			r.verdict, r.check = "fail", "differs beyond the sign extension"
		}
		return
	}
	if reason, ok := unswappedReference[ref.path]; ok {
		r.check, r.note = "differs by design", reason
		sum := sha256.Sum256(swapPairs(storedBytes(t, frames, ref.dtype)))
		if hex.EncodeToString(sum[:]) != ref.sha {
			r.verdict, r.check = "fail", "differs beyond the byte order of OW words"
		}
		return
	}
	if !ref.trusted {
		compareTwin(t, r, ref, f.layout, frames)
		return
	}
	sum := sha256.Sum256(storedBytes(t, frames, ref.dtype))
	if hex.EncodeToString(sum[:]) == ref.sha {
		r.check, r.identical = "identical", true
		return
	}
	if !ref.lossy {
		r.verdict, r.check, r.note = "fail", "mismatch", "sha256 of the stored values differs from the lossless reference"
		return
	}
	levels, meanTol := lossyTolerance(ref.bitsStored)
	want, err := referencePixels(filepath.Join(corpusDir, ref.path), ref.sha)
	switch {
	case errors.Is(err, errNoReferenceDecoder):
		// Without pydicom and GDCM only the summary can be compared.
		mn, mx, mean := stats(frames, f.layout, ref.photometric, ref.bitsStored)
		r.check = fmt.Sprintf("lossy, no reference decoder here: min %g/%g, max %g/%g, mean %.2f/%.2f (tolerance ±%g levels, ±%.2f mean)",
			mn, ref.min, mx, ref.max, mean, ref.mean, levels, meanTol)
		if math.Abs(mn-ref.min) > levels || math.Abs(mx-ref.max) > levels || math.Abs(mean-ref.mean) > meanTol {
			r.verdict = "fail"
		}
	case err != nil:
		r.verdict, r.check = "fail", "reference decode: "+err.Error()
	default:
		maxAbs, meanAbs, err := pixelDifference(frames, f.layout, want)
		r.check = fmt.Sprintf("lossy: max |Δ| %g, mean |Δ| %.3f pixel by pixel (tolerance %g, %.2f)", maxAbs, meanAbs, levels, meanTol)
		if err != nil {
			r.check = err.Error()
		}
		if err != nil || maxAbs > levels || meanAbs > meanTol {
			r.verdict = "fail"
		}
	}
	if ref.note != "" {
		r.note = ref.note
	}
}

// errNoReferenceDecoder means pydicom and GDCM are not installed.
var errNoReferenceDecoder = errors.New("pydicom with GDCM not installed")

// referencePython is the interpreter that has Debian's python3-pydicom,
// python3-gdcm and python3-numpy.
const referencePython = "/usr/bin/python3"

// referenceScript writes pydicom's pixel_array of argv[1] as float64
// values to argv[2] and prints the SHA-256 of the array's bytes, as
// reference.tsv has it.
const referenceScript = `import sys, hashlib, numpy, pydicom
a = numpy.ascontiguousarray(pydicom.dcmread(sys.argv[1]).pixel_array)
open(sys.argv[2], "wb").write(a.astype("<f8").tobytes())
print(hashlib.sha256(a.tobytes()).hexdigest())
`

// referencePixels decodes a file with pydicom and GDCM, the reference
// decoder, and returns every value of its pixel_array in C order. When
// sha is not empty the decode must be the one reference.tsv recorded.
func referencePixels(path, sha string) ([]float64, error) {
	if _, err := os.Stat(referencePython); err != nil {
		return nil, errNoReferenceDecoder
	}
	if err := exec.Command(referencePython, "-c", "import pydicom, gdcm, numpy").Run(); err != nil {
		return nil, errNoReferenceDecoder
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("sentinel-reference-%d.f64", os.Getpid()))
	defer os.Remove(out)
	msg, err := exec.Command(referencePython, "-c", referenceScript, path, out).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pydicom: %v: %s", err, bytes.TrimSpace(msg))
	}
	if got := string(bytes.TrimSpace(msg)); sha != "" && got != sha {
		return nil, fmt.Errorf("pydicom here gives sha256 %s, reference.tsv has %s", got, sha)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	vals := make([]float64, len(b)/8)
	for i := range vals {
		vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return vals, nil
}

// pixelDifference returns the largest and the mean absolute difference
// between decoded frames and reference values in the same order.
func pixelDifference(frames []frame, l layout, want []float64) (maxAbs, meanAbs float64, err error) {
	n := 0
	for _, fr := range frames {
		n += len(fr.samples)
	}
	if n != len(want) || n == 0 {
		return 0, 0, fmt.Errorf("%d decoded values, the reference has %d", n, len(want))
	}
	var sum float64
	i := 0
	for _, fr := range frames {
		for _, v := range fr.samples {
			d := math.Abs(float64(l.value(v)) - want[i])
			maxAbs, sum = max(maxAbs, d), sum+d
			i++
		}
	}
	return maxAbs, sum / float64(n), nil
}

// compareTwin compares a decode with that of its twin.
func compareTwin(t *testing.T, r *fileResult, ref referenceRow, l layout, frames []frame) {
	tw, ok := twins[ref.path]
	if !ok {
		r.verdict, r.note = "fail", "trusted=no reference without a twin"
		return
	}
	twin, twinFrames, err := decodeAll(filepath.Join(corpusDir, tw.path))
	if err != nil {
		r.verdict, r.note = "fail", "twin: "+err.Error()
		return
	}
	r.note = tw.why
	var maxAbs, sumAbs float64
	var n int
	for i := range min(len(frames), len(twinFrames)) {
		a, b := frames[i].samples, twinFrames[i].samples
		if len(a) != len(b) {
			r.verdict, r.check = "fail", "twin has another size"
			return
		}
		for k := range a {
			d := math.Abs(float64(l.value(a[k]) - twin.layout.value(b[k])))
			maxAbs, sumAbs = max(maxAbs, d), sumAbs+d
		}
		n += len(a)
	}
	if len(frames) != len(twinFrames) || n == 0 {
		r.verdict, r.check = "fail", "twin has another number of frames"
		return
	}
	meanAbs := sumAbs / float64(n)
	if !tw.lossy {
		r.check = "identical to " + filepath.Base(tw.path)
		if maxAbs != 0 {
			r.verdict, r.check = "fail", fmt.Sprintf("differs from %s by up to %g", filepath.Base(tw.path), maxAbs)
		}
		return
	}
	maxTol, meanTol := twinTolerance(ref.bitsStored)
	r.check = fmt.Sprintf("max |Δ| %g, mean |Δ| %.3f from %s (tolerance %g, %.2f)", maxAbs, meanAbs, filepath.Base(tw.path), maxTol, meanTol)
	if maxAbs > maxTol || meanAbs > meanTol {
		r.verdict = "fail"
	}
}

// stats returns the min, max and mean of decoded samples as the reference
// holds them: colour converted back to YCbCr (PS3.3 C.7.6.3.1.2) when a
// codec returned RGB for a YBR_FULL or YBR_FULL_422 reference, which
// pydicom + GDCM leave as YCbCr.
func stats(frames []frame, l layout, refPhotometric string, bitsStored int) (mn, mx, mean float64) {
	mn, mx = math.Inf(1), math.Inf(-1)
	var sum float64
	var n int
	half := math.Exp2(float64(bitsStored - 1))
	top := 2*half - 1
	add := func(v float64) {
		mn, mx, sum, n = min(mn, v), max(mx, v), sum+v, n+1
	}
	for _, fr := range frames {
		toYBR := fr.photometric == "RGB" && (refPhotometric == "YBR_FULL" || refPhotometric == "YBR_FULL_422")
		if !toYBR {
			for _, v := range fr.samples {
				add(float64(l.value(v)))
			}
			continue
		}
		for p := 0; p+2 < len(fr.samples); p += 3 {
			r, g, b := float64(l.value(fr.samples[p])), float64(l.value(fr.samples[p+1])), float64(l.value(fr.samples[p+2]))
			clamp := func(v float64) float64 { return min(max(math.Round(v), 0), top) }
			add(clamp(0.299*r + 0.587*g + 0.114*b))
			add(clamp(-0.168736*r - 0.331264*g + 0.5*b + half))
			add(clamp(0.5*r - 0.418688*g - 0.081312*b + half))
		}
	}
	if n == 0 {
		return 0, 0, 0
	}
	return mn, mx, sum / float64(n)
}
