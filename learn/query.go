package learn

import (
	"cmp"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strings"
)

// Strategy names a way of choosing the cases to ask about.
type Strategy string

// Query strategies.
const (
	// Uncertainty asks about the cases whose score the detector is least
	// sure of: the largest SWAG spread. Without uncertainties it falls back
	// to Boundary, and says so in each reason.
	Uncertainty Strategy = "uncertainty"
	// Boundary asks about the cases closest to the decision threshold.
	Boundary Strategy = "boundary"
	// Diverse asks about cases spread over the embedding space (greedy
	// k-center from the cases already labelled), so near-identical cases
	// are not asked twice.
	Diverse Strategy = "diverse"
	// Random asks about cases drawn uniformly: the yardstick.
	Random Strategy = "random"
	// Hybrid, the default, shortlists the most informative cases (by the
	// sum of their uncertainty and boundary ranks) and picks a diverse
	// subset of the shortlist by k-center, so a round is neither all
	// near-duplicates nor all easy cases.
	Hybrid Strategy = "hybrid"
)

// Strategies lists every strategy, default first.
var Strategies = []Strategy{Hybrid, Uncertainty, Boundary, Diverse, Random}

// ParseStrategy returns the strategy named s ("" is Hybrid).
func ParseStrategy(s string) (Strategy, error) {
	if s == "" {
		return Hybrid, nil
	}
	for _, st := range Strategies {
		if string(st) == strings.ToLower(s) {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown query strategy %q: want one of %v", s, Strategies)
}

// Pick is one case chosen to ask about, with why.
type Pick struct {
	InstanceID string
	Strategy   Strategy
	Reason     string
	// Random says the case was drawn uniformly at random (by Random, or
	// by Hybrid for exploration from outside its shortlist), so that its
	// label is representative rather than chosen for being informative:
	// such cases fill the holdout first (see AssignHoldout).
	Random bool
}

// SelectOptions says how many cases to pick and how.
type SelectOptions struct {
	Strategy Strategy
	// N is the budget: at most N cases are picked.
	N int
	// Seed makes Random (and tie-breaking) reproducible.
	Seed int64
	// Exclude holds the cases that must not be picked: already queried or
	// already labelled. A case is never queried twice.
	Exclude map[string]bool
	// Anchors are the embeddings of the cases already known (labelled or
	// seed normals); Diverse and Hybrid move away from them.
	Anchors [][]float32
	// ShortlistFactor sizes Hybrid's shortlist as a multiple of N (default 4).
	ShortlistFactor int
	// Explore is the share of Hybrid's budget drawn at random from the cases
	// it did not shortlist (0 means the default, 1/3; negative means none).
	Explore float64
	// Busy holds the groups (see Case.Group) that already have an open
	// query: none of their cases is picked until it is answered or expires.
	Busy map[string]bool
}

// groups enforces one pick per group: a case is free while no case of its
// group has been picked and its group is not busy.
type groups struct {
	of    []string
	taken map[string]bool
}

func newGroups(cs []Case, busy map[string]bool) *groups {
	g := &groups{of: make([]string, len(cs)), taken: map[string]bool{}}
	for i, c := range cs {
		g.of[i] = c.Group
	}
	for k, b := range busy {
		if b && k != "" {
			g.taken[k] = true
		}
	}
	return g
}

func (g *groups) free(i int) bool { return g.of[i] == "" || !g.taken[g.of[i]] }

func (g *groups) take(i int) {
	if g.of[i] != "" {
		g.taken[g.of[i]] = true
	}
}

// first takes up to n free cases in the given order.
func (g *groups) first(order []int, n int) []int {
	var out []int
	for _, i := range order {
		if len(out) == n {
			break
		}
		if g.free(i) {
			g.take(i)
			out = append(out, i)
		}
	}
	return out
}

// defaultExplore is Hybrid's default random share. Picks near the
// threshold of a young model are mostly abnormal (the threshold sits in the
// normals' tail), so a loop that asks only about them fits its head and
// threshold on a few normals and a skewed sample of abnormals; a third of
// the budget drawn at random keeps the labels representative of the pool.
const defaultExplore = 1.0 / 3

// Select picks up to opt.N cases to ask about. Cases in opt.Exclude and
// duplicate instance ids are never picked, nor two cases of one group, nor
// a case of a group in opt.Busy.
func Select(cases []Case, opt SelectOptions) ([]Pick, error) {
	if opt.N <= 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	var cs []Case
	for _, c := range cases {
		if opt.Exclude[c.InstanceID] || seen[c.InstanceID] {
			continue
		}
		seen[c.InstanceID] = true
		cs = append(cs, c)
	}
	// A deterministic base order, so that ties break the same way each run.
	slices.SortFunc(cs, func(a, b Case) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	n := min(opt.N, len(cs))
	g := newGroups(cs, opt.Busy)
	switch opt.Strategy {
	case Random:
		order := allIndices(len(cs))
		rng := rand.New(rand.NewSource(opt.Seed))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var out []Pick
		for _, i := range g.first(order, n) {
			out = append(out, Pick{cs[i].InstanceID, Random, "drawn at random", true})
		}
		return out, nil
	case Boundary:
		return byBoundary(cs, n, g, Boundary, ""), nil
	case Uncertainty:
		if !anyUncertainty(cs) {
			return byBoundary(cs, n, g, Uncertainty, "no SWAG uncertainty available; "), nil
		}
		return byUncertainty(cs, n, g), nil
	case Diverse:
		idx := kCenter(cs, allIndices(len(cs)), opt.Anchors, n, g)
		out := make([]Pick, len(idx))
		for i, j := range idx {
			out[i] = Pick{InstanceID: cs[j].InstanceID, Strategy: Diverse, Reason: fmt.Sprintf("far from every case already known (k-center pick %d)", i+1)}
		}
		return out, nil
	case Hybrid, "":
		return hybrid(cs, n, g, opt), nil
	}
	return nil, fmt.Errorf("unknown query strategy %q", opt.Strategy)
}

func allIndices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func anyUncertainty(cs []Case) bool {
	for _, c := range cs {
		if c.Uncertainty != nil && !math.IsNaN(*c.Uncertainty) {
			return true
		}
	}
	return false
}

func uncertaintyOf(c Case) float64 {
	if c.Uncertainty == nil || math.IsNaN(*c.Uncertainty) {
		return math.Inf(-1)
	}
	return *c.Uncertainty
}

func byBoundary(cs []Case, n int, g *groups, st Strategy, prefix string) []Pick {
	order := allIndices(len(cs))
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(math.Abs(cs[a].Score-cs[a].Threshold), math.Abs(cs[b].Score-cs[b].Threshold))
	})
	picked := g.first(order, n)
	out := make([]Pick, len(picked))
	for i, j := range picked {
		c := cs[j]
		out[i] = Pick{InstanceID: c.InstanceID, Strategy: st, Reason: fmt.Sprintf("%sscore %.4g is %.3g from the threshold %.4g", prefix, c.Score, math.Abs(c.Score-c.Threshold), c.Threshold)}
	}
	return out
}

func byUncertainty(cs []Case, n int, g *groups) []Pick {
	order := allIndices(len(cs))
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(uncertaintyOf(cs[b]), uncertaintyOf(cs[a])) })
	rank := make([]int, len(cs))
	for r, j := range order {
		rank[j] = r
	}
	picked := g.first(order, n)
	out := make([]Pick, len(picked))
	for i, j := range picked {
		out[i] = Pick{InstanceID: cs[j].InstanceID, Strategy: Uncertainty, Reason: fmt.Sprintf("SWAG uncertainty %.4g, rank %d of %d", uncertaintyOf(cs[j]), rank[j]+1, len(cs))}
	}
	return out
}

// hybrid ranks every case by boundary closeness and by uncertainty (when
// known), shortlists the best ShortlistFactor·m by the sum of the two
// ranks, and picks m of them by k-center so that they differ, where m is
// n less the exploration share, which it draws at random from the cases
// outside the shortlist. The shortlist holds the best-ranked free case of
// each group, so that its diverse picks differ in patient too.
func hybrid(cs []Case, n int, g *groups, opt SelectOptions) []Pick {
	explore := opt.Explore
	if explore == 0 {
		explore = defaultExplore
	}
	nr := 0
	if explore > 0 {
		nr = min(n, int(math.Round(explore*float64(n))))
	}
	n -= nr
	bRank := rankBy(cs, func(c Case) float64 { return math.Abs(c.Score - c.Threshold) })
	withU := anyUncertainty(cs)
	var uRank []int
	if withU {
		uRank = rankBy(cs, func(c Case) float64 { return -uncertaintyOf(c) })
	}
	combined := func(i int) int {
		if withU {
			return bRank[i] + uRank[i]
		}
		return bRank[i]
	}
	order := allIndices(len(cs))
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(combined(a), combined(b)) })
	f := opt.ShortlistFactor
	if f <= 0 {
		f = 4
	}
	var short []int
	inList := map[string]bool{}
	for _, j := range order {
		if len(short) == f*n {
			break
		}
		if k := g.of[j]; g.free(j) && (k == "" || !inList[k]) {
			inList[k] = true
			short = append(short, j)
		}
	}
	picked := kCenter(cs, short, opt.Anchors, n, g)
	out := make([]Pick, len(picked))
	for i, j := range picked {
		c := cs[j]
		r := fmt.Sprintf("boundary rank %d (score %.4g, threshold %.4g)", bRank[j]+1, c.Score, c.Threshold)
		if withU {
			r += fmt.Sprintf(", uncertainty rank %d (%.4g)", uRank[j]+1, uncertaintyOf(c))
		}
		out[i] = Pick{InstanceID: c.InstanceID, Strategy: Hybrid, Reason: r + fmt.Sprintf("; diverse pick %d from a shortlist of %d", i+1, len(short))}
	}
	if nr == 0 {
		return out
	}
	inShort := make([]bool, len(cs))
	for _, j := range short {
		inShort[j] = true
	}
	var rest []int
	for j := range cs {
		if !inShort[j] && g.free(j) {
			rest = append(rest, j)
		}
	}
	if len(rest) < nr { // a small pool: draw from whatever was not picked
		rest = rest[:0]
		took := make([]bool, len(cs))
		for _, j := range picked {
			took[j] = true
		}
		for j := range cs {
			if !took[j] && g.free(j) {
				rest = append(rest, j)
			}
		}
	}
	rng := rand.New(rand.NewSource(opt.Seed))
	rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
	for i, j := range g.first(rest, nr) {
		out = append(out, Pick{cs[j].InstanceID, Hybrid, fmt.Sprintf("drawn at random for exploration (%d of %d)", i+1, nr), true})
	}
	return out
}

// rankBy returns each case's 0-based rank by key, smallest first.
func rankBy(cs []Case, key func(Case) float64) []int {
	order := allIndices(len(cs))
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(key(cs[a]), key(cs[b])) })
	rank := make([]int, len(cs))
	for r, i := range order {
		rank[i] = r
	}
	return rank
}

// kCenter picks n of the candidate indices greedily, each time the one
// farthest from everything picked so far and from the anchors. Without
// anchors it starts from the first candidate (the most informative for
// Hybrid). Cases without an embedding count as infinitely far, so they are
// picked in candidate order. Only free cases (see groups) are picked, and
// fewer than n when too few are free.
func kCenter(cs []Case, cand []int, anchors [][]float32, n int, g *groups) []int {
	n = min(n, len(cand))
	dist := make([]float64, len(cand))
	for k, i := range cand {
		dist[k] = math.Inf(1)
		if len(cs[i].Embedding) == 0 {
			continue
		}
		for _, a := range anchors {
			dist[k] = min(dist[k], sqDist(cs[i].Embedding, a))
		}
	}
	used := make([]bool, len(cand))
	out := make([]int, 0, n)
	for len(out) < n {
		best := -1
		for k, i := range cand {
			if !used[k] && g.free(i) && (best < 0 || dist[k] > dist[best]) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		used[best] = true
		g.take(cand[best])
		out = append(out, cand[best])
		e := cs[cand[best]].Embedding
		if len(e) == 0 {
			continue
		}
		for k, i := range cand {
			if !used[k] && len(cs[i].Embedding) > 0 {
				dist[k] = min(dist[k], sqDist(cs[i].Embedding, e))
			}
		}
	}
	return out
}
