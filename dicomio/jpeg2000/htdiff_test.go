package jpeg2000

import (
	"bufio"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// TestHTBlocksAgainstOpenJPEG runs random HT code-blocks, with and
// without significance propagation and magnitude refinement passes,
// through this decoder and OpenJPEG's (ht_dec.c, built into the harness
// of testdata/dicomio/htj2k/opj_ht_harness.c, whose path
// SENTINEL_OPJ_HT_HARNESS gives): both must refuse the same blocks and
// decode the others to the same samples. No encoder on the machine
// writes refinement passes, so this is what checks them.
func TestHTBlocksAgainstOpenJPEG(t *testing.T) {
	harness := os.Getenv("SENTINEL_OPJ_HT_HARNESS")
	if harness == "" {
		t.Skip("SENTINEL_OPJ_HT_HARNESS not set: skipping the differential test of HT code-blocks (see testdata/dicomio/htj2k/README.md)")
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	if s := os.Getenv("SENTINEL_HT_BLOCKS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	cmd := exec.Command(harness)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	in, out := bufio.NewWriter(stdin), bufio.NewReader(stdout)
	rng := rand.New(rand.NewPCG(25, 15444))
	var s htScratch
	decoded := map[int]int{}
	for i := range n {
		b, data := randomHTBlock(rng)
		le := binary.LittleEndian
		var hdr []byte
		for _, v := range []int{b.w, b.h, b.mb, b.mb - b.zbp, map[bool]int{false: 0, true: styleCausal}[b.causal] | styleHT,
			b.passes1, b.passes2, b.len1, b.len2, len(data)} {
			hdr = le.AppendUint32(hdr, uint32(v))
		}
		in.Write(hdr)
		in.Write(data)
		if err := in.Flush(); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, 4+4*b.w*b.h)
		if _, err := io.ReadFull(out, reply); err != nil {
			t.Fatalf("harness: %v", err)
		}
		got := make([]int32, b.w*b.h)
		err := s.decodeHT(b, data, got)
		ok := le.Uint32(reply) == 1
		if ok != (err == nil) {
			t.Fatalf("block %d (%+v): OpenJPEG decodes %v, this decoder: %v", i, b, ok, err)
		}
		if !ok {
			continue
		}
		decoded[b.passes1+b.passes2]++
		for k, v := range got {
			if want := int32(le.Uint32(reply[4+4*k:])); v != want {
				t.Fatalf("block %d (%+v): sample %d is %d, OpenJPEG gives %d", i, b, k, v, want)
			}
		}
	}
	t.Logf("%d blocks; decoded by both, by number of passes: %v", n, decoded)
	if decoded[2] == 0 || decoded[3] == 0 {
		t.Errorf("no block with refinement passes decoded: %v", decoded)
	}
}

// randomHTBlock makes a code-block of random geometry and random bytes,
// with a valid Scup so that decoding goes past the first checks.
func randomHTBlock(rng *rand.Rand) (htBlock, []byte) {
	var b htBlock
	switch rng.IntN(4) {
	case 0:
		b.w, b.h = 1+rng.IntN(1024), 1+rng.IntN(4)
	case 1:
		b.w, b.h = 1+rng.IntN(8), 1+rng.IntN(64)
	default:
		b.w, b.h = 1+rng.IntN(64), 1+rng.IntN(64)
	}
	b.mb = 1 + rng.IntN(20)
	b.zbp = rng.IntN(b.mb)
	b.causal = rng.IntN(4) == 0
	b.passes1 = 1
	b.passes2 = rng.IntN(3)
	b.len1 = 2 + rng.IntN(300)
	if b.passes2 > 0 {
		b.len2 = rng.IntN(120)
	}
	data := make([]byte, b.len1+b.len2)
	fill := rng.IntN(4)
	for i := range data {
		switch fill {
		case 0:
			data[i] = byte(rng.UintN(256))
		case 1:
			if rng.IntN(8) == 0 {
				data[i] = byte(rng.UintN(256))
			}
		case 2:
			data[i] = byte(rng.UintN(256)) | 0x80
		default:
			data[i] = byte(rng.UintN(128))
		}
	}
	scup := 2 + rng.IntN(min(b.len1, 4079)-1)
	data[b.len1-1] = byte(scup >> 4)
	data[b.len1-2] = data[b.len1-2]&0xF0 | byte(scup&0xF)
	return b, data
}
