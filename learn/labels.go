package learn

import (
	"cmp"
	"slices"

	"github.com/sentinel-pacs/sentinel"
)

// Label values.
const (
	Normal   = "normal"
	Abnormal = "abnormal"
)

// Resolve decides which label counts for one instance when several readers
// answered. Every label is kept in the store; this is the policy for which
// one the learning loop uses:
//
//  1. Each reader's most recent label counts, earlier ones by the same
//     reader are superseded (a reader may correct themselves).
//  2. The value most readers give wins.
//  3. A tie counts as abnormal: a case one radiologist calls abnormal must
//     never enter the normal set, and an abnormal label only recalibrates
//     the threshold and the head, which is the safe side to err on.
//
// It returns "" for no labels.
func Resolve(labels []sentinel.Label) string {
	latest := map[string]sentinel.Label{}
	for _, l := range labels {
		if p, ok := latest[l.Reader]; !ok || !l.Time.Before(p.Time) {
			latest[l.Reader] = l
		}
	}
	var n, a int
	for _, l := range latest {
		if l.Value == Normal {
			n++
		} else {
			a++
		}
	}
	switch {
	case n == 0 && a == 0:
		return ""
	case n > a:
		return Normal
	}
	return Abnormal
}

// ResolveAll applies Resolve to each instance's labels.
func ResolveAll(labels map[string][]sentinel.Label) map[string]string {
	out := make(map[string]string, len(labels))
	for id, ls := range labels {
		if v := Resolve(ls); v != "" {
			out[id] = v
		}
	}
	return out
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}
