package learn

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"math"
	"slices"
)

// HoldoutConfig sets how the frozen holdout is chosen.
type HoldoutConfig struct {
	// Fraction of the labelled cases of each class set aside.
	Fraction float64
	// Seed makes the choice reproducible.
	Seed int64
}

// AssignHoldout decides, once and for good, whether each labelled case not
// yet decided joins the frozen holdout or training. decided holds the
// decisions already made (true: holdout) and is never revised: a holdout
// case never trains, and a case that may have trained never joins the
// holdout, so no retraining reshuffles which cases evaluate the models
// (the leak MONAI Label users report in #1752), yet the holdout grows with
// the labels instead of staying the handful there were when it was first
// chosen.
//
// Cases are decided by patient: group maps a case to its patient's key (a
// case without one is a patient of its own), and all of a patient's cases
// land on one side, so that a model is never judged on a film of a patient
// whose other films it trained on. A new case of a patient already in the
// holdout joins it; one of a patient already training trains, and so does
// one of a patient in trained (patient keys as in group, such as the seed
// normals' patients, whom every model has trained on). The other
// patients are taken those with a case drawn at random first (random: see
// Pick.Random), then in a seeded order fixed by the patient keys, and join
// the holdout while every class they hold cases of (by resolved label) is
// short of Fraction of its decided cases (rounded), so the holdout is
// stratified at Fraction however the labels arrive (give or take one
// patient's cases). Cases drawn at random are representative of the
// unlabelled cases, where those a strategy chose near the threshold are
// not, so they judge models more fairly, and the informative ones stay to
// train. It returns the new holdout and training decisions, sorted.
func AssignHoldout(decided map[string]bool, resolved map[string]string, random map[string]bool, group map[string]string, trained map[string]bool, cfg HoldoutConfig) (holdout, train []string) {
	key := func(id string) string {
		if g := group[id]; g != "" {
			return "g:" + g
		}
		return "c:" + id
	}
	type tally struct{ hold, all int }
	count := map[string]*tally{Normal: {}, Abnormal: {}}
	side := map[string]bool{} // a patient's side, from its decided cases; holdout wins
	sided := map[string]bool{}
	for g := range trained {
		sided["g:"+g] = true
	}
	members := map[string][]string{}
	var order []string
	for _, id := range sortedKeys(resolved) {
		cls := resolved[id]
		if cls != Normal && cls != Abnormal {
			continue
		}
		g := key(id)
		if inHoldout, ok := decided[id]; ok {
			count[cls].all++
			if inHoldout {
				count[cls].hold++
			}
			side[g] = (side[g] || inHoldout) && !trained[group[id]]
			sided[g] = true
			continue
		}
		if members[g] == nil {
			order = append(order, g)
		}
		members[g] = append(members[g], id)
	}
	var free []string
	for _, g := range order {
		if !sided[g] {
			free = append(free, g)
			continue
		}
		for _, id := range members[g] {
			count[resolved[id]].all++
			if side[g] {
				count[resolved[id]].hold++
				holdout = append(holdout, id)
			} else {
				train = append(train, id)
			}
		}
	}
	anyRandom := func(g string) bool {
		return slices.ContainsFunc(members[g], func(id string) bool { return random[id] })
	}
	keys := make(map[string]uint64, len(free))
	for _, g := range free {
		keys[g] = holdoutKey(cfg.Seed, g[2:])
		for _, id := range members[g] {
			count[resolved[id]].all++
		}
	}
	slices.SortStableFunc(free, func(a, b string) int {
		if ra, rb := anyRandom(a), anyRandom(b); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Compare(keys[a], keys[b])
	})
	short := func(cls string) bool {
		c := count[cls]
		return cfg.Fraction > 0 && c.hold < int(math.Round(cfg.Fraction*float64(c.all)))
	}
	for _, g := range free {
		hold := true
		for _, id := range members[g] {
			hold = hold && short(resolved[id])
		}
		for _, id := range members[g] {
			if hold {
				count[resolved[id]].hold++
				holdout = append(holdout, id)
			} else {
				train = append(train, id)
			}
		}
	}
	slices.Sort(holdout)
	slices.Sort(train)
	return holdout, train
}

// holdoutKey orders cases for AssignHoldout: an FNV-1a hash of the seed
// and the id, so the order of two cases does not depend on which others
// arrived with them.
func holdoutKey(seed int64, id string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(id))
	return h.Sum64()
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
// holdout, admitted the cases admitted without a label, and group maps
// cases to their patient's key (see AssignHoldout): a case admitted from a
// patient in the holdout does not train either. It is the one place that
// decides what trains, so the holdout exclusion is enforced here.
func PlanTraining(seed []string, resolved map[string]string, admitted, holdout []string, group map[string]string) TrainingPlan {
	hold := map[string]bool{}
	holdPatient := map[string]bool{}
	p := TrainingPlan{Holdout: map[string]string{}}
	for _, id := range holdout {
		hold[id] = true
		if g := group[id]; g != "" {
			holdPatient[g] = true
		}
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
		if g := group[id]; g != "" && holdPatient[g] {
			continue
		}
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
