package dicomio

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/sentinel-pacs/sentinel"
)

// Bounds of ReadTextAttributes: it reads a file's first headerReadStart
// bytes and, when the attributes asked for lie further on, twice as many
// at a time up to maxHeaderRead. A radiograph's header is a few kilobytes;
// 16 MiB leaves room for large private groups and icon sequences before
// the attributes while never reading a whole film.
const (
	headerReadStart = 64 << 10
	maxHeaderRead   = 16 << 20
)

// ReadTextAttributes returns the raw values of the top-level text
// attributes of a DICOM file listed in tags (group<<16 | element): the
// bytes as stored, trailing space and NUL padding removed, no character
// set decoded and no value split. Tags of group 0002 are read from the
// file meta. An attribute absent from the file, empty, of a binary VR or
// a sequence, is absent from the map.
//
// It reads only the header: the file's bytes are read from the start,
// never past the pixel data nor past maxHeaderRead bytes, and the walk
// stops at the first element beyond the highest tag asked for. Every
// element length on the way is validated by the structural scanner the
// decoder uses, so no input makes it allocate more than the bytes it read
// or panic. The dicom library is not involved.
//
// Unlike the rest of this package, it hands out whatever it is asked for,
// patient attributes included: it exists so that derived objects can be
// filed with the patient and study of their source. Callers must keep
// such values out of logs.
func ReadTextAttributes(path string, tags []uint32) (map[uint32]string, error) {
	out, err := readTextAttributes(path, tags)
	if err != nil {
		return nil, fmt.Errorf("dicomio: %s: %w", path, err)
	}
	return out, nil
}

func readTextAttributes(path string, tags []uint32) (map[uint32]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", sentinel.ErrNotDICOM)
	}
	want := slices.Clone(tags)
	slices.Sort(want)
	want = slices.Compact(want)
	var buf []byte
	for n := int64(headerReadStart); ; n *= 2 {
		n = min(n, maxHeaderRead, info.Size())
		if buf, err = readPrefix(f, buf, n); err != nil {
			return nil, err
		}
		// The prefix is the whole file when it is shorter than asked:
		// the file may have shrunk since Stat.
		whole := int64(len(buf)) < n || int64(len(buf)) == info.Size()
		out, more, err := textAttributes(buf, want, whole)
		switch {
		case err != nil:
			return nil, err
		case !more:
			return out, nil
		case whole:
			return nil, fmt.Errorf("%w: header truncated", sentinel.ErrInvalid)
		case n >= maxHeaderRead:
			return nil, fmt.Errorf("%w: header longer than %d bytes", sentinel.ErrTooLarge, maxHeaderRead)
		}
	}
}

// readPrefix returns the first n bytes of f (fewer at its end), reusing buf.
func readPrefix(f *os.File, buf []byte, n int64) ([]byte, error) {
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}

// textAttributes reads the wanted tags (sorted) from data, the first bytes
// of a file, or all of it when whole is set. more says that the attributes
// may lie beyond data: the caller should read further and ask again.
func textAttributes(data []byte, want []uint32, whole bool) (out map[uint32]string, more bool, err error) {
	if len(data) < preambleLen && !whole {
		return nil, true, nil
	}
	if !hasPreamble(data) && !looksLikeDataset(data) {
		return nil, false, fmt.Errorf("%w: no DICOM signature", sentinel.ErrNotDICOM)
	}
	meta, err := parseMeta(data)
	if err != nil {
		if whole {
			return nil, false, err
		}
		return nil, true, nil
	}
	out = make(map[uint32]string)
	for _, t := range want {
		switch t {
		case 0x00020002:
			setText(out, t, meta.sopClassUID)
		case 0x00020003:
			setText(out, t, meta.sopInstanceUID)
		case 0x00020010:
			setText(out, t, meta.transferSyntax)
		}
	}
	body := data[meta.bodyOffset:]
	ts := meta.transferSyntax
	if ts == "" {
		ts = inferSyntax(body)
	}
	enc := datasetEncoding(ts)
	if enc.deflated {
		// A cut deflate stream yields what came before the cut, so the
		// prefix inflates as far as it goes.
		body, err = inflatePrefix(body, maxHeaderRead)
		if err != nil {
			return nil, false, err
		}
	}
	s := scanner{buf: body, bo: enc.bo, implicit: enc.implicit}
	more, err = s.textValues(want, out)
	if err != nil && whole {
		return nil, false, err
	}
	if err != nil {
		return nil, true, nil
	}
	return out, more && !whole, nil
}

// inflatePrefix inflates at most limit bytes of a raw deflate stream,
// tolerating a stream cut short.
func inflatePrefix(b []byte, limit int64) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: inflate data set: %w", sentinel.ErrInvalid, err)
	}
	return out, nil
}

// textValues walks the top level of the scanner's data set up to the
// pixel data or the first tag past the last one wanted, storing the
// wanted text values in out. more reports that the bytes ran out first.
func (s *scanner) textValues(want []uint32, out map[uint32]string) (more bool, err error) {
	if len(want) == 0 {
		return false, nil
	}
	last := want[len(want)-1]
	limit, off := len(s.buf), 0
	for limit-off >= 8 {
		h, err := s.header(off, limit)
		if err != nil {
			return false, err
		}
		if h.tag > last || h.tag == tagPixelData || h.tag == tagFloatPixelData || h.tag == tagDoublePixelData {
			return false, nil
		}
		if h.tag>>16 == 0xFFFE {
			return false, invalid("item tag %s outside a sequence at byte %d", h, off)
		}
		next, err := s.element(h, limit, 0)
		if err != nil {
			return false, err
		}
		if _, ok := slices.BinarySearch(want, h.tag); ok && isTextVR(h.vr) && h.vl != undefinedLength {
			setText(out, h.tag, string(s.buf[h.value:next]))
		}
		off = next
	}
	return true, nil
}

// setText stores v without its trailing padding, unless that leaves
// nothing.
func setText(out map[uint32]string, t uint32, v string) {
	if v = strings.TrimRight(v, " \x00"); v != "" {
		out[t] = v
	}
}

// isTextVR reports whether values of vr are character strings. UN is
// included: a text attribute of an implicit VR file whose tag the
// dictionary does not know reads as its bytes.
func isTextVR(vr string) bool {
	switch vr {
	case "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT", "UN":
		return true
	}
	return false
}
