package agent

import (
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/store"
)

// A worklist item's reason gives the score and threshold of its own
// columns, whatever scale the round ranked on.
func TestWorklistReasonMatchesItsNumbers(t *testing.T) {
	items := Worklist([]store.WorklistRow{
		{InstanceID: "a", Score: 0.0123, Threshold: 0.0456, ModelVersion: "m1", Strategy: "hybrid",
			Reason: "boundary rank 2 (score -1.8, threshold 1.645), uncertainty rank 1 (0.01); diverse pick 1 from a shortlist of 8"},
		{InstanceID: "b", Score: 0.9, Threshold: 0.5, ModelVersion: "m1", Strategy: "boundary", Reason: "score 2.1 is 0.455 from the threshold 1.645"},
		{InstanceID: "c", Reason: "drawn at random"},
	})
	if r := items[0].Reason; !strings.Contains(r, "(score 0.0123, threshold 0.0456)") || strings.Contains(r, "1.645") || !strings.Contains(r, "diverse pick 1") {
		t.Errorf("hybrid reason %q", r)
	}
	if r := items[1].Reason; r != "score 0.9 is 0.4 above the threshold 0.5" {
		t.Errorf("boundary reason %q", r)
	}
	if r := items[2].Reason; r != "drawn at random" {
		t.Errorf("random reason %q", r)
	}
}
