package learn

import (
	"fmt"
	"maps"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-pacs/sentinel"
)

func TestResolvePolicy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := func(reader, v string, h int) sentinel.Label {
		return sentinel.Label{Reader: reader, Value: v, Time: t0.Add(time.Duration(h) * time.Hour)}
	}
	tests := []struct {
		name   string
		labels []sentinel.Label
		want   string
	}{
		{"none", nil, ""},
		{"one normal", []sentinel.Label{l("a", Normal, 0)}, Normal},
		{"majority normal", []sentinel.Label{l("a", Normal, 0), l("b", Normal, 0), l("c", Abnormal, 0)}, Normal},
		{"tie is abnormal", []sentinel.Label{l("a", Normal, 0), l("b", Abnormal, 0)}, Abnormal},
		{"reader corrects to normal", []sentinel.Label{l("a", Abnormal, 0), l("a", Normal, 1)}, Normal},
		{"reader corrects to abnormal", []sentinel.Label{l("a", Normal, 0), l("b", Normal, 0), l("a", Abnormal, 2)}, Abnormal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Resolve(tt.labels); got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func u(v float64) *float64 { return &v }

func testCases() []Case {
	var cs []Case
	for i := range 20 {
		x := float64(i)
		cs = append(cs, Case{InstanceID: string(rune('a' + i)), Score: x, Threshold: 10, Uncertainty: u(math.Abs(x - 3)),
			Embedding: []float32{float32(i % 4), float32(i / 4)}})
	}
	return cs
}

func TestSelectStrategies(t *testing.T) {
	cs := testCases()
	for _, st := range Strategies {
		t.Run(string(st), func(t *testing.T) {
			picks, err := Select(cs, SelectOptions{Strategy: st, N: 5, Seed: 1, Exclude: map[string]bool{"k": true}})
			if err != nil {
				t.Fatal(err)
			}
			if len(picks) != 5 {
				t.Fatalf("%d picks", len(picks))
			}
			seen := map[string]bool{}
			for _, p := range picks {
				if p.InstanceID == "k" || seen[p.InstanceID] || p.Reason == "" || p.Strategy != st {
					t.Fatalf("bad pick %+v in %+v", p, picks)
				}
				seen[p.InstanceID] = true
			}
		})
	}
	b, _ := Select(cs, SelectOptions{Strategy: Boundary, N: 1})
	if b[0].InstanceID != "k" { // score 10, on the threshold
		t.Errorf("boundary picked %s", b[0].InstanceID)
	}
	un, _ := Select(cs, SelectOptions{Strategy: Uncertainty, N: 1})
	if un[0].InstanceID != "t" { // score 19: uncertainty 16
		t.Errorf("uncertainty picked %s", un[0].InstanceID)
	}
	// Without uncertainties, uncertainty falls back to boundary and says so.
	for i := range cs {
		cs[i].Uncertainty = nil
	}
	un, _ = Select(cs, SelectOptions{Strategy: Uncertainty, N: 1})
	if un[0].InstanceID != "k" {
		t.Errorf("fallback picked %s", un[0].InstanceID)
	}
	if _, err := Select(cs, SelectOptions{Strategy: "psychic", N: 1}); err == nil {
		t.Error("unknown strategy accepted")
	}
}

// Across rounds, with everything picked so far excluded (as the store
// does), no case is ever picked twice, and the pool runs dry cleanly.
func TestSelectNeverTwice(t *testing.T) {
	cs := testCases()
	for _, st := range Strategies {
		asked := map[string]bool{}
		for round := range 6 {
			picks, err := Select(cs, SelectOptions{Strategy: st, N: 4, Seed: int64(round), Exclude: asked})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range picks {
				if asked[p.InstanceID] {
					t.Fatalf("%s: %s asked twice", st, p.InstanceID)
				}
				asked[p.InstanceID] = true
			}
		}
		if len(asked) != len(cs) {
			t.Errorf("%s: %d of %d asked", st, len(asked), len(cs))
		}
	}
}

// A round asks about one film per patient, and none of a patient who has
// an open query, whatever the strategy.
func TestSelectOnePerPatient(t *testing.T) {
	cs := testCases()
	for i := range cs {
		cs[i].Group = fmt.Sprintf("p%d", (i+1)/2) // a, then bc, de, ..., jk, ...
	}
	cs[19].Group = "" // a case without a patient is a group of its own
	busy := map[string]bool{"p1": true}
	for _, st := range Strategies {
		picks, err := Select(cs, SelectOptions{Strategy: st, N: 8, Seed: 3, Busy: busy})
		if err != nil {
			t.Fatal(err)
		}
		if len(picks) != 8 {
			t.Errorf("%s: %d picks", st, len(picks))
		}
		seen := map[string]bool{}
		for _, p := range picks {
			g := cs[p.InstanceID[0]-'a'].Group
			if g == "p1" || (g != "" && seen[g]) {
				t.Errorf("%s picked %s of patient %s in %+v", st, p.InstanceID, g, picks)
			}
			seen[g] = true
		}
	}
	// k (score 10) sits on the threshold; j (9) is next and shares its
	// patient, so the second pick is l (11).
	b, _ := Select(cs, SelectOptions{Strategy: Boundary, N: 2})
	if b[0].InstanceID != "k" || b[1].InstanceID != "l" {
		t.Errorf("boundary picked %+v", b)
	}
	for i := range cs {
		cs[i].Group = ""
	}
	if b, _ = Select(cs, SelectOptions{Strategy: Boundary, N: 2}); b[1].InstanceID != "j" {
		t.Errorf("without patients, boundary picked %+v", b)
	}
	// Every patient busy or taken: fewer picks, not a repeat.
	for i := range cs {
		cs[i].Group = "p"
	}
	for _, st := range Strategies {
		if picks, _ := Select(cs, SelectOptions{Strategy: st, N: 4, Seed: 1}); len(picks) != 1 {
			t.Errorf("%s: %d picks from one patient", st, len(picks))
		}
	}
}

func TestDiverseSpreads(t *testing.T) {
	// Ten near-identical cases and two distinct ones: a diverse pick of
	// three takes at most one of the near-identical.
	var cs []Case
	for i := range 10 {
		cs = append(cs, Case{InstanceID: string(rune('a' + i)), Embedding: []float32{0, float32(i) * 1e-3}})
	}
	cs = append(cs, Case{InstanceID: "x", Embedding: []float32{10, 0}}, Case{InstanceID: "y", Embedding: []float32{-10, 0}})
	picks, _ := Select(cs, SelectOptions{Strategy: Diverse, N: 3})
	var ids []string
	for _, p := range picks {
		ids = append(ids, p.InstanceID)
	}
	if !slices.Contains(ids, "x") || !slices.Contains(ids, "y") {
		t.Errorf("diverse picked %v", ids)
	}
}

func TestAdmissionNeedsTwoConsecutivePasses(t *testing.T) {
	stats := NewSeedStats([]float64{1, 2, 3}, []float64{0.1, 0.2, 0.3})
	cfg := GateConfig{MaxDistanceZ: 0.5, MaxUncertaintyZ: 0.5, Consecutive: 2}
	low, high := Case{InstanceID: "a", Score: 2, Uncertainty: u(0.2)}, Case{InstanceID: "a", Score: 2, Uncertainty: u(0.9)}
	if r := Gate(low, stats, cfg); !r.Pass || r.UncertaintyZ == nil {
		t.Fatalf("low gate = %+v", r)
	}
	if r := Gate(high, stats, cfg); r.Pass {
		t.Fatalf("uncertain case passed: %+v", r)
	}
	if r := Gate(Case{InstanceID: "a", Score: 5, Uncertainty: u(0.2)}, stats, cfg); r.Pass {
		t.Fatalf("distant case passed: %+v", r)
	}
	streak := map[string]int{}
	var admit []GateResult
	streak, admit = Admissions([]GateResult{Gate(low, stats, cfg)}, streak, cfg)
	if len(admit) != 0 || streak["a"] != 1 {
		t.Fatalf("cycle 1: admit %v streak %v", admit, streak)
	}
	// A failing cycle resets the streak.
	streak, admit = Admissions([]GateResult{Gate(high, stats, cfg)}, streak, cfg)
	if len(admit) != 0 || streak["a"] != 0 {
		t.Fatalf("cycle 2: admit %v streak %v", admit, streak)
	}
	streak, _ = Admissions([]GateResult{Gate(low, stats, cfg)}, streak, cfg)
	_, admit = Admissions([]GateResult{Gate(low, stats, cfg)}, streak, cfg)
	if len(admit) != 1 {
		t.Fatalf("two passes in a row not admitted: %v", admit)
	}
}

func TestHeadGate(t *testing.T) {
	stats := NewSeedStats([]float64{1, 2, 3}, []float64{0.1, 0.2, 0.3})
	cfg := GateConfig{MaxDistanceZ: 0.5, MaxUncertaintyZ: 0.5, Consecutive: 2, HeadGate: true}
	c := Case{InstanceID: "a", Score: 2, Uncertainty: u(0.2)}
	// Without a head the two gates of the method decide alone.
	if r := Gate(c, stats, cfg); !r.Pass || r.HeadLogit != nil {
		t.Fatalf("no head: %+v", r)
	}
	c.HeadLogit = u(-0.3)
	if r := Gate(c, stats, cfg); !r.Pass || r.HeadLogit == nil || *r.HeadLogit != -0.3 {
		t.Fatalf("head calls it normal: %+v", r)
	}
	c.HeadLogit = u(0.4)
	r := Gate(c, stats, cfg)
	if r.Pass {
		t.Fatalf("head calls it abnormal, but it passed: %+v", r)
	}
	if !strings.Contains(r.Reason(), "head logit 0.4") {
		t.Errorf("reason %q does not give the head's logit", r.Reason())
	}
	// A stricter bound keeps out what the head only just calls normal; a
	// looser one lets in what it only just calls abnormal.
	strict, loose := cfg, cfg
	strict.MaxHeadLogit, loose.MaxHeadLogit = -1, 0.5
	if r := Gate(c, stats, loose); !r.Pass {
		t.Fatalf("logit 0.4 under bound 0.5: %+v", r)
	}
	c.HeadLogit = u(-0.3)
	if r := Gate(c, stats, strict); r.Pass {
		t.Fatalf("logit -0.3 over bound -1 passed: %+v", r)
	}
	// The gate is off: the logit neither blocks nor is recorded.
	c.HeadLogit = u(0.4)
	cfg.HeadGate = false
	if r := Gate(c, stats, cfg); !r.Pass || r.HeadLogit != nil {
		t.Fatalf("head gate off: %+v", r)
	}
}

func TestPromoteRefusesWorse(t *testing.T) {
	ev := func(auc, fpr float64, normals, abnormals int) Evaluation {
		return Evaluation{HoldoutAUC: auc, SeedFPR: fpr, HoldoutNormals: normals, HoldoutAbnormals: abnormals}
	}
	cur := ev(0.80, 0.05, 6, 6)
	cfg := PromotionConfig{Tolerance: 0.02, HoldoutMinPerClass: 5}
	tests := []struct {
		name string
		cand Evaluation
		want bool
	}{
		{"better", ev(0.85, 0.05, 6, 6), true},
		{"within tolerance", ev(0.79, 0.06, 6, 6), true},
		{"worse holdout", ev(0.75, 0.05, 6, 6), false},
		{"forgets normals", ev(0.90, 0.20, 6, 6), false},
		{"no holdout yet", ev(math.NaN(), 0.05, 0, 0), true},
		// Four abnormals are too few to rank by: the seed normals judge.
		{"holdout too small to rank", ev(0.50, 0.05, 6, 4), true},
		{"holdout too small, forgets normals", ev(0.90, 0.20, 6, 4), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := Promote(tt.cand, &cur, cfg); v.Promote != tt.want || v.Reason == "" {
				t.Errorf("Promote = %+v, want %v", v, tt.want)
			}
		})
	}
	if !Promote(Evaluation{}, nil, cfg).Promote {
		t.Error("first model not promoted")
	}
}

// alternating labels cases c<from> … c<to−1> into resolved: even ones
// normal, odd ones abnormal.
func alternating(resolved map[string]string, from, to int) map[string]string {
	for i := from; i < to; i++ {
		resolved[fmt.Sprintf("c%02d", i)] = Normal
		if i%2 == 1 {
			resolved[fmt.Sprintf("c%02d", i)] = Abnormal
		}
	}
	return resolved
}

// classCounts counts the normals and abnormals among ids.
func classCounts(ids []string, resolved map[string]string) (normals, abnormals int) {
	for _, id := range ids {
		if resolved[id] == Normal {
			normals++
		} else {
			abnormals++
		}
	}
	return normals, abnormals
}

func TestHoldoutFrozenAndNeverPlanned(t *testing.T) {
	resolved := alternating(map[string]string{}, 0, 20)
	cfg := HoldoutConfig{Fraction: 0.2, Seed: 1}
	decided := map[string]bool{}
	record := func(hold, train []string) {
		for _, id := range hold {
			decided[id] = true
		}
		for _, id := range train {
			decided[id] = false
		}
	}
	hold, train := AssignHoldout(decided, resolved, nil, nil, nil, cfg)
	if len(hold) != 4 || len(hold)+len(train) != 20 {
		t.Fatalf("20 labels: holdout %v, training %v", hold, train)
	}
	if hn, ha := classCounts(hold, resolved); hn != 2 || ha != 2 {
		t.Fatalf("holdout %v not stratified: %d normal, %d abnormal", hold, hn, ha)
	}
	if h2, t2 := AssignHoldout(map[string]bool{}, resolved, nil, nil, nil, cfg); !slices.Equal(h2, hold) || !slices.Equal(t2, train) {
		t.Fatalf("not reproducible: %v then %v", hold, h2)
	}
	record(hold, train)
	if h, tr := AssignHoldout(decided, resolved, nil, nil, nil, cfg); len(h)+len(tr) != 0 {
		t.Fatalf("decided cases decided again: %v %v", h, tr)
	}
	// Twenty more labels: the holdout grows to a fifth of forty, the old
	// decisions stand, and a decided case's label changing moves nothing.
	alternating(resolved, 20, 40)
	resolved[train[0]] = Abnormal
	more, moreTrain := AssignHoldout(decided, resolved, nil, nil, nil, cfg)
	for _, id := range slices.Concat(more, moreTrain) {
		if _, ok := decided[id]; ok {
			t.Fatalf("case %s decided twice", id)
		}
	}
	record(more, moreTrain)
	var all []string
	for id, h := range decided {
		if h {
			all = append(all, id)
		}
	}
	slices.Sort(all)
	if len(all) < 7 || len(all) > 9 || len(decided) != 40 {
		t.Fatalf("40 labels: holdout %v (%d decided)", all, len(decided))
	}
	plan := PlanTraining(append([]string{all[0]}, "seed1"), resolved, []string{all[1], "adm"}, all, nil)
	for _, id := range append(append([]string{}, plan.Normals...), plan.Abnormals...) {
		if slices.Contains(all, id) {
			t.Fatalf("holdout case %s planned for training: %+v", id, plan)
		}
	}
	if len(plan.Holdout) != len(all) {
		t.Fatalf("plan holdout %v", plan.Holdout)
	}
}

// Cases drawn at random fill the holdout before the cases a strategy chose,
// class by class.
func TestHoldoutTakesRandomDrawsFirst(t *testing.T) {
	resolved := alternating(map[string]string{}, 0, 20)
	random := map[string]bool{}
	for i := range 20 {
		random[fmt.Sprintf("c%02d", i)] = i%4 < 2 // five normals and five abnormals drawn at random
	}
	cfg := HoldoutConfig{Fraction: 0.4, Seed: 1}
	hold, train := AssignHoldout(map[string]bool{}, resolved, random, nil, nil, cfg)
	if len(hold) != 8 || len(train) != 12 {
		t.Fatalf("holdout %v, training %v", hold, train)
	}
	var fromRandom int
	for _, id := range hold {
		if random[id] {
			fromRandom++
		}
	}
	// Four of each class, all from the five of each drawn at random.
	if fromRandom != 8 {
		t.Fatalf("holdout %v: %d of 8 drawn at random, want all", hold, fromRandom)
	}
	if same, _ := AssignHoldout(map[string]bool{}, resolved, nil, nil, nil, cfg); slices.Equal(same, hold) {
		t.Fatalf("holdout %v chosen without regard to the random draws too", hold)
	}
}

func TestMetrics(t *testing.T) {
	s := []float64{0.1, 0.4, 0.35, 0.8}
	p := []bool{false, false, true, true}
	if got := PRAUC(s, p); math.Abs(got-(1+2.0/3)/2) > 1e-12 {
		t.Errorf("PRAUC = %v", got)
	}
	c := ConfusionAt(s, p, 0.3)
	if c.TP != 2 || c.FP != 1 || c.TN != 1 || c.FN != 0 || math.Abs(c.F1()-0.8) > 1e-12 {
		t.Errorf("confusion %+v f1 %v", c, c.F1())
	}
	if th := BestF1Threshold(s, p); ConfusionAt(s, p, th).F1() < 0.8 {
		t.Errorf("best threshold %v", th)
	}
}

func TestCombinerHeadLearns(t *testing.T) {
	// Abnormals differ in the first feature; the detector score is noise.
	var lab []Labelled
	for i := range 40 {
		ab := i%2 == 1
		x := float32(0)
		if ab {
			x = 1
		}
		lab = append(lab, Labelled{Det: float64(i % 3), Embedding: []float32{x + float32(i%5)*0.01, float32(i % 7)}, Abnormal: ab})
	}
	c := FitCombiner([]float64{0, 1, 2, 1}, 0.05, lab, DefaultHeadConfig())
	if c.Head == nil || c.Weight <= 0 {
		t.Fatalf("no head: %+v", c)
	}
	var sc []float64
	var pos []bool
	for _, l := range lab {
		sc = append(sc, c.Score(l.Det, l.Embedding))
		pos = append(pos, l.Abnormal)
	}
	if a := AUROC(sc, pos); a < 0.9 {
		t.Errorf("combined AUROC %v", a)
	}
	if c := FitCombiner([]float64{0, 1, 2, 1}, 0.05, lab[:4], DefaultHeadConfig()); c.Head != nil {
		t.Error("head fitted on 4 labels")
	}
}

// TestCombinerWeightByCrossValidation checks that the head's weight follows
// what ranks the training labels: near 1 when only the embeddings tell the
// classes apart, near 0 when only the detector does, and the shrinkage
// weight when there are too few labels for the folds.
func TestCombinerWeightByCrossValidation(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	seed := make([]float64, 50)
	for i := range seed {
		seed[i] = rng.NormFloat64()
	}
	make1 := func(n int, embInformative, detInformative bool) []Labelled {
		var ls []Labelled
		for i := range n {
			abn := i%2 == 0
			shift := 0.0
			if abn {
				shift = 3
			}
			emb := make([]float32, 8)
			for j := range emb {
				emb[j] = float32(rng.NormFloat64())
			}
			if embInformative {
				emb[0] += float32(shift)
			}
			det := rng.NormFloat64()
			if detInformative {
				det += shift
			}
			ls = append(ls, Labelled{Det: det, Embedding: emb, Abnormal: abn})
		}
		return ls
	}
	cfg := DefaultHeadConfig()
	c := FitCombiner(seed, 0.05, make1(60, true, false), cfg)
	if c.Head == nil || c.Weight < 0.6 || c.WeightSource != "cross-validated on the training labels" {
		t.Errorf("informative embeddings, random detector: weight %v (%s), want ≥ 0.6 by cross-validation", c.Weight, c.WeightSource)
	}
	if !strings.Contains(c.ThresholdSource, "out of fold") {
		t.Errorf("cross-validated combiner: threshold source %q, want the out-of-fold scores", c.ThresholdSource)
	}
	// The repeated cross-validation deals its folds in seeded orders: the
	// same labels choose the same weight and threshold every time.
	ls := make1(60, true, true)
	c1, c2 := FitCombiner(seed, 0.05, ls, cfg), FitCombiner(seed, 0.05, ls, cfg)
	if c1.Weight != c2.Weight || c1.Threshold != c2.Threshold {
		t.Errorf("the same labels fitted twice: weight %v / %v, threshold %v / %v", c1.Weight, c2.Weight, c1.Threshold, c2.Threshold)
	}
	c = FitCombiner(seed, 0.05, make1(60, false, true), cfg)
	if c.Head == nil || c.Weight > 0.3 {
		t.Errorf("noise embeddings, informative detector: weight %v (%s), want ≤ 0.3", c.Weight, c.WeightSource)
	}
	few := make1(12, true, false) // 6 per class: enough for a head, not for 5 folds of MinPerClass 5
	c = FitCombiner(seed, 0.05, few, cfg)
	if want := 6.0 / (6 + cfg.Shrinkage); c.Head == nil || c.Weight != want || c.WeightSource != "shrinkage" {
		t.Errorf("12 labels: weight %v (%s), want the shrinkage weight %v", c.Weight, c.WeightSource, want)
	}
	if strings.Contains(c.ThresholdSource, "out of fold") {
		t.Errorf("12 labels: threshold source %q, but no folds were run", c.ThresholdSource)
	}
	cfg.WeightFolds = 0
	c = FitCombiner(seed, 0.05, make1(60, true, false), cfg)
	if want := 30.0 / (30 + cfg.Shrinkage); c.Weight != want {
		t.Errorf("folds off: weight %v, want the shrinkage weight %v", c.Weight, want)
	}
}

// TestHybridExplores checks hybrid's random share: a third of the budget
// comes from outside the shortlist (cases far from the threshold), said so
// in the reason, and none when exploration is off.
func TestHybridExplores(t *testing.T) {
	var cs []Case
	for i := range 200 {
		x := float64(i)
		cs = append(cs, Case{InstanceID: fmt.Sprintf("c%03d", i), Score: x, Threshold: 100,
			Embedding: []float32{float32(i % 7), float32(i / 7)}})
	}
	picks, err := Select(cs, SelectOptions{Strategy: Hybrid, N: 9, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(picks) != 9 {
		t.Fatalf("%d picks, want 9", len(picks))
	}
	var random int
	for _, p := range picks {
		var i int
		fmt.Sscanf(p.InstanceID, "c%d", &i)
		near := math.Abs(float64(i)-100) < 12 // the shortlist: the 4·6 closest to the threshold
		if strings.HasPrefix(p.Reason, "drawn at random") {
			random++
			if near {
				t.Errorf("exploration pick %s is inside the shortlist", p.InstanceID)
			}
		} else if !near {
			t.Errorf("shortlist pick %s is %d from the threshold", p.InstanceID, i-100)
		}
	}
	if random != 3 {
		t.Errorf("%d exploration picks of 9, want 3", random)
	}
	picks, _ = Select(cs, SelectOptions{Strategy: Hybrid, N: 9, Seed: 3, Explore: -1})
	for _, p := range picks {
		if strings.HasPrefix(p.Reason, "drawn at random") {
			t.Errorf("exploration off but %s was drawn at random", p.InstanceID)
		}
	}
}

// TestBalancedThresholdIgnoresPrevalence checks the case the F1-best
// threshold gets wrong: labels that are mostly abnormal, with scores that
// separate the classes imperfectly. F1 is best when every case is flagged;
// the balanced threshold must keep most normals below it.
func TestBalancedThresholdIgnoresPrevalence(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	var s []float64
	var p []bool
	for i := range 100 {
		abn := i >= 10 // 90 abnormal, 10 normal
		v := rng.NormFloat64()
		if abn {
			v += 1
		}
		s, p = append(s, v), append(p, abn)
	}
	f1 := ConfusionAt(s, p, BestF1Threshold(s, p))
	if f1.TN > 2 {
		t.Fatalf("premise: the F1-best threshold keeps %d of 10 normals below it; the test needs one that flags nearly all", f1.TN)
	}
	c := ConfusionAt(s, p, BestBalancedThreshold(s, p, 0))
	if c.TN < 5 || c.TP < 45 {
		t.Errorf("balanced threshold: %+v, want at least 5 of 10 normals below and 45 of 90 abnormals above", c)
	}
	// Bounded to flag at most 10 % of the normals.
	c = ConfusionAt(s, p, BestBalancedThreshold(s, p, 0.1))
	if c.FP > 1 || c.TP == 0 {
		t.Errorf("balanced threshold bounded at 10%% false positives: %+v, want at most 1 of 10 normals flagged and some abnormals", c)
	}
	// Negatives above every positive: flagging any case flags a normal, half
	// of the two, so only flagging nothing meets a bound of 5 %.
	s2 := []float64{0.1, 0.2, 0.9, 1.0}
	p2 := []bool{true, true, false, false}
	if th := BestBalancedThreshold(s2, p2, 0.05); th <= 1.0 {
		t.Errorf("inverted scores, bound 5%%: threshold %v flags a normal", th)
	}
}

// TestCombinerIgnoresTrainedDetectorScores checks that the detector scores
// of labelled normals the detector trained on, which are optimistic, do not
// move the head's weight or the threshold.
func TestCombinerIgnoresTrainedDetectorScores(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	seed := make([]float64, 40)
	for i := range seed {
		seed[i] = rng.NormFloat64()
	}
	var ls []Labelled
	for i := range 90 {
		abn := i%3 == 0
		emb := make([]float32, 6)
		for j := range emb {
			emb[j] = float32(rng.NormFloat64())
		}
		det := rng.NormFloat64()
		if abn {
			det += 1.5
			emb[0] += 1
		}
		ls = append(ls, Labelled{Det: det, Embedding: emb, Abnormal: abn, DetTrained: !abn && i%2 == 0})
	}
	cfg := DefaultHeadConfig()
	a := FitCombiner(seed, 0.05, ls, cfg)
	moved := slices.Clone(ls)
	for i := range moved {
		if moved[i].DetTrained {
			moved[i].Det += 3 // any change at all, here one that would matter if counted
		}
	}
	b := FitCombiner(seed, 0.05, moved, cfg)
	if a.Weight != b.Weight || a.Threshold != b.Threshold {
		t.Errorf("trained normals' detector scores moved the combiner: weight %v → %v, threshold %v → %v", a.Weight, b.Weight, a.Threshold, b.Threshold)
	}
	for i := range moved {
		moved[i].DetTrained = false
	}
	if c := FitCombiner(seed, 0.05, moved, cfg); c.Weight == a.Weight && c.Threshold == a.Threshold {
		t.Error("premise: with the flags cleared the optimistic scores should move the weight or the threshold")
	}
}

func TestTrainedOn(t *testing.T) {
	got := TrainedOn([]string{"a", "b", "c", "d"}, []int{1, 3, 7, -1})
	want := map[string]bool{"a": true, "c": true}
	if !maps.Equal(got, want) {
		t.Errorf("TrainedOn = %v, want %v", got, want)
	}
}

// A patient's films all land on one side of the holdout, new ones follow
// the patient's side, and a case admitted from a holdout patient does not
// train.
func TestHoldoutKeepsPatientsTogether(t *testing.T) {
	resolved := alternating(map[string]string{}, 0, 60)
	group := map[string]string{}
	for i := range 60 {
		group[fmt.Sprintf("c%02d", i)] = fmt.Sprintf("p%02d", i/3) // three films a patient, mixed labels
	}
	cfg := HoldoutConfig{Fraction: 0.2, Seed: 1}
	hold, train := AssignHoldout(map[string]bool{}, resolved, nil, group, nil, cfg)
	if len(hold)+len(train) != 60 {
		t.Fatalf("holdout %v, training %v", hold, train)
	}
	sideOf := map[string]bool{}
	decided := map[string]bool{}
	for _, id := range hold {
		sideOf[group[id]] = true
		decided[id] = true
	}
	for _, id := range train {
		decided[id] = false
		if sideOf[group[id]] {
			t.Fatalf("patient %s has %s training and films in the holdout %v", group[id], id, hold)
		}
	}
	// A fifth of 30 of each class is 6; a patient brings up to two of a class.
	if hn, ha := classCounts(hold, resolved); hn < 5 || hn > 8 || ha < 5 || ha > 8 {
		t.Fatalf("holdout %v: %d normal, %d abnormal, want about 6 of each", hold, hn, ha)
	}
	// New films of a held-out patient and of a training patient follow
	// their patient; those of a new patient are decided on their own.
	hp, tp := group[hold[0]], group[train[0]]
	resolved["new-h"], group["new-h"] = Normal, hp
	resolved["new-t"], group["new-t"] = Abnormal, tp
	resolved["new-n"] = Normal
	h2, t2 := AssignHoldout(decided, resolved, nil, group, nil, cfg)
	if !slices.Contains(h2, "new-h") || !slices.Contains(t2, "new-t") || len(h2)+len(t2) != 3 {
		t.Fatalf("new films: holdout %v, training %v; want new-h held out, new-t training", h2, t2)
	}
	// A film of a patient every model trained on (a seed normal's) trains,
	// even when drawn at random and the holdout is short (at half the
	// labels, it is).
	resolved["new-s"], group["new-s"] = Abnormal, "seedpatient"
	half := HoldoutConfig{Fraction: 0.5, Seed: 1}
	h3, t3 := AssignHoldout(decided, resolved, map[string]bool{"new-s": true}, group, map[string]bool{"seedpatient": true}, half)
	if slices.Contains(h3, "new-s") || !slices.Contains(t3, "new-s") {
		t.Fatalf("a seed patient's film: holdout %v, training %v; want it training", h3, t3)
	}
	if h4, _ := AssignHoldout(decided, resolved, map[string]bool{"new-s": true}, group, nil, half); !slices.Contains(h4, "new-s") {
		t.Fatalf("without the seed patients, a film drawn at random did not join the short holdout (%v)", h4)
	}
	delete(resolved, "new-s")
	// Without patients every case is its own, as before.
	if h, tr := AssignHoldout(map[string]bool{}, resolved, nil, nil, nil, cfg); len(h)+len(tr) != 63 || len(h) < 12 || len(h) > 13 {
		t.Fatalf("without patients: holdout %d, training %d", len(h), len(tr))
	}
	group["adm-h"], group["adm-t"] = hp, tp
	plan := PlanTraining(nil, resolved, []string{"adm-h", "adm-t", "adm"}, hold, group)
	if slices.Contains(plan.Normals, "adm-h") || !slices.Contains(plan.Normals, "adm-t") || !slices.Contains(plan.Normals, "adm") {
		t.Fatalf("admitted: normals %v, want adm-t and adm but not adm-h (a held-out patient's)", plan.Normals)
	}
}

// The cross-validation keeps a patient's cases in one fold and, without
// patients, deals each class round-robin.
func TestFoldsKeepPatientsTogether(t *testing.T) {
	var labelled []Labelled
	var pos, neg []int
	for i := range 40 {
		l := Labelled{Abnormal: i%2 == 1}
		if i < 24 {
			l.Patient = fmt.Sprintf("p%d", i/4)
		}
		labelled = append(labelled, l)
		if l.Abnormal {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	fold := make([]int, len(labelled))
	for r := range 3 {
		dealFolds(fold, labelled, pos, neg, 5, r)
		foldOf := map[string]int{}
		perFold := make([][2]int, 5)
		for i, l := range labelled {
			if f, ok := foldOf[l.Patient]; ok && l.Patient != "" && f != fold[i] {
				t.Fatalf("repeat %d: patient %s in folds %d and %d", r, l.Patient, f, fold[i])
			}
			foldOf[l.Patient] = fold[i]
			cls := 0
			if l.Abnormal {
				cls = 1
			}
			perFold[fold[i]][cls]++
		}
		for f, c := range perFold {
			if c[0] == 0 || c[1] == 0 {
				t.Fatalf("repeat %d: fold %d holds %d normals and %d abnormals", r, f, c[0], c[1])
			}
		}
	}
	for i := range labelled {
		labelled[i].Patient = ""
	}
	dealFolds(fold, labelled, pos, neg, 5, 0)
	for j, i := range pos {
		if fold[i] != j%5 {
			t.Fatalf("without patients, abnormal %d is in fold %d, want %d", j, fold[i], j%5)
		}
	}
}

// DeLong's standard error of a paired ROC-AUC difference agrees with a
// bootstrap over the cases, and the difference is the difference of the
// two ROC-AUCs.
func TestPairedAUCDiffMatchesBootstrap(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const n = 60
	a, b := make([]float64, n), make([]float64, n)
	pos := make([]bool, n)
	for i := range n {
		pos[i] = i%2 == 0
		shift := 0.0
		if pos[i] {
			shift = 1
		}
		common := rng.NormFloat64() // the two scorings share most of their noise
		a[i] = shift + common + 0.5*rng.NormFloat64()
		b[i] = 0.6*shift + common + 0.5*rng.NormFloat64()
	}
	diff, se := PairedAUCDiff(a, b, pos)
	if want := AUROC(a, pos) - AUROC(b, pos); math.Abs(diff-want) > 1e-12 {
		t.Fatalf("difference %v, ROC-AUCs differ by %v", diff, want)
	}
	var ds []float64
	for range 2000 {
		var ba, bb []float64
		var bp []bool
		for range n {
			j := rng.Intn(n)
			ba, bb, bp = append(ba, a[j]), append(bb, b[j]), append(bp, pos[j])
		}
		ds = append(ds, AUROC(ba, bp)-AUROC(bb, bp))
	}
	_, boot := meanSD(ds)
	if !(se > 0.8*boot && se < 1.25*boot) {
		t.Fatalf("DeLong standard error %v, bootstrap %v", se, boot)
	}
	// The unpaired error would be far larger: the shared noise cancels.
	_, seA := PairedAUCDiff(a, make([]float64, n), pos)
	if !(se < seA) {
		t.Fatalf("paired standard error %v not below one AUC's own %v", se, seA)
	}
	if d, s := PairedAUCDiff(a, b, make([]bool, n)); !math.IsNaN(d) || !math.IsNaN(s) {
		t.Fatalf("one class: %v ± %v, want NaN", d, s)
	}
}

// With a significance level, a holdout ROC-AUC lower by more than the
// tolerance refuses a candidate only when the paired test finds it lower.
func TestPromoteNeedsSignificance(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const n = 30
	pos := make([]bool, n)
	cur, noisy, reversed := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		pos[i] = i%2 == 1
		s := rng.NormFloat64()
		if pos[i] {
			s += 1.5
		}
		cur[i] = s
		noisy[i] = s + 0.6*rng.NormFloat64()
		reversed[i] = -s
	}
	ev := func(scores []float64) Evaluation {
		return Evaluate(scores, pos, []float64{0}, 1)
	}
	ec, en, er := ev(cur), ev(noisy), ev(reversed)
	if !(en.HoldoutAUC < ec.HoldoutAUC-0.02) {
		t.Fatalf("the noisy scoring's ROC-AUC %v is not below the current %v by the tolerance", en.HoldoutAUC, ec.HoldoutAUC)
	}
	cfg := PromotionConfig{Tolerance: 0.02, HoldoutMinPerClass: 5, Significance: 0.05}
	if v := Promote(en, &ec, cfg); !v.Promote || !strings.Contains(v.Reason, "not significantly") {
		t.Errorf("a little noisier candidate: %+v, want promoted as not significantly worse", v)
	}
	if v := Promote(er, &ec, cfg); v.Promote || !strings.Contains(v.Reason, "DeLong p = 0.000") {
		t.Errorf("a reversed candidate: %+v, want refused", v)
	}
	cfg.Significance = 0
	if v := Promote(en, &ec, cfg); v.Promote {
		t.Errorf("without the test: %+v, want refused by the tolerance", v)
	}
	// Scores of different cases cannot be paired: the tolerance decides.
	cfg.Significance = 0.05
	other := en
	other.HoldoutAbnormal = slices.Clone(pos)
	other.HoldoutAbnormal[0] = !other.HoldoutAbnormal[0]
	if v := Promote(other, &ec, cfg); v.Promote {
		t.Errorf("unpaired holdouts: %+v, want refused by the tolerance", v)
	}
}
