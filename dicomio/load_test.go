package dicomio

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"

	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

// seq returns its arguments, for tables of stored values.
func seq(vals ...int) []int { return vals }

// TestLoadDisplay writes small DICOM files with the dicom library and
// checks every decoded display value against values computed by hand from
// PS3.3 C.11.
func TestLoadDisplay(t *testing.T) {
	tests := []struct {
		name string
		spec spec
		want []float32
	}{
		{
			name: "8-bit unsigned, no window: identity x/255",
			spec: spec{rows: 2, cols: 3, bitsAllocated: 8, pixels: seq(0, 1, 51, 102, 204, 255)},
			want: []float32{0, 1.0 / 255, 0.2, 0.4, 0.8, 1},
		},
		{
			name: "8-bit MONOCHROME1 is inverted",
			spec: spec{rows: 1, cols: 4, bitsAllocated: 8, photometric: "MONOCHROME1", pixels: seq(0, 51, 204, 255)},
			want: []float32{1, 0.8, 0.2, 0},
		},
		{
			name: "8-bit signed, no window: identity over -128..127",
			spec: spec{rows: 1, cols: 3, bitsAllocated: 8, signed: true, pixels: seq(-128, -77, 127)},
			want: []float32{0, 0.2, 1},
		},
		{
			name: "8-bit with rescale, no window: stored range through the rescale",
			spec: spec{rows: 1, cols: 3, bitsAllocated: 8, slope: "2", intercept: "-10", pixels: seq(0, 51, 255)},
			want: []float32{0, 0.2, 1},
		},
		{
			// y = (x - (c-0.5))/(w-1) + 0.5 = (x-100)/100 + 0.5
			name: "16-bit linear window",
			spec: spec{rows: 2, cols: 3, bitsStored: 12, center: "100.5", width: "101", pixels: seq(0, 50, 80, 100, 120, 4095)},
			want: []float32{0, 0, 0.3, 0.5, 0.7, 1},
		},
		{
			name: "16-bit linear window, MONOCHROME1",
			spec: spec{rows: 1, cols: 3, bitsStored: 12, center: "100.5", width: "101", photometric: "MONOCHROME1", pixels: seq(80, 100, 120)},
			want: []float32{0.7, 0.5, 0.3},
		},
		{
			// modality m = 2x - 100; y = (m - 1000)/4000 + 0.5
			name: "signed 16-bit with negatives, rescale and window",
			spec: spec{rows: 2, cols: 3, signed: true, slope: "2", intercept: "-100", center: "1000.5", width: "4001",
				pixels: seq(-1000, -1, 0, 1, 1000, 32767)},
			want: []float32{0, 0.2245, 0.225, 0.2255, 0.725, 1},
		},
		{
			// The first pair of a multi-valued window is used.
			name: "first of several windows",
			spec: spec{rows: 1, cols: 2, center: `100.5\3000`, width: `101\10`, pixels: seq(100, 120)},
			want: []float32{0.5, 0.7},
		},
		{
			// 201 values 0..200: the 0.5th percentile is 1, the 99.5th 199.
			name: "16-bit without window: percentile window",
			spec: spec{rows: 1, cols: 201, pixels: rampInts(0, 200)},
			want: percentileWant(),
		},
		{
			name: "non-finite rescale values are ignored",
			spec: spec{rows: 1, cols: 3, bitsAllocated: 8, slope: "NaN", intercept: "-Inf", pixels: seq(0, 51, 255)},
			want: []float32{0, 0.2, 1},
		},
		{
			name: "huge rescale slope stays in range",
			// (0 - (0 - 0.5))/9 + 0.5 = 5/9; the others overflow to +Inf.
			spec: spec{rows: 1, cols: 3, slope: "1e308", center: "0", width: "10", pixels: seq(0, 1, 65535)},
			want: []float32{5.0 / 9, 1, 1},
		},
		{
			name: "window width 1 is a threshold",
			spec: spec{rows: 1, cols: 3, center: "100", width: "1", pixels: seq(99, 100, 101)},
			want: []float32{0, 1, 1},
		},
		{
			name: "first frame of a multi-frame image",
			spec: spec{rows: 1, cols: 3, frames: 2, bitsAllocated: 8, pixels: seq(0, 51, 102, 255, 255, 255)},
			want: []float32{0, 0.2, 0.4},
		},
		{
			name: "implicit VR little endian",
			spec: spec{ts: uidImplicitLE, rows: 1, cols: 3, bitsStored: 12, center: "100.5", width: "101", pixels: seq(80, 100, 120)},
			want: []float32{0.3, 0.5, 0.7},
		},
		{
			name: "explicit VR big endian",
			spec: spec{ts: uidExplicitBE, rows: 1, cols: 3, bitsStored: 12, center: "100.5", width: "101", pixels: seq(80, 100, 120)},
			want: []float32{0.3, 0.5, 0.7},
		},
		{
			name: "explicit VR big endian, signed with rescale",
			spec: spec{ts: uidExplicitBE, rows: 1, cols: 3, signed: true, slope: "2", intercept: "-100", center: "1000.5", width: "4001",
				pixels: seq(-1, 0, 1000)},
			want: []float32{0.2245, 0.225, 0.725},
		},
		{
			// 0.299 R + 0.587 G + 0.114 B over 255; gray stays exact.
			name: "RGB, pixel-interleaved",
			spec: spec{rows: 1, cols: 4, samples: 3, bitsAllocated: 8, photometric: "RGB",
				pixels: seq(255, 0, 0, 0, 255, 0, 0, 0, 255, 51, 51, 51)},
			want: []float32{0.299, 0.587, 0.114, 0.2},
		},
		{
			name: "RGB, planar",
			spec: spec{rows: 1, cols: 4, samples: 3, planar: 1, bitsAllocated: 8, photometric: "RGB",
				pixels: seq(255, 0, 0, 51, 0, 255, 0, 51, 0, 0, 255, 51)},
			want: []float32{0.299, 0.587, 0.114, 0.2},
		},
		{
			name: "YBR_FULL shows Y",
			spec: spec{rows: 1, cols: 2, samples: 3, bitsAllocated: 8, photometric: "YBR_FULL",
				pixels: seq(51, 128, 128, 204, 0, 255)},
			want: []float32{0.2, 0.8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, img, err := Load(writeDICOM(t, tt.spec), Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if img.Width != tt.spec.cols || img.Height != tt.spec.rows || len(img.Pix) != len(tt.want) {
				t.Fatalf("image %dx%d with %d values, want %dx%d", img.Width, img.Height, len(img.Pix), tt.spec.cols, tt.spec.rows)
			}
			for i, want := range tt.want {
				if img.Pix[i] != want {
					t.Errorf("pixel %d = %v, want %v", i, img.Pix[i], want)
				}
			}
			wantTS := tt.spec.ts
			if wantTS == "" {
				wantTS = uidExplicitLE
			}
			if inst.Rows != tt.spec.rows || inst.Columns != tt.spec.cols || inst.TransferSyntaxUID != wantTS {
				t.Errorf("instance %dx%d in %s", inst.Columns, inst.Rows, inst.TransferSyntaxUID)
			}
		})
	}
}

// rampInts returns from, from+1, ..., to.
func rampInts(from, to int) []int {
	var out []int
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// percentileWant is the display of 0..200 under the window [1, 199].
func percentileWant() []float32 {
	var out []float32
	for x := 0; x <= 200; x++ {
		out = append(out, float32(min(max(float64(x-1)/198, 0), 1)))
	}
	return out
}

// TestLoadInstance checks the identity Load reports for a DICOM file.
func TestLoadInstance(t *testing.T) {
	data := encodeDICOM(t, spec{rows: 2, cols: 3, frames: 2, bitsAllocated: 8, pixels: make([]int, 12)})
	path := writeFile(t, "id.dcm", data)
	inst, _, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := sentinel.Instance{
		ID: testInstance, SOPInstanceUID: testInstance, StudyInstanceUID: testStudy, SeriesInstanceUID: testSeries,
		SOPClassUID: testSOPClass, Modality: "DX", AccessionNumber: "ACC0001", TransferSyntaxUID: uidExplicitLE,
		Format: sentinel.FormatDICOM, SourcePath: path, SHA256: hex.EncodeToString(sum[:]),
		Rows: 2, Columns: 3, Frames: 2, Photometric: "MONOCHROME2",
		Placement: sentinel.Placement{AccessionNumber: "ACC0001"},
	}
	if inst != want {
		t.Errorf("instance\n got %+v\nwant %+v", inst, want)
	}
}

// TestLoadDeflated checks the deflated transfer syntax, made by deflating
// the data set of an explicit VR little endian file (the library does not
// write deflate).
func TestLoadDeflated(t *testing.T) {
	data := encodeDICOM(t, spec{rows: 1, cols: 3, bitsAllocated: 8, pixels: seq(0, 51, 255)})
	meta, err := parseMeta(data)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	zw, _ := flate.NewWriter(&body, flate.BestCompression)
	zw.Write(data[meta.bodyOffset:])
	zw.Close()
	file := append(syntheticMeta(uidDeflatedLE), body.Bytes()...)

	inst, img, err := Load(writeFile(t, "deflated.dcm", file), Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if inst.TransferSyntaxUID != uidDeflatedLE || inst.ID != testInstance {
		t.Errorf("instance %+v", inst)
	}
	if want := []float32{0, 0.2, 1}; !equalPix(img.Pix, want) {
		t.Errorf("pixels %v, want %v", img.Pix, want)
	}
}

func equalPix(got, want []float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// benchmarkLoad times Load on a written rows×cols file.
func benchmarkLoad(b *testing.B, s spec) {
	n := s.rows * s.cols
	s.pixels = make([]int, n)
	for i := range s.pixels {
		s.pixels[i] = (i * 7919) % (1 << min(s.bitsStored, 15))
	}
	path := writeFile(b, "bench.dcm", encodeDICOM(b, s))
	b.SetBytes(int64(n))
	for b.Loop() {
		if _, _, err := Load(path, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad8bit1024(b *testing.B) {
	benchmarkLoad(b, spec{rows: 1024, cols: 1024, bitsAllocated: 8, bitsStored: 8})
}

func BenchmarkLoad12bit2048Percentile(b *testing.B) {
	benchmarkLoad(b, spec{rows: 2048, cols: 2048, bitsAllocated: 16, bitsStored: 12})
}

// TestLoadWithoutSOPInstanceUID checks that a valid image without a SOP
// Instance UID decodes and is identified by its content hash.
func TestLoadWithoutSOPInstanceUID(t *testing.T) {
	data := encodeDICOM(t, spec{rows: 4, cols: 4, bitsAllocated: 8, pixels: make([]int, 16),
		omit: []tag.Tag{tag.SOPInstanceUID, tag.MediaStorageSOPInstanceUID}})
	inst, img, err := Load(writeFile(t, "nouid.dcm", data), Options{})
	if err != nil || img.Width != 4 {
		t.Fatalf("Load: %v", err)
	}
	sum := sha256.Sum256(data)
	if inst.ID != "sha256:"+hex.EncodeToString(sum[:]) || inst.SOPInstanceUID != uidFromDigest(sum) {
		t.Errorf("instance %+v", inst)
	}
}

// Options.PatientKey keys the instance's patient from its Patient ID and
// issuer; without the option, or without a Patient ID, there is no key.
func TestLoadPatientKey(t *testing.T) {
	dir := t.TempDir()
	pix := make([]uint16, 16*16)
	write := func(name, patient string) string {
		p := filepath.Join(dir, name)
		meta := phantom.Meta{PatientID: patient, StudyInstanceUID: "2.25.1", SeriesInstanceUID: "2.25.2", SOPInstanceUID: "2.25.3." + name}
		if err := phantom.WriteDICOM(p, pix, 16, meta); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withID, without := write("a.dcm", " PAT-0042 "), write("b.dcm", "")
	var calls []string
	opt := Options{PatientKey: func(issuer, id string) string {
		calls = append(calls, issuer+"|"+id)
		return "key:" + id
	}}
	inst, _, err := Load(withID, opt)
	if err != nil {
		t.Fatal(err)
	}
	if inst.PatientKey != "key:PAT-0042" || !slices.Equal(calls, []string{"|PAT-0042"}) {
		t.Errorf("patient key %q after calls %v, want key:PAT-0042 from the trimmed ID and no issuer", inst.PatientKey, calls)
	}
	if inst, _, err := Load(withID, Options{}); err != nil || inst.PatientKey != "" {
		t.Errorf("without the option: patient key %q, %v", inst.PatientKey, err)
	}
	calls = nil
	if inst, _, err := Load(without, opt); err != nil || inst.PatientKey != "" || len(calls) != 0 {
		t.Errorf("no Patient ID: patient key %q, calls %v, %v", inst.PatientKey, calls, err)
	}
}
