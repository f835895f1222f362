package detector

// The SSE loops in elementwise_amd64.s; their Go versions and contracts
// are in elementwise.go. The wrappers check every length, since the
// assembly takes pointers.

//go:noescape
func maskPositiveSSE(dst, src, y *uint32, n int)

//go:noescape
func splitPositiveSSE(d0, d1, src, y *uint32, n int)

//go:noescape
func splitPairsSSE(d0, d1, src *uint32, n int)

//go:noescape
func biasReluSSE(dst, src *float32, n int, b float32, relu int)

//go:noescape
func sumPositiveSSE(v, y *float32, n int) float32

//go:noescape
func sumSSE(v *float32, n int) float32

//go:noescape
func mulAddSSE(dst, src *float64, n int, k float64)

//go:noescape
func divideSSE(dst *float64, n int, w float64)

// elementwiseAsm tells whether the SSE loops run: always, but under the
// generic family, which is plain Go.
func elementwiseAsm() bool { return sgemmBest != sgemmGeneric }

func maskPositive(dst, src, y []uint32) {
	n := len(dst)
	if n == 0 || !elementwiseAsm() {
		maskPositiveGo(dst, src, y)
		return
	}
	_, _ = src[n-1], y[n-1]
	maskPositiveSSE(&dst[0], &src[0], &y[0], n)
}

func splitPositive(d0, d1, src, y []uint32) {
	n := len(d0)
	if n == 0 || !elementwiseAsm() {
		splitPositiveGo(d0, d1, src, y)
		return
	}
	_, _ = d1[n-1], src[2*n-1]
	if y == nil {
		splitPairsSSE(&d0[0], &d1[0], &src[0], n)
		return
	}
	_ = y[2*n-1]
	splitPositiveSSE(&d0[0], &d1[0], &src[0], &y[0], n)
}

func biasRelu(dst, src []float32, b float32, relu bool) {
	n := len(dst)
	if n == 0 || !elementwiseAsm() {
		biasReluGo(dst, src, b, relu)
		return
	}
	_ = src[n-1]
	r := 0
	if relu {
		r = 1
	}
	biasReluSSE(&dst[0], &src[0], n, b, r)
}

func sumPositive(v, y []float32) float32 {
	n := len(v)
	if n == 0 || !elementwiseAsm() {
		return sumPositiveGo(v, y)
	}
	if y == nil {
		return sumSSE(&v[0], n)
	}
	return sumPositiveSSE(&v[0], &y[:n][0], n)
}

func mulAdd(dst, src []float64, k float64) {
	n := len(dst)
	if n == 0 || !elementwiseAsm() {
		mulAddGo(dst, src, k)
		return
	}
	_ = src[n-1]
	mulAddSSE(&dst[0], &src[0], n, k)
}

func divide(dst []float64, w float64) {
	if len(dst) == 0 || !elementwiseAsm() {
		divideGo(dst, w)
		return
	}
	divideSSE(&dst[0], len(dst), w)
}
