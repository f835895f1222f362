package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	dicomframe "github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
)

// explicitElement encodes one explicit VR little endian element.
func explicitElement(group, element uint16, vr string, value []byte) []byte {
	le := binary.LittleEndian
	out := le.AppendUint16(nil, group)
	out = le.AppendUint16(out, element)
	out = append(out, vr...)
	if longVR(vr) {
		out = append(out, 0, 0)
		return append(le.AppendUint32(out, uint32(len(value))), value...)
	}
	return append(le.AppendUint16(out, uint16(len(value))), value...)
}

// rawFile is an explicit VR little endian file made of hand-encoded
// elements, for structures the library will not write.
func rawFile(elems ...[]byte) []byte {
	out := syntheticMeta(uidExplicitLE)
	out = append(out, explicitElement(0x0008, 0x0018, "UI", []byte("1.2.3.4\x00"))...)
	for _, e := range elems {
		out = append(out, e...)
	}
	return out
}

// deepSequences nests n sequences of undefined length, each in an item
// of the one before.
func deepSequences(n int) []byte {
	le := binary.LittleEndian
	var out []byte
	for range n {
		out = append(out, 0x08, 0x00, 0x40, 0x11, 'S', 'Q', 0, 0) // (0008,1140) SQ
		out = le.AppendUint32(out, undefinedLength)
		out = append(out, 0xFE, 0xFF, 0x00, 0xE0) // item
		out = le.AppendUint32(out, undefinedLength)
	}
	return out
}

// truncate returns data without its last n bytes.
func truncate(data []byte, n int) []byte { return data[:len(data)-n] }

// pngBytes encodes a w×h gray PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLoadErrors checks that bad input fails with the right sentinel,
// without panicking and without allocating what a header claims.
func TestLoadErrors(t *testing.T) {
	valid := spec{rows: 4, cols: 4, bitsAllocated: 8, pixels: make([]int, 16)}
	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
	}
	huge := func(rows, cols, frames int) spec {
		return spec{rows: rows, cols: cols, frames: frames, raw: make([]byte, 16)}
	}
	tests := []struct {
		name string
		data []byte
		opt  Options
		want error
		// msg, when set, must appear in the error.
		msg string
	}{
		{name: "empty", data: nil, want: sentinel.ErrNotDICOM},
		{name: "text", data: []byte("patient list\nnot an image at all\n"), want: sentinel.ErrNotDICOM},
		{name: "random bytes", data: garbage, want: sentinel.ErrNotDICOM},
		{name: "preamble only", data: append(make([]byte, 128), "DICM"...), want: sentinel.ErrInvalid},
		{name: "DICM then garbage", data: append(append(make([]byte, 128), "DICM"...), garbage...), want: sentinel.ErrInvalid},
		{name: "truncated in the file meta", data: encodeDICOM(t, valid)[:150], want: sentinel.ErrInvalid},
		{name: "truncated in the data set", data: encodeDICOM(t, valid)[:400], want: sentinel.ErrInvalid},
		{name: "truncated in the pixel data", data: truncate(encodeDICOM(t, valid), 6), want: sentinel.ErrInvalid},
		{name: "pixel data shorter than the frames", data: encodeDICOM(t, spec{rows: 4, cols: 4, frames: 2, bitsAllocated: 8, raw: make([]byte, 16)}),
			want: sentinel.ErrInvalid, msg: "pixel data has 16 bytes"},
		{name: "65535 x 65535", data: encodeDICOM(t, huge(65535, 65535, 1)), want: sentinel.ErrTooLarge},
		{name: "10000 frames of 1000 x 1000, one frame of data", data: encodeDICOM(t, huge(1000, 1000, 10000)), want: sentinel.ErrInvalid,
			msg: "pixel data has 16 bytes"},
		{name: "over MaxPixels", data: encodeDICOM(t, valid), opt: Options{MaxPixels: 15}, want: sentinel.ErrTooLarge},
		{name: "over MaxFileBytes", data: encodeDICOM(t, valid), opt: Options{MaxFileBytes: 100}, want: sentinel.ErrTooLarge},
		{name: "no pixel data", data: encodeDICOM(t, spec{}), want: sentinel.ErrNoPixels},
		{name: "no Rows", data: encodeDICOM(t, spec{rows: 4, cols: 4, bitsAllocated: 8, pixels: make([]int, 16), omit: []tag.Tag{tag.Rows}}),
			want: sentinel.ErrInvalid},
		{name: "bits stored over bits allocated", data: encodeDICOM(t, spec{rows: 1, cols: 1, bitsAllocated: 8, bitsStored: 12, pixels: []int{0}}),
			want: sentinel.ErrInvalid},
		{name: "palette colour without LUTs", data: encodeDICOM(t, spec{rows: 1, cols: 2, bitsAllocated: 8, photometric: "PALETTE COLOR", pixels: []int{0, 1}}),
			want: sentinel.ErrInvalid, msg: "palette colour without"},
		{name: "palette colour of 32 bits", data: encodeDICOM(t, spec{rows: 1, cols: 1, bitsAllocated: 32, photometric: "PALETTE COLOR", raw: make([]byte, 4)}),
			want: sentinel.ErrUnsupported},
		{name: "12 bits allocated", data: encodeDICOM(t, spec{rows: 1, cols: 2, bitsAllocated: 12, raw: make([]byte, 4)}),
			want: sentinel.ErrUnsupported},
		{name: "JPIP HTJ2K", want: sentinel.ErrUnsupportedTransferSyntax,
			data: bytes.Replace(encapsulatedFile(t, "1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.204"), 1),
			msg:  "unsupported transfer syntax 1.2.840.10008.1.2.4.204 (JPIP HTJ2K Referenced)"},
		{name: "HTJ2K fragment of junk", want: sentinel.ErrInvalid,
			data: bytes.Replace(encapsulatedFile(t, "1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.201"), 1),
			msg:  "High-Throughput JPEG 2000 Lossless frame 0: jpeg2000: corrupt codestream"},
		{name: "MPEG-2", data: encapsulatedFile(t, "1.2.840.10008.1.2.4.100"), want: sentinel.ErrUnsupportedTransferSyntax,
			msg: "unsupported transfer syntax 1.2.840.10008.1.2.4.100 (MPEG2 Main Profile / Main Level)"},
		{name: "HEVC", data: encapsulatedFile(t, "1.2.840.10008.1.2.4.107"), want: sentinel.ErrUnsupportedTransferSyntax,
			msg: "unsupported transfer syntax 1.2.840.10008.1.2.4.107 (HEVC/H.265 Main Profile / Level 5.1)"},
		{name: "JPEG XL", want: sentinel.ErrUnsupportedTransferSyntax,
			data: bytes.Replace(encapsulatedFile(t, "1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.112"), 1),
			msg:  "unsupported transfer syntax 1.2.840.10008.1.2.4.112 (JPEG XL)"},
		{name: "RLE fragment of junk", data: encapsulatedFile(t, uidRLE), want: sentinel.ErrInvalid,
			msg: "RLE Lossless frame 0: corrupt codestream"},
		{name: "unknown transfer syntax", want: sentinel.ErrUnsupportedTransferSyntax,
			// The writer refuses unknown UIDs: patch one of the same length in.
			data: bytes.Replace(encapsulatedFile(t, "1.2.840.10008.1.2.4.70"), []byte("1.2.840.10008.1.2.4.70"), []byte("1.2.840.10008.9.99.999"), 1),
			msg:  "unsupported transfer syntax 1.2.840.10008.9.99.999 (unknown)"},
		{name: "encapsulated pixel data in a native syntax", data: encapsulatedFile(t, uidExplicitLE), want: sentinel.ErrInvalid},
		{name: "sequences nested too deep", data: rawFile(deepSequences(maxDepth + 10)), want: sentinel.ErrInvalid, msg: "nested deeper"},
		{name: "element longer than the file", data: rawFile(append(explicitElement(0x0008, 0x2111, "UT", nil)[:8], 0xF0, 0xFF, 0xFF, 0xFF)),
			want: sentinel.ErrInvalid, msg: "exceeds"},
		{name: "truncated PNG", data: pngBytes(t, 64, 64)[:60], want: sentinel.ErrInvalid},
		{name: "PNG over MaxPixels", data: pngBytes(t, 64, 64), opt: Options{MaxPixels: 64*64 - 1}, want: sentinel.ErrTooLarge},
		{name: "truncated JPEG", data: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F'}, want: sentinel.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "bad.dcm", tt.data)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			inst, img, err := Load(path, tt.opt)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Load error %v, want %v", err, tt.want)
			}
			if !sentinel.Permanent(err) {
				t.Errorf("error %v is not permanent", err)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "dicomio: "+path+": ") {
				t.Errorf("error %q lacks the dicomio: path: prefix", err)
			}
			if img.Pix != nil || inst.SourcePath != path {
				t.Errorf("image %dx%d, source %q", img.Width, img.Height, inst.SourcePath)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
				t.Errorf("Load allocated %d MB", grew>>20)
			}
		})
	}
}

// encapsulatedFile writes a file in transfer syntax ts whose pixel data
// is encapsulated (one fragment of junk).
func encapsulatedFile(t *testing.T, ts string) []byte {
	t.Helper()
	px := elem(t, tag.PixelData, dicom.PixelDataInfo{IsEncapsulated: true, Frames: []*dicomframe.Frame{
		{Encapsulated: true, EncapsulatedData: dicomframe.EncapsulatedFrame{Data: []byte{1, 2, 3, 4}}},
	}})
	px.RawValueRepresentation = "OB"
	px.ValueLength = tag.VLUndefinedLength
	return encodeDICOM(t, spec{ts: ts, rows: 2, cols: 2, bitsAllocated: 8, pixelData: px})
}

// TestLoadUnsupportedKeepsIdentity checks that a file refused for its
// transfer syntax still reports who it is.
func TestLoadUnsupportedKeepsIdentity(t *testing.T) {
	data := bytes.Replace(encapsulatedFile(t, "1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.100"), []byte("1.2.840.10008.1.2.4.204"), 1)
	inst, _, err := Load(writeFile(t, "jpip.dcm", data), Options{})
	if !errors.Is(err, sentinel.ErrUnsupportedTransferSyntax) {
		t.Fatalf("error %v", err)
	}
	if inst.ID != testInstance || inst.StudyInstanceUID != testStudy || inst.SHA256 == "" || inst.TransferSyntaxUID != "1.2.840.10008.1.2.4.204" {
		t.Errorf("instance %+v", inst)
	}
}

// TestLoadFileErrors checks errors that are not about the content.
func TestLoadFileErrors(t *testing.T) {
	_, _, err := Load(t.TempDir(), Options{})
	if !errors.Is(err, sentinel.ErrNotDICOM) {
		t.Errorf("folder: %v, want ErrNotDICOM", err)
	}
	_, _, err = Load(t.TempDir()+"/missing.dcm", Options{})
	if !errors.Is(err, fs.ErrNotExist) || sentinel.Permanent(err) {
		t.Errorf("missing file: %v, want a transient fs.ErrNotExist", err)
	}
}

// TestSniff checks format recognition from the first bytes.
func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want sentinel.Format
		err  error
	}{
		{"part 10", append(make([]byte, 128), "DICM\x02\x00"...), sentinel.FormatDICOM, nil},
		{"png", pngSignature, sentinel.FormatPNG, nil},
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0}, sentinel.FormatJPEG, nil},
		{"data set without preamble, explicit", []byte("\x08\x00\x05\x00CS\x0a\x00ISO_IR 100"), sentinel.FormatDICOM, nil},
		{"data set without preamble, implicit", []byte("\x08\x00\x16\x00\x1a\x00\x00\x001.2.840"), sentinel.FormatDICOM, nil},
		{"empty", nil, "", sentinel.ErrNotDICOM},
		{"short", []byte("DI"), "", sentinel.ErrNotDICOM},
		{"DICM at 0", []byte("DICM and then some text that is long enough"), "", sentinel.ErrNotDICOM},
		{"text", []byte("hello, world: not an image"), "", sentinel.ErrNotDICOM},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), "", sentinel.ErrNotDICOM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sniff(tt.head)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Sniff = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
