package jpeg2000

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Pixel-level bound for lossy (.91) frames against the OpenJPEG decode that
// GDCM returns. With OpenJPEG's constants our output is bit-identical on
// the whole corpus; the bound is what any valid 9/7 decoder with other
// float rounding stays within (measured with the exact 1/K: max 1, mean
// at most 0.016, about 1% of samples).
const (
	lossyMaxAbsDiff  = 1
	lossyMeanAbsDiff = 0.02
)

// readNPY reads a little-endian int32 .npy array (as written by
// np.save(out, a.astype('<i4'))).
func readNPY(path string) ([]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		return nil, errors.New("not an npy file")
	}
	var hl, off int
	if b[6] == 1 {
		hl, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	} else {
		hl, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	}
	hdr := string(b[off : off+hl])
	if !strings.Contains(hdr, "'<i4'") || strings.Contains(hdr, "'fortran_order': True") {
		return nil, errors.New("want a C-order <i4 array: " + hdr)
	}
	data := b[off+hl:]
	v := make([]int32, len(data)/4)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return v, nil
}

// TestLossyPixels compares lossy decodes sample by sample with arrays that
// pydicom+GDCM wrote. It needs JPEG2000_REF_DIR, a folder of
// <path with / replaced by _>.npy files made with
// np.save(out, ds.pixel_array.astype('<i4')); it skips without it, since
// the corpus only carries hashes.
func TestLossyPixels(t *testing.T) {
	needCorpus(t)
	dir := os.Getenv("JPEG2000_REF_DIR")
	if dir == "" {
		t.Skip("JPEG2000_REF_DIR not set: skipping the sample-by-sample lossy comparison")
	}
	for _, row := range readTSV(t, filepath.Join(corpusDir, "reference.tsv")) {
		if row["transfer_syntax"] != uidLossy {
			continue
		}
		path := row["path"]
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			want, err := readNPY(filepath.Join(dir, strings.ReplaceAll(path, "/", "_")+".npy"))
			if err != nil {
				t.Skipf("no reference array: %v", err)
			}
			frames, _, err := decodeFile(filepath.Join(corpusDir, path))
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for _, f := range frames {
				got = append(got, f.Samples...)
			}
			if len(got) != len(want) {
				t.Fatalf("%d samples, reference has %d", len(got), len(want))
			}
			var maxd, sum, ndiff int64
			for i := range got {
				d := int64(got[i]) - int64(want[i])
				d = max(d, -d)
				maxd = max(maxd, d)
				sum += d
				if d != 0 {
					ndiff++
				}
			}
			mean := float64(sum) / float64(len(got))
			t.Logf("max |diff| %d, mean |diff| %.6f, %d of %d samples differ", maxd, mean, ndiff, len(got))
			if maxd > lossyMaxAbsDiff || mean > lossyMeanAbsDiff {
				t.Errorf("outside the bound (max %d, mean %v)", lossyMaxAbsDiff, lossyMeanAbsDiff)
			}
		})
	}
}
