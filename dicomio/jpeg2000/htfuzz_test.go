package jpeg2000

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// htBlockOf derives an HT code-block from fuzz input: eight bytes of
// geometry and lengths, then the block's data.
func htBlockOf(in []byte) (htBlock, []byte, bool) {
	if len(in) < 10 {
		return htBlock{}, nil, false
	}
	le := binary.LittleEndian
	var b htBlock
	b.w = 1 + int(le.Uint16(in))%1024
	b.h = 1 + int(in[2])%64
	if b.w*b.h > 4096 {
		b.h = max(1, 4096/b.w)
	}
	b.mb = 1 + int(in[3])%30
	b.zbp = int(in[4]) % b.mb
	b.passes1 = 1
	b.passes2 = int(in[5]) % 3
	b.causal = in[5]&0x80 != 0
	data := in[8:]
	b.len1 = int(le.Uint16(in[6:])) % (len(data) + 1)
	if b.passes2 > 0 {
		b.len2 = len(data) - b.len1
	}
	return b, data, true
}

// FuzzHTBlock runs the HT code-block decoder (cleanup, significance
// propagation and magnitude refinement) on arbitrary blocks: it must not
// panic, must fill exactly the block, and must give the same samples
// with fresh buffers as with buffers another block used.
func FuzzHTBlock(f *testing.F) {
	rng := rand.New(rand.NewPCG(15, 444))
	le := binary.LittleEndian
	for range 16 {
		b, data := randomHTBlock(rng)
		in := le.AppendUint16(nil, uint16(b.w-1))
		in = append(in, byte(b.h-1), byte(b.mb-1), byte(b.zbp), byte(b.passes2))
		in = le.AppendUint16(in, uint16(b.len1))
		f.Add(append(in, data...))
	}
	var used htScratch
	f.Fuzz(func(t *testing.T, in []byte) {
		b, data, ok := htBlockOf(in)
		if !ok {
			return
		}
		out := make([]int32, b.w*b.h)
		err := used.decodeHT(b, data, out)
		var fresh htScratch
		again := make([]int32, b.w*b.h)
		err2 := fresh.decodeHT(b, data, again)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("reused buffers: %v, fresh buffers: %v", err, err2)
		}
		if err == nil && !slices.Equal(out, again) {
			t.Fatalf("reused and fresh buffers decode %+v differently", b)
		}
	})
}
