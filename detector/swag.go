package detector

import (
	"fmt"
	"math"
	"math/rand"
)

// SWAG (Maddox et al., "A Simple Baseline for Bayesian Uncertainty in Deep
// Learning", NeurIPS 2019) fits a Gaussian to the weights visited by
// constant-learning-rate training: a diagonal part from the running first
// and second moments, and a low-rank part from the last K deviations from
// the running mean. The definitions follow the reference implementation
// (wjmaddox/swa_gaussian, swag/posteriors/swag.py):
//
//	collect θ:  θ̄ ← (nθ̄ + θ)/(n+1),  θ̄₂ ← (nθ̄₂ + θ²)/(n+1),
//	            append θ − θ̄ (with the updated θ̄) to D, keep the last K
//	sample:     θ̃ = θ̄ + √s · (√var ⊙ z₁ + D z₂ / √(K−1)),
//	            var = max(θ̄₂ − θ̄², 1e-30), z₁ ~ N(0, I_dim), z₂ ~ N(0, I_cols(D))
//
// As in the reference, the low-rank term divides by √(K−1) with K the
// maximum rank, also while D has fewer than K columns.

// swagVarClamp is the reference implementation's floor on the diagonal
// variance, which keeps its square root defined where the moments cancel.
const swagVarClamp = 1e-30

// swagState is the SWAG posterior over a flat weight vector. The moments are
// kept in float64: the variance is a small difference of two large moments,
// which float32 would cancel to noise.
type swagState struct {
	// N counts the weight vectors collected.
	N int
	// Rank is K, the most deviations kept.
	Rank int
	// Mean and SqMean are the running means of θ and θ².
	Mean, SqMean []float64
	// Dev holds the last min(N, Rank) deviations θ − θ̄, oldest first.
	Dev [][]float32
}

// newSWAG returns an empty posterior over dim weights keeping rank
// deviations.
func newSWAG(dim, rank int) *swagState {
	return &swagState{Rank: rank, Mean: make([]float64, dim), SqMean: make([]float64, dim)}
}

// collect adds one weight vector to the moments and the deviations.
func (s *swagState) collect(theta []float32) error {
	if len(theta) != len(s.Mean) {
		return fmt.Errorf("swag: collect %d weights into a posterior over %d", len(theta), len(s.Mean))
	}
	n := float64(s.N)
	dev := make([]float32, len(theta))
	for i, t := range theta {
		v := float64(t)
		s.Mean[i] = s.Mean[i]*n/(n+1) + v/(n+1)
		s.SqMean[i] = s.SqMean[i]*n/(n+1) + v*v/(n+1)
		dev[i] = float32(v - s.Mean[i])
	}
	s.N++
	s.Dev = append(s.Dev, dev)
	if len(s.Dev) > s.Rank {
		s.Dev = s.Dev[len(s.Dev)-s.Rank:]
	}
	return nil
}

// variance returns the clamped diagonal variance max(θ̄₂ − θ̄², 1e-30).
func (s *swagState) variance() []float64 {
	v := make([]float64, len(s.Mean))
	for i, m := range s.Mean {
		v[i] = max(s.SqMean[i]-m*m, swagVarClamp)
	}
	return v
}

// sample draws one weight vector with the given scale s, taking z₁ (one
// normal per weight, in order) and then z₂ (one per deviation, oldest first)
// from rng.
func (s *swagState) sample(rng *rand.Rand, scale float64) []float64 {
	v := s.variance()
	out := make([]float64, len(s.Mean))
	for i := range out {
		out[i] = math.Sqrt(v[i]) * rng.NormFloat64()
	}
	if len(s.Dev) > 0 {
		z2 := make([]float64, len(s.Dev))
		for j := range z2 {
			z2[j] = rng.NormFloat64()
		}
		div := math.Sqrt(float64(max(s.Rank-1, 1)))
		for i := range out {
			var c float64
			for j, d := range s.Dev {
				c += float64(d[i]) * z2[j]
			}
			out[i] += c / div
		}
	}
	sq := math.Sqrt(scale)
	for i := range out {
		out[i] = s.Mean[i] + sq*out[i]
	}
	return out
}

// check reports whether a posterior read from a file is consistent with dim
// weights.
func (s *swagState) check(dim int) error {
	switch {
	case s.N < 1:
		return fmt.Errorf("swag: %d weight vectors collected", s.N)
	case s.Rank < 2 || s.Rank > maxSWAGRank:
		return fmt.Errorf("swag: rank %d outside [2, %d]", s.Rank, maxSWAGRank)
	case len(s.Mean) != dim || len(s.SqMean) != dim:
		return fmt.Errorf("swag: moments over %d and %d weights, network has %d", len(s.Mean), len(s.SqMean), dim)
	case len(s.Dev) != min(s.N, s.Rank):
		return fmt.Errorf("swag: %d deviations after %d collections of rank %d", len(s.Dev), s.N, s.Rank)
	}
	for _, d := range s.Dev {
		if len(d) != dim {
			return fmt.Errorf("swag: deviation of %d weights, network has %d", len(d), dim)
		}
	}
	return nil
}

// maxSWAGRank bounds K so that a model file cannot ask for unbounded
// deviations.
const maxSWAGRank = 100

// flatten concatenates the weight tensors in order.
func flatten(ps []param) []float32 {
	var n int
	for _, p := range ps {
		n += len(p.Data)
	}
	out := make([]float32, 0, n)
	for _, p := range ps {
		out = append(out, p.Data...)
	}
	return out
}

// unflatten returns a copy of like with its values replaced by flat,
// rounded to float32.
func unflatten(like []param, flat []float64) []param {
	out := cloneParams(like)
	off := 0
	for _, p := range out {
		for j := range p.Data {
			p.Data[j] = float32(flat[off])
			off++
		}
	}
	return out
}

// swagSamples draws n weight sets from s with the given scale, seeded so that
// a model loaded from a file draws exactly the weights it was calibrated
// with.
func swagSamples(s *swagState, like []param, n int, scale float64, seed int64) [][]param {
	rng := rand.New(rand.NewSource(seed))
	out := make([][]param, n)
	for i := range out {
		out[i] = unflatten(like, s.sample(rng, scale))
	}
	return out
}
