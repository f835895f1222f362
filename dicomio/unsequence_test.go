package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/sentinel-pacs/sentinel"
)

// implicitElement encodes one implicit VR little endian element; a nil
// value with undefined set writes the undefined length.
func implicitElement(group, element uint16, value []byte) []byte {
	le := binary.LittleEndian
	out := le.AppendUint16(nil, group)
	out = le.AppendUint16(out, element)
	out = le.AppendUint32(out, uint32(len(value)))
	return append(out, value...)
}

// delimited wraps elements in items of undefined length, closed by their
// delimiters and the sequence delimiter, as the value of a sequence of
// undefined length.
func delimited(items ...[]byte) []byte {
	le := binary.LittleEndian
	var out []byte
	for _, it := range items {
		out = append(out, 0xFE, 0xFF, 0x00, 0xE0)
		out = le.AppendUint32(out, undefinedLength)
		out = append(out, it...)
		out = append(out, 0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0)
	}
	return append(out, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
}

// undefinedHeader is the explicit VR little endian header of an element
// of VR vr and undefined length.
func undefinedHeader(group, element uint16, vr string) []byte {
	le := binary.LittleEndian
	out := le.AppendUint16(nil, group)
	out = le.AppendUint16(out, element)
	out = append(out, vr[0], vr[1], 0, 0)
	return le.AppendUint32(out, undefinedLength)
}

// privateUNSequence is what a node without the private dictionary writes
// for a private sequence (PS3.5 6.2.2): VR UN, undefined length, and the
// items in implicit VR little endian, here with a long private value and a
// nested private sequence. Read in explicit VR, the long value's length
// bytes pass for a VR and its text for an element of 16705 bytes.
func privateUNSequence() []byte {
	nested := implicitElement(0x6402, 0x1002, nil)[:4]
	nested = binary.LittleEndian.AppendUint32(nested, undefinedLength)
	nested = append(nested, delimited(implicitElement(0x6402, 0x1003, []byte("NESTED  ")))...)
	item := slices.Concat(
		implicitElement(0x6402, 0x0010, []byte("ACME 1.0")),
		implicitElement(0x6402, 0x1001, bytes.Repeat([]byte("A"), 300)),
		nested,
	)
	return slices.Concat(undefinedHeader(0x6402, 0x3002, "UN"), delimited(item, item))
}

// withElementsBeforePixels inserts raw encoded elements just before the
// pixel data of an explicit VR little endian file.
func withElementsBeforePixels(t *testing.T, file []byte, elems ...[]byte) []byte {
	t.Helper()
	at := bytes.LastIndex(file, []byte{0xE0, 0x7F, 0x10, 0x00})
	if at < 0 {
		t.Fatal("no pixel data element")
	}
	return slices.Concat(file[:at:at], slices.Concat(elems...), file[at:])
}

// TestUNSequenceOfUndefinedLength checks that a private sequence stored as
// UN with undefined length, its items in implicit VR as PS3.5 6.2.2 says,
// does not make a valid chest film fail: the image decodes exactly as
// without it, with its identity.
func TestUNSequenceOfUndefinedLength(t *testing.T) {
	s := spec{rows: 4, cols: 3, bitsStored: 12, pixels: rampInts(0, 4095)[:12], center: "2048", width: "4096"}
	plain := encodeDICOM(t, s)
	_, want, err := Load(writeFile(t, "plain.dcm", plain), Options{})
	if err != nil {
		t.Fatalf("Load without the sequence: %v", err)
	}
	inSequence := slices.Concat(undefinedHeader(0x0008, 0x1140, "SQ"),
		delimited(slices.Concat(explicitElement(0x0008, 0x1150, "UI", []byte(testSOPClass)), privateUNSequence())))
	// A writer that kept the data set's explicit VR inside the UN value.
	explicitInside := slices.Concat(undefinedHeader(0x6402, 0x3004, "UN"),
		delimited(explicitElement(0x6402, 0x1001, "LO", []byte("EXPLICIT"))))
	for _, tt := range []struct {
		name  string
		elems [][]byte
	}{
		{"top level", [][]byte{explicitElement(0x6402, 0x0010, "LO", []byte("ACME 1.0")), privateUNSequence()}},
		{"in an item of a sequence", [][]byte{inSequence}},
		{"explicit VR inside", [][]byte{explicitInside}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := withElementsBeforePixels(t, plain, tt.elems...)
			if tt.name == "in an item of a sequence" {
				// (0008,1140) sorts before the image attributes; put it
				// there so the data set stays in tag order.
				at := bytes.Index(plain, []byte{0x08, 0x00, 0x50, 0x00}) // Accession Number
				data = slices.Concat(plain[:at:at], inSequence, plain[at:])
			}
			inst, img, err := Load(writeFile(t, "un.dcm", data), Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if inst.ID != testInstance || inst.AccessionNumber != "ACC0001" || inst.Rows != 4 {
				t.Errorf("identity %q, accession %q, rows %d", inst.ID, inst.AccessionNumber, inst.Rows)
			}
			if !equalPix(img.Pix, want.Pix) {
				t.Errorf("pixels %v, want %v", img.Pix, want.Pix)
			}
			st, err := DecodeStored(writeFile(t, "un.dcm", data), Options{}, 0)
			if err != nil || st.Len() != 12 || st.Value(11) != float64(s.pixels[11]) {
				t.Errorf("DecodeStored: %d values, err %v", st.Len(), err)
			}
		})
	}
	t.Run("no pixel data", func(t *testing.T) {
		_, _, err := Load(writeFile(t, "un.dcm", rawFile(privateUNSequence())), Options{})
		if !errors.Is(err, sentinel.ErrNoPixels) {
			t.Errorf("Load error %v, want ErrNoPixels", err)
		}
	})
	t.Run("nested too deep", func(t *testing.T) {
		// Sequences of VR UN nested in explicit VR, each walked in
		// implicit VR first and then in explicit VR: refused by the
		// depth bound, quickly.
		var body []byte
		for range maxDepth + 2 {
			body = append(body, undefinedHeader(0x6403, 0x3002, "UN")...)
			body = append(body, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF)
		}
		_, _, err := Load(writeFile(t, "un.dcm", rawFile(body)), Options{})
		if !errors.Is(err, sentinel.ErrInvalid) {
			t.Errorf("Load error %v, want ErrInvalid", err)
		}
	})
	t.Run("broken", func(t *testing.T) {
		seq := privateUNSequence()
		for _, body := range [][]byte{seq[:len(seq)-8], seq[:len(seq)-30]} {
			_, _, err := Load(writeFile(t, "un.dcm", rawFile(body)), Options{})
			if !errors.Is(err, sentinel.ErrInvalid) {
				t.Errorf("Load error %v, want ErrInvalid", err)
			}
		}
	})
}
