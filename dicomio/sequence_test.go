package dicomio

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/sentinel-pacs/sentinel"
)

// TestLoadSequences checks data sets with sequences, written by the
// library in each native transfer syntax, and the enhanced multi-frame
// layout where rescale and window live in functional group sequences.
func TestLoadSequences(t *testing.T) {
	item := func(elems ...*dicom.Element) []*dicom.Element { return elems }
	ref := elem(t, tag.ReferencedImageSequence, [][]*dicom.Element{
		item(elem(t, tag.ReferencedSOPClassUID, []string{testSOPClass}), elem(t, tag.ReferencedSOPInstanceUID, []string{"1.2.3"})),
		item(elem(t, tag.ReferencedSOPClassUID, []string{testSOPClass}), elem(t, tag.ReferencedSOPInstanceUID, []string{"1.2.4"})),
	})
	// Shared functional groups: rescale m = 2x - 100 and window
	// (m - 1000)/4000 + 0.5, as in the signed case of TestLoadDisplay.
	shared := elem(t, sharedFunctionalGroups, [][]*dicom.Element{item(
		elem(t, tag.PixelValueTransformationSequence, [][]*dicom.Element{item(
			elem(t, tag.RescaleSlope, []string{"2"}), elem(t, tag.RescaleIntercept, []string{"-100"}))}),
		elem(t, tag.FrameVOILUTSequence, [][]*dicom.Element{item(
			elem(t, tag.WindowCenter, []string{"1000.5"}), elem(t, tag.WindowWidth, []string{"4001"}))}),
	)})
	for _, ts := range []string{uidExplicitLE, uidImplicitLE, uidExplicitBE} {
		for _, tt := range []struct {
			name  string
			extra []*dicom.Element
			want  []float32
		}{
			{"sequence", []*dicom.Element{ref}, []float32{0, 0.5, 1}},
			{"functional groups", []*dicom.Element{shared}, []float32{0.2245, 0.225, 0.725}},
		} {
			t.Run(ts+"/"+tt.name, func(t *testing.T) {
				s := spec{ts: ts, rows: 1, cols: 3, signed: true, extra: tt.extra, pixels: seq(-1, 0, 1000)}
				if tt.name == "sequence" {
					s.center, s.width, s.pixels = "100.5", "101", seq(0, 100, 200)
				}
				inst, img, err := Load(writeDICOM(t, s), Options{})
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if inst.ID != testInstance || !equalPix(img.Pix, tt.want) {
					t.Errorf("instance %q, pixels %v, want %v", inst.ID, img.Pix, tt.want)
				}
			})
		}
	}
}

// TestScanStructure checks the structural scan on hand-made data sets that
// the library would not write.
func TestScanStructure(t *testing.T) {
	le := binary.LittleEndian
	u32 := func(v uint32) []byte { return le.AppendUint32(nil, v) }
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	sqUndefined := cat([]byte{0x08, 0x00, 0x40, 0x11, 'S', 'Q', 0, 0}, u32(undefinedLength))
	itemUndefined := cat([]byte{0xFE, 0xFF, 0x00, 0xE0}, u32(undefinedLength))
	itemEnd := cat([]byte{0xFE, 0xFF, 0x0D, 0xE0}, u32(0))
	seqEnd := cat([]byte{0xFE, 0xFF, 0xDD, 0xE0}, u32(0))
	uid := explicitElement(0x0008, 0x1155, "UI", []byte("1.2\x00"))
	pixels := explicitElement(0x7FE0, 0x0010, "OB", []byte{1, 2, 3, 4})
	tests := []struct {
		name string
		body []byte
		// want is ErrNoPixels where the structure is fine (the data set
		// holds no image).
		want error
	}{
		{"nested undefined lengths", cat(sqUndefined, itemUndefined, uid, itemEnd, seqEnd), sentinel.ErrNoPixels},
		{"nested, then pixels", cat(sqUndefined, itemUndefined, uid, itemEnd, seqEnd, pixels), sentinel.ErrInvalid /* no Rows */},
		{"sequence without its delimiter", cat(sqUndefined, itemUndefined, uid, itemEnd), sentinel.ErrInvalid},
		{"item without its delimiter", cat(sqUndefined, itemUndefined, uid), sentinel.ErrInvalid},
		{"delimiter with a length", cat(sqUndefined, itemUndefined, uid, itemEnd[:4], u32(4), seqEnd), sentinel.ErrInvalid},
		{"element in a sequence outside an item", cat(sqUndefined, uid, seqEnd), sentinel.ErrInvalid},
		{"stray item at the top level", cat(itemUndefined, uid), sentinel.ErrInvalid},
		{"item longer than its sequence", cat([]byte{0x08, 0x00, 0x40, 0x11, 'S', 'Q', 0, 0}, u32(8), []byte{0xFE, 0xFF, 0x00, 0xE0}, u32(12), uid),
			sentinel.ErrInvalid},
		{"string of undefined length", cat(explicitElement(0x0008, 0x1030, "LO", nil)[:6], []byte{0xFF, 0xFF}), sentinel.ErrInvalid},
		{"nesting as deep as allowed", cat(deepSequences(maxDepth), repeatBytes(cat(itemEnd, seqEnd), maxDepth)), sentinel.ErrNoPixels},
		{"one level too deep", cat(deepSequences(maxDepth+1), repeatBytes(cat(itemEnd, seqEnd), maxDepth+1)), sentinel.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(writeFile(t, "s.dcm", rawFile(tt.body)), Options{})
			if !errors.Is(err, tt.want) {
				t.Errorf("Load error %v, want %v", err, tt.want)
			}
		})
	}
}

func repeatBytes(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}
