package dicomio

import (
	"encoding/binary"
	"testing"
)

// TestSampleFormatValue checks masking below HighBit and sign extension
// against a direct computation, for every stored width in 8-, 16- and
// 32-bit words, every high bit the width allows and both
// representations.
func TestSampleFormatValue(t *testing.T) {
	words := []uint64{0, 1, 0x7f, 0x80, 0xff, 0x0fff, 0x0800, 0x7fff, 0x8000, 0xffff, 0x12345678, 0x80000000, 0xffffffff}
	for _, alloc := range []int{8, 16, 32} {
		for stored := 1; stored <= alloc; stored++ {
			for high := stored - 1; high < alloc; high++ {
				for _, signed := range []bool{false, true} {
					sf := newSampleFormat(layout{bitsAllocated: alloc, bitsStored: stored, highBit: high, signed: signed})
					for _, w := range words {
						w &= uint64(1)<<uint(alloc) - 1
						v := (w >> uint(high+1-stored)) & (uint64(1)<<uint(stored) - 1)
						want := int64(v)
						if signed && v>>(uint(stored)-1) == 1 {
							want = int64(v) - int64(1)<<uint(stored)
						}
						if got := sf.value(w); got != want {
							t.Fatalf("alloc %d stored %d high %d signed %v word %#x: %d, want %d", alloc, stored, high, signed, w, got, want)
						}
					}
				}
			}
		}
	}
}

// TestUnpackByteOrders checks that 16-bit words are read in the byte order
// given.
func TestUnpackByteOrders(t *testing.T) {
	raw := []byte{0x01, 0x02, 0xff, 0xfe}
	sf := newSampleFormat(layout{bitsAllocated: 16, bitsStored: 16, highBit: 15, signed: true})
	out := make([]int32, 2)
	unpack(out, raw, 2, binary.LittleEndian, sf)
	if out[0] != 0x0201 || out[1] != -0x0101 {
		t.Errorf("little endian: %v", out)
	}
	unpack(out, raw, 2, binary.BigEndian, sf)
	if out[0] != 0x0102 || out[1] != -0x0002 {
		t.Errorf("big endian: %v", out)
	}
}

// TestUnpackValues checks that unpack, whose loops for unsigned samples
// stored from bit 0 only mask the words, gives every sample
// sampleFormat.value of its word, as an int32 (the bit pattern for
// unsigned 32-bit values above 2^31-1), for every layout of 8-, 16- and
// 32-bit words in both byte orders.
func TestUnpackValues(t *testing.T) {
	words := []uint64{0, 1, 0x7f, 0x80, 0xff, 0x0fff, 0x0800, 0x7fff, 0x8000, 0xffff, 0x12345678, 0x80000000, 0xfffffff0, 0xffffffff}
	for _, alloc := range []int{8, 16, 32} {
		size := alloc / 8
		for stored := 1; stored <= alloc; stored++ {
			for high := stored - 1; high < alloc; high++ {
				for _, signed := range []bool{false, true} {
					sf := newSampleFormat(layout{bitsAllocated: alloc, bitsStored: stored, highBit: high, signed: signed})
					for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
						raw := make([]byte, size*len(words))
						for i, w := range words {
							switch size {
							case 1:
								raw[i] = byte(w)
							case 2:
								bo.PutUint16(raw[2*i:], uint16(w))
							default:
								bo.PutUint32(raw[4*i:], uint32(w))
							}
						}
						out := make([]int32, len(words))
						unpack(out, raw, size, bo, sf)
						for i, w := range words {
							w &= uint64(1)<<uint(alloc) - 1
							if want := int32(sf.value(w)); out[i] != want {
								t.Fatalf("alloc %d stored %d high %d signed %v %v word %#x: %d, want %d", alloc, stored, high, signed, bo, w, out[i], want)
							}
						}
					}
				}
			}
		}
	}
}
