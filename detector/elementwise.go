package detector

// Element-wise loops of the training and scoring ops. On amd64 they run
// in SSE2, a vector of values at a time (every amd64 CPU has it), unless
// the generic family is forced; elsewhere, and for the tests' reference,
// they are these loops.

// maskPositiveGo sets dst[j] = src[j] where the float32 with bits y[j] is
// positive, and 0 elsewhere (the ReLU's gradient), on the values' bits.
func maskPositiveGo(dst, src, y []uint32) {
	src, y = src[:len(dst)], y[:len(dst)]
	for j, v := range src {
		dst[j] = v & reluKeep(y[j])
	}
}

// splitPositiveGo writes the even values of src to d0 and the odd ones to
// d1, each masked as maskPositiveGo does by the value of y in its place;
// a nil y masks nothing. src and y hold 2·len(d0) values.
func splitPositiveGo(d0, d1, src, y []uint32) {
	d1 = d1[:len(d0)]
	src = src[:2*len(d0)]
	if y == nil {
		for j := range d0 {
			d0[j] = src[2*j]
			d1[j] = src[2*j+1]
		}
		return
	}
	y = y[:len(src)]
	for j := range d0 {
		d0[j] = src[2*j] & reluKeep(y[2*j])
		d1[j] = src[2*j+1] & reluKeep(y[2*j+1])
	}
}

// biasReluGo sets dst[j] = src[j] + b, then max(·, 0) if relu.
func biasReluGo(dst, src []float32, b float32, relu bool) {
	src = src[:len(dst)]
	if relu {
		for j, v := range src {
			dst[j] = max(v+b, 0)
		}
		return
	}
	for j, v := range src {
		dst[j] = v + b
	}
}

// sumPositiveGo returns the sum of v's values where y's are positive (the
// ReLU's gradient), or of all of them for a nil y. The assembly adds in
// another order, so the two agree to rounding, not to the bit.
func sumPositiveGo(v, y []float32) float32 {
	var s float32
	if y == nil {
		for _, x := range v {
			s += x
		}
		return s
	}
	y = y[:len(v)]
	for i, x := range v {
		s += reluPass(x, y[i])
	}
	return s
}

// mulAddGo sets dst[i] += k·src[i]: a multiplication, then an addition,
// each rounded, so that every lane of the assembly gives the same bits.
func mulAddGo(dst, src []float64, k float64) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += k * v
	}
}

// divideGo sets dst[i] /= w.
func divideGo(dst []float64, w float64) {
	for i := range dst {
		dst[i] /= w
	}
}
