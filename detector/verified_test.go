package detector

import (
	"context"
	"math/rand"
	"slices"
	"testing"
)

// TestTrainVerifiedHoldout checks that with Verified set only the first
// Verified images are held out for calibration, and that the rest train.
func TestTrainVerifiedHoldout(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	images := synthImages(rng, 40, testSide, false)
	cfg := testConfig()
	cfg.Epochs, cfg.SWAGEpochs = 2, 2
	all, err := Train(context.Background(), images, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Max(all.HeldOut()) < 20 {
		t.Fatalf("premise: without Verified the held-out images %v should reach past the first 20", all.HeldOut())
	}
	cfg.Verified = 20
	m, err := Train(context.Background(), images, cfg)
	if err != nil {
		t.Fatal(err)
	}
	held := m.HeldOut()
	if len(held) != 4 || slices.Max(held) >= 20 {
		t.Errorf("held out %v, want round(0.2·20) = 4 of the first 20", held)
	}
	cfg.Verified = -1
	if _, err := Train(context.Background(), images, cfg); err == nil {
		t.Error("a negative Verified was accepted")
	}
}
