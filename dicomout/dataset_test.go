package dicomout

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func TestEncodeOrderPaddingAndLengths(t *testing.T) {
	item := newDataset()
	item.text(0x00080104, "LO", "abc") // odd: padded with a space
	item.text(0x00080100, "SH", "1")
	d := newDataset()
	d.seq(0x0040A043, item)
	d.uid(0x00080016, "1.2.3") // odd: padded with a NUL
	d.us(0x00280010, 512)
	d.text(0x00100010, "PN") // type 2, empty
	d.text(0x00100010, "PN", "Doe^Jane")
	got, err := d.encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x08, 0x00, 0x16, 0x00, 'U', 'I', 6, 0, '1', '.', '2', '.', '3', 0,
		0x10, 0x00, 0x10, 0x00, 'P', 'N', 8, 0, 'D', 'o', 'e', '^', 'J', 'a', 'n', 'e',
		0x28, 0x00, 0x10, 0x00, 'U', 'S', 2, 0, 0x00, 0x02,
		0x40, 0x00, 0x43, 0xA0, 'S', 'Q', 0, 0, 30, 0, 0, 0,
		0xFE, 0xFF, 0x00, 0xE0, 22, 0, 0, 0,
		0x08, 0x00, 0x00, 0x01, 'S', 'H', 2, 0, '1', ' ',
		0x08, 0x00, 0x04, 0x01, 'L', 'O', 4, 0, 'a', 'b', 'c', ' ',
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded\n% x\nwant\n% x", got, want)
	}
}

func TestEncodeRefusesOverlongShortValue(t *testing.T) {
	d := newDataset()
	d.text(0x00081030, "LO", strings.Repeat("x", 70000))
	if _, err := d.encode(nil); err == nil {
		t.Fatal("a 70000-byte LO value encoded")
	}
	d = newDataset()
	d.text(0x0040A160, "UT", strings.Repeat("x", 70000))
	if _, err := d.encode(nil); err != nil {
		t.Fatalf("UT has a 32-bit length: %v", err)
	}
}

func TestPart10Layout(t *testing.T) {
	d := newDataset()
	d.uid(0x00080016, SOPClassSecondaryCapture)
	d.uid(0x00080018, "2.25.7")
	b, err := part10(SOPClassSecondaryCapture, "2.25.7", d)
	if err != nil {
		t.Fatal(err)
	}
	meta, ds := parseFile(t, b)
	checks := map[uint32]string{
		0x00020002: SOPClassSecondaryCapture, 0x00020003: "2.25.7",
		0x00020010: "1.2.840.10008.1.2.1", 0x00020012: implementationClassUID, 0x00020013: "SENTINEL",
	}
	for tag, want := range checks {
		if got := meta.str(tag); got != want {
			t.Errorf("%s = %q, want %q", tagName(tag), got, want)
		}
	}
	if v := meta[0x00020001]; v == nil || !bytes.Equal(v.value, []byte{0, 1}) {
		t.Errorf("File Meta Information Version is not 00\\01")
	}
	if ds.str(0x00080018) != "2.25.7" {
		t.Errorf("data set lost its SOP Instance UID")
	}
	bad := newDataset()
	bad.uid(0x00020010, "1.2")
	if _, err := part10("1.2", "1.3", bad); err == nil {
		t.Error("a data set holding file meta elements was written")
	}
}

func TestDerivedUID(t *testing.T) {
	a := derivedUID("instance", "sr", "1.2.3", "v1", "1")
	if a != derivedUID("instance", "sr", "1.2.3", "v1", "1") {
		t.Fatal("same parts gave different UIDs")
	}
	for _, other := range [][]string{
		{"instance", "sr", "1.2.3", "v1", "2"},
		{"instance", "sc", "1.2.3", "v1", "1"},
		{"instance", "sr", "1.2.3", "v11", ""},
		{"instance", "sr", "1.2.3v", "1", "1"},
	} {
		if derivedUID(other...) == a {
			t.Errorf("parts %q gave the same UID as the first", other)
		}
	}
	if !strings.HasPrefix(a, "2.25.") || len(a) > 64 || !validUID(a) {
		t.Fatalf("UID %q is not a valid 2.25 UID", a)
	}
	n, ok := new(big.Int).SetString(strings.TrimPrefix(a, "2.25."), 10)
	if !ok || n.BitLen() > 128 {
		t.Fatalf("%q is not a 128-bit integer", a)
	}
	u := n.FillBytes(make([]byte, 16))
	if u[6]>>4 != 8 || u[8]>>6 != 2 {
		t.Errorf("UUID version %d variant %b, want 8 and 10", u[6]>>4, u[8]>>6)
	}
}

func TestDecimalStrings(t *testing.T) {
	for _, v := range []float64{0.7342518, 1.0 / 3, -123456.789012345, 1e-30, 6.02214076e23, 0, 42} {
		s, err := shortestDecimal(v)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if len(s) > 16 {
			t.Errorf("%v: %q is longer than 16", v, s)
		}
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(back-v) > 1e-12*math.Max(1, math.Abs(v)) {
			t.Errorf("%v: %q reads back as %v", v, s, back)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := shortestDecimal(v); err == nil {
			t.Errorf("%v formatted", v)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"  v1.2  ":            "v1.2",
		`a\b`:                 "a/b",
		"caf\xc3\xa9\x01":     "caf???",
		"0123456789abcdefXYZ": "0123456789abcdef",
	} {
		if got := clean(in, maxSH); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
