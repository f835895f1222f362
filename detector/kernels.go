package detector

import "strings"

// KernelsEnv names the environment variable that forces a kernel family
// ("avx512", "avx2", "avx", "sse" or "generic"), so that one machine can measure
// every path its CPU supports. A family the CPU cannot run, or an unknown name,
// leaves the fastest.
const KernelsEnv = "SENTINEL_KERNELS"

// chooseKernels returns the family named want among impls (fastest
// first), or the fastest.
func chooseKernels(impls []*sgemmImpl, want string) *sgemmImpl {
	want = strings.ToLower(strings.TrimSpace(want))
	for _, im := range impls {
		if im.name == want {
			return im
		}
	}
	return impls[0]
}

// KernelFamily names the family of matrix kernels in use: "avx512",
// "avx2", "avx" (AVX without AVX2 and FMA), "sse" (amd64 without AVX) or
// "generic" (plain Go).
func KernelFamily() string { return sgemmBest.name }

// KernelFamilies lists the families this CPU can run, fastest first.
func KernelFamilies() []string {
	var out []string
	for _, im := range sgemmImpls() {
		out = append(out, im.name)
	}
	return out
}
