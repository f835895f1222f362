package jpeg2000

import "math/bits"

// The MQ arithmetic decoder of ITU-T T.800 Annex C, and the raw (bypass)
// bit reader that selective arithmetic coding bypass uses instead of it.

// mqState is one row of Table C.2: the LPS probability estimate and the
// next states after an MPS or an LPS, and whether an LPS flips the MPS.
type mqState struct {
	qe         uint32
	nmps, nlps uint8
	swtch      bool
}

// mqTable is padded to 256 entries so that indexing it with a uint8 needs
// no bounds check in the inlined fast path.
var mqTable = [256]mqState{
	{0x5601, 1, 1, true}, {0x3401, 2, 6, false}, {0x1801, 3, 9, false}, {0x0AC1, 4, 12, false},
	{0x0521, 5, 29, false}, {0x0221, 38, 33, false}, {0x5601, 7, 6, true}, {0x5401, 8, 14, false},
	{0x4801, 9, 14, false}, {0x3801, 10, 14, false}, {0x3001, 11, 17, false}, {0x2401, 12, 18, false},
	{0x1C01, 13, 20, false}, {0x1601, 29, 21, false}, {0x5601, 15, 14, true}, {0x5401, 16, 14, false},
	{0x5101, 17, 15, false}, {0x4801, 18, 16, false}, {0x3801, 19, 17, false}, {0x3401, 20, 18, false},
	{0x3001, 21, 19, false}, {0x2801, 22, 19, false}, {0x2401, 23, 20, false}, {0x2201, 24, 21, false},
	{0x1C01, 25, 22, false}, {0x1801, 26, 23, false}, {0x1601, 27, 24, false}, {0x1401, 28, 25, false},
	{0x1201, 29, 26, false}, {0x1101, 30, 27, false}, {0x0AC1, 31, 28, false}, {0x09C1, 32, 29, false},
	{0x08A1, 33, 30, false}, {0x0521, 34, 31, false}, {0x0441, 35, 32, false}, {0x02A1, 36, 33, false},
	{0x0221, 37, 34, false}, {0x0141, 38, 35, false}, {0x0111, 39, 36, false}, {0x0085, 40, 37, false},
	{0x0049, 41, 38, false}, {0x0025, 42, 39, false}, {0x0015, 43, 40, false}, {0x0009, 44, 41, false},
	{0x0005, 45, 42, false}, {0x0001, 45, 43, false}, {0x5601, 46, 46, false},
}

// Context labels of Annex D: 0–8 zero coding, 9–13 sign coding, 14–16
// magnitude refinement, then run-length and uniform.
const (
	ctxRL      = 17
	ctxUniform = 18
	numCtx     = 19
)

// mqDecoder decodes one codeword segment. The segment must end with two
// 0xFF bytes of padding, which the decoder reads as a marker and never
// passes, so it cannot run off the end of its buffer.
type mqDecoder struct {
	data  []byte
	bp    int
	a, c  uint32
	ct    int
	state [32]uint8 // index into mqTable, by context (numCtx used)
	mps   [32]uint8
}

// resetContexts puts every context in its initial state (Table D.7).
func (m *mqDecoder) resetContexts() {
	for i := range m.state {
		m.state[i], m.mps[i] = 0, 0
	}
	m.state[0] = 4
	m.state[ctxRL] = 3
	m.state[ctxUniform] = 46
}

// init starts decoding data (INITDEC); contexts are left as they are.
func (m *mqDecoder) init(data []byte) {
	m.data = data
	m.bp = 0
	m.c = uint32(data[0]) << 16
	m.byteIn()
	m.c <<= 7
	m.ct -= 7
	m.a = 0x8000
}

func (m *mqDecoder) byteIn() {
	if m.data[m.bp] == 0xFF {
		if m.bp+1 >= len(m.data) || m.data[m.bp+1] > 0x8F {
			m.c += 0xFF00
			m.ct = 8
			return
		}
		m.bp++
		m.c += uint32(m.data[m.bp]) << 9
		m.ct = 7
		return
	}
	if m.bp+1 >= len(m.data) {
		m.c += 0xFF00
		m.ct = 8
		return
	}
	m.bp++
	m.c += uint32(m.data[m.bp]) << 8
	m.ct = 8
}

// decode returns the next decision in context cx. The common case, an
// MPS without renormalisation, is small enough to be inlined.
func (m *mqDecoder) decode(cx int) int {
	cx &= 31
	qe := mqTable[m.state[cx]].qe
	m.a -= qe
	if m.c>>16 >= qe && m.a&0x8000 != 0 {
		m.c -= qe << 16
		return int(m.mps[cx])
	}
	return m.decodeRenorm(cx, qe)
}

// decodeRenorm finishes a decision that needs an exchange and
// renormalisation (C.3.2); m.a has already been reduced by qe.
func (m *mqDecoder) decodeRenorm(cx int, qe uint32) int {
	st := &mqTable[m.state[cx]]
	mps := int(m.mps[cx])
	var d int
	if m.c>>16 < qe {
		if m.a < qe {
			d = mps
			m.state[cx] = st.nmps
		} else {
			d = 1 - mps
			if st.swtch {
				m.mps[cx] = uint8(1 - mps)
			}
			m.state[cx] = st.nlps
		}
		m.a = qe
	} else {
		m.c -= qe << 16
		if m.a < qe {
			d = 1 - mps
			if st.swtch {
				m.mps[cx] = uint8(1 - mps)
			}
			m.state[cx] = st.nlps
		} else {
			d = mps
			m.state[cx] = st.nmps
		}
	}
	// Renormalise: shift until A's bit 15 is set, reading a byte whenever
	// CT runs out. When the shifts needed do not exhaust CT, they are done
	// at once.
	if n := bits.LeadingZeros32(m.a) - 16; n <= m.ct {
		m.a <<= uint(n)
		m.c <<= uint(n)
		m.ct -= n
		return d
	}
	for {
		if m.ct == 0 {
			m.byteIn()
		}
		m.a <<= 1
		m.c <<= 1
		m.ct--
		if m.a&0x8000 != 0 {
			break
		}
	}
	return d
}

// rawDecoder reads the bits of a bypass-coded segment (D.6): after a 0xFF
// byte the next byte carries only seven bits.
type rawDecoder struct {
	data []byte
	bp   int
	c    uint32
	ct   int
}

func (r *rawDecoder) init(data []byte) {
	r.data, r.bp, r.c, r.ct = data, 0, 0, 0
}

func (r *rawDecoder) bit() int {
	if r.ct == 0 {
		var b byte = 0xFF
		if r.bp < len(r.data) {
			b = r.data[r.bp]
		}
		if r.c == 0xFF {
			if b > 0x8F {
				r.c, r.ct = 0xFF, 8
			} else {
				r.c, r.ct = uint32(b), 7
				r.bp++
			}
		} else {
			r.c, r.ct = uint32(b), 8
			r.bp++
		}
	}
	r.ct--
	return int(r.c>>uint(r.ct)) & 1
}
