package learn

import (
	"math"
	"math/rand"
	"slices"
)

// HoldoutConfig sets how the frozen holdout is chosen.
type HoldoutConfig struct {
	// Fraction of the labelled cases of each class set aside.
	Fraction float64
	// MinPerClass is how many labelled normals and abnormals there must be
	// before a holdout is chosen at all, so that it can rank.
	MinPerClass int
	// Seed makes the choice reproducible.
	Seed int64
}

// ChooseHoldout returns the frozen holdout. Once chosen (existing is not
// empty) it never changes: later labels all go to training and no
// retraining reshuffles which cases evaluate the models (the leak MONAI
// Label users report in #1752). Before that, it chooses a stratified
// Fraction of the labelled cases once both classes have MinPerClass
// labels, and reports chosen=true; otherwise it returns nothing.
func ChooseHoldout(existing []string, resolved map[string]string, cfg HoldoutConfig) (ids []string, chosen bool) {
	if len(existing) > 0 {
		return slices.Clone(existing), false
	}
	var normals, abnormals []string
	for _, id := range sortedKeys(resolved) {
		if resolved[id] == Normal {
			normals = append(normals, id)
		} else {
			abnormals = append(abnormals, id)
		}
	}
	if len(normals) < cfg.MinPerClass || len(abnormals) < cfg.MinPerClass || cfg.Fraction <= 0 {
		return nil, false
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	take := func(ids []string) []string {
		k := max(1, int(math.Round(cfg.Fraction*float64(len(ids)))))
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		return ids[:min(k, len(ids)-1)]
	}
	out := append(take(normals), take(abnormals)...)
	slices.Sort(out)
	return out, true
}

// TrainingPlan says which cases a retraining uses and for what.
type TrainingPlan struct {
	// Normals train the autoencoder and rebuild the memory bank: the seed
	// normals, the cases labelled normal and the admitted ones, never a
	// holdout case nor a case labelled abnormal.
	Normals []string
	// Abnormals are the labelled abnormals outside the holdout: they
	// recalibrate the threshold and fit the supervised head.
	Abnormals []string
	// LabelledNormals are the cases labelled normal outside the holdout
	// (a subset of Normals), the head's and the threshold's negatives
	// besides the seed.
	LabelledNormals []string
	// Holdout is the frozen holdout with its resolved labels.
	Holdout map[string]string
}

// PlanTraining splits the known cases for one retraining. resolved maps
// instance ids to their resolved label (see Resolve), holdout is the frozen
// holdout, admitted the cases admitted without a label. It is the one place
// that decides what trains, so the holdout exclusion is enforced here.
func PlanTraining(seed []string, resolved map[string]string, admitted, holdout []string) TrainingPlan {
	hold := map[string]bool{}
	p := TrainingPlan{Holdout: map[string]string{}}
	for _, id := range holdout {
		hold[id] = true
		if v, ok := resolved[id]; ok {
			p.Holdout[id] = v
		}
	}
	seen := map[string]bool{}
	addNormal := func(id string) {
		if hold[id] || seen[id] || resolved[id] == Abnormal {
			return
		}
		seen[id] = true
		p.Normals = append(p.Normals, id)
	}
	for _, id := range seed {
		addNormal(id)
	}
	for _, id := range sortedKeys(resolved) {
		if hold[id] {
			continue
		}
		switch resolved[id] {
		case Normal:
			addNormal(id)
			p.LabelledNormals = append(p.LabelledNormals, id)
		case Abnormal:
			p.Abnormals = append(p.Abnormals, id)
		}
	}
	for _, id := range admitted {
		addNormal(id)
	}
	return p
}

// Contradicted returns the admitted cases whose resolved label is abnormal:
// their admissions must be undone.
func Contradicted(admitted []string, resolved map[string]string) []string {
	var out []string
	for _, id := range admitted {
		if resolved[id] == Abnormal {
			out = append(out, id)
		}
	}
	return out
}
