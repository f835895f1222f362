package main

import (
	"bytes"
	bo "encoding/binary"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// decodeCorpus is the conformance corpus, beside the repository.
const decodeCorpus = "../../../shared/data/dicom"

// TestDecodeNPY runs `sentinel decode --npy` on corpus files and has numpy
// load each array and hash it as reference.tsv does: the shape, dtype and
// SHA-256 of the stored values must be pydicom + GDCM's.
func TestDecodeNPY(t *testing.T) {
	if _, err := os.Stat(decodeCorpus); err != nil {
		t.Skip("../shared/data/dicom not found: skipping decode --npy test")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
		t.Skip("/usr/bin/python3 with numpy not found: skipping decode --npy test")
	}
	ref, err := os.ReadFile(filepath.Join(decodeCorpus, "reference.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(ref), "\n") {
		if f := strings.Split(line, "\t"); len(f) > 13 {
			rows[f[0]] = f
		}
	}
	for _, path := range []string{
		"nema-wg04-and-pydicom/data/WG04/RLE/CT1_RLE",                    // int16, RLE
		"nema-wg04-and-pydicom/data/WG04/RLE/US1_RLE",                    // RGB uint8
		"nema-wg04-and-pydicom/data/pydicom/SC_rgb_rle_16bit_2frame.dcm", // frames × rows × cols × 3
		"nema-wg04-and-pydicom/data/pydicom/rtdose_rle.dcm",              // uint32, 15 frames
		"nema-wg04-and-pydicom/data/pydicom/MR_small_bigendian.dcm",      // big endian
		"img2dcm/No_findings_00001280_004.dcm",
		"img2dcm/No_findings_00001280_004_jpegll14sv1.dcm", // JPEG lossless SV1
		"img2dcm/Pneumonia_00000061_012_jpegls.dcm",        // JPEG-LS
		"nema-wg04-and-pydicom/data/WG04/J2KR/MR1_J2KR",    // JPEG 2000 lossless
		"pydicom-data/data/parametric_map_float.dcm",       // float32
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			r, ok := rows[path]
			if !ok {
				t.Fatalf("%s not in reference.tsv", path)
			}
			out := filepath.Join(t.TempDir(), "out.npy")
			stdout, errOut, code := sentinelCmd(t, "decode", "--npy", out, filepath.Join(decodeCorpus, path))
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
			}
			if want := fmt.Sprintf(" %s × %s × ", r[3], r[4]); !strings.Contains(stdout, want) || !strings.HasSuffix(strings.TrimSpace(stdout), ", "+r[2]) {
				t.Errorf("stdout %q does not give the size %q and the photometric %q", stdout, want, r[2])
			}
			script := `import sys, hashlib, numpy as np
a = np.load(sys.argv[1])
b = np.ascontiguousarray(a.astype(np.dtype(sys.argv[2])))
print("x".join(str(n) for n in a.shape), hashlib.sha256(b.tobytes()).hexdigest())`
			got, err := exec.Command("/usr/bin/python3", "-c", script, out, r[10]).CombinedOutput()
			if err != nil {
				t.Fatalf("python: %v\n%s", err, got)
			}
			if want := r[11] + " " + r[12]; strings.TrimSpace(string(got)) != want {
				t.Fatalf("numpy sees %s, reference %s", strings.TrimSpace(string(got)), want)
			}
		})
	}
}

// TestDecodeHeaderAndPNG checks the header summary (no pixels decoded: it
// is printed for a transfer syntax that cannot be decoded too) and the PNG.
func TestDecodeHeaderAndPNG(t *testing.T) {
	if _, err := os.Stat(decodeCorpus); err != nil {
		t.Skip("../shared/data/dicom not found: skipping decode test")
	}
	stdout, errOut, code := sentinelCmd(t, "decode", filepath.Join(decodeCorpus, "pydicom-data/data/liver_deflate.dcm"))
	// Printed, then exit 1: the header reads but the pixels cannot be decoded.
	if code != exitFailure || !strings.Contains(stdout, "1.2.840.10008.1.2.8.1 (Deflated Image Frame Compression)") ||
		!strings.Contains(stdout, "decodable:       no") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	stdout, _, code = sentinelCmd(t, "decode", filepath.Join(decodeCorpus, "nema-wg04-and-pydicom/data/WG04/RLE/RG3_RLE"))
	for _, want := range []string{"MONOCHROME1", "1760 rows × 1760 columns", "16 allocated, 10 stored", "decodable:       yes"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("exit %d, no %q in\n%s", code, want, stdout)
		}
	}
	png := filepath.Join(t.TempDir(), "out.png")
	if _, errOut, code := sentinelCmd(t, "decode", "--png", png, filepath.Join(decodeCorpus, "nema-wg04-and-pydicom/data/WG04/RLE/RG3_RLE")); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if info, err := os.Stat(png); err != nil || info.Size() < 1000 {
		t.Fatalf("png: %v", err)
	}
	if _, _, code := sentinelCmd(t, "decode", filepath.Join(decodeCorpus, "broken/empty_zero_bytes.dcm")); code != exitFailure {
		t.Fatalf("empty file: exit %d", code)
	}
}

// TestDecodeNPYUnsigned32 writes an unsigned 32-bit native file with
// values above 2^31-1 and checks that `sentinel decode --npy` writes the
// stored words unchanged and that `--png` shows the largest value white,
// not as a negative value.
func TestDecodeNPYUnsigned32(t *testing.T) {
	words := []uint32{0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0}
	var raw []byte
	for _, w := range words {
		raw = bo.LittleEndian.AppendUint32(raw, w)
	}
	strs := func(v string) []string { return []string{v} }
	ints := func(v int) []int { return []int{v} }
	const sopClass, sopInstance = "1.2.840.10008.5.1.4.1.1.7", "1.2.826.0.1.3680043.8.498.4"
	var ds dicom.Dataset
	for _, e := range []struct {
		t tag.Tag
		v any
	}{
		{tag.FileMetaInformationVersion, []byte{0, 1}},
		{tag.MediaStorageSOPClassUID, strs(sopClass)},
		{tag.MediaStorageSOPInstanceUID, strs(sopInstance)},
		{tag.TransferSyntaxUID, strs("1.2.840.10008.1.2.1")},
		{tag.ImplementationClassUID, strs("1.2.826.0.1.3680043.8.498.99")},
		{tag.SOPClassUID, strs(sopClass)},
		{tag.SOPInstanceUID, strs(sopInstance)},
		{tag.StudyInstanceUID, strs("1.2.826.0.1.3680043.8.498.5")},
		{tag.SeriesInstanceUID, strs("1.2.826.0.1.3680043.8.498.6")},
		{tag.SamplesPerPixel, ints(1)},
		{tag.PhotometricInterpretation, strs("MONOCHROME2")},
		{tag.Rows, ints(2)},
		{tag.Columns, ints(2)},
		{tag.BitsAllocated, ints(32)},
		{tag.BitsStored, ints(32)},
		{tag.HighBit, ints(31)},
		{tag.PixelRepresentation, ints(0)},
		{tag.PixelData, dicom.PixelDataInfo{IntentionallyUnprocessed: true, UnprocessedValueData: raw}},
	} {
		el, err := dicom.NewElement(e.t, e.v)
		if err != nil {
			t.Fatalf("element %v: %v", e.t, err)
		}
		ds.Elements = append(ds.Elements, el)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "u32.dcm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dicom.Write(f, ds); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	npy, pngPath := filepath.Join(dir, "out.npy"), filepath.Join(dir, "out.png")
	if stdout, errOut, code := sentinelCmd(t, "decode", "--npy", npy, "--png", pngPath, path); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	out, err := os.ReadFile(npy)
	if err != nil {
		t.Fatal(err)
	}
	// The header is padded to 64 bytes; the data follows it.
	if !bytes.Contains(out, []byte("'descr': '<u4'")) || !bytes.HasSuffix(out, raw) || (len(out)-len(raw))%64 != 0 {
		t.Errorf(".npy file is\n% x\nwant a <u4 array of the stored words\n% x", out, raw)
	}
	pf, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint8
	for y := range 2 {
		for x := range 2 {
			got = append(got, color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
		}
	}
	// 0x7FFFFFFF and 0x80000000 are mid-grey; 0xFFFFFFF0 is the largest.
	if got[0] != 0 || got[3] != 255 || got[1] < 100 || got[1] > 155 || got[2] < 100 || got[2] > 155 {
		t.Errorf("display %v, want 0, mid-grey, mid-grey, 255", got)
	}
}
