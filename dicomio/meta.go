package dicomio

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sentinel-pacs/sentinel"
)

// preambleLen is the length of the Part 10 preamble plus the "DICM" prefix.
const preambleLen = 128 + 4

// fileMeta is what this package needs from the File Meta Information
// (group 0002, PS3.10 7.1).
type fileMeta struct {
	// transferSyntax is empty when the meta has none (or there is no meta).
	transferSyntax string
	sopClassUID    string
	sopInstanceUID string
	// bodyOffset is where the data set starts.
	bodyOffset int
}

// hasPreamble reports whether data starts with a Part 10 preamble.
func hasPreamble(data []byte) bool {
	return len(data) >= preambleLen && string(data[128:preambleLen]) == "DICM"
}

// parseMeta reads the group 0002 elements at the start of the file (after
// the preamble when there is one). It reads them itself rather than through
// the dicom library so that the transfer syntax is known, and refused when
// unsupported, before anything else is parsed. The group length element is
// not trusted: the meta ends where group 0002 ends.
func parseMeta(data []byte) (fileMeta, error) {
	var m fileMeta
	off := 0
	if hasPreamble(data) {
		off = preambleLen
	}
	le := binary.LittleEndian
	// The group length is not trusted to find the end of the meta, but a
	// file shorter than it says is cut.
	if len(data)-off >= 12 && string(data[off:off+6]) == "\x02\x00\x00\x00UL" {
		if end := int64(off) + 12 + int64(le.Uint32(data[off+8:])); end > int64(len(data)) {
			return m, fmt.Errorf("%w: file meta truncated: group length says %d bytes, file has %d", sentinel.ErrInvalid, end, len(data))
		}
	}
	for len(data)-off >= 8 && le.Uint16(data[off:]) == 0x0002 {
		elem := le.Uint16(data[off+2:])
		vr := string(data[off+4 : off+6])
		var vl uint32
		var hdr int
		switch {
		case longVR(vr):
			if len(data)-off < 12 {
				return m, fmt.Errorf("%w: file meta truncated in element (0002,%04x)", sentinel.ErrInvalid, elem)
			}
			vl, hdr = le.Uint32(data[off+8:]), 12
		case isVR(vr):
			vl, hdr = uint32(le.Uint16(data[off+6:])), 8
		default:
			// Implicit VR meta: non-conformant, but written by old software.
			vl, hdr = le.Uint32(data[off+4:]), 8
		}
		if int64(vl) > int64(len(data)-off-hdr) {
			return m, fmt.Errorf("%w: file meta element (0002,%04x) length %d exceeds the %d bytes left",
				sentinel.ErrInvalid, elem, vl, len(data)-off-hdr)
		}
		val := data[off+hdr : off+hdr+int(vl)]
		switch elem {
		case 0x0002:
			m.sopClassUID = trimValue(val)
		case 0x0003:
			m.sopInstanceUID = trimValue(val)
		case 0x0010:
			m.transferSyntax = trimValue(val)
		}
		off += hdr + int(vl)
	}
	m.bodyOffset = off
	return m, nil
}

// trimValue returns a string value without its padding.
func trimValue(b []byte) string {
	return strings.Trim(string(b), " \x00")
}

// inferSyntax guesses the transfer syntax of a data set whose file has no
// meta (or a meta without Transfer Syntax UID) from its first element: two
// upper-case letters after the tag mean explicit VR, whose byte order the
// group number tells.
func inferSyntax(body []byte) string {
	if len(body) < 8 {
		return uidImplicitLE
	}
	if isVR(string(body[4:6])) {
		if binary.LittleEndian.Uint16(body) > 0x00ff && binary.BigEndian.Uint16(body) <= 0x00ff {
			return uidExplicitBE
		}
		return uidExplicitLE
	}
	return uidImplicitLE
}

// looksLikeDataset reports whether head plausibly starts with a data set
// without the Part 10 preamble: a first element in group 0002 or 0008 with
// a small element number and either a valid explicit VR or a small implicit
// length.
func looksLikeDataset(head []byte) bool {
	if len(head) < 8 {
		return false
	}
	le, be := binary.LittleEndian, binary.BigEndian
	group, elem := le.Uint16(head), le.Uint16(head[2:])
	explicit := isVR(string(head[4:6]))
	switch {
	case (group == 0x0002 || group == 0x0008) && elem < 0x0100:
		return explicit || le.Uint32(head[4:]) < 0x10000
	case be.Uint16(head) == 0x0008 && be.Uint16(head[2:]) < 0x0100:
		return explicit
	}
	return false
}

// syntheticMeta returns a preamble and a minimal file meta naming uid. The
// dicom library is given this in front of a data set whose real meta this
// package has already read (or that was deflated and is now inflated), so
// that the library reads the data set with exactly the encoding chosen here.
func syntheticMeta(uid string) []byte {
	val := []byte(uid)
	if len(val)%2 == 1 {
		val = append(val, 0)
	}
	var ts bytes.Buffer
	le := binary.LittleEndian
	_ = binary.Write(&ts, le, [2]uint16{0x0002, 0x0010})
	ts.WriteString("UI")
	_ = binary.Write(&ts, le, uint16(len(val)))
	ts.Write(val)

	out := make([]byte, 128, preambleLen+12+ts.Len())
	out = append(out, "DICM"...)
	out = le.AppendUint16(out, 0x0002)
	out = le.AppendUint16(out, 0x0000)
	out = append(out, "UL"...)
	out = le.AppendUint16(out, 4)
	out = le.AppendUint32(out, uint32(ts.Len()))
	return append(out, ts.Bytes()...)
}

// inflate decompresses a deflated data set (PS3.5 A.5: raw deflate, no zlib
// header), refusing to produce more than limit bytes so that a small file
// cannot expand without bound.
func inflate(body []byte, limit int64) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(body))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: inflate data set: %w", sentinel.ErrInvalid, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: deflated data set inflates beyond %d bytes", sentinel.ErrTooLarge, limit)
	}
	// A cut deflate stream still yields what came before the cut; the
	// scanner then reports the truncation where it matters.
	return out, nil
}
