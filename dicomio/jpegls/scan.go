package jpegls

// lines holds the previous and current line of one component, each with
// one sample of edge extension on either side: index x+1 holds column x,
// index 0 the left edge and index width+1 the right edge (T.87 A.2.1:
// Ra = Rb on the first column, Rd = Rb on the last, and Rc on the first
// column is the Ra of the first column of the line above).
type lines struct {
	prev, cur []int32
}

// startLine swaps the buffers and extends the edges for a new line.
func (l *lines) startLine(width int) {
	l.prev, l.cur = l.cur, l.prev
	l.prev[width+1] = l.prev[width]
	l.cur[0] = l.prev[1]
}

// clear zeroes both lines, as at the start of a scan or after a restart.
func (l *lines) clear() {
	clear(l.prev)
	clear(l.cur)
}

// decodeLine decodes one line of a single component (interleave modes
// none and line): regular mode sample by sample, run mode where the
// local gradients are all within NEAR.
func (s *state) decodeLine(r *bitReader, l *lines, width, comp int) error {
	prev, cur := l.prev[:width+2], l.cur[:width+2]
	qlut := s.qlut
	mv := s.cp.maxVal
	for x := 1; x <= width; {
		ra, rb, rc, rd := int(cur[x-1]), int(prev[x]), int(prev[x-1]), int(prev[x+1])
		q := int(qlut[rd-rb+mv])*81 + int(qlut[rb-rc+mv])*9 + int(qlut[rc-ra+mv])
		if q != 0 {
			cur[x] = int32(s.regular(r, q, predict(ra, rb, rc)))
			x++
			continue
		}
		n := s.runLength(r, comp, width-x+1)
		for i := x; i < x+n; i++ {
			cur[i] = int32(ra)
		}
		x += n
		if x > width {
			break
		}
		// Run interruption sample (T.87 A.7.2).
		rb = int(prev[x])
		var v int
		if d := ra - rb; d <= s.cp.near && d >= -s.cp.near {
			v = s.reconstruct(ra, s.interruption(r, 1, comp))
		} else {
			e := s.interruption(r, 0, comp)
			if rb < ra {
				e = -e
			}
			v = s.reconstruct(rb, e)
		}
		cur[x] = int32(v)
		x++
		if s.runIndex[comp] > 0 {
			s.runIndex[comp]--
		}
	}
	return s.err
}

// decodePixelLine decodes one line of a sample-interleaved scan: the
// components of a pixel are adjacent in the code stream, run mode needs
// all of them to be flat, and a run covers whole pixels. Like CharLS and
// the encoders DICOM files come from, the interruption samples of such a
// run all use run-interruption context 0 and predict from Rb.
func (s *state) decodePixelLine(r *bitReader, ls []lines, width int) error {
	qlut := s.qlut
	mv := s.cp.maxVal
	var qs [maxComponents]int
	for x := 1; x <= width; {
		flat := true
		for c := range ls {
			prev, cur := ls[c].prev, ls[c].cur
			ra, rb, rc, rd := int(cur[x-1]), int(prev[x]), int(prev[x-1]), int(prev[x+1])
			qs[c] = int(qlut[rd-rb+mv])*81 + int(qlut[rb-rc+mv])*9 + int(qlut[rc-ra+mv])
			if qs[c] != 0 {
				flat = false
			}
		}
		if !flat {
			for c := range ls {
				prev, cur := ls[c].prev, ls[c].cur
				ra, rb, rc := int(cur[x-1]), int(prev[x]), int(prev[x-1])
				// A component whose own gradients are flat inside a pixel
				// that is not uses context 0 like any regular context.
				cur[x] = int32(s.regular(r, qs[c], predict(ra, rb, rc)))
			}
			x++
			continue
		}
		n := s.runLength(r, 0, width-x+1)
		for c := range ls {
			cur := ls[c].cur
			ra := cur[x-1]
			for i := x; i < x+n; i++ {
				cur[i] = ra
			}
		}
		x += n
		if x > width {
			break
		}
		for c := range ls {
			prev, cur := ls[c].prev, ls[c].cur
			ra, rb := int(cur[x-1]), int(prev[x])
			e := s.interruption(r, 0, 0)
			if rb < ra {
				e = -e
			}
			cur[x] = int32(s.reconstruct(rb, e))
		}
		x++
		if s.runIndex[0] > 0 {
			s.runIndex[0]--
		}
	}
	return s.err
}

// predict is the median edge detector of T.87 A.4.1. Its three cases
// amount to the median of Ra, Rb and Ra+Rb−Rc, computed here without
// data-dependent branches.
func predict(ra, rb, rc int) int {
	return max(min(ra, rb), min(max(ra, rb), ra+rb-rc))
}
