package main

import (
	"bufio"
	"context"
	bo "encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"strings"

	"github.com/sentinel-pacs/sentinel/dicomio"
)

// runDecode prints a DICOM file's header summary, or writes its stored
// values as a .npy array (--npy) or its display image as a PNG (--png).
func runDecode(_ context.Context, args []string, stdout, stderr io.Writer) error {
	// No workspace: decode reads one file and touches nothing else.
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	synopses.Store(fs, "decode [--json] [--npy OUT.npy] [--png OUT.png] [--frame N] FILE\n\n"+
		"Without --npy or --png, print the header summary and check that the first frame decodes;\n"+
		"the exit status is 1 when the file cannot be decoded.")
	asJSON := fs.Bool("json", false, "print the header summary as one JSON object")
	npyPath := fs.String("npy", "", "write the stored pixel values (after decompression, before any LUT) in pydicom's pixel_array layout, dtype and colour space (YBR_FULL and YBR_FULL_422 JPEGs stay YCbCr) to this .npy `file`")
	pngPath := fs.String("png", "", "write what the detector sees (the display pipeline's output) as an 8-bit grayscale PNG to this `file`")
	frameNo := fs.Int("frame", -1, "0-based `frame` to write; --npy writes every frame and --png the first when not given")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"decode: give exactly one file"}
	}
	path := fs.Arg(0)
	opt := dicomio.Options{}
	if *npyPath == "" && *pngPath == "" {
		h, err := dicomio.ReadHeader(path, opt)
		if err != nil {
			return err
		}
		if h.Problem == nil {
			// The header may promise what the pixel data does not keep (a
			// truncated or corrupt codestream): decode the first frame as
			// the detector would.
			if _, err := dicomio.DisplayFrame(path, opt, 0); err != nil {
				h.Problem = err
			}
		}
		if *asJSON {
			if err := printJSON(stdout, headerJSON(path, h)); err != nil {
				return err
			}
		} else {
			printHeader(stdout, path, h)
		}
		if h.Problem != nil {
			return fmt.Errorf("decode %s: the pixel data cannot be decoded: %w", path, h.Problem)
		}
		return nil
	}
	if *asJSON {
		return usageError{"decode: --json prints the header summary and does not go with --npy or --png"}
	}
	if *npyPath != "" {
		s, err := dicomio.DecodeStored(path, opt, *frameNo)
		if err != nil {
			return err
		}
		if err := writeFileWith(*npyPath, func(w io.Writer) error { return writeNPY(w, s) }); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		// The colour space of the values: the header's photometric
		// interpretation (YBR_FULL and YBR_FULL_422 JPEGs stay YCbCr, as
		// in pydicom), or RGB where the codec converted them.
		fmt.Fprintf(stdout, "wrote %s: %d frames of %d × %d × %d %s, %s\n",
			*npyPath, s.Frames, s.Rows, s.Columns, s.Samples, s.Dtype, s.Photometric)
	}
	if *pngPath != "" {
		img, err := dicomio.DisplayFrame(path, opt, max(*frameNo, 0))
		if err != nil {
			return err
		}
		gray := image.NewGray(image.Rect(0, 0, img.Width, img.Height))
		for i, v := range img.Pix {
			gray.Pix[i] = uint8(math.Round(float64(v) * 255))
		}
		if err := writeFileWith(*pngPath, func(w io.Writer) error { return png.Encode(w, gray) }); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
	}
	return nil
}

// printHeader writes the header summary, one attribute a line.
func printHeader(w io.Writer, path string, h dicomio.Header) {
	signed := "unsigned"
	if h.Signed {
		signed = "signed"
	}
	fmt.Fprintf(w, "file:            %s\n", path)
	fmt.Fprintf(w, "transfer syntax: %s (%s)\n", h.TransferSyntaxUID, h.TransferSyntaxName)
	fmt.Fprintf(w, "photometric:     %s\n", h.Photometric)
	fmt.Fprintf(w, "size:            %d rows × %d columns\n", h.Rows, h.Columns)
	fmt.Fprintf(w, "frames:          %d\n", h.Frames)
	fmt.Fprintf(w, "samples:         %d (planar configuration %d)\n", h.SamplesPerPixel, h.Planar)
	fmt.Fprintf(w, "bits:            %d allocated, %d stored, high bit %d, %s\n", h.BitsAllocated, h.BitsStored, h.HighBit, signed)
	switch {
	case h.Encapsulated:
		fmt.Fprintf(w, "pixel data:      encapsulated, %d fragments\n", h.Fragments)
	case h.Float:
		fmt.Fprintf(w, "pixel data:      float\n")
	}
	if h.Problem != nil {
		fmt.Fprintf(w, "decodable:       no: %v\n", h.Problem)
	} else {
		fmt.Fprintf(w, "decodable:       yes\n")
	}
}

// decodeHeader is the header summary `decode --json` prints.
type decodeHeader struct {
	File               string `json:"file"`
	TransferSyntaxUID  string `json:"transfer_syntax_uid"`
	TransferSyntaxName string `json:"transfer_syntax_name"`
	Photometric        string `json:"photometric"`
	Rows               int    `json:"rows"`
	Columns            int    `json:"columns"`
	Frames             int    `json:"frames"`
	SamplesPerPixel    int    `json:"samples_per_pixel"`
	Planar             int    `json:"planar_configuration"`
	BitsAllocated      int    `json:"bits_allocated"`
	BitsStored         int    `json:"bits_stored"`
	HighBit            int    `json:"high_bit"`
	Signed             bool   `json:"signed"`
	Encapsulated       bool   `json:"encapsulated"`
	Fragments          int    `json:"fragments,omitempty"`
	Float              bool   `json:"float"`
	Decodable          bool   `json:"decodable"`
	Problem            string `json:"problem,omitempty"`
}

func headerJSON(path string, h dicomio.Header) decodeHeader {
	d := decodeHeader{File: path, TransferSyntaxUID: h.TransferSyntaxUID, TransferSyntaxName: h.TransferSyntaxName,
		Photometric: h.Photometric, Rows: h.Rows, Columns: h.Columns, Frames: h.Frames, SamplesPerPixel: h.SamplesPerPixel,
		Planar: h.Planar, BitsAllocated: h.BitsAllocated, BitsStored: h.BitsStored, HighBit: h.HighBit, Signed: h.Signed,
		Encapsulated: h.Encapsulated, Fragments: h.Fragments, Float: h.Float, Decodable: h.Problem == nil}
	if h.Problem != nil {
		d.Problem = h.Problem.Error()
	}
	return d
}

// writeFileWith creates path and writes it with write.
func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// npyTypes maps a numpy dtype name to its .npy descr (little endian) and
// size in bytes.
var npyTypes = map[string]struct {
	descr string
	size  int
}{
	"uint8": {"|u1", 1}, "int8": {"|i1", 1},
	"uint16": {"<u2", 2}, "int16": {"<i2", 2},
	"uint32": {"<u4", 4}, "int32": {"<i4", 4},
	"float32": {"<f4", 4}, "float64": {"<f8", 8},
}

// writeNPY writes s as a .npy version 1.0 array of shape (frames, rows,
// cols[, samples]), the frames axis dropped for one frame, as pydicom's
// pixel_array has it.
func writeNPY(w io.Writer, s dicomio.Stored) error {
	t, ok := npyTypes[s.Dtype]
	if !ok {
		return fmt.Errorf("no .npy type for %s", s.Dtype)
	}
	var dims []string
	if s.Frames > 1 {
		dims = append(dims, fmt.Sprint(s.Frames))
	}
	dims = append(dims, fmt.Sprint(s.Rows), fmt.Sprint(s.Columns))
	if s.Samples > 1 {
		dims = append(dims, fmt.Sprint(s.Samples))
	}
	// At least two dimensions, so the tuple needs no trailing comma.
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", t.descr, strings.Join(dims, ", "))
	// Magic, version, header length, then the header padded with spaces
	// and a newline so the data starts on a 64-byte boundary.
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	prefix := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
	bo.LittleEndian.PutUint16(prefix[8:], uint16(len(header)))
	if _, err := w.Write(append(prefix, header...)); err != nil {
		return err
	}
	if len(s.Data) != s.Frames*s.Rows*s.Columns*s.Samples*t.size {
		return fmt.Errorf("%d bytes of %s for %d×%d×%d×%d samples", len(s.Data), s.Dtype, s.Frames, s.Rows, s.Columns, s.Samples)
	}
	// Stored data is already the array's bytes: the dtype's width, little
	// endian, C order.
	_, err := w.Write(s.Data)
	return err
}
