package jpeg2000

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/sentinel-pacs/sentinel/dicomio/codec"
)

// codestream is a parsed main header with the tile-parts grouped by tile.
type codestream struct {
	siz   *siz
	main  *markers
	ppm   []byte // concatenated PPM data, if any
	tiles [][]*tilePart
}

// tilePart is one tile-part: its header's marker segments and its data.
type tilePart struct {
	index int // TPsot
	count int // TNsot: the tile's number of tile-parts, 0 if unknown
	hdr   *markers
	ppt   [][]byte // PPT data by Zppt, nil entries missing
	ppm   []byte   // this tile-part's share of the main header's PPM data
	data  []byte
}

// unwrapJP2 returns the contiguous codestream of a JP2 file (its jp2c
// box), or data itself if it is already a raw codestream.
func unwrapJP2(data []byte) ([]byte, error) {
	if len(data) >= 2 && data[0] == 0xFF && data[1] == 0x4F {
		return data, nil
	}
	if len(data) < 12 || !bytes.Equal(data[4:8], []byte("jP  ")) {
		return nil, codec.Corruptf("neither a JPEG 2000 codestream (no SOC) nor a JP2 file")
	}
	for b := data; len(b) >= 8; {
		n := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		switch n {
		case 0:
			n = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil, codec.Corruptf("truncated JP2 box header")
			}
			n, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if n < hdr || n > uint64(len(b)) {
			return nil, codec.Corruptf("JP2 box %q of %d bytes overruns the data", typ, n)
		}
		if typ == "jp2c" {
			return b[hdr:n], nil
		}
		b = b[n:]
	}
	return nil, codec.Corruptf("JP2 file without a contiguous codestream box")
}

// readSegment reads the marker segment at the start of b, returning its code,
// body and the rest of b.
func readSegment(b []byte) (code int, body, rest []byte, err error) {
	if len(b) < 4 {
		return 0, nil, nil, codec.Corruptf("truncated header: %d bytes left", len(b))
	}
	code = int(binary.BigEndian.Uint16(b))
	if code>>8 != 0xFF {
		return 0, nil, nil, codec.Corruptf("expected a marker, found 0x%04x", code)
	}
	if code == mSOD || code == mEOC {
		return code, nil, b[2:], nil
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n < 2 || 2+n > len(b) {
		return 0, nil, nil, codec.Corruptf("marker 0x%04x: length %d overruns the data", code, n)
	}
	return code, b[4 : 2+n], b[2+n:], nil
}

func parseCodestream(data []byte) (*codestream, error) {
	if len(data) < 4 || binary.BigEndian.Uint16(data) != mSOC {
		return nil, codec.Corruptf("missing SOC marker")
	}
	code, body, b, err := readSegment(data[2:])
	if err != nil {
		return nil, err
	}
	if code != mSIZ {
		return nil, codec.Corruptf("SIZ must follow SOC, found 0x%04x", code)
	}
	cs := &codestream{}
	if cs.siz, err = parseSIZ(body); err != nil {
		return nil, err
	}
	ncomp := len(cs.siz.comps)
	cs.main = newMarkers(ncomp)
	var ppm [][]byte
	for {
		code, body, b, err = readSegment(b)
		if err != nil {
			return nil, err
		}
		if code == mSOT {
			break
		}
		switch code {
		case mSOD, mEOC:
			return nil, codec.Corruptf("marker 0x%04x in the main header", code)
		case mPPM:
			if len(body) < 1 {
				return nil, codec.Corruptf("empty PPM")
			}
			ppm = storeIndexed(ppm, int(body[0]), body[1:])
		default:
			if err := parseSegment(cs.main, code, body, ncomp); err != nil {
				return nil, err
			}
		}
	}
	if cs.main.cod == nil || cs.main.qcd == nil {
		return nil, codec.Corruptf("main header lacks COD or QCD")
	}
	if len(ppm) > 0 {
		cs.ppm = slices.Concat(ppm...)
		if cs.ppm == nil {
			cs.ppm = []byte{}
		}
	}
	// Every tile needs a tile-part of at least 14 bytes (SOT and SOD), so
	// a grid with more tiles than that is refused before it is allocated.
	if ntiles := cs.siz.ntx * cs.siz.nty; ntiles > len(data)/14 {
		return nil, codec.Corruptf("%d tiles cannot fit in %d bytes", ntiles, len(data))
	}
	cs.tiles = make([][]*tilePart, cs.siz.ntx*cs.siz.nty)
	b = data[len(data)-len(b)-len(body)-4:] // back to the SOT marker
	return cs, cs.readTileParts(b)
}

// storeIndexed puts v at index i of s, growing s as needed: PPM and PPT
// segments carry an index and may arrive in any order.
func storeIndexed(s [][]byte, i int, v []byte) [][]byte {
	for len(s) <= i {
		s = append(s, nil)
	}
	s[i] = append(s[i], v...)
	return s
}

// readTileParts reads tile-parts from the first SOT to EOC; b starts at
// the first SOT marker.
func (cs *codestream) readTileParts(b []byte) error {
	ncomp := len(cs.siz.comps)
	ppm := cs.ppm
	for {
		// Some encoders omit EOC or pad after the last tile-part; that is
		// harmless as long as every tile-part is complete, which
		// checkComplete verifies.
		if len(b) < 2 || !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
			return cs.checkComplete()
		}
		m := binary.BigEndian.Uint16(b)
		if m == mEOC {
			if len(ppm) > 0 {
				return codec.Corruptf("%d bytes of PPM data left over", len(ppm))
			}
			return cs.checkComplete()
		}
		if m != mSOT {
			return codec.Corruptf("expected SOT or EOC, found 0x%04x", m)
		}
		_, body, _, err := readSegment(b)
		if err != nil {
			return err
		}
		r := &reader{b: body}
		isot, psot, tpsot, tnsot := r.u16(), r.u32raw(), r.u8(), r.u8()
		if r.err != nil {
			return r.err
		}
		if isot >= len(cs.tiles) {
			return codec.Corruptf("tile index %d of %d", isot, len(cs.tiles))
		}
		end := psot
		if psot == 0 {
			// The last tile-part may run to EOC.
			end = len(b)
			if i := bytes.LastIndex(b, []byte{0xFF, 0xD9}); i > 0 {
				end = i
			}
		} else if psot > len(b) {
			return codec.Corruptf("tile-part of %d bytes overruns the codestream (%d left)", psot, len(b))
		}
		if end < len(body)+6 {
			return codec.Corruptf("tile-part length %d is too short", end)
		}
		part := b[:end]
		b = b[end:]
		tp := &tilePart{index: tpsot, count: tnsot, hdr: newMarkers(ncomp)}
		hb := part[len(body)+4:]
		for {
			code, body, rest, err := readSegment(hb)
			if err != nil {
				return err
			}
			hb = rest
			if code == mSOD {
				break
			}
			switch code {
			case mEOC, mSOT:
				return codec.Corruptf("marker 0x%04x in a tile-part header", code)
			case mPPT:
				if len(body) < 1 {
					return codec.Corruptf("empty PPT")
				}
				tp.ppt = storeIndexed(tp.ppt, int(body[0]), body[1:])
				continue
			}
			if err := parseSegment(tp.hdr, code, body, ncomp); err != nil {
				return err
			}
		}
		tp.data = hb
		if cs.ppm != nil {
			if len(ppm) < 4 {
				return codec.Corruptf("PPM data exhausted")
			}
			n := int(binary.BigEndian.Uint32(ppm))
			if n > len(ppm)-4 {
				return codec.Corruptf("PPM packet headers overrun")
			}
			tp.ppm, ppm = ppm[4:4+n], ppm[4+n:]
		}
		cs.tiles[isot] = append(cs.tiles[isot], tp)
	}
}

// checkComplete verifies that every tile has all its tile-parts.
func (cs *codestream) checkComplete() error {
	for t, parts := range cs.tiles {
		if len(parts) == 0 {
			return codec.Corruptf("codestream truncated: tile %d has no tile-parts", t)
		}
		n := 0
		for _, tp := range parts {
			n = max(n, tp.count)
		}
		if n > 0 && len(parts) < n {
			return codec.Corruptf("codestream truncated: tile %d has %d of %d tile-parts", t, len(parts), n)
		}
	}
	return nil
}
