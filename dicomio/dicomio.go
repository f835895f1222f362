// Package dicomio reads input files into Sentinel's domain types. It owns
// everything between a file on disk and a sentinel.Instance plus a
// sentinel.Image: recognising the format, the DICOM file meta and data set
// (PS3.10, PS3.5), native pixel data, encapsulated pixel data (frames
// assembled from fragments through the Basic or Extended Offset Table, PS3.5
// A.4) handed to the codec packages rle, jpeg, jpegls and jpeg2000 through
// one adapter (encapsulated.go), PNG and JPEG research images, the
// display pipeline of PS3.3 C.11 (lut.go, display.go: Modality LUT by
// rescale or Modality LUT Sequence, VOI LUT by window or VOI LUT Sequence,
// MONOCHROME1 and Presentation LUT Shape INVERSE inversion; palette colour
// through its normal or segmented Palette Color LUTs, PS3.3 C.7.6.3.1.5
// and C.7.9), area resampling, and the limits that bound what a hostile
// file can make it allocate.
//
// A dicom.Dataset never leaves this package, and it never reads patient
// names, IDs or birth dates. Nothing here scores, stores or logs.
//
// Errors wrap the root package's sentinels so callers can tell a file that
// will never decode (sentinel.ErrNotDICOM, sentinel.ErrInvalid) from one a
// later version might (sentinel.ErrUnsupported,
// sentinel.ErrUnsupportedTransferSyntax), and both from sentinel.ErrNoPixels
// and sentinel.ErrTooLarge. No input makes Load panic.
//
// How a DICOM file is read: the file meta is parsed here, so that the
// transfer syntax is known (and refused when no codec decodes it) first; a
// structural scan then validates every element length and the sequence
// nesting of the data set and locates the pixel data; the dicom library
// (github.com/suyashkumar/dicom) parses only the validated bytes before the
// pixel data, behind a recover; the pixel data is decoded from the file's
// bytes by the codec registered for the transfer syntax in codecs.
//
// Stored values are what the header says the bits mean. Each native
// sample is the Bits Stored bits ending at High Bit, sign-extended when
// Pixel Representation is 1: the bits around them are cleared, among them
// overlay planes stored in the unused high bits of the pixel words (the
// retired PS3.5 8.1.2 / PS3.3 C.9 embedded overlays), which would
// otherwise read as bright pixels; overlays are not rendered. A JPEG 2000
// codestream whose signedness differs from Pixel Representation is read
// the same way (see jpeg2000.Decode). YBR_FULL and YBR_FULL_422 JPEGs keep
// their YCbCr samples whatever the codestream's JFIF or Adobe markers say,
// as pydicom's pixel_array does.
//
// A private sequence written as VR UN with undefined length (PS3.5 6.2.2,
// as a node without the private dictionary writes it) is walked in
// implicit VR little endian, as the standard says, and left out of what
// the dicom library parses.
//
// The display pipeline's choices, where the standard leaves one: a window
// (Window Center/Width) is preferred to a VOI LUT Sequence when a file has
// both, and only the first of several is used; with neither, an automatic
// window (display.go). Presentation LUT Shape INVERSE on a MONOCHROME1
// image describes the same inversion (PS3.3 C.8.11.6.1.2), so it inverts
// once. Palette colour indices stay the stored values (DecodeStored gives
// them, as pydicom's pixel_array does); only the display image maps them,
// to the luminance of their colour. LUT data of 8-bit entries stored one
// to a 16-bit word is read as words, as pydicom does, and scaled as 16-bit
// when any entry exceeds 255. A LUT that cannot be read fails the display
// image with sentinel.ErrInvalid, never the stored values.
//
// Not rendered yet, and refused as sentinel.ErrUnsupported: more than 3
// samples per pixel, bit depths other than 1, 8, 16 and 32, palette
// colour of other than 8 or 16 bits. Ignored: the alpha palette, Large
// Palette Color LUTs, Supplemental Palette Color LUTs of enhanced images,
// VOI LUTs in functional groups, Softcopy Presentation States and
// overlays.
package dicomio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/sentinel-pacs/sentinel"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Default limits.
const (
	// DefaultMaxPixels is the default cap on rows*columns*samples times
	// the frames decoded at once (one for Load): 64 Mi samples is a
	// 4096×4096 image with four frames, or 16 frames of 2048×2048, far
	// above any chest radiograph.
	DefaultMaxPixels = 64 << 20
	// DefaultMaxFileBytes caps the size of a file Load reads into memory
	// when the pixel limit allows more: 2 GiB.
	DefaultMaxFileBytes = 2 << 30
	// sniffBytes is how much of a file is read first to tell its format,
	// before anything larger is allocated.
	sniffBytes = 4096
)

// Options bounds what decoding may allocate.
type Options struct {
	// MaxPixels caps rows*columns*samples times the number of frames
	// decoded (one for Load and DisplayFrame; the frames asked of
	// DecodeStored), not the frames the file holds; 0 means the default
	// 64 Mi.
	MaxPixels int64
	// MaxFileBytes caps the size of the file read; 0 means what the pixel
	// limit allows (8 bytes a sample plus 64 MiB of header), at most 2 GiB.
	MaxFileBytes int64
	// NoFollow refuses a path whose last element is a symbolic link
	// (O_NOFOLLOW), so that a link dropped in a watched folder cannot make
	// the caller read a file it was not given.
	NoFollow bool
	// PatientKey, if set, turns the file's Issuer of Patient ID and Patient
	// ID into Instance.PatientKey; the ID itself goes no further than this
	// call. It is not called for a file without a Patient ID.
	PatientKey func(issuer, id string) string
}

func (o Options) maxPixels() int64 {
	if o.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return o.MaxPixels
}

func (o Options) maxFileBytes() int64 {
	if o.MaxFileBytes > 0 {
		return o.MaxFileBytes
	}
	return min(DefaultMaxFileBytes, o.inflateLimit())
}

// inflateLimit bounds the inflated size of a deflated data set: room for
// the largest pixel data allowed at 8 bytes a sample, plus a header.
func (o Options) inflateLimit() int64 {
	return 8*o.maxPixels() + 64<<20
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// Sniff reports the format of the first bytes of a file (DICOM "DICM" at
// offset 128, PNG, JPEG signatures) or an error wrapping
// sentinel.ErrNotDICOM. A DICOM data set written without the Part 10
// preamble is recognised too, by a first element in group 0002 or 0008.
// 132 bytes are enough to decide.
func Sniff(head []byte) (sentinel.Format, error) {
	switch {
	case hasPreamble(head):
		return sentinel.FormatDICOM, nil
	case bytes.HasPrefix(head, pngSignature):
		return sentinel.FormatPNG, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return sentinel.FormatJPEG, nil
	case looksLikeDataset(head):
		return sentinel.FormatDICOM, nil
	}
	return "", fmt.Errorf("%w: no DICOM, PNG or JPEG signature", sentinel.ErrNotDICOM)
}

// Load reads a DICOM, PNG or JPEG file and returns its identity and its
// first frame as a display image in [0,1] at native resolution.
//
// On error the Instance still holds what was learnt before the failure
// (SourcePath; SHA256 once the file was read; the UIDs once the header
// was), so a caller can record or quarantine the file; the Image is empty.
func Load(path string, opt Options) (inst sentinel.Instance, img sentinel.Image, err error) {
	inst.SourcePath = path
	defer func() {
		// The dicom library is fenced where it is called; this is the
		// last line, so that no input can take the agent down.
		if r := recover(); r != nil {
			img = sentinel.Image{}
			err = fmt.Errorf("dicomio: %s: %w: decoder panicked: %v", path, sentinel.ErrInvalid, r)
		}
	}()
	// Nothing returned aliases the file's bytes: the image is converted
	// and the identity is strings.
	data, release, err := readPooled(path, opt.maxFileBytes(), opt.NoFollow)
	defer release()
	if err != nil {
		return inst, sentinel.Image{}, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	inst.SHA256 = hex.EncodeToString(sum[:])
	inst.Format, err = Sniff(data)
	if err == nil {
		if inst.Format == sentinel.FormatDICOM {
			img, err = loadDICOM(data, &inst, opt)
			if err == nil && inst.SOPInstanceUID == "" {
				// A valid image without a SOP Instance UID (some test
				// and research files) is still decoded, and identified
				// by its content hash like a PNG.
				inst.ID, inst.SOPInstanceUID = "sha256:"+inst.SHA256, uidFromDigest(sum)
			}
		} else {
			img, err = loadRaster(data, inst.Format, sum, &inst, opt.maxPixels())
		}
	}
	if err != nil {
		return inst, sentinel.Image{}, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	return inst, img, nil
}

// fileBuffers holds read buffers for the decoders whose results never
// alias the file's bytes (every sample is converted into a fresh slice):
// reusing them spares a decode the clearing and page faults of a new
// allocation as large as the file, a third of the time of an
// uncompressed chest radiograph.
var fileBuffers sync.Pool

// maxPooledBuffer bounds the buffers kept for reuse, so that one huge
// file does not stay resident.
const maxPooledBuffer = 64 << 20

// readPooled reads a regular file of at most limit bytes, checking the
// size before reading, into a reused buffer. Its first bytes are read and
// sniffed first, so that a large file of anything but DICOM, PNG or JPEG
// is refused without being read. With noFollow a symbolic link is refused.
// The caller must call release (never nil) once nothing refers to the
// bytes any more, and not touch them afterwards.
func readPooled(path string, limit int64, noFollow bool) (data []byte, release func(), err error) {
	release = func() {}
	flags := os.O_RDONLY
	if noFollow {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, release, fmt.Errorf("%w: a symbolic link, not followed", sentinel.ErrNotDICOM)
	}
	if err != nil {
		return nil, release, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, release, err
	}
	if !info.Mode().IsRegular() {
		return nil, release, fmt.Errorf("%w: not a regular file", sentinel.ErrNotDICOM)
	}
	var head [sniffBytes]byte
	hn, err := io.ReadFull(f, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, release, err
	}
	if _, err := Sniff(head[:hn]); err != nil && hn >= 132 {
		return nil, release, err
	}
	if info.Size() > limit {
		return nil, release, fmt.Errorf("%w: file is %d bytes, over the %d-byte limit", sentinel.ErrTooLarge, info.Size(), limit)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, release, err
	}
	// The file may have changed size since Stat: one byte more than
	// Stat said tells a file that grew from one that did not.
	n := int(info.Size()) + 1
	p, ok := fileBuffers.Get().(*[]byte)
	if !ok || cap(*p) < n {
		b := make([]byte, n)
		p = &b
	}
	if cap(*p) <= maxPooledBuffer {
		release = func() { fileBuffers.Put(p) }
	}
	buf := (*p)[:n]
	got, err := io.ReadFull(f, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return buf[:got], release, nil // the file was as large as Stat said, or shrank
	case err != nil:
		return nil, release, err
	}
	// It grew: read the rest, up to one byte past the limit to notice.
	var rest bytes.Buffer
	rest.Write(buf)
	if _, err := rest.ReadFrom(io.LimitReader(f, limit+1-int64(len(buf)))); err != nil {
		return nil, release, err
	}
	if int64(rest.Len()) > limit {
		return nil, release, fmt.Errorf("%w: file is over the %d-byte limit", sentinel.ErrTooLarge, limit)
	}
	return rest.Bytes(), release, nil
}

// loadDICOM decodes the first frame of a DICOM file, filling inst as it
// learns.
func loadDICOM(data []byte, inst *sentinel.Instance, opt Options) (sentinel.Image, error) {
	f, err := openDICOM(data, inst, opt)
	if err != nil {
		return sentinel.Image{}, err
	}
	buf := pooledSamples()
	fr, err := f.codec(f.pixels, f.layout, 0, buf)
	defer releaseSamples(buf, fr.samples)
	if err != nil {
		return sentinel.Image{}, err
	}
	return render(fr, f.layout, f.header)
}

// dicomFile is a DICOM file read up to its pixel data, checked against the
// limits and ready for its codec.
type dicomFile struct {
	header header
	layout layout
	pixels pixelData
	codec  codec
	// parsed is set once the header was read, even if the file is then
	// refused.
	parsed bool
	// native is set for the uncompressed transfer syntaxes.
	native bool
}

// openDICOM reads a DICOM file's meta and header, locates its pixel data
// and checks that it can and may be decoded.
func openDICOM(data []byte, inst *sentinel.Instance, opt Options) (dicomFile, error) {
	var f dicomFile
	meta, err := parseMeta(data)
	if err != nil {
		return f, err
	}
	inst.SOPClassUID, inst.SOPInstanceUID = meta.sopClassUID, meta.sopInstanceUID
	inst.ID = inst.SOPInstanceUID
	body := data[meta.bodyOffset:]
	if len(body) == 0 {
		return f, fmt.Errorf("%w: no data set after the file meta", sentinel.ErrInvalid)
	}
	ts := meta.transferSyntax
	if ts == "" {
		ts = inferSyntax(body)
	}
	inst.TransferSyntaxUID = ts
	enc := datasetEncoding(ts)
	if enc.deflated {
		if body, err = inflate(body, opt.inflateLimit()); err != nil {
			return f, err
		}
	}

	s := scanner{buf: body, bo: enc.bo, implicit: enc.implicit}
	res, scanErr := s.dataset()
	// Parse what the scan validated even when it then failed, so that an
	// unusable file can still be identified.
	ds, headerErr := parseHeader(res.headerParts(body), enc)
	if headerErr == nil {
		f.parsed = true
		f.header = readHeader(&ds, enc.bo)
		fillInstance(inst, f.header)
		if opt.PatientKey != nil {
			a := attrs{ds: &ds, bo: enc.bo}
			if id := strings.TrimSpace(a.str(tag.PatientID)); id != "" {
				inst.PatientKey = opt.PatientKey(strings.TrimSpace(a.str(tag.IssuerOfPatientID)), id)
			}
		}
	}
	var supported bool
	f.codec, supported = codecs[ts]
	f.native = ts == uidImplicitLE || ts == uidExplicitLE || ts == uidExplicitBE || ts == uidDeflatedLE
	h := f.header
	switch {
	case !supported:
		return f, unsupportedSyntax(ts)
	case scanErr != nil:
		return f, scanErr
	case headerErr != nil:
		return f, headerErr
	case res.pixel == nil:
		return f, sentinel.ErrNoPixels
	case !h.hasRows || !h.hasColumns || !h.hasBitsAllocated:
		return f, fmt.Errorf("%w: pixel data without Rows, Columns or Bits Allocated", sentinel.ErrInvalid)
	case !h.framesOK:
		return f, fmt.Errorf("%w: unreadable Number of Frames", sentinel.ErrInvalid)
	}
	f.pixels = *res.pixel
	f.layout = h.layout
	f.layout.float = f.pixels.tag != tagPixelData
	f.layout.encapsulated = f.pixels.encapsulated
	if err := f.layout.check(opt.maxPixels()); err != nil {
		return f, err
	}
	return f, nil
}

// fillInstance copies a header's identity and geometry into inst. The data
// set's UIDs win over the file meta's copies.
func fillInstance(inst *sentinel.Instance, h header) {
	if h.sopInstanceUID != "" {
		inst.SOPInstanceUID = h.sopInstanceUID
	}
	if h.sopClassUID != "" {
		inst.SOPClassUID = h.sopClassUID
	}
	inst.ID = inst.SOPInstanceUID
	inst.StudyInstanceUID = h.studyUID
	inst.SeriesInstanceUID = h.seriesUID
	inst.Modality = h.modality
	inst.AccessionNumber = h.accessionNumber
	inst.Placement = h.placement
	inst.Rows, inst.Columns, inst.Frames = h.layout.rows, h.layout.cols, h.layout.frames
	inst.Photometric = h.layout.photometric
}
