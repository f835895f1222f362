package jpeg

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// TestFastDiffsMatchGeneral decodes the lossless corpus frames, whole and
// with bytes of their scan changed here and there, with and without
// fastDiffs: the samples and the errors must be the same.
func TestFastDiffsMatchGeneral(t *testing.T) {
	needCorpus(t)
	inv := map[string]map[string]string{}
	for _, r := range readTSV(t, filepath.Join(corpusDir, "INVENTORY.tsv")) {
		inv[r["path"]] = r
	}
	rng := rand.New(rand.NewPCG(11, 3))
	defer func() { useFastDiffs = true }()
	compared := 0
	for _, bf := range benchFiles[:3] {
		r := inv[bf.path]
		frame := jpegFrames(t, filepath.Join(corpusDir, bf.path), atoi(r["frames"], 1))[0]
		p := paramsOf(r)
		streams := [][]byte{frame}
		for range 8 {
			d := append([]byte(nil), frame...)
			for range 1 + rng.IntN(3) {
				d[len(d)/4+rng.IntN(len(d)/2)] = byte(rng.IntN(256))
			}
			streams = append(streams, d)
		}
		for i, data := range streams {
			useFastDiffs = true
			fast, errFast := Decode(data, p)
			useFastDiffs = false
			slow, errSlow := Decode(data, p)
			if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
				t.Fatalf("%s stream %d: fast error %v, general error %v", bf.name, i, errFast, errSlow)
			}
			if errFast != nil && !errors.Is(errFast, codec.ErrCorrupt) {
				t.Fatalf("%s stream %d: %v is not a corrupt-codestream error", bf.name, i, errFast)
			}
			if !slices.Equal(fast.Samples, slow.Samples) {
				t.Fatalf("%s stream %d: fast and general decodes differ", bf.name, i)
			}
			compared++
		}
	}
	t.Logf("%d streams decoded alike", compared)
}
