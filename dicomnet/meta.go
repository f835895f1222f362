package dicomnet

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// FileMeta is what the File Meta Information of a DICOM Part 10 file
// (PS3.10 7.1) says.
type FileMeta struct {
	SOPClassUID, SOPInstanceUID, TransferSyntaxUID    string
	ImplementationClassUID, ImplementationVersionName string
	SourceAETitle                                     string
	// DatasetOffset is where the data set starts in the file.
	DatasetOffset int64
}

// maxMetaLength bounds the File Meta Information read.
const maxMetaLength = 64 << 10

// ReadFileMeta reads the File Meta Information of the Part 10 file at path.
func ReadFileMeta(path string) (FileMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileMeta{}, fmt.Errorf("dicomnet: read file meta: %w", err)
	}
	defer f.Close()
	fm, err := ReadMeta(bufio.NewReaderSize(f, 8<<10))
	if err != nil {
		return FileMeta{}, fmt.Errorf("dicomnet: read file meta of %s: %w", path, err)
	}
	return fm, nil
}

// ReadMeta reads the preamble, "DICM" and the group 0002 elements
// (Explicit VR Little Endian) from r, leaving r at the first byte of the
// data set. At most 64 KiB of elements are read. The SOP class, SOP
// instance and transfer syntax UIDs must be present.
func ReadMeta(r *bufio.Reader) (FileMeta, error) {
	var head [132]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return FileMeta{}, fmt.Errorf("dicomnet: file meta: no preamble: %w", err)
	}
	if string(head[128:]) != "DICM" {
		return FileMeta{}, errors.New("dicomnet: file meta: no DICM prefix: not a DICOM Part 10 file")
	}
	fm := FileMeta{DatasetOffset: 132}
	budget := maxMetaLength
	for {
		next, err := r.Peek(2)
		if err == io.EOF || (err == nil && binary.LittleEndian.Uint16(next) != 0x0002) {
			break
		}
		if err != nil {
			return FileMeta{}, fmt.Errorf("dicomnet: file meta: %w", err)
		}
		elem, value, n, err := readMetaElement(r, budget)
		if err != nil {
			return FileMeta{}, err
		}
		budget -= n
		fm.DatasetOffset += int64(n)
		text := strings.TrimRight(string(value), "\x00 ")
		switch elem {
		case 0x0002:
			fm.SOPClassUID = text
		case 0x0003:
			fm.SOPInstanceUID = text
		case 0x0010:
			fm.TransferSyntaxUID = text
		case 0x0012:
			fm.ImplementationClassUID = text
		case 0x0013:
			fm.ImplementationVersionName = text
		case 0x0016:
			fm.SourceAETitle = text
		}
	}
	switch {
	case fm.TransferSyntaxUID == "":
		return FileMeta{}, errors.New("dicomnet: file meta: no transfer syntax UID (0002,0010)")
	case fm.SOPClassUID == "" || fm.SOPInstanceUID == "":
		return FileMeta{}, errors.New("dicomnet: file meta: no media storage SOP class or instance UID (0002,0002-0003)")
	}
	return fm, nil
}

// readMetaElement reads one Explicit VR Little Endian element of group
// 0002 whose whole encoding fits in budget bytes, and returns its element
// number, value and encoded length.
func readMetaElement(r io.Reader, budget int) (uint16, []byte, int, error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:8]); err != nil {
		return 0, nil, 0, fmt.Errorf("dicomnet: file meta: element header: %w", noEOF(err))
	}
	elem := binary.LittleEndian.Uint16(h[2:4])
	vr := string(h[4:6])
	if vr[0] < 'A' || vr[0] > 'Z' || vr[1] < 'A' || vr[1] > 'Z' {
		return 0, nil, 0, fmt.Errorf("dicomnet: file meta: element (0002,%04X) has no explicit VR", elem)
	}
	hdr, n := 8, uint32(binary.LittleEndian.Uint16(h[6:8]))
	if longVR(vr) {
		if _, err := io.ReadFull(r, h[8:12]); err != nil {
			return 0, nil, 0, fmt.Errorf("dicomnet: file meta: element header: %w", noEOF(err))
		}
		hdr, n = 12, binary.LittleEndian.Uint32(h[8:12])
	}
	if uint64(n)+uint64(hdr) > uint64(budget) {
		return 0, nil, 0, fmt.Errorf("dicomnet: file meta: element (0002,%04X) of %d bytes: over %d bytes of meta", elem, n, maxMetaLength)
	}
	value := make([]byte, n)
	if _, err := io.ReadFull(r, value); err != nil {
		return 0, nil, 0, fmt.Errorf("dicomnet: file meta: element (0002,%04X): %w", elem, noEOF(err))
	}
	return elem, value, hdr + int(n), nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// longVR reports whether an explicit VR has a 4-byte length (PS3.5 7.1.2).
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// encodeFileMeta returns the preamble, "DICM" and the File Meta
// Information group of a file whose data set follows, in Explicit VR
// Little Endian.
func encodeFileMeta(sopClass, sopInstance, ts, sourceAE string) []byte {
	var g []byte
	add := func(elem uint16, vr string, value string, pad byte) {
		if value == "" {
			return
		}
		v := []byte(value)
		if len(v)%2 == 1 {
			v = append(v, pad)
		}
		g = binary.LittleEndian.AppendUint16(g, 0x0002)
		g = binary.LittleEndian.AppendUint16(g, elem)
		g = append(g, vr...)
		if longVR(vr) {
			g = append(g, 0, 0)
			g = binary.LittleEndian.AppendUint32(g, uint32(len(v)))
		} else {
			g = binary.LittleEndian.AppendUint16(g, uint16(len(v)))
		}
		g = append(g, v...)
	}
	add(0x0001, "OB", "\x00\x01", 0)
	add(0x0002, "UI", sopClass, 0)
	add(0x0003, "UI", sopInstance, 0)
	add(0x0010, "UI", ts, 0)
	add(0x0012, "UI", ImplementationClassUID, 0)
	add(0x0013, "SH", ImplementationVersionName, ' ')
	add(0x0016, "AE", sourceAE, ' ')
	b := make([]byte, 128, 132+12+len(g))
	b = append(b, "DICM"...)
	b = append(b, 0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(g)))
	return append(b, g...)
}
