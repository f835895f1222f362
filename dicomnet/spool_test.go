package dicomnet

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindStudyUID(t *testing.T) {
	for i, ts := range append(allNative, JPEGLosslessSV1) {
		o := newTestObject(i, ts, 100)
		if ts == JPEGLosslessSV1 {
			o.dataset = newTestObject(i, ExplicitVRLittleEndian, 100).dataset
		}
		got, err := findStudyUID(bytes.NewReader(o.dataset), ts)
		if err != nil || got != o.study {
			t.Errorf("%s: %q, %v; want %q", ts, got, err, o.study)
		}
	}
	// A UN of undefined length before the study, holding implicit VR.
	item := encodeDataset(ImplicitVRLittleEndian, []elem{str(0x0008, 0x0100, "SH", "CODE")})
	var un []byte
	un = binary.LittleEndian.AppendUint16(un, 0x0009)
	un = binary.LittleEndian.AppendUint16(un, 0x1010)
	un = append(un, 'U', 'N', 0, 0)
	un = binary.LittleEndian.AppendUint32(un, undefinedLength)
	un = append(un, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF)
	un = append(un, item...)
	un = append(un, 0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
	ds := append(un, encodeDataset(ExplicitVRLittleEndian, []elem{str(0x0020, 0x000D, "UI", "1.2.3")})...)
	if got, err := findStudyUID(bytes.NewReader(ds), ExplicitVRLittleEndian); got != "1.2.3" || err != nil {
		t.Errorf("after a UN sequence: %q, %v", got, err)
	}

	noStudy := encodeDataset(ExplicitVRLittleEndian, []elem{str(0x0008, 0x0018, "UI", "1.2"), str(0x0020, 0x000E, "UI", "1.3")})
	if _, err := findStudyUID(bytes.NewReader(noStudy), ExplicitVRLittleEndian); !errors.Is(err, errNotFound) {
		t.Errorf("no study: %v", err)
	}
	o := newTestObject(1, ExplicitVRLittleEndian, 10)
	if _, err := findStudyUID(bytes.NewReader(o.dataset[:30]), ExplicitVRLittleEndian); err == nil {
		t.Error("truncated data set: no error")
	}
	if _, err := findStudyUID(bytes.NewReader(o.dataset), ImplicitVRLittleEndian); err == nil {
		t.Error("explicit data set read as implicit: no error")
	}
	// Nested sequences past the depth limit.
	var deep []byte
	for range maxWalkDepth + 2 {
		deep = append(deep, 0x08, 0x00, 0x40, 0x11, 'S', 'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF)
	}
	if _, err := findStudyUID(bytes.NewReader(deep), ExplicitVRLittleEndian); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("deep nesting: %v", err)
	}
	// A deflate bomb: zeros inflate without end; the walker stops at its
	// budget.
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write([]byte{0x08, 0x00, 0x10, 0x00, 'O', 'B', 0, 0, 0xF0, 0xFF, 0xFF, 0x7F})
	fw.Write(make([]byte, 8<<20))
	fw.Close()
	cr := &countingReader{r: bytes.NewReader(z.Bytes())}
	if _, err := findStudyUID(cr, DeflatedExplicitVRLittleEndian); err == nil {
		t.Error("deflate bomb: no error")
	}
}

func TestReadMeta(t *testing.T) {
	o := newTestObject(2, ImplicitVRLittleEndian, 50)
	good := append(encodeFileMeta(o.sopClass, o.sopInstance, o.ts, "SRC"), o.dataset...)
	br := bufio.NewReader(bytes.NewReader(good))
	fm, err := ReadMeta(br)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if fm.SOPClassUID != o.sopClass || fm.SOPInstanceUID != o.sopInstance || fm.TransferSyntaxUID != o.ts || fm.SourceAETitle != "SRC" ||
		!bytes.Equal(rest, o.dataset) || int(fm.DatasetOffset) != len(good)-len(o.dataset) {
		t.Errorf("meta %+v; data set matches: %v", fm, bytes.Equal(rest, o.dataset))
	}
	// Without the group length element.
	noGL := append(append([]byte(nil), good[:132]...), good[144:]...)
	if fm, err := ReadMeta(bufio.NewReader(bytes.NewReader(noGL))); err != nil || fm.TransferSyntaxUID != o.ts {
		t.Errorf("no group length: %+v %v", fm, err)
	}
	huge := append(append([]byte(nil), good[:132]...), 0x02, 0x00, 0x02, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0x0F)
	for name, b := range map[string][]byte{
		"empty":          nil,
		"no DICM":        bytes.Repeat([]byte{0}, 200),
		"huge element":   huge,
		"truncated":      good[:150],
		"implicit meta":  append(append([]byte(nil), good[:132]...), 0x02, 0x00, 0x10, 0x00, 4, 0, 0, 0, '1', '.', '2', 0),
		"no syntax":      append(encodeFileMeta(o.sopClass, o.sopInstance, "", ""), o.dataset...),
		"no SOP":         append(encodeFileMeta("", "", o.ts, ""), o.dataset...),
		"only preamble":  good[:132],
		"header cut off": good[:140],
	} {
		if _, err := ReadMeta(bufio.NewReader(bytes.NewReader(b))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p := filepath.Join(t.TempDir(), "x.dcm")
	os.WriteFile(p, good, 0o644)
	if fm2, err := ReadFileMeta(p); err != nil || fm2 != fm {
		t.Errorf("ReadFileMeta: %+v %v", fm2, err)
	}
	if _, err := ReadFileMeta(p + ".missing"); err == nil {
		t.Error("missing file: no error")
	}
}

func TestSafeNames(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.840.10008.1": "1.2.840.10008.1",
		"1.02.3":          "1.02.3",
	} {
		if got := safeUID(in); got != want {
			t.Errorf("safeUID(%q) = %q", in, got)
		}
	}
	for _, bad := range []string{"", "..", "1..2", ".1", "1.", "../../etc", "1.2a", strings.Repeat("1", 65), "1/2"} {
		got := safeUID(bad)
		if len(got) != 33 || got[0] != 'h' || strings.ContainsAny(got, "./") {
			t.Errorf("safeUID(%q) = %q, want a hash name", bad, got)
		}
	}
	if safeUID("1..2") == safeUID("1...2") {
		t.Error("two UIDs share a hash name")
	}
	if got := safeAE("CT_01-A"); got != "CT_01-A" {
		t.Errorf("safeAE kept name: %q", got)
	}
	for _, ae := range []string{"../x", "A B", ".HIDDEN", "a/b", "."} {
		got := safeAE(ae)
		if strings.ContainsAny(got, "/ ") || strings.HasPrefix(got, ".") || got == ae {
			t.Errorf("safeAE(%q) = %q", ae, got)
		}
	}
	if safeAE("A B") == safeAE("A_B") {
		t.Error("two AE titles share a folder")
	}
}

func TestMetaReadByDcmdumpLayout(t *testing.T) {
	// The group length counts every meta element after it, and each value
	// has even length.
	m := encodeFileMeta(CRImageStorage, "1.2.3", ExplicitVRLittleEndian, "ODD")
	if gl := binary.LittleEndian.Uint32(m[140:144]); int(gl) != len(m)-144 {
		t.Errorf("group length %d, %d bytes follow", gl, len(m)-144)
	}
	if len(m)%2 != 0 || string(m[128:132]) != "DICM" {
		t.Errorf("meta of %d bytes, prefix %q", len(m), m[128:132])
	}
}
