package dicomout

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Tags of the item and delimiter elements of sequences (PS3.5 7.5).
const tagItem = 0xFFFEE000

// element is one data element: a value, or the items of a sequence (VR SQ).
type element struct {
	tag   uint32
	vr    string
	value []byte
	items []*dataset
}

// dataset is a data set or sequence item under construction. Elements are
// added in any order and encoded in ascending tag order (PS3.5 7.1); adding
// a tag twice replaces its value. Values are stored unpadded and padded to
// even length on encoding, with a space for text VRs and a NUL for UI and
// the binary VRs (PS3.5 6.2).
type dataset struct {
	elems []element
}

func newDataset() *dataset { return &dataset{} }

// set adds or replaces an element.
func (d *dataset) set(e element) {
	for i := range d.elems {
		if d.elems[i].tag == e.tag {
			d.elems[i] = e
			return
		}
	}
	d.elems = append(d.elems, e)
}

// text sets a string attribute; several values are joined with the
// backslash delimiter. No value gives an empty (zero-length) element, as
// a type 2 attribute without a value is written.
func (d *dataset) text(tag uint32, vr string, values ...string) {
	d.set(element{tag: tag, vr: vr, value: []byte(strings.Join(values, `\`))})
}

// textIf sets a string attribute only when it has a value, as a type 3
// attribute is written.
func (d *dataset) textIf(tag uint32, vr, value string) {
	if value != "" {
		d.text(tag, vr, value)
	}
}

// uid sets a UI attribute.
func (d *dataset) uid(tag uint32, value string) { d.text(tag, "UI", value) }

// us sets a US attribute.
func (d *dataset) us(tag uint32, v uint16) {
	d.set(element{tag: tag, vr: "US", value: binary.LittleEndian.AppendUint16(nil, v)})
}

// fd sets an FD attribute.
func (d *dataset) fd(tag uint32, v float64) {
	d.set(element{tag: tag, vr: "FD", value: binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))})
}

// binary sets an attribute of a binary VR (OB, OW, UL…) to raw bytes.
func (d *dataset) binary(tag uint32, vr string, b []byte) {
	d.set(element{tag: tag, vr: vr, value: b})
}

// seq sets a sequence; no items gives an empty sequence, as a type 2
// sequence without a value is written.
func (d *dataset) seq(tag uint32, items ...*dataset) {
	d.set(element{tag: tag, vr: "SQ", items: items})
}

// longVR reports whether an explicit VR has a 4-byte length after two
// reserved bytes (PS3.5 Table 7.1-1).
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// padByte is the byte that pads a value of vr to even length.
func padByte(vr string) byte {
	switch vr {
	case "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT":
		return ' '
	}
	return 0
}

// encode appends the data set in explicit VR little endian, elements in
// ascending tag order, sequences and items of defined length.
func (d *dataset) encode(out []byte) ([]byte, error) {
	elems := slices.Clone(d.elems)
	slices.SortFunc(elems, func(a, b element) int { return cmp.Compare(a.tag, b.tag) })
	var err error
	for _, e := range elems {
		if out, err = e.encode(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (e element) encode(out []byte) ([]byte, error) {
	le := binary.LittleEndian
	value := e.value
	if e.vr == "SQ" {
		var err error
		if value, err = encodeItems(e.items); err != nil {
			return nil, fmt.Errorf("%s: %w", tagName(e.tag), err)
		}
	} else if len(value)%2 == 1 {
		value = append(slices.Clip(value), padByte(e.vr))
	}
	if len(e.vr) != 2 {
		return nil, fmt.Errorf("%s: invalid VR %q", tagName(e.tag), e.vr)
	}
	out = le.AppendUint16(out, uint16(e.tag>>16))
	out = le.AppendUint16(out, uint16(e.tag))
	out = append(out, e.vr...)
	switch {
	case longVR(e.vr):
		if int64(len(value)) >= math.MaxUint32 {
			return nil, fmt.Errorf("%s: value of %d bytes is too long", tagName(e.tag), len(value))
		}
		out = le.AppendUint16(out, 0)
		out = le.AppendUint32(out, uint32(len(value)))
	case len(value) > math.MaxUint16-1:
		return nil, fmt.Errorf("%s: %s value of %d bytes is too long", tagName(e.tag), e.vr, len(value))
	default:
		out = le.AppendUint16(out, uint16(len(value)))
	}
	return append(out, value...), nil
}

// encodeItems encodes the items of a sequence, each of defined length.
func encodeItems(items []*dataset) ([]byte, error) {
	var out []byte
	le := binary.LittleEndian
	for i, it := range items {
		if it == nil {
			return nil, fmt.Errorf("item %d is nil", i+1)
		}
		body, err := it.encode(nil)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		out = le.AppendUint16(out, uint16(tagItem>>16))
		out = le.AppendUint16(out, uint16(tagItem&0xffff))
		out = le.AppendUint32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

func tagName(t uint32) string { return fmt.Sprintf("(%04X,%04X)", t>>16, t&0xffff) }

// File meta information (PS3.10 7.1).
const (
	transferSyntaxExplicitLE = "1.2.840.10008.1.2.1"
	// implementationClassUID identifies this writer in every file it
	// makes; it is a fixed UUID-derived UID and changes only if the
	// encoding does in a way a reader should be able to tell.
	implementationClassUID    = "2.25.154925423119850948581039423742287911880"
	implementationVersionName = "SENTINEL"
)

// part10 returns the Part 10 file of a data set: the 128-byte preamble,
// "DICM", the file meta group with its group length, and the data set in
// explicit VR little endian.
func part10(sopClass, sopInstance string, ds *dataset) ([]byte, error) {
	meta := newDataset()
	meta.binary(0x00020001, "OB", []byte{0, 1})
	meta.uid(0x00020002, sopClass)
	meta.uid(0x00020003, sopInstance)
	meta.uid(0x00020010, transferSyntaxExplicitLE)
	meta.uid(0x00020012, implementationClassUID)
	meta.text(0x00020013, "SH", implementationVersionName)
	body, err := meta.encode(nil)
	if err != nil {
		return nil, fmt.Errorf("file meta: %w", err)
	}
	group := newDataset()
	group.binary(0x00020000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(body))))
	out := make([]byte, 128, 4096)
	out = append(out, "DICM"...)
	if out, err = group.encode(out); err != nil {
		return nil, err
	}
	out = append(out, body...)
	for _, e := range ds.elems {
		if e.tag>>16 <= 0x0002 {
			return nil, errors.New("data set holds a file meta or group length element")
		}
	}
	if out, err = ds.encode(out); err != nil {
		return nil, fmt.Errorf("data set: %w", err)
	}
	return out, nil
}
