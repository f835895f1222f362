package dicomout

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

// cxr8Dir holds real chest radiographs as DICOM, beside the project.
const cxr8Dir = "../../shared/data/cxr8/dicom"

// Patient and study values of the rich source: a Latin-1 name (ISO_IR
// 100), so that the character set must travel with it.
const (
	testPatientName = "M\xfcller^J\xfcrgen^^Dr."
	testPatientID   = "PID-4711-SECRET"
	testIssuer      = "HOSPITAL-A"
	testBirthDate   = "19470312"
	testStudyUID    = "1.2.826.0.1.3680043.8.498.1001"
	testSeriesUID   = "1.2.826.0.1.3680043.8.498.1002"
	testSOPUID      = "1.2.826.0.1.3680043.8.498.1003"
	testDXClass     = "1.2.840.10008.5.1.4.1.1.1.1"
)

var testNow = time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.FixedZone("CET", 3600))

// richSource returns the attributes writeRichSource writes.
func richSource() Source {
	return Source{
		PatientName: testPatientName, PatientID: testPatientID, IssuerOfPatientID: testIssuer,
		PatientBirthDate: testBirthDate, PatientSex: "M",
		StudyInstanceUID: testStudyUID, StudyDate: "20260314", StudyTime: "081500.25",
		ReferringPhysicianName: "Weiss^Anna", StudyID: "S-77", AccessionNumber: "ACC-2026-0042",
		SOPClassUID: testDXClass, SOPInstanceUID: testSOPUID, SeriesInstanceUID: testSeriesUID,
		Modality: "DX", ImageLaterality: "U", ViewPosition: "PA", BodyPartExamined: "CHEST",
		PatientOrientation: `L\F`, InstanceNumber: "3", SpecificCharacterSet: "ISO_IR 100",
		Manufacturer: "Acme Imaging", ManufacturerModelName: "DR-9000", SoftwareVersions: "4.2",
		SeriesDescription: "Chest PA",
	}
}

// writeRichSource writes a small DX-like file holding every attribute
// ReadSource reads, padded as a real writer pads them, with a 16-bit
// image; extra elements are added to its data set. It returns the path.
func writeRichSource(t *testing.T, dir string, extra func(d *dataset)) string {
	t.Helper()
	s := richSource()
	d := newDataset()
	for _, f := range sourceFields {
		vr := map[uint32]string{0x00080005: "CS", 0x00080016: "UI", 0x00080018: "UI", 0x00080020: "DA",
			0x00080030: "TM", 0x00080050: "SH", 0x00080060: "CS", 0x00080070: "LO", 0x00080090: "PN",
			0x0008103E: "LO", 0x00081090: "LO", 0x00100010: "PN", 0x00100020: "LO", 0x00100021: "LO",
			0x00100030: "DA", 0x00100040: "CS", 0x00180015: "CS", 0x00181020: "LO", 0x00185101: "CS",
			0x0020000D: "UI", 0x0020000E: "UI", 0x00200010: "SH", 0x00200013: "IS", 0x00200020: "CS",
			0x00200060: "CS", 0x00200062: "CS"}[f.tag]
		d.text(f.tag, vr, *f.field(&s))
	}
	const size = 64
	pix := make([]byte, 2*size*size)
	for i := range size * size {
		v := uint16(i % 4096)
		pix[2*i], pix[2*i+1] = byte(v), byte(v>>8)
	}
	d.us(0x00280002, 1)
	d.text(0x00280004, "CS", "MONOCHROME2")
	d.us(0x00280010, size)
	d.us(0x00280011, size)
	d.us(0x00280100, 16)
	d.us(0x00280101, 12)
	d.us(0x00280102, 11)
	d.us(0x00280103, 0)
	d.binary(0x7FE00010, "OW", pix)
	if extra != nil {
		extra(d)
	}
	b, err := part10(testDXClass, testSOPUID, d)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rich.dcm")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writePhantom writes a phantom chest film and returns its path.
func writePhantom(t *testing.T, dir string, size int) string {
	t.Helper()
	pix := make([]uint16, size*size)
	for y := range size {
		for x := range size {
			// A bright disc on a graded background: enough to see.
			dx, dy := float64(x-size/2), float64(y-size/2)
			v := 800 + 2000*float64(y)/float64(size)
			if dx*dx+dy*dy < float64(size*size)/9 {
				v += 1200
			}
			pix[y*size+x] = uint16(min(v, phantom.MaxValue))
		}
	}
	path := filepath.Join(dir, "phantom.dcm")
	err := phantom.WriteDICOM(path, pix, size, phantom.Meta{
		PatientID: "PHANTOM-17", StudyInstanceUID: "2.25.1001", SeriesInstanceUID: "2.25.1002",
		SOPInstanceUID: "2.25.1003", AccessionNumber: "A17"})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func ptr(v float64) *float64 { return &v }

// testReport returns a report about the instance src describes.
func testReport(src Source) sentinel.Report {
	return sentinel.Report{
		SchemaVersion: sentinel.ReportSchemaVersion, InstanceID: src.SOPInstanceUID,
		SOPInstanceUID: src.SOPInstanceUID, StudyInstanceUID: src.StudyInstanceUID,
		SeriesInstanceUID: src.SeriesInstanceUID, ModelVersion: "m20260301-7",
		Score: 0.7342518, Threshold: 0.5123, Decision: sentinel.DecisionAbnormal,
		DecisionReason: "score 0.734 above the threshold 0.512", Uncertainty: ptr(0.0213),
		CreatedAt: time.Date(2026, 3, 14, 8, 20, 0, 0, time.UTC), Revision: 1,
	}
}

// blob returns an n×n heatmap with a smooth peak of 1 at (cx, cy) (as
// fractions of the size) falling to 0 over radius r.
func blob(n int, cx, cy, r float64) sentinel.Image {
	m := sentinel.NewImage(n, n)
	for y := range n {
		for x := range n {
			dx, dy := (float64(x)+0.5)/float64(n)-cx, (float64(y)+0.5)/float64(n)-cy
			m.Pix[y*n+x] = float32(math.Max(0, 1-math.Hypot(dx, dy)/r))
		}
	}
	return m
}

// writeObject writes an output to dir and returns its path.
func writeObject(t *testing.T, dir, name string, o Object) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, o.Bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tool returns the path of an external program, or skips the test.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian: dicom3tools, dcmtk): skipping", name)
	}
	return p
}

// cxr8Files returns a few real films of different encodings, or skips.
func cxr8Files(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"*_explicit_le.dcm", "*_explicit_le_mono1.dcm", "*_jpeg_ls_lossless.dcm", "*_rle.dcm"} {
		m, _ := filepath.Glob(filepath.Join(cxr8Dir, pattern))
		if len(m) > 0 {
			out = append(out, m[0])
		}
	}
	if len(out) == 0 {
		t.Skipf("%s not found: skipping the real-film cases", cxr8Dir)
	}
	return out
}
