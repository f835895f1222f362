package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
			if stdout, errOut, code := sentinelCmd(t, "decode", "--npy", out, filepath.Join(decodeCorpus, path)); code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
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
	stdout, errOut, code := sentinelCmd(t, "decode", filepath.Join(decodeCorpus, "pydicom-data/data/HTJ2KLossless_08_RGB.dcm"))
	if code != 0 || !strings.Contains(stdout, "1.2.840.10008.1.2.4.201 (High-Throughput JPEG 2000 Lossless)") ||
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
