package dicomout

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

// A reader of what this package writes (explicit VR little endian, defined
// lengths), written apart from the writer so that the tests check the
// bytes rather than the writer against itself. It checks on the way that
// every data set and item is in ascending tag order and every value has
// even length.

type pelem struct {
	vr    string
	value []byte
	items []pitem
}

type pitem map[uint32]*pelem

// parseFile reads a Part 10 file into its meta and data set.
func parseFile(t *testing.T, b []byte) (meta, ds pitem) {
	t.Helper()
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		t.Fatalf("no preamble and DICM prefix")
	}
	for _, c := range b[:128] {
		if c != 0 {
			t.Fatalf("preamble is not zero")
		}
	}
	rest := b[132:]
	if string(rest[:6]) != "\x02\x00\x00\x00UL" {
		t.Fatalf("file meta does not start with its group length")
	}
	glen := int(binary.LittleEndian.Uint32(rest[8:12]))
	meta, err := parseItems(rest[:12+glen])
	if err != nil {
		t.Fatalf("file meta: %v", err)
	}
	for tag := range meta {
		if tag>>16 != 2 {
			t.Fatalf("file meta holds %s: the group length is wrong", tagName(tag))
		}
	}
	if ds, err = parseItems(rest[12+glen:]); err != nil {
		t.Fatalf("data set: %v", err)
	}
	return meta, ds
}

func parseItems(b []byte) (pitem, error) {
	out := pitem{}
	le := binary.LittleEndian
	var last int64 = -1
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return nil, fmt.Errorf("%d trailing bytes", len(b)-off)
		}
		tag := uint32(le.Uint16(b[off:]))<<16 | uint32(le.Uint16(b[off+2:]))
		if int64(tag) <= last {
			return nil, fmt.Errorf("%s after %s: not in ascending order", tagName(tag), tagName(uint32(last)))
		}
		last = int64(tag)
		vr := string(b[off+4 : off+6])
		var n, hdr int
		if longVR(vr) {
			n, hdr = int(le.Uint32(b[off+8:])), 12
		} else {
			n, hdr = int(le.Uint16(b[off+6:])), 8
		}
		if n%2 != 0 || off+hdr+n > len(b) {
			return nil, fmt.Errorf("%s: bad length %d", tagName(tag), n)
		}
		e := &pelem{vr: vr, value: b[off+hdr : off+hdr+n]}
		if vr == "SQ" {
			for v := e.value; len(v) > 0; {
				if le.Uint16(v) != 0xFFFE || le.Uint16(v[2:]) != 0xE000 {
					return nil, fmt.Errorf("%s: item expected", tagName(tag))
				}
				il := int(le.Uint32(v[4:]))
				if il > len(v)-8 {
					return nil, fmt.Errorf("%s: item overruns", tagName(tag))
				}
				it, err := parseItems(v[8 : 8+il])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", tagName(tag), err)
				}
				e.items = append(e.items, it)
				v = v[8+il:]
			}
		}
		out[tag] = e
		off += hdr + n
	}
	return out, nil
}

// str returns a text value without its padding.
func (p pitem) str(tag uint32) string {
	if e := p[tag]; e != nil {
		return strings.TrimRight(string(e.value), " \x00")
	}
	return ""
}

func (p pitem) seq(tag uint32) []pitem {
	if e := p[tag]; e != nil {
		return e.items
	}
	return nil
}

// code returns the first coded entry of a code sequence.
func (p pitem) code(tag uint32) code {
	items := p.seq(tag)
	if len(items) == 0 {
		return code{}
	}
	return code{items[0].str(0x00080100), items[0].str(0x00080102), items[0].str(0x00080104)}
}

// contentItems returns, depth first, every content item under p whose
// concept name has the code value v.
func (p pitem) contentItems(v string) []pitem {
	var out []pitem
	for _, c := range p.seq(0x0040A730) {
		if c.code(0x0040A043).value == v {
			out = append(out, c)
		}
		out = append(out, c.contentItems(v)...)
	}
	return out
}

// only returns the one content item with concept code value v.
func (p pitem) only(t *testing.T, v string) pitem {
	t.Helper()
	items := p.contentItems(v)
	if len(items) != 1 {
		t.Fatalf("%d content items %q, want 1", len(items), v)
	}
	return items[0]
}

// num returns the Numeric Value and Floating Point Value of a NUM item.
func (p pitem) num(t *testing.T) (string, float64) {
	t.Helper()
	mv := p.seq(0x0040A300)
	if p.str(0x0040A040) != "NUM" || len(mv) != 1 {
		t.Fatalf("not a NUM item with one measured value")
	}
	fd := mv[0][0x0040A161]
	if fd == nil || len(fd.value) != 8 {
		t.Fatalf("NUM without a Floating Point Value")
	}
	return mv[0].str(0x0040A30A), math.Float64frombits(binary.LittleEndian.Uint64(fd.value))
}
