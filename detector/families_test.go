package detector

import (
	"math"
	"math/rand"
	"testing"
)

// TestEveryKernelFamily scores held-out normals and takes training steps
// at the tests' small input under every kernel family this CPU runs, each
// with a model loaded afresh (scorers are built for the family in use).
// The deepest layers' planes there are smaller than a rounded kernel panel
// (5×5 polyphase planes at 32 px), which once stopped the AVX2 family.
// Scores must match the family in use within float32 rounding.
func TestEveryKernelFamily(t *testing.T) {
	m := sharedModel(t)
	best := sgemmBest
	defer func() { sgemmBest = best }()
	want := scoreAll(t, reload(t, m), shared.normals[:8])
	rng := rand.New(rand.NewSource(5))
	batch := make([]float32, 4*testSide*testSide)
	for i := range batch {
		batch[i] = rng.Float32()
	}
	for _, impl := range sgemmImpls() {
		sgemmBest = impl
		got := scoreAll(t, reload(t, m), shared.normals[:8])
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-3*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%s: normal %d scores %v, %s scores %v", impl.name, i, got[i], best.name, want[i])
			}
		}
		ts, err := NewTrainStepper(Architecture{InputSize: testSide, Channels: testConfig().Channels}, 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			loss, err := ts.Step(batch)
			if err != nil || math.IsNaN(float64(loss)) || loss <= 0 {
				t.Errorf("%s: training step: loss %v, error %v", impl.name, loss, err)
			}
		}
		ts.Close()
	}
}
