// Package fixturegen makes the DICOM fixtures under the top-level
// testdata/ folder: small chest-phantom films in each transfer syntax
// Sentinel decodes, one valid object that is out of scope, two broken
// files and a labels file. Everything is derived from fixed seeds and
// names, so a run writes the same files every time.
//
// The uncompressed, deflated and big-endian files are encoded here. The
// RLE, JPEG Lossless and JPEG-LS files are transcoded by dcmtk (dcmcrle,
// dcmcjpeg, dcmcjpls) and the JPEG 2000 codestream is made by OpenJPEG's
// opj_compress, so that the decoder is checked against independent
// encoders; where a tool is absent its file is left as it is.
//
// `go run ./testdata/gen` runs it from the module root.
package fixturegen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/sentinel-pacs/sentinel/internal/phantom"
)

// SOP classes of the fixtures.
const (
	SOPClassCR = "1.2.840.10008.5.1.4.1.1.1"
	SOPClassDX = "1.2.840.10008.5.1.4.1.1.1.1" // Digital X-Ray Image Storage - For Presentation
	SOPClassCT = "1.2.840.10008.5.1.4.1.1.2"
)

// Role says what a fixture is for.
type Role string

// Fixture roles.
const (
	// Film is a chest film in scope: scored and reported.
	Film Role = "film"
	// OutOfScope is a valid image Sentinel does not score (a CT slice).
	OutOfScope Role = "out_of_scope"
	// Broken is a file that cannot be read as DICOM.
	Broken Role = "broken"
)

// Fixture describes one file under testdata/dicom.
type Fixture struct {
	// File is the name under testdata/dicom.
	File string
	Role Role
	// Tool names what encodes the file: "go" (this package), or the
	// external encoder.
	Tool string
	// The rest is empty for a broken file.
	Syntax      string
	SOPClass    string
	Modality    string
	Photometric string
	Size        int // rows and columns
	// Kind is the phantom drawn (films only) and Finding its label.
	Kind    phantom.Kind
	Finding string
	// Seed seeds the phantom's random source.
	Seed uint64

	PatientID        string
	AccessionNumber  string
	StudyDate        string
	StudyTime        string
	ViewPosition     string
	BodyPart         string
	SeriesNumber     string
	InstanceNumber   string
	SOPInstanceUID   string
	StudyInstanceUID string
	SeriesUID        string
}

// PatientName is the name every fixture carries: plainly not a person.
const PatientName = "TEST^PHANTOM"

// FilmSize is the rows and columns of the films; the configuration's
// default scope.min_size (256) must be lowered to score them.
const FilmSize = 128

// uid derives a UID under the 2.25 root (PS3.5 B.2) from a name, so that
// the fixtures' UIDs are fixed and unique.
func uid(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "2.25." + new(big.Int).SetBytes(h.Sum(nil)[:16]).String()
}

// film returns the fixture of an in-scope film.
func film(n int, file, syntax, tool, sopClass, photometric string, kind phantom.Kind) Fixture {
	modality := "DX"
	if sopClass == SOPClassCR {
		modality = "CR"
	}
	finding := string(kind)
	study := uid("sentinel testdata", file, "study")
	return Fixture{
		File: file, Role: Film, Tool: tool, Syntax: syntax, SOPClass: sopClass, Modality: modality,
		Photometric: photometric, Size: FilmSize, Kind: kind, Finding: finding, Seed: uint64(1000 + n),
		PatientID:        fmt.Sprintf("TEST-PHANTOM-%02d", n),
		AccessionNumber:  fmt.Sprintf("TESTACC%04d", n),
		StudyDate:        fmt.Sprintf("202401%02d", n),
		StudyTime:        "093000",
		ViewPosition:     "PA",
		BodyPart:         "CHEST",
		SeriesNumber:     "1",
		InstanceNumber:   strconv.Itoa(n),
		SOPInstanceUID:   uid("sentinel testdata", file, "instance"),
		StudyInstanceUID: study,
		SeriesUID:        uid("sentinel testdata", file, "series"),
	}
}

// Fixtures lists every file under testdata/dicom, films first.
func Fixtures() []Fixture {
	fs := []Fixture{
		film(1, "dx_explicit_le_mono2.dcm", ExplicitLE, "go", SOPClassDX, "MONOCHROME2", phantom.Normal),
		film(2, "cr_implicit_le_mono1.dcm", ImplicitLE, "go", SOPClassCR, "MONOCHROME1", phantom.Normal),
		film(3, "dx_deflated_mono2.dcm", DeflatedLE, "go", SOPClassDX, "MONOCHROME2", phantom.Nodule),
		film(4, "dx_big_endian_mono2.dcm", ExplicitBE, "go", SOPClassDX, "MONOCHROME2", phantom.Normal),
		film(5, "dx_rle_mono2.dcm", RLE, "dcmcrle", SOPClassDX, "MONOCHROME2", phantom.Normal),
		film(6, "dx_jpeg_lossless_mono2.dcm", JPEGLossless, "dcmcjpeg", SOPClassDX, "MONOCHROME2", phantom.Opacity),
		film(7, "cr_jpegls_mono1.dcm", JPEGLS, "dcmcjpls", SOPClassCR, "MONOCHROME1", phantom.Normal),
		film(8, "dx_j2k_mono2.dcm", JPEG2000, "opj_compress", SOPClassDX, "MONOCHROME2", phantom.Effusion),
	}
	ct := film(9, "ct_out_of_scope.dcm", ExplicitLE, "go", SOPClassCT, "MONOCHROME2", "")
	ct.Role, ct.Modality, ct.Size, ct.Finding, ct.ViewPosition = OutOfScope, "CT", 64, "", ""
	fs = append(fs, ct,
		Fixture{File: "broken_truncated.dcm", Role: Broken, Tool: "go"},
		Fixture{File: "broken_not_dicom.dcm", Role: Broken, Tool: "go"},
	)
	return fs
}

// Pixels returns the stored values of a film or of the CT slice, row by
// row: what a decoder must give back (MONOCHROME1 films are stored
// inverted; the CT slice's values are signed 16-bit HU as two's
// complement).
func Pixels(f Fixture) []uint16 {
	rng := rand.New(rand.NewPCG(f.Seed, 0x5e17))
	if f.Role == OutOfScope {
		return ctSlice(rng, f.Size)
	}
	pix := phantom.Generate(rng, f.Size, f.Kind)
	if f.Photometric == "MONOCHROME1" {
		for i, v := range pix {
			pix[i] = phantom.MaxValue - min(v, phantom.MaxValue)
		}
	}
	return pix
}

// ctSlice draws an axial chest-like slice in HU: air, a body ellipse of
// soft tissue, two lungs and a vertebra, with a little noise.
func ctSlice(rng *rand.Rand, size int) []uint16 {
	pix := make([]uint16, size*size)
	s := float64(size)
	in := func(x, y, cx, cy, rx, ry float64) bool {
		dx, dy := (x-cx)/rx, (y-cy)/ry
		return dx*dx+dy*dy < 1
	}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			hu := -1000.0
			switch {
			case in(fx, fy, 0.5*s, 0.78*s, 0.06*s, 0.06*s):
				hu = 700
			case in(fx, fy, 0.3*s, 0.5*s, 0.15*s, 0.25*s), in(fx, fy, 0.7*s, 0.5*s, 0.15*s, 0.25*s):
				hu = -850
			case in(fx, fy, 0.5*s, 0.5*s, 0.45*s, 0.35*s):
				hu = 40
			}
			hu += 8 * rng.NormFloat64()
			pix[y*size+x] = uint16(int16(math.Round(hu)))
		}
	}
	return pix
}

// elements returns the data set of a film or of the CT slice with the
// given pixel data element.
func elements(f Fixture, pixelData element) []element {
	imageType := "ORIGINAL\\PRIMARY"
	if f.Role == OutOfScope {
		imageType += "\\AXIAL"
	}
	e := []element{
		str(0x00080008, "CS", imageType),
		str(0x00080016, "UI", f.SOPClass),
		str(0x00080018, "UI", f.SOPInstanceUID),
		str(0x00080020, "DA", f.StudyDate),
		str(0x00080030, "TM", f.StudyTime),
		str(0x00080050, "SH", f.AccessionNumber),
		str(0x00080060, "CS", f.Modality),
		str(0x00080070, "LO", "SENTINEL TEST FIXTURE"),
		str(0x00080090, "PN", ""),
		str(0x00081030, "LO", "TEST PHANTOM"),
		str(0x00100010, "PN", PatientName),
		str(0x00100020, "LO", f.PatientID),
		str(0x00100030, "DA", ""),
		str(0x00100040, "CS", "O"),
		str(0x00180015, "CS", f.BodyPart),
		str(0x0020000D, "UI", f.StudyInstanceUID),
		str(0x0020000E, "UI", f.SeriesUID),
		str(0x00200010, "SH", "1"),
		str(0x00200011, "IS", f.SeriesNumber),
		str(0x00200013, "IS", f.InstanceNumber),
		us(0x00280002, 1),
		str(0x00280004, "CS", f.Photometric),
		us(0x00280010, uint16(f.Size)),
		us(0x00280011, uint16(f.Size)),
		us(0x00280100, 16),
		pixelData,
	}
	if f.Role == OutOfScope {
		return append(e,
			str(0x00180050, "DS", "5"),
			us(0x00280101, 16), us(0x00280102, 15), us(0x00280103, 1),
			str(0x00281050, "DS", "40"), str(0x00281051, "DS", "400"),
			str(0x00281052, "DS", "0"), str(0x00281053, "DS", "1"),
		)
	}
	return append(e,
		str(0x00185101, "CS", f.ViewPosition),
		str(0x00200020, "CS", "L\\F"),
		us(0x00280101, 12), us(0x00280102, 11), us(0x00280103, 0),
		str(0x00281050, "DS", "2048"), str(0x00281051, "DS", "4096"),
	)
}

// Encode returns the bytes of a fixture that this package encodes itself
// (Tool "go"), and an error for one made by an external tool.
func Encode(f Fixture) ([]byte, error) {
	switch {
	case f.Tool != "go":
		return nil, fmt.Errorf("fixturegen: %s is made by %s", f.File, f.Tool)
	case f.File == "broken_not_dicom.dcm":
		return []byte("This is a text file named .dcm: it has no preamble, no DICM prefix and no data set.\n"), nil
	case f.File == "broken_truncated.dcm":
		// The first film cut off a few hundred bytes into its pixel data.
		full, err := Encode(Fixtures()[0])
		if err != nil {
			return nil, err
		}
		i := bytes.LastIndex(full, []byte{0xE0, 0x7F, 0x10, 0x00})
		if i < 0 {
			return nil, errors.New("fixturegen: no pixel data in the first film")
		}
		return full[:i+12+600], nil
	}
	return encodeFile(f.SOPClass, f.SOPInstanceUID, f.Syntax, elements(f, element{tag: 0x7FE00010, vr: "OW", ow: Pixels(f)}))
}

// Result says what Write did with each fixture.
type Result struct {
	File string
	// Skipped is set, with the reason, when the tool that makes the file
	// is not installed; the file is then left as it was.
	Skipped string
}

// Write writes the fixtures into dir/dicom and the labels file
// dir/labels.csv, creating the folders as needed.
func Write(ctx context.Context, dir string) ([]Result, error) {
	out := filepath.Join(dir, "dicom")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("fixturegen: %w", err)
	}
	tmp, err := os.MkdirTemp("", "fixturegen-")
	if err != nil {
		return nil, fmt.Errorf("fixturegen: %w", err)
	}
	defer os.RemoveAll(tmp)
	var res []Result
	for _, f := range Fixtures() {
		path := filepath.Join(out, f.File)
		if f.Tool == "go" {
			b, err := Encode(f)
			if err != nil {
				return res, err
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return res, fmt.Errorf("fixturegen: %w", err)
			}
			res = append(res, Result{File: f.File})
			continue
		}
		if _, err := exec.LookPath(f.Tool); err != nil {
			res = append(res, Result{File: f.File, Skipped: f.Tool + " is not installed"})
			continue
		}
		if err := external(ctx, f, tmp, path); err != nil {
			return res, err
		}
		res = append(res, Result{File: f.File})
	}
	if err := writeLabels(filepath.Join(dir, "labels.csv")); err != nil {
		return res, err
	}
	return append(res, Result{File: "labels.csv"}), nil
}

// external makes a fixture with its external encoder: dcmtk transcodes an
// explicit little endian copy of the film; opj_compress encodes the raw
// pixels, which are then wrapped here.
func external(ctx context.Context, f Fixture, tmp, path string) error {
	run := func(name string, args ...string) error {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("fixturegen: %s %v: %w\n%s", name, args, err, out)
		}
		return nil
	}
	if f.Tool == "opj_compress" {
		raw := filepath.Join(tmp, "film.rawl")
		j2k := filepath.Join(tmp, "film.j2k")
		var b []byte
		for _, v := range Pixels(f) {
			b = append(b, byte(v), byte(v>>8))
		}
		if err := os.WriteFile(raw, b, 0o644); err != nil {
			return fmt.Errorf("fixturegen: %w", err)
		}
		// Lossless (the default reversible 5/3 wavelet), 12-bit unsigned.
		if err := run("opj_compress", "-i", raw, "-o", j2k, "-F", fmt.Sprintf("%d,%d,1,12,u@1x1", f.Size, f.Size)); err != nil {
			return err
		}
		cs, err := os.ReadFile(j2k)
		if err != nil {
			return fmt.Errorf("fixturegen: %w", err)
		}
		b, err = encodeFile(f.SOPClass, f.SOPInstanceUID, f.Syntax, elements(f, element{tag: 0x7FE00010, vr: "OB", frags: [][]byte{cs}}))
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("fixturegen: %w", err)
		}
		return nil
	}
	src := f
	src.Syntax, src.Tool = ExplicitLE, "go"
	b, err := Encode(src)
	if err != nil {
		return err
	}
	in := filepath.Join(tmp, "film.dcm")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		return fmt.Errorf("fixturegen: %w", err)
	}
	switch f.Tool {
	case "dcmcrle":
		return run("dcmcrle", in, path)
	case "dcmcjpeg":
		return run("dcmcjpeg", "--encode-lossless-sv1", in, path)
	case "dcmcjpls":
		return run("dcmcjpls", "--encode-lossless", in, path)
	}
	return fmt.Errorf("fixturegen: unknown tool %q", f.Tool)
}

// writeLabels writes the labels of the in-scope films, with the columns
// both label readers take: file and finding (research labels,
// `sentinel train --labels`), and sop_instance_uid, label and reader
// (`sentinel labels import`).
func writeLabels(path string) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"file", "sop_instance_uid", "patient", "finding", "label", "reader"})
	for _, f := range Fixtures() {
		if f.Role != Film {
			continue
		}
		label := "abnormal"
		if f.Kind == phantom.Normal {
			label = "normal"
		}
		w.Write([]string{f.File, f.SOPInstanceUID, f.PatientID, f.Finding, label, "fixture"})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("fixturegen: labels: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fixturegen: labels: %w", err)
	}
	return nil
}
