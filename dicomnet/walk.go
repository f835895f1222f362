package dicomnet

import (
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of the element walker.
const (
	// studyScanLimit bounds the data set bytes (inflated bytes for a
	// deflated data set) read to find the Study Instance UID.
	studyScanLimit = 2 << 20
	// maxWalkDepth bounds the nesting of sequences skipped.
	maxWalkDepth = 16
)

// errNotFound: the walker passed where the element would be.
var errNotFound = errors.New("dicomnet: study instance UID not found")

// walker reads data set elements from r in one encoding, skipping values.
type walker struct {
	r        io.Reader
	order    binary.ByteOrder
	explicit bool
}

// header is an element header; n is 0xFFFFFFFF for an undefined length.
type header struct {
	group, elem uint16
	vr          string
	n           uint32
}

const undefinedLength = 0xFFFFFFFF

// findStudyUID reads the top-level elements of a data set encoded in
// transfer syntax ts until (0020,000D) Study Instance UID, and returns its
// value. A deflated data set is inflated on the way. Any transfer syntax
// it does not know is read as Explicit VR Little Endian, which every
// encapsulated one is. It stops with errNotFound at the first element
// after (0020,000D), and with an error on malformed input or after
// studyScanLimit bytes.
func findStudyUID(r io.Reader, ts string) (string, error) {
	w := &walker{r: io.LimitReader(r, studyScanLimit), order: binary.LittleEndian, explicit: true}
	switch ts {
	case ImplicitVRLittleEndian:
		w.explicit = false
	case ExplicitVRBigEndian:
		w.order = binary.BigEndian
	case DeflatedExplicitVRLittleEndian:
		fr := flate.NewReader(r)
		defer fr.Close()
		w.r = io.LimitReader(fr, studyScanLimit)
	}
	for {
		h, err := w.header()
		if err != nil {
			return "", err
		}
		tag := uint32(h.group)<<16 | uint32(h.elem)
		switch {
		case h.group == 0xFFFE:
			return "", fmt.Errorf("dicomnet: data set: item tag (FFFE,%04X) at the top level", h.elem)
		case tag == 0x0020000D:
			if h.n > 256 {
				return "", fmt.Errorf("dicomnet: data set: study instance UID of %d bytes", h.n)
			}
			v := make([]byte, h.n)
			if _, err := io.ReadFull(w.r, v); err != nil {
				return "", fmt.Errorf("dicomnet: data set: study instance UID: %w", noEOF(err))
			}
			return strings.Trim(string(v), "\x00 "), nil
		case tag > 0x0020000D:
			return "", errNotFound
		}
		if err := w.skipValue(h, 0); err != nil {
			return "", err
		}
	}
}

// header reads an element header.
func (w *walker) header() (header, error) {
	var b [8]byte
	if _, err := io.ReadFull(w.r, b[:8]); err != nil {
		return header{}, fmt.Errorf("dicomnet: data set: element header: %w", noEOF(err))
	}
	h := header{group: w.order.Uint16(b[0:2]), elem: w.order.Uint16(b[2:4])}
	if h.group == 0xFFFE || !w.explicit {
		h.n = w.order.Uint32(b[4:8])
		return h, nil
	}
	h.vr = string(b[4:6])
	if h.vr[0] < 'A' || h.vr[0] > 'Z' || h.vr[1] < 'A' || h.vr[1] > 'Z' {
		return header{}, fmt.Errorf("dicomnet: data set: element (%04X,%04X) has no valid VR", h.group, h.elem)
	}
	if !longVR(h.vr) {
		h.n = uint32(w.order.Uint16(b[6:8]))
		return h, nil
	}
	if _, err := io.ReadFull(w.r, b[4:8]); err != nil {
		return header{}, fmt.Errorf("dicomnet: data set: element header: %w", noEOF(err))
	}
	h.n = w.order.Uint32(b[4:8])
	return h, nil
}

// skipValue skips the value of the element h: its bytes, or for an
// undefined length the items up to the sequence delimiter.
func (w *walker) skipValue(h header, depth int) error {
	if h.n != undefinedLength {
		if _, err := io.CopyN(io.Discard, w.r, int64(h.n)); err != nil {
			return fmt.Errorf("dicomnet: data set: element (%04X,%04X): %w", h.group, h.elem, noEOF(err))
		}
		return nil
	}
	if depth >= maxWalkDepth {
		return fmt.Errorf("dicomnet: data set: sequences nested over %d deep", maxWalkDepth)
	}
	inner := w
	if h.vr == "UN" {
		// PS3.5 6.2.2: a UN of undefined length holds Implicit VR Little
		// Endian content.
		inner = &walker{r: w.r, order: binary.LittleEndian, explicit: false}
	}
	return inner.skipItems(depth + 1)
}

// skipItems skips the items of a sequence of undefined length, through its
// delimiter.
func (w *walker) skipItems(depth int) error {
	for {
		h, err := w.header()
		if err != nil {
			return err
		}
		switch {
		case h.group == 0xFFFE && h.elem == 0xE0DD:
			return nil
		case h.group == 0xFFFE && h.elem == 0xE000 && h.n != undefinedLength:
			if _, err := io.CopyN(io.Discard, w.r, int64(h.n)); err != nil {
				return fmt.Errorf("dicomnet: data set: item: %w", noEOF(err))
			}
		case h.group == 0xFFFE && h.elem == 0xE000:
			if err := w.skipItemElements(depth); err != nil {
				return err
			}
		default:
			return fmt.Errorf("dicomnet: data set: (%04X,%04X) where an item was expected", h.group, h.elem)
		}
	}
}

// skipItemElements skips the elements of an item of undefined length,
// through its delimiter.
func (w *walker) skipItemElements(depth int) error {
	for {
		h, err := w.header()
		if err != nil {
			return err
		}
		if h.group == 0xFFFE {
			if h.elem == 0xE00D {
				return nil
			}
			return fmt.Errorf("dicomnet: data set: (FFFE,%04X) inside an item", h.elem)
		}
		if err := w.skipValue(h, depth); err != nil {
			return err
		}
	}
}
