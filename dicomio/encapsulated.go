package dicomio

import (
	"errors"
	"fmt"

	"github.com/sentinel-pacs/sentinel"
	pxcodec "github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// frameDecoder is the entry point every codec package under dicomio/
// exports: it decodes the bytes of one frame.
type frameDecoder func(data []byte, p pxcodec.Params) (pxcodec.Frame, error)

// compressed returns the codec of the encapsulated transfer syntax uid,
// whose frames dec decodes. marker is the codestream start marker that
// splits fragmented frames when there is no offset table (nil when the
// codestream has none, as RLE).
//
// It is the one adapter between the codec packages and this package: it
// assembles the frame from its fragments, gives the codec the header's
// promise, fences it against panics, checks what it returns, and turns its
// errors into this package's sentinels (corrupt codestream is
// sentinel.ErrInvalid, unsupported feature sentinel.ErrUnsupported),
// naming the transfer syntax.
func compressed(uid string, dec frameDecoder, marker []byte) codec {
	return func(px pixelData, l layout, index int, dst []int32) (frame, error) {
		data, err := px.frameData(index, l.frames, marker)
		if err != nil {
			return frame{}, fmt.Errorf("%s: %w", syntaxName(uid), err)
		}
		p := pxcodec.Params{
			Rows: l.rows, Cols: l.cols, Samples: l.samples,
			BitsAllocated: l.bitsAllocated, BitsStored: l.bitsStored, Signed: l.signed,
			Photometric: l.photometric,
			// layout.check bounded the whole image already.
			MaxSamples: int64(l.rows) * int64(l.cols) * int64(l.samples),
			Buffer:     dst,
		}
		f, err := safeDecode(dec, data, p)
		if err != nil {
			return frame{}, codecError(uid, index, err)
		}
		if f.Width != l.cols || f.Height != l.rows || f.Components != l.samples ||
			len(f.Samples) != l.rows*l.cols*l.samples {
			return frame{}, fmt.Errorf("%w: %s frame %d: codec returned %dx%dx%d with %d samples for a %dx%dx%d image",
				sentinel.ErrInvalid, syntaxName(uid), index, f.Width, f.Height, f.Components, len(f.Samples), l.cols, l.rows, l.samples)
		}
		return toFrame(f, l), nil
	}
}

// safeDecode runs dec, turning a panic into an error: codecs must not
// panic, and this keeps a bug in one from taking the agent down.
func safeDecode(dec frameDecoder, data []byte, p pxcodec.Params) (f pxcodec.Frame, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = pxcodec.Frame{}, fmt.Errorf("%w: codec panicked: %v", pxcodec.ErrCorrupt, r)
		}
	}()
	return dec(data, p)
}

// codecError maps a codec's error to this package's sentinels.
func codecError(uid string, index int, err error) error {
	kind := sentinel.ErrInvalid
	if errors.Is(err, pxcodec.ErrUnsupported) {
		kind = sentinel.ErrUnsupported
	}
	return fmt.Errorf("%w: %s frame %d: %w", kind, syntaxName(uid), index, err)
}

// toFrame converts a codec's frame to this package's. The codec's samples
// are taken as they are, without a copy: they are int32 like a frame's,
// signed data is already sign-extended, and unsigned 32-bit values above
// 2^31-1 are their bit pattern, which layout.value reads back as uint32.
func toFrame(f pxcodec.Frame, l layout) frame {
	photometric := l.interpretation()
	if f.ColorTransformed {
		photometric = "RGB"
	}
	return frame{samples: f.Samples, photometric: photometric}
}
