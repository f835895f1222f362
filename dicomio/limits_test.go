package dicomio

import (
	"errors"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// TestPixelLimitCountsDecodedFrames checks that Options.MaxPixels bounds
// the frames decoded, not the frames a file holds: a cine loop whose one
// frame is within the limit decodes frame by frame, and only asking for
// all its frames at once is too large. The case is an 87-frame ultrasound
// of 743×975×3 under the default 64 Mi-sample limit, scaled down.
func TestPixelLimitCountsDecodedFrames(t *testing.T) {
	const frames = 5
	s := spec{rows: 3, cols: 4, frames: frames, samples: 3, bitsAllocated: 8, photometric: "RGB"}
	for i := range 3 * 4 * 3 * frames {
		s.pixels = append(s.pixels, i%251)
	}
	path := writeDICOM(t, s)
	perFrame := int64(3 * 4 * 3)
	opt := Options{MaxPixels: 2 * perFrame} // two frames' worth
	if _, _, err := Load(path, opt); err != nil {
		t.Fatalf("Load of frame 0: %v", err)
	}
	if _, err := DisplayFrame(path, opt, frames-1); err != nil {
		t.Errorf("DisplayFrame of the last frame: %v", err)
	}
	st, err := DecodeStored(path, opt, 3)
	if err != nil {
		t.Fatalf("DecodeStored of frame 3: %v", err)
	}
	if st.Frames != 1 || int64(st.Len()) != perFrame || st.Value(0) != float64(s.pixels[3*perFrame]) {
		t.Errorf("frame 3: %d frames, %d samples, first %v", st.Frames, st.Len(), st.Value(0))
	}
	if _, err := DecodeStored(path, opt, -1); !errors.Is(err, sentinel.ErrTooLarge) {
		t.Errorf("DecodeStored of all %d frames: %v, want ErrTooLarge", frames, err)
	}
	if _, err := DecodeStored(path, Options{MaxPixels: frames * perFrame}, -1); err != nil {
		t.Errorf("DecodeStored of all frames within the limit: %v", err)
	}
	// One frame over the limit is refused however it is asked for.
	small := Options{MaxPixels: perFrame - 1}
	if _, _, err := Load(path, small); !errors.Is(err, sentinel.ErrTooLarge) {
		t.Errorf("Load with a frame over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := DecodeStored(path, small, 0); !errors.Is(err, sentinel.ErrTooLarge) {
		t.Errorf("DecodeStored with a frame over the limit: %v, want ErrTooLarge", err)
	}
}
