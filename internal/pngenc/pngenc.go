// Package pngenc writes the report's heatmap pictures as PNG. It differs
// from image/png in three ways that matter for a picture written with
// every report: an opaque picture is written as RGB without testing each
// row against the five PNG filters (every row uses the Paeth filter, the
// one image/png picks for nearly every row of a film), the filtered rows
// are compressed at flate's fastest level, and a large picture is split
// into bands of rows that are filtered and compressed on every core and
// joined into one zlib stream (each band's deflate output ends on a byte
// boundary with a sync flush, so the bands' streams concatenate).
package pngenc

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"runtime"
	"sync"
)

// minBandBytes is the least filtered data worth compressing on a
// goroutine of its own.
const minBandBytes = 128 << 10

// Encode writes img to w as a PNG file. A picture with any pixel that is
// not opaque goes through image/png at its fastest compression, which
// handles alpha.
func Encode(w io.Writer, img *image.RGBA) error {
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	if width <= 0 || height <= 0 || !opaque(img) {
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(w, img); err != nil {
			return fmt.Errorf("pngenc: %w", err)
		}
		return nil
	}
	rowLen := 1 + 3*width
	bands := min(runtime.GOMAXPROCS(0), height*rowLen/minBandBytes, height)
	bands = max(bands, 1)
	parts := make([][]byte, bands)
	filtered := make([][]byte, bands)
	errs := make([]error, bands)
	var wg sync.WaitGroup
	for i := range bands {
		y0, y1 := i*height/bands, (i+1)*height/bands
		wg.Go(func() {
			filtered[i] = filterRows(img, y0, y1)
			parts[i], errs[i] = deflate(filtered[i], i == bands-1)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("pngenc: %w", err)
		}
	}
	sum := adler32.New()
	size := 2 + 4
	for i := range bands {
		sum.Write(filtered[i])
		size += len(parts[i])
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("\x89PNG\r\n\x1a\n")
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = 8, 2 // 8 bits per sample, truecolour
	writeChunk(bw, "IHDR", ihdr[:])
	// One IDAT chunk: the zlib header (deflate, 32 KiB window, fastest),
	// the bands' deflate streams, and the Adler-32 of all filtered rows.
	var head [8]byte
	binary.BigEndian.PutUint32(head[0:], uint32(size))
	copy(head[4:], "IDAT")
	bw.Write(head[:])
	crc := crc32.NewIEEE()
	crc.Write(head[4:])
	out := io.MultiWriter(bw, crc)
	out.Write([]byte{0x78, 0x01})
	for _, p := range parts {
		out.Write(p)
	}
	out.Write(sum.Sum(nil))
	var tail [4]byte
	binary.BigEndian.PutUint32(tail[:], crc.Sum32())
	bw.Write(tail[:])
	writeChunk(bw, "IEND", nil)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("pngenc: %w", err)
	}
	return nil
}

// opaque reports whether every pixel of img has alpha 255.
func opaque(img *image.RGBA) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		i := img.PixOffset(b.Min.X, y)
		row := img.Pix[i : i+4*b.Dx()]
		for x := 3; x < len(row); x += 4 {
			if row[x] != 255 {
				return false
			}
		}
	}
	return true
}

// filterRows returns rows [y0, y1) of img (relative to its bounds) as RGB
// with the Paeth filter, each row preceded by its filter type. The row
// above y0 is read from img, so bands filter independently.
func filterRows(img *image.RGBA, y0, y1 int) []byte {
	b := img.Bounds()
	width := b.Dx()
	rowLen := 3 * width
	out := make([]byte, (y1-y0)*(1+rowLen))
	prev := make([]byte, rowLen)
	cur := make([]byte, rowLen)
	rgb := func(dst []byte, y int) {
		src := img.Pix[img.PixOffset(b.Min.X, b.Min.Y+y):][:4*width]
		for x := range width {
			dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
		}
	}
	if y0 > 0 {
		rgb(prev, y0-1)
	}
	for y := y0; y < y1; y++ {
		rgb(cur, y)
		row := out[(y-y0)*(1+rowLen):][:1+rowLen]
		row[0] = 4 // Paeth
		d := row[1:]
		// The first pixel has no left neighbour: Paeth of (0, up, 0) is up.
		for i := range 3 {
			d[i] = cur[i] - prev[i]
		}
		// The Paeth predictor of left a, up b and upper-left cc, written
		// out (as a function it is not inlined): p − a = b − cc,
		// p − b = a − cc and p − cc = (b − cc) + (a − cc), and the choice
		// is made with conditional moves, not branches that a picture's
		// noise makes unpredictable.
		c, p, dd := cur[:rowLen], prev[:rowLen], d[:rowLen]
		for i := 3; i < len(dd); i++ {
			a, b, cc := int(c[i-3]), int(p[i]), int(p[i-3])
			pa, pb := b-cc, a-cc
			pc := abs(pa + pb)
			pa, pb = abs(pa), abs(pb)
			r := cc
			if pb <= pc {
				r = b
			}
			if pa <= min(pb, pc) {
				r = a
			}
			dd[i] = c[i] - byte(r)
		}
		prev, cur = cur, prev
	}
	return out
}

func abs(x int) int {
	m := x >> 63
	return (x ^ m) - m
}

// deflate compresses data at flate's fastest level. A band that is not
// the last ends with a sync flush (byte-aligned, not final); the last
// ends the stream.
func deflate(data []byte, last bool) ([]byte, error) {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(data); err != nil {
		return nil, err
	}
	if last {
		err = fw.Close()
	} else {
		err = fw.Flush()
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeChunk writes one PNG chunk: length, type, data and CRC.
func writeChunk(w io.Writer, typ string, data []byte) {
	var head [8]byte
	binary.BigEndian.PutUint32(head[0:], uint32(len(data)))
	copy(head[4:], typ)
	crc := crc32.NewIEEE()
	crc.Write(head[4:])
	crc.Write(data)
	var tail [4]byte
	binary.BigEndian.PutUint32(tail[:], crc.Sum32())
	w.Write(head[:])
	w.Write(data)
	w.Write(tail[:])
}
