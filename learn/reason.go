package learn

import (
	"fmt"
	"math"
	"regexp"
)

// A query's reason is written when the round is chosen, with the score on
// the scale the strategy ranked by (the combiner's, standardised on the
// seed normals). A worklist shows the score and threshold of the film's
// report instead, so RestateReason rewrites the numbers of the reason in
// those terms; the ranks and the rest of the words stand.
var (
	boundaryReason = regexp.MustCompile(`score (\S+) is (\S+) from the threshold ([^\s;,)]+)`)
	rankedReason   = regexp.MustCompile(`\(score [^,()]+, threshold [^,()]+\)`)
)

// RestateReason returns reason with its score, distance and threshold
// replaced by score and threshold, as the report and the worklist give
// them. A reason without those numbers comes back unchanged.
func RestateReason(reason string, score, threshold float64) string {
	side := "below"
	if score > threshold {
		side = "above"
	}
	reason = boundaryReason.ReplaceAllLiteralString(reason,
		fmt.Sprintf("score %.4g is %.3g %s the threshold %.4g", score, math.Abs(score-threshold), side, threshold))
	return rankedReason.ReplaceAllLiteralString(reason, fmt.Sprintf("(score %.4g, threshold %.4g)", score, threshold))
}
