package jpegls

// A small JPEG-LS encoder, written from T.87 Annex A for the tests only:
// it makes code streams with the features the DICOM corpus lacks
// (restart intervals, preset parameters, every precision from 2 to 16,
// all interleave modes with near-lossless) and seeds the fuzzer.

// encOptions chooses how a test image is encoded.
type encOptions struct {
	precision int
	near      int
	ilv       int
	restart   int
	presets   *presets // written as an LSE segment when not nil
}

// bitWriter writes bits MSB first with the JPEG-LS stuffing rule: after
// a 0xFF byte only 7 bits go into the next byte.
type bitWriter struct {
	out    []byte
	acc    uint64
	n      uint
	prevFF bool
}

func (w *bitWriter) put(v uint64, k uint) {
	for i := int(k) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>uint(i))&1
		w.n++
		room := uint(8)
		if w.prevFF {
			room = 7
		}
		if w.n == room {
			b := byte(w.acc)
			w.out = append(w.out, b)
			w.prevFF = b == 0xFF
			w.acc, w.n = 0, 0
		}
	}
}

// flush pads the last byte with zeros and stuffs a byte after a final
// 0xFF so that the marker that follows is not mistaken for data.
func (w *bitWriter) flush() {
	for w.n != 0 {
		w.put(0, 1)
	}
	if w.prevFF {
		w.put(0, 7)
	}
	w.prevFF = false
}

type encoder struct {
	st  state
	bw  bitWriter
	opt encOptions
}

func (e *encoder) golomb(m, k, limit int) {
	cp := &e.st.cp
	high := m >> uint(k)
	if high < limit-cp.qbpp-1 {
		e.bw.put(0, uint(high))
		e.bw.put(1, 1)
		e.bw.put(uint64(m), uint(k))
		return
	}
	e.bw.put(0, uint(limit-cp.qbpp-1))
	e.bw.put(1, 1)
	e.bw.put(uint64(m-1), uint(cp.qbpp))
}

// quantizeErr quantizes a prediction error for NEAR and reduces it modulo
// RANGE (T.87 A.4.4, A.4.5).
func (e *encoder) quantizeErr(d int) int {
	cp := &e.st.cp
	if cp.near > 0 {
		if d > 0 {
			d = (d + cp.near) / (2*cp.near + 1)
		} else {
			d = -(cp.near - d) / (2*cp.near + 1)
		}
	}
	if d < 0 {
		d += cp.rng
	}
	if d >= (cp.rng+1)/2 {
		d -= cp.rng
	}
	return d
}

func (e *encoder) regular(q, px, ix int) int {
	s, cp := &e.st, &e.st.cp
	sign := 1
	if q < 0 {
		sign, q = -1, -q
	}
	c := &s.ctx[q]
	px += sign * int(c.c)
	px = min(max(px, 0), cp.maxVal)
	errval := e.quantizeErr(sign * (ix - px))
	rx := s.reconstruct(px, sign*errval)
	k := golombK(c.n, c.a)
	var m int
	if cp.near == 0 && k == 0 && 2*c.b <= -c.n {
		if errval >= 0 {
			m = 2*errval + 1
		} else {
			m = -2 * (errval + 1)
		}
	} else if errval >= 0 {
		m = 2 * errval
	} else {
		m = -2*errval - 1
	}
	e.golomb(m, k, cp.limit)
	c.a += int32(max(errval, -errval))
	c.b += int32(errval * (2*cp.near + 1))
	if c.n == int32(cp.reset) {
		c.a >>= 1
		c.b >>= 1
		c.n >>= 1
	}
	c.n++
	if c.b <= -c.n {
		c.b += c.n
		if c.c > minC {
			c.c--
		}
		if c.b <= -c.n {
			c.b = -c.n + 1
		}
	} else if c.b > 0 {
		c.b -= c.n
		if c.c < maxC {
			c.c++
		}
		if c.b > 0 {
			c.b = 0
		}
	}
	return rx
}

// interruption codes one run-interruption sample and returns its
// reconstruction.
func (e *encoder) interruption(rit, px, sign, ix, comp int) int {
	s, cp := &e.st, &e.st.cp
	errval := e.quantizeErr(sign * (ix - px))
	rx := s.reconstruct(px, sign*errval)
	c := &s.run[rit]
	temp := c.a
	if rit == 1 {
		temp += c.n >> 1
	}
	k := golombK(c.n, temp)
	mp := 0
	if (k == 0 && errval > 0 && 2*c.nn < c.n) || (errval < 0 && 2*c.nn >= c.n) || (errval < 0 && k != 0) {
		mp = 1
	}
	em := 2*max(errval, -errval) - rit - mp
	e.golomb(em, k, cp.limit-jTable[s.runIndex[comp]]-1)
	if errval < 0 {
		c.nn++
	}
	c.a += int32((em + 1 - rit) >> 1)
	if c.n == int32(cp.reset) {
		c.a >>= 1
		c.n >>= 1
		c.nn >>= 1
	}
	c.n++
	return rx
}

// run codes a run of n samples (eol when it reaches the end of the line).
func (e *encoder) run(n int, eol bool, comp int) {
	s := &e.st
	for n >= 1<<jTable[s.runIndex[comp]] {
		e.bw.put(1, 1)
		n -= 1 << jTable[s.runIndex[comp]]
		s.runIndex[comp] = min(31, s.runIndex[comp]+1)
	}
	if eol {
		if n > 0 {
			e.bw.put(1, 1)
		}
		return
	}
	e.bw.put(0, 1)
	e.bw.put(uint64(n), uint(jTable[s.runIndex[comp]]))
}

func (e *encoder) near(a, b int) bool { return a-b <= e.st.cp.near && b-a <= e.st.cp.near }

// line encodes one line of one component; src holds the line's samples.
func (e *encoder) line(l *lines, src []int, w, comp int) {
	s := &e.st
	prev, cur := l.prev, l.cur
	for x := 1; x <= w; {
		ra, rb, rc, rd := int(cur[x-1]), int(prev[x]), int(prev[x-1]), int(prev[x+1])
		q := s.cp.quantize(rd-rb)*81 + s.cp.quantize(rb-rc)*9 + s.cp.quantize(rc-ra)
		if q != 0 {
			cur[x] = int32(e.regular(q, predict(ra, rb, rc), src[x-1]))
			x++
			continue
		}
		n := 0
		for x+n <= w && e.near(src[x+n-1], ra) {
			cur[x+n] = int32(ra)
			n++
		}
		e.run(n, x+n > w, comp)
		x += n
		if x > w {
			break
		}
		rb = int(prev[x])
		if e.near(ra, rb) {
			cur[x] = int32(e.interruption(1, ra, 1, src[x-1], comp))
		} else {
			sign := 1
			if rb < ra {
				sign = -1
			}
			cur[x] = int32(e.interruption(0, rb, sign, src[x-1], comp))
		}
		s.runIndex[comp] = max(0, s.runIndex[comp]-1)
		x++
	}
}

// pixelLine encodes one line of a sample-interleaved scan.
func (e *encoder) pixelLine(ls []lines, src [][]int, w int) {
	s := &e.st
	for x := 1; x <= w; {
		flat := true
		var qs [maxComponents]int
		for c := range ls {
			p, u := ls[c].prev, ls[c].cur
			ra, rb, rc, rd := int(u[x-1]), int(p[x]), int(p[x-1]), int(p[x+1])
			qs[c] = s.cp.quantize(rd-rb)*81 + s.cp.quantize(rb-rc)*9 + s.cp.quantize(rc-ra)
			flat = flat && qs[c] == 0
		}
		if !flat {
			for c := range ls {
				p, u := ls[c].prev, ls[c].cur
				u[x] = int32(e.regular(qs[c], predict(int(u[x-1]), int(p[x]), int(p[x-1])), src[c][x-1]))
			}
			x++
			continue
		}
		n := 0
		for x+n <= w {
			same := true
			for c := range ls {
				same = same && e.near(src[c][x+n-1], int(ls[c].cur[x-1]))
			}
			if !same {
				break
			}
			for c := range ls {
				ls[c].cur[x+n] = ls[c].cur[x-1]
			}
			n++
		}
		e.run(n, x+n > w, 0)
		x += n
		if x > w {
			break
		}
		for c := range ls {
			ra, rb := int(ls[c].cur[x-1]), int(ls[c].prev[x])
			sign := 1
			if rb < ra {
				sign = -1
			}
			ls[c].cur[x] = int32(e.interruption(0, rb, sign, src[c][x-1], 0))
		}
		s.runIndex[0] = max(0, s.runIndex[0]-1)
		x++
	}
}

func appendSegment(out []byte, marker byte, payload ...byte) []byte {
	n := len(payload) + 2
	out = append(out, 0xFF, marker, byte(n>>8), byte(n))
	return append(out, payload...)
}

// encode encodes an image of w×h pixels with nc components, samples
// interleaved pixel by pixel, and returns the code stream.
func encode(img []int, w, h, nc int, opt encOptions) ([]byte, error) {
	out := []byte{0xFF, markerSOI}
	if ps := opt.presets; ps != nil {
		out = appendSegment(out, markerLSE, 1,
			byte(ps.maxVal>>8), byte(ps.maxVal), byte(ps.t1>>8), byte(ps.t1),
			byte(ps.t2>>8), byte(ps.t2), byte(ps.t3>>8), byte(ps.t3), byte(ps.reset>>8), byte(ps.reset))
	}
	sof := []byte{byte(opt.precision), byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(nc)}
	for c := 0; c < nc; c++ {
		sof = append(sof, byte(c+1), 0x11, 0)
	}
	out = appendSegment(out, markerSOF55, sof...)
	if opt.restart > 0 {
		out = appendSegment(out, markerDRI, byte(opt.restart>>8), byte(opt.restart))
	}
	var ps presets
	if opt.presets != nil {
		ps = *opt.presets
	}
	cp, err := newCodingParams(opt.precision, opt.near, ps)
	if err != nil {
		return nil, err
	}
	scans := [][]int{}
	if opt.ilv == ilvNone {
		for c := 0; c < nc; c++ {
			scans = append(scans, []int{c})
		}
	} else {
		all := make([]int, nc)
		for c := range all {
			all[c] = c
		}
		scans = append(scans, all)
	}
	for _, comps := range scans {
		sos := []byte{byte(len(comps))}
		for _, c := range comps {
			sos = append(sos, byte(c+1), 0)
		}
		ilv := opt.ilv
		if len(comps) == 1 {
			ilv = ilvNone
		}
		sos = append(sos, byte(opt.near), byte(ilv), 0)
		out = appendSegment(out, markerSOS, sos...)
		e := &encoder{opt: opt}
		e.st.init(cp, len(comps))
		ls := make([]lines, len(comps))
		for i := range ls {
			ls[i] = lines{prev: make([]int32, w+2), cur: make([]int32, w+2)}
		}
		src := make([][]int, len(comps))
		for y, rst := 0, 0; y < h; y++ {
			if opt.restart > 0 && y > 0 && y%opt.restart == 0 {
				e.bw.flush()
				out = append(out, e.bw.out...)
				out = append(out, 0xFF, byte(markerRST0+rst%8))
				rst++
				e.bw = bitWriter{}
				e.st.resetContexts()
				for i := range ls {
					ls[i].clear()
				}
			}
			for i, c := range comps {
				ls[i].startLine(w)
				src[i] = src[i][:0]
				for x := 0; x < w; x++ {
					src[i] = append(src[i], img[(y*w+x)*nc+c])
				}
			}
			if ilv == ilvSample {
				e.pixelLine(ls, src, w)
			} else {
				for i := range comps {
					e.line(&ls[i], src[i], w, i)
				}
			}
		}
		e.bw.flush()
		out = append(out, e.bw.out...)
	}
	return append(out, 0xFF, markerEOI), nil
}
